"""`recsys serve` under load on localhost: bounded concurrent clients for a fixed time each,
requests/s, p50/p99 latency end to end, errors, the server's memory; then the same while a
new version is pushed mid-run. Writes bench/results/serve.{json,md}.

Usage: python -m bench.serve_bench --output DIR [--clients 1,8,64] [--seconds 20]
The output folder needs a pushed model (`make run` makes one in output/).
"""

import argparse
import asyncio
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import time
from typing import Dict, List

import numpy as np

from bench.common import machine, write_report

PREDICT = "/v1/models/recsys:predict"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _rss_mb(pid: int) -> float:
    import psutil

    return psutil.Process(pid).memory_info().rss / 2**20


async def _load(base: str, users: List[str], clients: int, seconds: float,
                during=None) -> Dict[str, float]:
    """clients workers, each sending one single-user `recommend` (TF Serving's columnar
    form, k 10) after another for seconds; `during` runs once, halfway."""
    import aiohttp

    latencies: List[float] = []
    errors = 0
    deadline = time.monotonic() + seconds
    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector) as session:
        async def client(seed: int):
            nonlocal errors
            rng = random.Random(seed)
            while time.monotonic() < deadline:
                body = {"signature_name": "recommend",
                        "inputs": {"user_id": [rng.choice(users)], "k": 10}}
                start = time.perf_counter()
                try:
                    async with session.post(base + PREDICT, json=body) as response:
                        payload = await response.json()
                        ok = response.status == 200 and len(payload["outputs"]["item_ids"][0])
                except Exception:  # noqa: BLE001 - a failed request is counted, not raised
                    ok = False
                latencies.append(time.perf_counter() - start)
                errors += not ok

        async def halfway():
            await asyncio.sleep(seconds / 2)
            await asyncio.get_running_loop().run_in_executor(None, during)

        start = time.monotonic()
        tasks = [client(n) for n in range(clients)] + ([halfway()] if during else [])
        await asyncio.gather(*tasks)
        elapsed = time.monotonic() - start
    milliseconds = np.array(latencies) * 1e3
    return {"clients": clients, "requests": len(latencies), "errors": errors,
            "requests_per_s": len(latencies) / elapsed,
            "p50_ms": float(np.percentile(milliseconds, 50)),
            "p99_ms": float(np.percentile(milliseconds, 99))}


def _push_copy(serving_dir: str) -> str:
    """A new version: the newest one copied under the next number, staged then renamed,
    as the Pusher and `recsys rollback` write one."""
    versions = sorted((v for v in os.listdir(serving_dir) if v.isdigit()), key=int)
    new = str(int(versions[-1]) + 1)
    staged = os.path.join(serving_dir, f".bench-{new}")
    shutil.copytree(os.path.join(serving_dir, versions[-1]), staged)
    os.rename(staged, os.path.join(serving_dir, new))
    return new


def _wait_ready(base: str, process, timeout: float = 120.0) -> dict:
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"recsys serve exited with {process.returncode}")
        try:
            with urllib.request.urlopen(base + "/readyz", timeout=1) as response:
                return json.load(response)
        except OSError:
            time.sleep(0.5)
    raise RuntimeError("recsys serve not ready in time")


def _version(base: str) -> str:
    import urllib.request

    with urllib.request.urlopen(base + "/readyz", timeout=5) as response:
        return json.load(response)["version"]


def run(output_dir: str, clients: List[int], seconds: float) -> dict:
    from pipeline.serving import Recommender, latest_model_dir

    serving_dir = os.path.join(output_dir, "serving")
    recommender = Recommender(latest_model_dir(serving_dir))
    users, items = recommender.ids("user"), len(recommender.ids("item"))
    del recommender
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    command = [os.path.join(os.path.dirname(sys.executable), "recsys"), "serve", "--output",
               output_dir, "--port", str(port)]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    pushed = []
    try:
        _wait_ready(base, server)
        memory = [_rss_mb(server.pid)]
        levels = []
        asyncio.run(_load(base, users, 8, min(seconds, 5.0)))  # warm-up, not reported
        for count in clients:
            levels.append(asyncio.run(_load(base, users, count, seconds)))
            memory.append(_rss_mb(server.pid))
        before = _version(base)
        swap = asyncio.run(_load(base, users, 8, seconds,
                                 during=lambda: pushed.append(_push_copy(serving_dir))))
        time.sleep(2.0)
        swap.update(version_before=before, version_pushed=pushed[0],
                    version_after=_version(base))
        memory.append(_rss_mb(server.pid))
    finally:
        server.terminate()
        server.wait(timeout=30)
        for version in pushed:
            shutil.rmtree(os.path.join(serving_dir, version), ignore_errors=True)
    total = sum(level["requests"] for level in levels) + swap["requests"]
    return {"machine": machine(), "users": len(users), "items": items, "seconds": seconds,
            "levels": levels, "swap": swap, "memory_mb": memory, "total_requests": total}


def markdown(report: dict) -> str:
    lines = [f"`recsys serve`, single-user `recommend` (k 10) through TF Serving's REST form, "
             f"{report['users']:,} users, {report['items']:,} items, {report['seconds']:.0f} s "
             f"per row; {report['machine']['cpu']}, {report['machine']['cores']} cores",
             "", "| clients | requests/s | p50 ms | p99 ms | errors |",
             "|---:|---:|---:|---:|---:|"]
    for level in report["levels"] + [report["swap"]]:
        label = f"{level['clients']}" + (" (a version pushed halfway)"
                                         if level is report["swap"] else "")
        lines.append(f"| {label} | {level['requests_per_s']:,.0f} | {level['p50_ms']:.2f} | "
                     f"{level['p99_ms']:.2f} | {level['errors']} |")
    swap = report["swap"]
    lines += ["", f"Swap: version {swap['version_before']} → pushed {swap['version_pushed']}, "
              f"served after: {swap['version_after']}.",
              f"Server memory (MB) at start, after each row: "
              f"{', '.join(f'{m:.0f}' for m in report['memory_mb'])} "
              f"over {report['total_requests']:,} requests.", ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default="output", help="a pipeline output folder")
    parser.add_argument("--clients", default="1,8,64")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--name", default="serve", help="report name under bench/results/")
    args = parser.parse_args(argv)
    report = run(os.path.abspath(args.output), [int(c) for c in args.clients.split(",")],
                 args.seconds)
    write_report(args.name, report, markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
