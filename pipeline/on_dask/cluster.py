"""The Dask cluster a command's Beam components run on (beam_runner: dask)."""

import contextlib
import logging
from typing import Iterator, Optional

from pipeline.config import PipelineConfig


@contextlib.contextmanager
def dask_cluster(config: PipelineConfig) -> Iterator[Optional[str]]:
    """The scheduler's address while the block runs: the one dask_address or
    DASK_SCHEDULER_ADDRESS names, else a local cluster of config.dask_workers processes
    (one thread each: Beam's DoFns hold the GIL) started here and stopped after. None where
    the Beam components run on the DirectRunner."""
    if config.beam_runner != "dask":
        yield None
        return
    import dask
    from distributed import LocalCluster

    given = config.dask_address or dask.config.get("scheduler-address", None)
    if given:
        yield given
        return
    with LocalCluster(n_workers=config.dask_workers, threads_per_worker=1, processes=True,
                      dashboard_address=":0", silence_logs=logging.ERROR) as cluster, \
            dask.config.set({"scheduler-address": cluster.scheduler_address}):
        yield cluster.scheduler_address
