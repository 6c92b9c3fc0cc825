"""Peak memory of one study, for sizing workers: ingest then build one phantom in a process each.

    python deploy/measure_memory.py 512 512 300      # a CT-RATE-sized volume

Each step runs in a fresh process on the synchronous scheduler (as one single-threaded worker
runs one task) and prints that process's peak RSS, Python and the imports included.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

STEPS = ("ingest", "build")


def measure(step: str, shape: tuple[int, int, int], folder: Path, image_size: int) -> str:
    """Run ``step`` for one phantom of ``shape`` here; a line with its peak RSS and seconds."""
    import dask

    from flows.build import BuildParameters
    from flows.ingest import ingest
    from flows.phantom import phantom_inputs
    from flows.update import update
    from storage.location import StoreRef

    sources, dest = StoreRef(str(folder / "sources.zarr")), StoreRef(str(folder / "dest.zarr"))
    imports = _peak_mib()
    started = time.perf_counter()
    with dask.config.set(scheduler="synchronous"):
        if step == "ingest":
            ingest(phantom_inputs(1, shape, seed=0), sources)
        else:
            update(sources, dest, BuildParameters(canvas=image_size))
    seconds = time.perf_counter() - started
    return (
        f"{step} {'x'.join(map(str, shape))}: peak RSS {_peak_mib():.0f} MiB "
        f"(after imports {imports:.0f} MiB), {seconds:.1f} s"
    )


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def main() -> None:
    """Measure every step in its own process, so each peak is that step's alone."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("shape", type=int, nargs=3, metavar=("I", "J", "K"))
    parser.add_argument("--image-size", type=int, default=384)
    parser.add_argument("--step", choices=STEPS, help=argparse.SUPPRESS)  # the child's part
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    shape = tuple(args.shape)
    if args.step:
        print(measure(args.step, shape, args.folder, args.image_size))
        return
    with tempfile.TemporaryDirectory() as folder:
        for step in STEPS:
            command = [sys.executable, __file__, *map(str, shape), "--step", step]
            command += ["--folder", folder, "--image-size", str(args.image_size)]
            subprocess.run(command, check=True)


if __name__ == "__main__":
    main()
