"""A real cluster: `dask scheduler` and two `dask worker` processes on loopback, driven by `rga`."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import dask
import pytest
from digests import tree_digest
from distributed import Client, get_task_stream
from distributed.security import Security
from phantoms import reference_build

from flows.build import BuildParameters
from flows.cli import main
from storage.location import StoreRef

SHAPE = (64, 64, 64)
SMALL = BuildParameters(canvas=64)
WORKERS = ("w0", "w1")
STARTUP_SECONDS = 60  # how long the processes may take to come up before the test gives up


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> tuple[StoreRef, Path]:
    """Four phantom studies ingested in-process, and their local (in-process) reference build."""
    src, ref = reference_build(tmp_path_factory.mktemp("cluster"), 4, SHAPE, SMALL)
    return src, ref.local_path


class RealCluster:
    """A scheduler and named workers, each its own process group (a kill takes the nanny too)."""

    def __init__(self, root: Path, workers: tuple[str, ...] = WORKERS, *tls: str) -> None:
        self.root = root
        self.workers = workers
        self.tls = tls  # --tls-* flags for every process; the scheduler then speaks tls://
        self.scheduler_file = root / "scheduler.json"
        self.processes: dict[str, subprocess.Popen] = {}

    def start(self) -> None:
        """Start everything on loopback, with OS-chosen ports, and wait for the workers."""
        self._spawn(
            "scheduler",
            "scheduler",
            *("--host", "127.0.0.1", "--port", "0", "--dashboard-address", "127.0.0.1:0"),
            *("--scheduler-file", str(self.scheduler_file)),
            *self.tls,
            *(("--protocol", "tls") if self.tls else ()),
        )
        self._wait_for(self.scheduler_file.exists)
        for name in self.workers:
            self._spawn(
                name,
                "worker",
                *("--scheduler-file", str(self.scheduler_file), "--name", name),
                *("--nworkers", "1", "--nthreads", "1", "--host", "127.0.0.1"),
                *("--local-directory", str(self.root / name), "--no-dashboard"),
                *self.tls,
            )
        with Client(self.address, timeout=STARTUP_SECONDS, set_as_default=False) as client:
            client.wait_for_workers(len(self.workers), timeout=STARTUP_SECONDS)

    @property
    def address(self) -> str:
        """The scheduler's tcp:// address, as it wrote it in its scheduler file."""
        return json.loads(self.scheduler_file.read_text())["address"]

    def kill(self, name: str) -> None:
        """SIGKILL a worker and its nanny: no goodbye to the scheduler, no restart."""
        os.killpg(self.processes[name].pid, signal.SIGKILL)

    def stop(self) -> None:
        """Stop every process this cluster started."""
        for process in self.processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)

    def _spawn(self, name: str, *command: str) -> None:
        log = open(self.root / f"{name}.log", "w")  # noqa: SIM115 -- the process owns it
        self.processes[name] = subprocess.Popen(
            [sys.executable, "-m", "dask", *command],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def _wait_for(self, ready) -> None:
        deadline = time.monotonic() + STARTUP_SECONDS
        while not ready():
            if time.monotonic() > deadline:
                raise TimeoutError(f"the cluster did not start; logs in {self.root}")
            time.sleep(0.1)


@pytest.fixture
def cluster(tmp_path) -> Iterator[RealCluster]:
    """A fresh real cluster for one test (the kill test leaves it one worker short)."""
    real = RealCluster(tmp_path)
    try:
        real.start()
        yield real
    finally:
        real.stop()


def _rga_build(scheduler: str, src: StoreRef, dest: Path) -> int:
    return main(
        ["build", src.url, str(dest), "--image-size", str(SMALL.canvas), "--scheduler", scheduler]
    )


def test_build_on_a_real_cluster_equals_the_local_build_byte_for_byte(
    sources, cluster, tmp_path, capsys
):
    src, reference = sources
    dest = tmp_path / "dataset.zarr"
    with Client(cluster.address, set_as_default=False) as client, get_task_stream(client) as stream:
        assert _rga_build(cluster.address, src, dest) == 0
    captured = capsys.readouterr()
    assert "Built 4 studies" in captured.out
    # The progress display works against a remote scheduler (it is fed from the client side).
    assert "build: 4/4 studies (100%)" in captured.err and ", 0 failed" in captured.err
    assert tree_digest(dest) == tree_digest(reference)
    # The work really ran on both worker processes (the scheduler's public task stream).
    assert len({record["worker"] for record in stream.data}) == len(WORKERS)


def _processing_on(client: Client, name: str) -> int:
    """How many tasks the scheduler has handed to the worker called ``name`` right now."""
    workers = client.scheduler_info()["workers"]
    addresses = [address for address, info in workers.items() if info.get("name") == name]
    return sum(len(keys) for keys in client.processing(workers=addresses).values())


def test_build_completes_when_a_worker_is_killed_mid_build(sources, cluster, tmp_path, capsys):
    src, reference = sources
    dest = tmp_path / "dataset.zarr"
    killed = threading.Event()

    def kill_when_busy() -> None:
        with Client(cluster.address, set_as_default=False) as watcher:
            while not killed.is_set() and result_code is None:
                if _processing_on(watcher, "w1") > 0:
                    cluster.kill("w1")
                    killed.set()
                time.sleep(0.02)

    result_code = None
    killer = threading.Thread(target=kill_when_busy, daemon=True)
    killer.start()
    result_code = _rga_build(cluster.address, src, dest)
    killer.join(timeout=30)
    assert killed.is_set(), "the worker finished before it could be killed mid-build"
    assert cluster.processes["w1"].poll() is not None
    assert result_code == 0
    assert "Built 4 studies" in capsys.readouterr().out
    assert tree_digest(dest) == tree_digest(reference)


def _tls_files(folder: Path) -> dict[str, Path]:
    """A throwaway CA, certificate and key (PEM files) that every process of the test shares."""
    security = Security.temporary()
    files = {
        "ca": security.tls_ca_file,
        "cert": security.tls_client_cert,
        "key": security.tls_client_key,
    }
    for name, pem in files.items():
        (folder / f"{name}.pem").write_text(pem)
    return {name: folder / f"{name}.pem" for name in files}


def test_tls_cluster_communication_comes_from_the_dask_config(sources, tmp_path, capsys):
    src, reference = sources
    pem = _tls_files(tmp_path)
    flags = ("--tls-ca-file", str(pem["ca"]), "--tls-cert", str(pem["cert"]))
    real = RealCluster(tmp_path, ("w0",), *flags, "--tls-key", str(pem["key"]))
    tls_config = {
        "distributed.comm.require-encryption": True,
        "distributed.comm.tls.ca-file": str(pem["ca"]),
        "distributed.comm.tls.client.cert": str(pem["cert"]),
        "distributed.comm.tls.client.key": str(pem["key"]),
    }
    try:
        with dask.config.set(tls_config):
            real.start()
            assert real.address.startswith("tls://127.0.0.1:")
            assert _rga_build(real.address, src, tmp_path / "dataset.zarr") == 0
        assert tree_digest(tmp_path / "dataset.zarr") == tree_digest(reference)
        assert "Built 4 studies" in capsys.readouterr().out
        # Without the configured certificates the scheduler cannot be reached at all.
        with dask.config.set({"distributed.comm.timeouts.connect": "3s"}):
            assert _rga_build(real.address, src, tmp_path / "refused.zarr") == 2
        assert "cannot reach the Dask scheduler at tls://" in capsys.readouterr().err
        assert dask.config.get("scheduler", None) is None  # no dead client left as default
        assert not (tmp_path / "refused.zarr").exists()
    finally:
        real.stop()


def test_a_local_cluster_with_its_dashboard_closes_cleanly():
    # dask/distributed#9350: distributed 2026.7 with bokeh 3.10 raised "Cannot synchronously
    # wait on a running event loop" (and timed out) closing the dashboard; pyproject's floor.
    code = (
        "from flows.runtime.cluster import ClusterOptions, dask_client\n"
        "with dask_client(ClusterOptions(workers=1)) as client:\n"
        "    assert client.dashboard_link\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr and "ERROR" not in result.stderr, result.stderr


def test_local_workers_log_at_the_level_the_caller_chose():
    # A quiet CLI must stay quiet in its worker processes too (they share its stderr): a
    # heartbeat meeting a closing scheduler once printed a traceback under `rga ingest`.
    code = (
        "import logging\n"
        "from flows.runtime.cluster import ClusterOptions, dask_client\n"
        "logging.getLogger('distributed').setLevel(logging.CRITICAL)\n"
        "with dask_client(ClusterOptions(workers=1)) as client:\n"
        "    levels = client.run(lambda: logging.getLogger('distributed.worker')"
        ".getEffectiveLevel())\n"
        "    client.restart()\n"  # a restarted worker gets the level too
        "    after = client.run(lambda: logging.getLogger('distributed.worker')"
        ".getEffectiveLevel())\n"
        "print(sorted(levels.values()), sorted(after.values()))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[-2] == "[50] [50]", result.stdout
