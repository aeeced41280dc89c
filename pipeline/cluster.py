"""Dask clusters for the batch: a local one sized to this machine, or an existing one by address.

Workers only analyse (pipeline.process.analyse_recording): they read a recording by its path and
return the analysed call; the process that started the batch is the only writer of the database.
Models are loaded once per worker process (pipeline.asr and pipeline.diarize cache them by their
settings) and reused for every recording the worker analyses.
Every cluster started here binds 127.0.0.1 and is closed by the code that started it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from pipeline.config import Settings

if TYPE_CHECKING:
    import distributed

# Threads per worker process, from bench/batch_layout.py over recordings_sample on 2 cores
# (bench/results/batch-layout-2026-11-29*.md). Quiet machine (load 2.5-4.6): today's sequential batch
# 49.2 s, 2 processes × 1 thread 45.2 s (1.09×), 1 × 2 67.5 s (0.73×). Busy machine (load 12-14): 213 s,
# 232 s, 149 s. The quiet run decides (its sequential figure matches the idle 8.3× real time of
# bench/results/throughput-2026-11-23.md): separate processes run Python stages without sharing a
# GIL, and each whisper on one thread wastes less than one whisper on two.
THREADS_PER_WORKER = 1
# Memory of one worker process analysing up to intake.max_duration_s (4 h): about 1.5 GB peak on
# ordinary calls (bench/throughput.py), 1,621 MiB on a 3-hour stereo recording and about 2.0 GiB
# projected for 4 hours (bench/results/long-recording-2026-11-29b.md); kept at 2.5 GiB because long
# mono recordings grow faster: 2,137 MiB at 3 hours, about 2.4 GiB projected for 4
# (bench/results/long-recording-2026-11-29c.md). No more are started than memory holds.
WORKER_MEMORY_BYTES = 5 * 1024**3 // 2


def local_layout(workers: int = 0) -> tuple[int, int]:
    """(worker processes, threads each) for a local cluster analysing `workers` recordings at once;
    0 = sized to this machine: as many at once as it has cores, as memory allows."""
    if workers <= 0:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        by_memory = max(1, _memory_bytes() // WORKER_MEMORY_BYTES) * THREADS_PER_WORKER
        workers = max(1, min(cores, by_memory))
    threads = min(THREADS_PER_WORKER, workers)
    return -(-workers // threads), threads


def _memory_bytes() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        return WORKER_MEMORY_BYTES


def local_cluster_options(
    settings: Settings, workers: int = 0, env: dict[str, str] | None = None
) -> dict[str, object]:
    """Keyword arguments of distributed.LocalCluster for the batch; `env` goes to the workers."""
    processes, threads = local_layout(workers or settings.batch.workers)
    limit = str(threads)  # numerical libraries (torch, ONNX, BLAS) use the worker's threads only
    return {
        "n_workers": processes,
        "threads_per_worker": threads,
        "processes": True,
        "host": "127.0.0.1",
        "dashboard_address": None,
        "memory_limit": 0,  # Dask's own limit would kill a worker mid-call; memory is sized above
        "silence_logs": logging.WARNING,  # the worker processes' distributed loggers (quiet_dask_logs)
        "env": {
            "OMP_NUM_THREADS": limit,
            "MKL_NUM_THREADS": limit,
            "OPENBLAS_NUM_THREADS": limit,
            **(env or {}),
        },
    }


def scheduler_config(settings: Settings) -> dict[str, object]:
    """Dask settings the batch relies on (a local cluster's scheduler reads them when it starts)."""
    return {
        # a recording on which `max_crashes` workers died is given up: Dask raises KilledWorker
        "distributed.scheduler.allowed-failures": settings.batch.max_crashes - 1,
    }


def local_cluster(
    settings: Settings, workers: int = 0, env: dict[str, str] | None = None
) -> distributed.LocalCluster:
    """A local cluster for the batch, on 127.0.0.1 only; the caller closes it (it is a context manager)."""
    import dask
    from distributed import LocalCluster

    quiet_dask_logs()
    # A worker process reads its loggers' levels from Dask's configuration when it imports
    # distributed, before the cluster's `env` reaches it: set here, the workers inherit it (in the
    # Prefect flow their English start-up lines otherwise come out through Prefect's handlers).
    os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "warning")
    with dask.config.set(scheduler_config(settings)):  # the scheduler reads them as it starts
        return LocalCluster(**local_cluster_options(settings, workers, env))


def quiet_dask_logs() -> None:
    """distributed's INFO lines (in English: a scheduler or worker starts, registers, closes) are not
    the batch's news: its loggers go to WARNING here, so users read our Chinese lines only, and its
    warnings and errors still show. Called after importing distributed, whose logging setup (from
    Dask's configuration) would undo it. The local cluster's worker processes (and its nannies'
    handlers here) are quieted by `silence_logs` in `local_cluster_options`."""
    import distributed  # noqa: F401  (its logging setup runs on import)

    logging.getLogger("distributed").setLevel(logging.WARNING)
    for name in list(logging.root.manager.loggerDict):
        logger = logging.getLogger(name)
        if name.startswith("distributed.") and logging.NOTSET < logger.level < logging.WARNING:
            logger.setLevel(logging.WARNING)  # set one by one in Dask's configuration


@contextmanager
def dask_client(
    settings: Settings, workers: int = 0, address: str | None = None
) -> Iterator[distributed.Client]:
    """A client of the cluster at `address`, or of a local cluster started (and closed) here."""
    from distributed import Client

    quiet_dask_logs()
    if address:
        with Client(address) as client:
            yield client
        return
    with local_cluster(settings, workers) as cluster, Client(cluster) as client:
        yield client


def worker_settings(settings: Settings, client: distributed.Client) -> Settings:
    """The settings the workers get: whisper on as many cores as a worker has threads, unless set."""
    if settings.asr.cpu_threads:
        return settings
    threads = min(client.nthreads().values(), default=1)
    return settings.model_copy(update={"asr": settings.asr.model_copy(update={"cpu_threads": threads})})
