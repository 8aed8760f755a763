"""A Beam runner on a Dask cluster that runs what this pipeline's own PTransforms need.

Beam 2.61's DaskRunner (apache_beam.runners.dask) cannot run a pipeline given by options, as
TFX gives it: it hands every option, `--runner` too, to `distributed.Client`, which refuses
them. Past that it calls a DoFn's `process` alone (no setup, bundles or teardown), passes side
inputs as unfilled placeholders, reads nothing from a source, and mixes tagged outputs into the
main one. This runner translates the same primitives itself: ParDo with the DoFn lifecycle
per partition, side inputs as values broadcast to every partition, tagged outputs; bounded
reads split into bundles; Impulse. It refuses what it does not translate, naming the
transform, rather than run it wrong. docs/distributed.md says which components run on it.
"""

import dataclasses
import zlib
from typing import Any, Dict, List

import apache_beam as beam
import dask
import dask.bag as db
import distributed
from apache_beam import coders, pvalue
from apache_beam.pipeline import AppliedPTransform, PipelineVisitor, PTransformOverride
from apache_beam.runners.common import DoFnSignature
from apache_beam.runners.dask.dask_runner import DaskOptions
from apache_beam.runners.dask.overrides import (
    _Create,
    _GroupByKey,
    _GroupByKeyOnly,
    _Read,
    _Reshuffle,
)
from apache_beam.runners.runner import PipelineResult, PipelineRunner, PipelineState
from apache_beam.transforms.core import _DoFnParam
from apache_beam.transforms.window import GlobalWindows
from apache_beam.utils.windowed_value import WindowedValue

BUNDLE_BYTES = 64 << 20  # a bounded source's split size: one partition each
_MAIN = "__main__"  # the tag of a DoFn's untagged outputs


class _Replace(PTransformOverride):
    """Beam 2.61's Dask overrides, less its Flatten's, which fails on one input."""

    def __init__(self, original, replacement):
        self._original, self._replacement = original, replacement

    def matches(self, applied_ptransform):
        return applied_ptransform.transform.__class__ == self._original

    def get_replacement_transform_for_applied_ptransform(self, applied_ptransform):
        return self._replacement(applied_ptransform.transform)


OVERRIDES = (_Replace(beam.Create, lambda create: _Create(create.values)),
             _Replace(beam.Reshuffle, lambda _: _Reshuffle()),
             _Replace(beam.io.Read, lambda read: _Read(read.source)),
             _Replace(beam.GroupByKey, lambda _: _GroupByKey()))


class UnsupportedOnDaskError(ValueError):
    """A transform this runner does not translate."""


def _unwrapped(value):
    return value.value if isinstance(value, (WindowedValue, beam.window.TimestampedValue)) \
        else value


@dataclasses.dataclass(frozen=True)
class _Side:
    """Where a side input stands in a DoFn's arguments: the index of its value among a
    partition's broadcast values, and how to view them."""

    index: int
    view: type
    options: tuple


def _fill(value, side_values):
    if isinstance(value, _Side):
        return value.view._from_runtime_iterable(side_values[value.index], value.options)
    return value


def _run_bundle(elements, do_fn, args, kwargs, tagged: bool, *side_values):
    """One partition as one bundle: the DoFn's whole lifecycle, side inputs filled in."""
    args = [_fill(a, side_values) for a in args]
    kwargs = {k: _fill(v, side_values) for k, v in kwargs.items()}
    outputs: List[Any] = []

    def emit(results):
        for result in results or ():
            tag = result.tag if isinstance(result, pvalue.TaggedOutput) else _MAIN
            value = _unwrapped(result.value if tag is not _MAIN else result)
            outputs.append((tag, value) if tagged else value)

    do_fn.setup()
    do_fn.start_bundle()
    for element in elements:
        emit(do_fn.process(element, *args, **kwargs))
    emit(do_fn.finish_bundle())
    do_fn.teardown()
    return outputs


def _concatenated(parts):
    return [value for part in parts for value in part]


# Keys encoded alike in every process: hash() of a str or bytes differs between processes
# unless a nanny pinned their PYTHONHASHSEED (`dask worker --no-nanny` does not), and a shuffle
# on it then splits a key's values over several groups.
_KEY_CODER = coders.FastPrimitivesCoder().as_deterministic_coder("GroupByKey on Dask")


def _keyed_by_hash(kv):
    return zlib.crc32(_KEY_CODER.encode(kv[0])), kv


def _groups(hashed):
    """(key, values) of every key among one hash's (key, value) pairs."""
    groups: Dict[Any, List[Any]] = {}
    for _, (key, value) in hashed[1]:
        groups.setdefault(key, []).append(value)
    return list(groups.items())


def _grouped_by_key(bag):
    return bag.map(_keyed_by_hash).groupby(lambda hashed: hashed[0], shuffle="tasks") \
        .map(_groups).flatten()


def _read_bundles(bundles):
    for bundle in bundles:
        tracker = bundle.source.get_range_tracker(bundle.start_position, bundle.stop_position)
        yield from bundle.source.read(tracker)


@dataclasses.dataclass
class _Bags(PipelineVisitor):
    """Each primitive transform's dask bag, built in topological order."""

    bags: Dict[AppliedPTransform, Any] = dataclasses.field(default_factory=dict)
    consumed: set = dataclasses.field(default_factory=set)

    def bag_of(self, value: pvalue.PCollection):
        producer = value.producer
        self.consumed.add(producer)
        bag = self.bags[producer]
        if isinstance(producer.transform, beam.ParDo) and producer.transform.output_tags:
            tag = value.tag if value.tag in producer.transform.output_tags else _MAIN
            bag = bag.filter(lambda item, tag=tag: item[0] == tag).map(lambda item: item[1])
        return bag

    def visit_transform(self, node: AppliedPTransform) -> None:
        transform = node.transform
        inputs = [self.bag_of(v) for v in node.main_inputs.values()
                  if isinstance(v, pvalue.PCollection)]
        if isinstance(transform, _Create):
            bag = db.from_sequence(transform.values, partition_size=1)
        elif isinstance(transform, beam.Impulse):
            bag = db.from_sequence([b""])
        elif isinstance(transform, _Read):
            bag = db.from_sequence(list(transform.source.split(BUNDLE_BYTES)),
                                   partition_size=1).map_partitions(_read_bundles)
        elif isinstance(transform, _Reshuffle):
            bag = inputs[0]
        elif isinstance(transform, _GroupByKeyOnly):
            bag = _grouped_by_key(inputs[0])
        elif isinstance(transform, beam.Flatten):
            bag = db.concat(inputs) if inputs else db.from_sequence([])
        elif isinstance(transform, beam.WindowInto):
            if not isinstance(transform.windowing.windowfn, GlobalWindows):
                raise UnsupportedOnDaskError(f"{node.full_label}: only the global window runs "
                                             f"on Dask, not {transform.windowing.windowfn}")
            bag = inputs[0]
        elif isinstance(transform, beam.ParDo):
            bag = self._par_do(node, transform, inputs[0])
        else:
            raise UnsupportedOnDaskError(
                f"{node.full_label}: {type(transform).__name__} does not run on Dask")
        self.bags[node] = bag

    def _par_do(self, node, transform, main):
        signature = DoFnSignature(transform.fn)
        if signature.is_stateful_dofn() or signature.is_splittable_dofn():
            raise UnsupportedOnDaskError(f"{node.full_label}: state, timers and splittable "
                                         f"DoFns do not run on Dask")
        # The wrapped callable's defaults, for Map and FlatMap: what Beam would fill in.
        params = [type(value).__name__ for value in signature.process_method.defaults
                  if isinstance(value, _DoFnParam)]
        if params:
            raise UnsupportedOnDaskError(f"{node.full_label}: DoFn parameters "
                                         f"({', '.join(params)}) do not run on Dask")
        raw_args, raw_kwargs = transform.raw_side_inputs
        side_bags = []

        def placed(value):
            if not isinstance(value, pvalue.AsSideInput):
                return value
            side_bags.append(self.bag_of(value.pvalue))
            return _Side(len(side_bags) - 1, type(value), value._view_options())

        args = [placed(a) for a in raw_args]
        kwargs = {k: placed(v) for k, v in raw_kwargs.items()}
        # Each side input whole, one value broadcast to every partition of the main input.
        side_items = [bag.reduction(list, _concatenated) for bag in side_bags]
        return main.map_partitions(_run_bundle, transform.fn, args, kwargs,
                                   bool(transform.output_tags), *side_items)

    def leaves(self):
        return [bag for node, bag in self.bags.items() if node not in self.consumed]


class DaskRunner(PipelineRunner):
    """Runs a batch pipeline on the Dask scheduler at --dask_client_address."""

    def run_pipeline(self, pipeline, options):
        address = (options.view_as(DaskOptions).address  # --dask_client_address
                   or dask.config.get("scheduler-address", None))
        if not address:
            raise ValueError("DaskRunner needs a scheduler: --dask_client_address or "
                             "DASK_SCHEDULER_ADDRESS (recsys run --beam-runner dask starts a "
                             "local cluster unless one is named)")
        pipeline.replace_all(OVERRIDES)
        bags = _Bags()
        pipeline.visit(bags)
        client = distributed.Client(address, set_as_default=False)
        # Only what nothing reads further: the counts of the leaves' elements come back, not
        # their contents.
        futures = client.compute([bag.count() for bag in bags.leaves()])
        return DaskResult(client, futures)


class DaskResult(PipelineResult):
    def __init__(self, client, futures):
        super().__init__(PipelineState.RUNNING)
        self._client, self._futures = client, futures

    def wait_until_finish(self, duration=None):
        try:
            self._client.gather(self._futures, errors="raise")
            self._state = PipelineState.DONE
        except BaseException:
            self._state = PipelineState.FAILED
            raise
        finally:
            self._client.close()
        return self._state

    def cancel(self):
        self._client.cancel(self._futures)
        self._state = PipelineState.CANCELLED
        return self._state

    def metrics(self):
        raise NotImplementedError("DaskRunner collects no metrics")

