"""Where graphs run: a running scheduler if one is named, else a local cluster on loopback."""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import dask
from distributed import Client, LocalCluster, WorkerPlugin, get_client

log = logging.getLogger(__name__)
IN_PROCESS = ("threads", "synchronous")  # --scheduler values that run without a cluster


@dataclass(frozen=True)
class ClusterOptions:
    """How to reach or size the cluster (CLI flags ``--scheduler``, ``--workers``, ...)."""

    scheduler: str | None = None
    workers: int | None = None
    threads_per_worker: int = 1
    memory_limit: str = "auto"

    def scheduler_address(self) -> str | None:
        """The named scheduler: the flag, else ``DASK_SCHEDULER_ADDRESS`` via the Dask config."""
        return self.scheduler or dask.config.get("scheduler-address", None)


DEFAULT_OPTIONS = ClusterOptions()


class SchedulerUnreachable(ValueError):
    """No connection to the named scheduler (address, network or TLS settings)."""


def _connect(address: str) -> Client:
    """A client of the scheduler at ``address``; TLS and timeouts come from the Dask config."""
    before = dict(dask.config.config)
    try:
        return Client(address)
    except (OSError, TypeError) as error:  # TypeError: a tls:// address without TLS settings
        # A Client that fails in its constructor can leave itself set as the default
        # scheduler (distributed 2026.8, TLS): later computes in this process would fail.
        dask.config.config.clear()
        dask.config.config.update(before)
        tls = address.startswith("tls://")
        hint = " (TLS: set distributed.comm.tls.* in the Dask config)" if tls else ""
        raise SchedulerUnreachable(
            f"cannot reach the Dask scheduler at {address}: {error}{hint}"
        ) from error


@contextmanager
def dask_client(options: ClusterOptions = DEFAULT_OPTIONS) -> Iterator[Client | None]:
    """A ``distributed.Client`` that is the default scheduler while the block runs.

    ``--scheduler threads`` or ``synchronous`` runs in this process instead (no client): for
    small jobs, debugging, and tests that kill the whole run with one signal.
    """
    address = options.scheduler_address()
    if address in IN_PROCESS:
        with dask.config.set(scheduler=address):
            yield None
        return
    if address:
        with _connect(address) as client:
            log.info("using the Dask scheduler at %s", address)
            yield client
        return
    workers = options.workers or max(1, (os.cpu_count() or 1) // options.threads_per_worker)
    with _local_cluster(options, workers) as cluster, Client(cluster) as client:
        # Workers restarted later (memory limit) get the plugin too.
        client.register_plugin(WorkerLogLevel(logging.getLogger("distributed").getEffectiveLevel()))
        log.info("local Dask cluster: %d workers, dashboard %s", workers, client.dashboard_link)
        yield client


def _local_cluster(options: ClusterOptions, workers: int) -> LocalCluster:
    """A local cluster on loopback only: nothing this tool starts listens beyond the machine.

    distributed gives the thread of a new cluster's event loop a fixed 10 s to start and
    reports a miss as a bare AssertionError (``LoopRunner._start_unlocked``); a saturated
    machine missed it once in CI, so a miss is retried once, with a sentence if it repeats.
    """
    start = functools.partial(
        LocalCluster,
        n_workers=workers,
        threads_per_worker=options.threads_per_worker,
        memory_limit=options.memory_limit,
        host="127.0.0.1",
        dashboard_address="127.0.0.1:0",
        processes=True,
    )
    try:
        return start()
    except AssertionError:
        log.warning("the local Dask cluster's event loop was slow to start; starting it again")
    try:
        return start()
    except AssertionError as error:
        raise RuntimeError(
            "the local Dask cluster did not start: its event loop thread missed distributed's "
            "10 s start-up deadline twice (is the machine overloaded?)"
        ) from error


class WorkerLogLevel(WorkerPlugin):
    """Sets the ``distributed`` loggers of each worker process to ``level``.

    A local cluster's workers write to this process's stderr but configure their logging from
    the Dask config when they start, not from the caller: without this, a worker's shutdown
    chatter (a heartbeat that meets a closing scheduler) reaches a terminal the CLI keeps quiet.
    """

    name = "rga-worker-log-level"

    def __init__(self, level: int):
        self.level = level

    def setup(self, worker) -> None:
        names = [n for n in logging.root.manager.loggerDict if n.startswith("distributed.")]
        for name in ["distributed", *names]:
            logging.getLogger(name).setLevel(self.level)


def scheduler_threads() -> int:
    """How many tasks the current Dask scheduler runs at once (its workers' threads)."""
    try:
        client = get_client()
    except ValueError:  # no distributed client: the local threaded or synchronous scheduler
        local = dask.config.get("scheduler", None)
        return 1 if local in ("sync", "synchronous", "single-threaded") else os.cpu_count() or 1
    return max(1, sum(client.nthreads().values()))
