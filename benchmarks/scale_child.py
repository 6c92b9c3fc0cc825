"""One operation of ``benchmarks/scale.py``, run in a fresh process; prints its measurements.

    python -m benchmarks.scale_child OPERATION SOURCES DEST STUDY CANVAS

Each operation imports only what a user running it would import, so that the peak memory is
the operation's own and not the benchmark's; the imports are not timed. The peak is the
process's high-water RSS from /proc (VmHWM): ``getrusage``'s maximum survives ``exec`` on
Linux, so in a child started by the benchmark it reports the parent's size.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from collections.abc import Callable
from typing import Any

import dask
from dask.callbacks import Callback

Run = Callable[[], Any]


Run = Callable[[], Any]


def _update(sources: str, dest: str, study: str, canvas: int) -> Run:
    from flows.build import BuildParameters
    from flows.update import update
    from storage.location import StoreRef

    return lambda: update(StoreRef(sources), StoreRef(dest), BuildParameters(canvas=canvas))


def _index(sources: str, dest: str, study: str, canvas: int) -> Run:
    import storage.dataset as dataset_store
    from storage.location import StoreRef
    from storage.sources import list_studies

    return lambda: (list_studies(StoreRef(sources)), dataset_store.read_index(StoreRef(dest)))


def _open_catalog(sources: str, dest: str, study: str, canvas: int) -> Run:
    from catalog import open_catalog

    return lambda: open_catalog(dest).sizes


def _read_one_mask(sources: str, dest: str, study: str, canvas: int) -> Run:
    from catalog import open_catalog, select

    return lambda: select(open_catalog(dest), label="heart", view="PA", study=study).mask.values


def _rga(command: str, *options: str) -> Callable[[str, str, str, int], Run]:
    def prepare(sources: str, dest: str, study: str, canvas: int) -> Run:
        from flows.cli import main as rga

        return lambda: rga([command, dest, *options])

    return prepare


# each imports what its operation needs (untimed, but in the peak) and returns it, ready to run
PREPARE: dict[str, Callable[[str, str, str, int], Run]] = {
    "index": _index,
    "update": _update,
    "no-op update": _update,
    "open_catalog": _open_catalog,
    "read one mask": _read_one_mask,
    "info": _rga("info"),
    "stats": _rga("stats", "--bootstrap", "200"),
}
OPERATIONS = tuple(PREPARE)


def peak_mb() -> float:
    """This process's peak resident memory in MB (VmHWM; ``getrusage`` where /proc is absent)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(operation: str, sources: str, dest: str, study: str, canvas: int) -> dict[str, Any]:
    """Run ``operation`` once: its seconds, peak memory and the tasks of its Dask graphs."""
    action = PREPARE[operation](sources, dest, study, canvas)
    tasks: list[int] = []
    counting = Callback(start=lambda graph: tasks.append(len(graph)))
    with dask.config.set(scheduler="threads"), counting:
        started = time.perf_counter()
        result = action()
        seconds = time.perf_counter() - started
    if operation.endswith("update") and (
        result.failed or bool(result.built) == (operation == "no-op update")
    ):
        raise RuntimeError(f"{operation} did not do what it should: {result}")
    return {"seconds": seconds, "peak_mb": peak_mb(), "tasks": sum(tasks)}


if __name__ == "__main__":
    operation, sources, dest, study, canvas = sys.argv[1:]
    print(json.dumps(measure(operation, sources, dest, study, int(canvas))))
