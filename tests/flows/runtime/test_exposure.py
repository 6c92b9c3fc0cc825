"""What a local cluster exposes: every socket that rga's cluster, its nannies and workers listen on
is bound to loopback, so nothing is reachable from the network unless a scheduler is named."""

from __future__ import annotations

import ipaddress
import os

import psutil
from distributed import Client

from flows.runtime.cluster import ClusterOptions, dask_client


def listening(pids: set[int]) -> list[tuple[int, str, int]]:
    """(pid, address, port) of every TCP socket in LISTEN state held by ``pids``."""
    return [
        (pid, c.laddr.ip, c.laddr.port)
        for pid in sorted(pids)
        for c in psutil.Process(pid).net_connections(kind="tcp")
        if c.status == psutil.CONN_LISTEN
    ]


def test_a_local_cluster_listens_on_loopback_only():
    before = {(a, p) for _, a, p in listening({os.getpid()})}
    with dask_client(ClusterOptions(workers=2)) as client:
        assert isinstance(client, Client)
        workers = client.run(os.getpid)  # the worker processes
        assert len(workers) == 2
        me = psutil.Process()
        pids = {me.pid, *(c.pid for c in me.children(recursive=True)), *workers.values()}
        sockets = [s for s in listening(pids) if (s[1], s[2]) not in before]
    # the scheduler and its dashboard (this process), and each worker (and nanny) with its
    # HTTP server
    assert len(sockets) >= 2 + 2 * len(workers), sockets
    exposed = [s for s in sockets if not ipaddress.ip_address(s[1]).is_loopback]
    assert exposed == [], f"listening beyond loopback: {exposed}"
