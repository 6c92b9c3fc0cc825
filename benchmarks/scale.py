"""How rga's costs grow with the number N of studies already in the store.

For each N, a store of N committed studies on a loopback S3 server (moto, behind a relay that
records every request), then, each in a fresh process: an update adding k new studies, a
no-op update, ``open_catalog``, reading one mask, ``rga info``, ``rga stats``, and the
baseline an update may not beat, reading the two indexes (the sources' study index and the
dataset's id, flag and hash arrays). Measured: wall time of the operation, peak memory (its
process's high-water RSS, imports included; see benchmarks/scale_child.py), requests, bytes
written and read, objects written that existed before (rewritten), and the tasks of the Dask
graphs it computed. Each quantity gets a growth exponent: the slope of a log-log fit over N.
The table goes to benchmarks/RESULTS.md.

Existing studies are synthesised from k real ones. The sources' study index names all N
(an update reads an unchanged study's index entry, never its arrays); the dataset has N
committed slots whose small arrays repeat the real studies' values, and for N up to
``--pixels-up-to`` every slot also holds real image and mask shards (beyond that, only the
metadata: "simulated" in the table). The k new studies are real phantoms, ingested, then
built by the measured update.

    python -m benchmarks.scale [--n 100 1000 10000 100000] [--k 10] [--pixels-up-to 1000]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dask
import fsspec
import numpy as np
import xarray as xr

import storage.dataset as dataset_store
from benchmarks.scale_child import OPERATIONS
from catalog.taxonomy import load_taxonomy
from flows.build import BuildParameters, dataset_template, input_hash
from flows.ingest import ingest
from flows.phantom import phantom_inputs
from flows.update import build
from storage.location import StoreRef
from storage.sources import SourceStudy, add_to_index, create_sources, list_studies, merge_index

RESULTS = Path(__file__).with_name("RESULTS.md")
REPO = Path(__file__).resolve().parent.parent
SHAPE = (48, 48, 32)  # voxels of a tiny study
CANVAS = 64  # pixels of its radiographs
QUANTITIES = (
    ("seconds", "s"),
    ("peak_mb", "MB"),
    ("requests", ""),
    ("written_bytes", "B"),
    ("read_bytes", "B"),
    ("objects_written", ""),
    ("objects_rewritten", ""),
    ("tasks", ""),
)


@dataclass(frozen=True)
class Measured:
    """One operation at one N."""

    n: int
    operation: str
    seconds: float
    peak_mb: float
    requests: int
    written_bytes: int
    read_bytes: int
    objects_written: int
    objects_rewritten: int
    tasks: int


# --- building the N-study stores -----------------------------------------------------------


def _synthetic_studies(n: int) -> list[SourceStudy]:
    """N index entries of studies that exist only in the index (distinct ids and hashes)."""
    return [
        SourceStudy(
            study_id=f"old{i:06d}",
            split=("train", "valid", "test")[i % 3],
            shape=SHAPE,
            spacing=(1.5, 1.5, 2.5),
            content_sha256=hashlib.sha256(f"old{i}".encode()).hexdigest(),
            revision=1,
        )
        for i in range(n)
    ]


def _seed(work: Path, k: int) -> tuple[StoreRef, StoreRef]:
    """k real phantom studies, ingested and built on local disk: what every N copies."""
    sources, seed = StoreRef(str(work / "new.zarr")), StoreRef(str(work / "seed.zarr"))
    with dask.config.set(scheduler="threads"):
        ingest(phantom_inputs(k, SHAPE, seed=21), sources)
        build(sources, seed, BuildParameters(canvas=CANVAS))
    return sources, seed


def _make_store(
    n: int, root: str, options: Mapping[str, Any], new: StoreRef, seed: StoreRef, pixels: bool
) -> tuple[StoreRef, StoreRef]:
    """The sources and the dataset of N committed studies at ``root`` (an s3:// prefix)."""
    params = BuildParameters(canvas=CANVAS)
    sources = StoreRef(f"{root}/sources.zarr", dict(options))
    dest = StoreRef(f"{root}/dataset.zarr", dict(options))
    studies = _synthetic_studies(n)
    create_sources(sources, load_taxonomy().names)
    add_to_index(sources, studies)
    dataset_store.create(dest, dataset_template(studies, load_taxonomy(), params))
    real = xr.open_zarr(seed.open(read_only=True), consolidated=True).load()
    repeats = np.arange(n) % real.sizes["study"]
    small = real[list(dataset_store.SMALL)].isel(study=repeats)
    small["input_hash"] = ("study", np.array([input_hash(s, params) for s in studies], object))
    dataset_store.write_small(dest, small.drop_vars(small.coords), slice(0, n))
    if pixels:
        _copy_shards(seed, dest, repeats)
    dataset_store.set_committed(dest, dict.fromkeys(range(n), True))
    # the k new studies: their groups as ingest wrote them, and their index entries
    fs, path = fsspec.core.url_to_fs(sources.url, **dict(options))
    fs.put(str(new.local_path / "studies"), f"{path}/", recursive=True)
    add_to_index(sources, list_studies(new))
    merge_index(sources)
    return sources, dest


def _copy_shards(seed: StoreRef, dest: StoreRef, repeats: np.ndarray) -> None:
    """Every slot's image, mask and region-mask shards: the bytes of a real built study."""
    fs, path = fsspec.core.url_to_fs(dest.url, **dict(dest.storage_options))
    objects = {}
    for name in dataset_store.HEAVY:
        for file in sorted((seed.local_path / name / "c").rglob("*")):
            if not file.is_file():
                continue
            slot, *rest = file.relative_to(seed.local_path / name / "c").parts
            for target in np.flatnonzero(repeats == int(slot)):
                objects[f"{path}/{name}/c/{target}/{'/'.join(rest)}"] = file.read_bytes()
    fs.pipe(objects)


# --- measuring -----------------------------------------------------------------------------


def _keys(proxy_log: Sequence[Any], start: int) -> dict[str, Any]:
    """Requests since ``start``: how many, bytes each way, and the keys written."""
    requests = proxy_log[start:]
    written = {r.path.split("?", 1)[0] for r in requests if r.method in ("PUT", "POST") and r.sent}
    return {
        "requests": len(requests),
        "written_bytes": sum(r.sent for r in requests if r.method in ("PUT", "POST")),
        "read_bytes": sum(r.received for r in requests if r.method == "GET"),
        "written": written,
    }


def _existing(bucket: str, options: Mapping[str, Any]) -> set[str]:
    fs = fsspec.filesystem("s3", **dict(options))
    fs.invalidate_cache()
    return {f"/{key}" for key in fs.find(bucket)}


def _run(
    operation: str, n: int, sources: StoreRef, dest: StoreRef, study: str, env: Mapping[str, str]
) -> dict[str, Any]:
    command = [
        *(sys.executable, "-m", "benchmarks.scale_child", operation),
        *(sources.url, dest.url, study, str(CANVAS)),
    ]
    done = subprocess.run(command, capture_output=True, text=True, env=dict(env), cwd=REPO)
    if done.returncode != 0:
        raise RuntimeError(f"{operation} at N={n} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure(
    ns: Sequence[int], k: int, pixels_up_to: int, work: Path, print_row: Callable[[str], None]
) -> list[Measured]:
    """Every operation at every N (see the module docstring)."""
    sys.path.insert(0, str(REPO / "tests"))  # the tests' loopback S3 and recording relay
    from faultproxy import FaultProxy, loopback_s3

    rows = []
    with loopback_s3("benchmark") as direct:
        credentials = {"key": direct["key"], "secret": direct["secret"]}
        new, seed = _seed(work, k)
        study = list_studies(new)[0].study_id  # a new study: built by the measured update
        with FaultProxy(direct["endpoint_url"], seed=0, rate=0.0) as proxy:
            relayed = {**credentials, **proxy.options}
            env = {
                **os.environ,
                "DASK_RGA__STORAGE_OPTIONS": json.dumps(relayed),
                "PYTHONPATH": str(REPO),
            }
            for n in ns:
                bucket = f"scale-{n}"
                fsspec.filesystem("s3", **direct).mkdir(bucket)
                pixels = n <= pixels_up_to
                sources, dest = _make_store(n, f"s3://{bucket}", direct, new, seed, pixels)
                for operation in OPERATIONS:
                    before, start = _existing(bucket, direct), len(proxy.log)
                    child = _run(operation, n, sources, dest, study, env)
                    counted = _keys(proxy.log, start)
                    written = counted.pop("written")
                    row = Measured(
                        n=n,
                        operation=operation,
                        objects_written=len(written),
                        objects_rewritten=len(written & before),
                        **counted,
                        **child,
                    )
                    rows.append(row)
                    print_row(_line(row, pixels))
                fsspec.filesystem("s3", **direct).rm(bucket, recursive=True)
    return rows


# --- reporting -----------------------------------------------------------------------------


def growth_exponent(ns: Sequence[int], values: Sequence[float]) -> float | None:
    """The slope of log(value) against log(N); None when a value is not positive."""
    if len(ns) < 2 or min(values) <= 0:
        return None
    slope, _ = np.polyfit(np.log(ns), np.log(values), 1)
    return float(slope)


def _line(row: Measured, pixels: bool) -> str:
    kind = "" if pixels else " (simulated)"
    return (
        f"N={row.n}{kind} {row.operation}: {row.seconds:.2f} s, {row.peak_mb:.0f} MB, "
        f"{row.requests} requests, {row.written_bytes} B written in {row.objects_written} "
        f"objects ({row.objects_rewritten} rewritten), {row.read_bytes} B read, "
        f"{row.tasks} tasks"
    )


def render(rows: Sequence[Measured], command: str, pixels_up_to: int, k: int) -> str:
    """The Markdown section: one table per operation, then the growth exponents."""
    ns = sorted({r.n for r in rows})
    lines = [
        f"## Scale: cost against the number of studies N ({time.strftime('%Y-%m-%d')})",
        "",
        f"`{command}` on {platform.node() or 'this machine'}: {os.cpu_count()} CPU cores, "
        f"Python {platform.python_version()}, {platform.platform()}; loopback S3 (moto) "
        f"behind a recording relay; tiny studies ({SHAPE[0]} x {SHAPE[1]} x {SHAPE[2]} "
        f"voxels, {CANVAS} px images); the update adds k = {k}. Slots hold real pixels up to "
        f"N = {pixels_up_to}, metadata only above (simulated). Peak memory includes the "
        "interpreter and imports.",
        "",
    ]
    header = "| operation | " + " | ".join(name for name, _ in QUANTITIES) + " |"
    for operation in OPERATIONS:
        lines += [f"**{operation}**", "", header.replace("operation", "N"), _rule(header)]
        chosen = sorted((r for r in rows if r.operation == operation), key=lambda r: r.n)
        for r in chosen:
            cells = [_cell(getattr(r, name)) for name, _ in QUANTITIES]
            lines.append(f"| {r.n:,} | " + " | ".join(cells) + " |")
        lines.append("")
    lines += [
        "Growth exponents (log-log slope over N; 0: constant, 1: linear; - where a value is 0):",
        "",
        header,
        _rule(header),
    ]
    for operation in OPERATIONS:
        chosen = sorted((r for r in rows if r.operation == operation), key=lambda r: r.n)
        cells = []
        for name, _ in QUANTITIES:
            slope = growth_exponent(ns, [float(getattr(r, name)) for r in chosen])
            cells.append("-" if slope is None else f"{round(slope, 2) + 0.0:.2f}")  # no -0.00
        lines.append(f"| {operation} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _rule(header: str) -> str:
    return "|" + "---|" * (header.count("|") - 1)


def _cell(value: float) -> str:
    if isinstance(value, float):
        return f"{value:.2f}" if value < 100 else f"{value:,.0f}"
    return f"{value:,}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, nargs="+", default=[100, 1000, 10000, 100000])
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--pixels-up-to", type=int, default=1000)
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="rga-scale-"))
    try:
        rows = measure(args.n, args.k, args.pixels_up_to, work, print)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    command = "python -m benchmarks.scale " + " ".join(sys.argv[1:])
    with open(args.results, "a") as f:
        f.write("\n" + render(rows, command.strip(), args.pixels_up_to, args.k))
    print(f"appended to {args.results}")


if __name__ == "__main__":
    main()
