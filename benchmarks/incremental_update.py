"""Adding k studies to an N-study store costs about k studies' work, not N.

Side by side in one run: `rga update` adding k new studies to a committed N-study store, against
the baseline of rebuilding all N + k studies, and the no-op update. Appends the numbers to
benchmarks/RESULTS.md.

    python benchmarks/incremental_update.py [--n 50] [--k 1 5] [--shape 64 64 64]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import dask

from flows.ingest import ingest
from flows.phantom import phantom_inputs
from flows.update import build, update
from storage.location import StoreRef

RESULTS = Path(__file__).with_name("RESULTS.md")


def _timed(action) -> tuple[float, object]:
    started = time.perf_counter()
    result = action()
    return time.perf_counter() - started, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=50)
    parser.add_argument("--k", type=int, nargs="+", default=[1, 5])
    parser.add_argument("--shape", type=int, nargs=3, default=[64, 64, 64])
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="rga-bench-"))
    rows = []
    try:
        inputs = phantom_inputs(args.n + max(args.k), tuple(args.shape), seed=11)
        # one process, threads: the same scheduler for every measurement of this run
        with dask.config.set(scheduler="threads", num_workers=os.cpu_count()):
            base_sources = StoreRef(str(work / "sources-n.zarr"))
            ingest(inputs[: args.n], base_sources)
            base = StoreRef(str(work / "base.zarr"))
            seconds, _ = _timed(lambda: build(base_sources, base))
            rows.append((f"full build, N={args.n}", args.n, seconds))
            seconds, summary = _timed(lambda: update(base_sources, base))
            assert not summary.built
            rows.append((f"no-op update, N={args.n}", 0, seconds))
            for k in args.k:
                sources = StoreRef(str(work / f"sources-{k}.zarr"))
                shutil.copytree(work / "sources-n.zarr", work / f"sources-{k}.zarr")
                ingest(inputs[args.n : args.n + k], sources)
                dest = work / f"plus-{k}.zarr"
                shutil.copytree(work / "base.zarr", dest)
                seconds, summary = _timed(lambda s=sources, d=dest: update(s, StoreRef(str(d))))
                assert len(summary.added) == k
                rows.append((f"update adding k={k} to N={args.n}", k, seconds))
                rebuilt = StoreRef(str(work / f"rebuild-{k}.zarr"))
                seconds, _ = _timed(lambda s=sources, r=rebuilt: build(s, r))
                rows.append((f"baseline: full rebuild of N+k={args.n + k}", args.n + k, seconds))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    _report(rows, args)


def _report(rows, args) -> None:
    lines = [
        f"\n## Incremental update ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})\n",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}; phantoms {'x'.join(map(str, args.shape))}, image 384.",
        f"Command: `python benchmarks/incremental_update.py --n {args.n} "
        f"--k {' '.join(map(str, args.k))} --shape {' '.join(map(str, args.shape))}`\n",
        "| run | studies built | seconds | seconds per built study |",
        "| --- | ---: | ---: | ---: |",
    ]
    for name, built, seconds in rows:
        per = f"{seconds / built:.2f}" if built else "-"
        lines.append(f"| {name} | {built} | {seconds:.2f} | {per} |")
    text = "\n".join(lines) + "\n"
    print(text)
    with RESULTS.open("a") as f:
        f.write(text)


if __name__ == "__main__":
    sys.exit(main())
