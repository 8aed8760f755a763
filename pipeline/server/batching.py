"""Concurrent requests to one signature run as one call, as TF Serving's batching does: while
`limit` calls for the same signature and settings are in flight, requests queue, and the next
call takes every queued one (up to MAX_BATCH rows). No request waits for a timer: alone, it runs
at once."""

import asyncio
import collections
from typing import Awaitable, Callable, Dict, List, Sequence, Tuple

import tensorflow as tf

from pipeline.server.rest import MAX_BATCH

# The inputs that hold one row per request row, by signature; the others (k) must match.
BATCHED_INPUTS = {
    "recommend": ("user_id",),
    "recommend_with_features": ("user_id", "age", "gender", "occupation", "zip_code"),
    "similar_items": ("item_id",),
    "users_for_item": ("item_id",),
    "serving_default": ("examples",),
}
Tensors = Dict[str, tf.Tensor]


class Coalescer:
    def __init__(self, run: Callable[[Callable], Awaitable], limit: int = 2):
        """run: awaits a callable on the model's thread pool."""
        self._run = run
        self._limit = limit
        self._queues: Dict[Tuple, List[Tuple[Tensors, asyncio.Future]]] = {}
        self._in_flight: Dict[Tuple, int] = collections.Counter()

    async def call(self, version: str, name: str, function: Callable, inputs: Tensors
                   ) -> Tensors:
        batched = BATCHED_INPUTS.get(name)
        if batched is None:
            return await self._run(lambda: function(**inputs))
        key = (version, name) + tuple(
            (k, v.numpy().item()) for k, v in sorted(inputs.items()) if k not in batched)
        future = asyncio.get_running_loop().create_future()
        self._queues.setdefault(key, []).append((inputs, future))
        if self._in_flight[key] < self._limit:
            asyncio.get_running_loop().create_task(self._drain(key, function, batched))
        return await future

    async def _drain(self, key: Tuple, function: Callable, batched: Sequence[str]) -> None:
        self._in_flight[key] += 1
        try:
            while self._queues.get(key):
                group = _take(self._queues, key, batched[0])
                await self._run_group(group, function, batched)
        finally:
            self._in_flight[key] -= 1

    async def _run_group(self, group, function, batched) -> None:
        if len(group) == 1:
            inputs, future = group[0]
            await self._settle(future, lambda: function(**inputs))
            return
        merged = dict(group[0][0])
        for name in batched:
            merged[name] = tf.concat([inputs[name] for inputs, _ in group], axis=0)
        try:
            outputs = await self._run(lambda: function(**merged))
        except Exception:  # noqa: BLE001 - one bad request must not fail the others
            for inputs, future in group:
                await self._settle(future, lambda inputs=inputs: function(**inputs))
            return
        sizes = [int(inputs[batched[0]].shape[0]) for inputs, _ in group]
        parts = {name: tf.split(tensor, sizes) for name, tensor in outputs.items()}
        for row, (_, future) in enumerate(group):
            if not future.done():
                future.set_result({name: split[row] for name, split in parts.items()})

    async def _settle(self, future: asyncio.Future, call: Callable) -> None:
        try:
            result = await self._run(call)
        except Exception as error:  # noqa: BLE001 - handed to the request that caused it
            if not future.done():
                future.set_exception(error)
            return
        if not future.done():
            future.set_result(result)


def _take(queues, key, rows_input: str):
    """The queued requests of key, oldest first, up to MAX_BATCH rows (at least one)."""
    queue = queues[key]
    taken, rows = 0, 0
    while taken < len(queue) and (not taken or rows + int(
            queue[taken][0][rows_input].shape[0]) <= MAX_BATCH):
        rows += int(queue[taken][0][rows_input].shape[0])
        taken += 1
    group, queues[key] = queue[:taken], queue[taken:]
    if not queues[key]:
        del queues[key]
    return group
