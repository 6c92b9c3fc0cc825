"""rga ingest and build against the baseline and the hardware floors, on the same studies.

In one run, on the same generated RadGenome-style studies (``reference_studies``): the floors
(stdlib gzip decode, the fastest gzip decoder, one ``np.sum`` over each CT), the baseline a user
would write (``benchmarks/baseline.py``), and the real ``rga ingest`` and ``rga build`` on a fresh
local Dask cluster per step for each worker count. Reports seconds per study per core, the ratios
to the baseline, peak RSS per worker and bytes read and written, checks issue 7's targets, and
appends the section to benchmarks/RESULTS.md.

The fast steps are timed in ``--repeat`` rounds (the fast floors, then rga for each worker
count), and each row reports its fastest round: on a shared machine noise only ever adds time,
and a floor and an ingest measured minutes apart can otherwise meet different neighbours. The
baseline and the stdlib decode floor run once: each costs a minute or more per study, and rga's
margins to them are tens of times.

    python -m benchmarks.pipeline [--studies 4] [--shape 512 512 300] [--workers 1 2] [--repeat 3]
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import math
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from importlib import metadata
from pathlib import Path

import numpy as np

from benchmarks.reference_studies import ReferenceStudy, reference_studies, spacing_of

# Heavy imports (distributed, flows.cli, nibabel, zlib_ng) happen inside the functions that need
# them: the floor and baseline subprocesses import this module, and their peak RSS should be
# what the measured work costs, not what the rga client costs.

REPO = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).with_name("RESULTS.md")
MIB = 1 << 20
GIB = 1 << 30
MB = 1e6
DECODE_STEP = 1 << 18  # 256 KiB of output per call, as a streaming reader takes it
SINGLE_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}

FLOOR_GZIP = "floor: gzip decode (stdlib gzip.decompress)"
FLOOR_FAST = "floor: gzip decode (zlib-ng reader, 256 KiB buffer)"
FLOOR_SCAN = "floor: zlib-ng decode + a zero test of every 256 KiB (memcmp)"
FLOOR_SUM = "floor: np.sum over the CT in memory"
BASELINE = "baseline (nibabel, np.any per view and structure, ndimage.zoom)"
FLOORS = {"gzip": FLOOR_GZIP, "fast": FLOOR_FAST, "scan": FLOOR_SCAN, "sum": FLOOR_SUM}
TIMED_ONCE = ("gzip",)  # a minute per study, and ingest takes a twentieth of it: timed once


def ingest_label(workers: int) -> str:
    """The table row of ``rga ingest`` with ``workers`` workers."""
    return f"rga ingest, W={workers}"


def build_label(workers: int) -> str:
    """The table row of ``rga build`` with ``workers`` workers."""
    return f"rga build, W={workers}"


def end_to_end_label(workers: int) -> str:
    """The table row of ingest plus build with ``workers`` workers."""
    return f"rga ingest+build, W={workers}"


# ---------------------------------------------------------------------------------------------
# The numbers


@dataclass(frozen=True)
class Row:
    """One measured step: wall seconds on ``cores`` cores for ``studies`` studies."""

    label: str
    wall_s: float
    cores: int
    studies: int
    peak_rss: int | None = None  # bytes, max over workers
    read: int | None = None  # bytes (rchar)
    written: int | None = None  # bytes (wchar)
    cpu_s: float | None = None  # CPU seconds of every thread of the processes doing the work
    startup_s: float | None = None  # rga: the workers importing its task modules, before wall_s
    rounds: tuple[float, ...] = ()  # the wall seconds of every round, when timed repeatedly

    @property
    def per_study_core(self) -> float:
        """Seconds per study per core: what a study costs in CPU time on the cluster."""
        return self.wall_s * self.cores / self.studies


@dataclass(frozen=True)
class Results:
    """Everything one run measured, and what the report needs to describe it."""

    command: str
    studies: int
    shape: tuple[int, int, int]
    image_size: int
    input_bytes_per_study: float
    machine: dict[str, str]
    rows: list[Row]
    store_bytes: dict[int, tuple[int, int]] = field(default_factory=dict)  # W: sources, dataset
    probe: list[Row] = field(default_factory=list)  # the 1-study W=1 ingest and build

    @property
    def ct_bytes(self) -> int:
        """One study's CT as int16."""
        return int(np.prod(self.shape)) * 2

    def row(self, label: str) -> Row | None:
        """The row called ``label``, if it was measured."""
        return next((r for r in self.rows if r.label == label), None)


@dataclass(frozen=True)
class Target:
    """One of issue 7's targets: its statement, the measured value, and whether it holds."""

    name: str
    measured: str
    passed: bool | None  # None: not measured in this run

    def line(self) -> str:
        verdict = {True: "PASS", False: "FAIL", None: "NOT RUN"}[self.passed]
        return f"- {self.name}: {self.measured} — **{verdict}**"


def fastest(rounds: Sequence[Row]) -> Row:
    """One step timed in several rounds: the fastest round, with every round's wall, and the
    highest peak memory of any round (memory is a limit, not a speed)."""
    best = min(rounds, key=lambda row: row.wall_s)
    peaks = [row.peak_rss for row in rounds if row.peak_rss is not None]
    walls = tuple(row.wall_s for row in rounds)
    return replace(best, peak_rss=max(peaks) if peaks else None, rounds=walls)


def combined(label: str, first: Row, second: Row) -> Row:
    """Two steps run one after the other (ingest then build): times and bytes add up."""
    return Row(
        label,
        first.wall_s + second.wall_s,
        first.cores,
        first.studies,
        _max(first.peak_rss, second.peak_rss),
        _sum(first.read, second.read),
        _sum(first.written, second.written),
        _sum(first.cpu_s, second.cpu_s),
    )


def _max(a: int | None, b: int | None) -> int | None:
    return None if a is None and b is None else max(a or 0, b or 0)


def _sum(a: int | None, b: int | None) -> int | None:
    return None if a is None or b is None else a + b


# ---------------------------------------------------------------------------------------------
# Targets and rendering: pure functions of Results


def memory_limit(results: Results) -> int:
    """The per-worker peak RSS allowed: 3 x one study's CT (int16) + 1 GiB."""
    return 3 * results.ct_bytes + GIB


def targets(results: Results) -> list[Target]:
    """Issue 7's targets, each checked on this run's numbers."""
    return [
        _build_target(results),
        _end_to_end_target(results),
        _ingest_target(
            results,
            FLOOR_FAST,
            "the zlib-ng raw-decode floor (the fastest whole-file decoder measured)",
        ),
        _ingest_target(
            results, FLOOR_GZIP, "the stdlib raw-decode floor (what nibabel decodes with)"
        ),
        _memory_target(results),
        _scaling_target(results),
    ]


def _build_target(results: Results) -> Target:
    name = "rga build >= 20x faster per study per core than the baseline (W=1)"
    base, build = results.row(BASELINE), results.row(build_label(1))
    if base is None or build is None:
        return Target(name, "needs --workers 1", None)
    ratio = base.per_study_core / build.per_study_core
    return Target(name, f"{ratio:.2f}x", ratio >= 20)


def _end_to_end_target(results: Results) -> Target:
    name = "ingest + build end to end faster than the baseline (W=1)"
    base, both = results.row(BASELINE), results.row(end_to_end_label(1))
    if base is None or both is None:
        return Target(name, "needs --workers 1", None)
    measured = f"{both.per_study_core:.2f} s vs {base.per_study_core:.2f} s per study per core"
    return Target(name, measured, both.per_study_core < base.per_study_core)


def _ingest_target(results: Results, floor_label: str, floor_name: str) -> Target:
    name = f"ingest within 1.5x of {floor_name} (W=1)"
    floor, ingest = results.row(floor_label), results.row(ingest_label(1))
    if floor is None or ingest is None:
        return Target(name, "needs --workers 1", None)
    ratio = ingest.per_study_core / floor.per_study_core
    return Target(name, f"{ratio:.2f}x the floor", ratio <= 1.5)


def _memory_target(results: Results) -> Target:
    limit = memory_limit(results)
    name = f"peak RSS per worker < 3 x CT + 1 GiB = {limit / MIB:.0f} MiB in every rga step and W"
    peaks = [r.peak_rss for r in [*results.rows, *results.probe] if _is_rga(r) and r.peak_rss]
    if not peaks:
        return Target(name, "no rga step run", None)
    return Target(name, f"max {max(peaks) / MIB:.0f} MiB", max(peaks) < limit)


def _scaling_target(results: Results) -> Target:
    name = "ingest+build wall with 2 workers >= 1.7x faster than with 1 worker"
    one, two = results.row(end_to_end_label(1)), results.row(end_to_end_label(2))
    if one is None or two is None:
        return Target(name, "needs --workers 1 2", None)
    speedup = one.wall_s / two.wall_s
    measured = f"{one.wall_s:.2f} s / {two.wall_s:.2f} s = {speedup:.2f}x"
    return Target(name, measured, speedup >= 1.7)


def _is_rga(row: Row) -> bool:
    return row.label.startswith("rga ")


def render(results: Results, when: str) -> str:
    """The Markdown section for RESULTS.md (and stdout)."""
    shape = "x".join(map(str, results.shape))
    m = results.machine
    lines = [
        f"\n## Pipeline performance ({when})\n",
        f"Machine: {m['machine']}, {m['cpu']}, {m['cores']} cores, {m['ram']} RAM; "
        f"{m['versions']}.",
        f"Command: `{results.command}`",
        f"Studies: {results.studies} of {shape} voxels, 210 mask files each, image "
        f"{results.image_size}; compressed input {results.input_bytes_per_study / MB:.1f} MB "
        f"per study; one CT {results.ct_bytes / MIB:.1f} MiB (int16).",
        "Per study per core = wall x cores / studies; floors and the baseline use one core, "
        "rga W workers of one thread each. CPU s per study: user + system time of every thread "
        "of the processes at work (rga: workers, client and the scheduler it hosts), so "
        "library threads show. Peak RSS: VmHWM. Bytes: rchar/wchar of /proc/self/io (workers "
        "and client). rga's workers import its task modules before the timed wall, as the floors "
        "and the baseline are timed after their imports: a once-per-worker cost, listed below "
        "the table. Rows timed in several rounds report the fastest; every round is listed below "
        "the table (the baseline and the stdlib floor run once).\n",
        "| step | wall s | s per study per core | CPU s per study | x faster than baseline | "
        "peak RSS per worker MiB | read MB | written MB |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    base = results.row(BASELINE)
    lines += [_table_row(row, base) for row in results.rows]
    lines += _round_lines(results)
    lines += _startup_lines(results)
    lines += _store_lines(results)
    lines += _probe_lines(results)
    lines += ["", "Targets (issue 7):", "", *(t.line() for t in targets(results))]
    return "\n".join(lines) + "\n"


def _table_row(row: Row, base: Row | None) -> str:
    speed = _figures(base.per_study_core / row.per_study_core) if base else "-"
    cpu = _figures(row.cpu_s / row.studies) if row.cpu_s is not None else "-"
    return (
        f"| {row.label} | {_figures(row.wall_s)} | {_figures(row.per_study_core)} | {cpu} | "
        f"{speed} | {_mib(row.peak_rss)} | {_mb(row.read)} | {_mb(row.written)} |"
    )


def _figures(value: float) -> str:
    """Three significant figures without an exponent: floors can be a thousand times shorter."""
    if value == 0 or not math.isfinite(value):
        return f"{value:g}"
    return f"{value:.{max(0, 2 - math.floor(math.log10(abs(value))))}f}"


def _mib(value: int | None) -> str:
    return "-" if value is None else f"{value / MIB:.0f}"


def _mb(value: int | None) -> str:
    return "-" if value is None else f"{value / MB:.1f}"


def _round_lines(results: Results) -> list[str]:
    timed = [row for row in results.rows if len(row.rounds) > 1]
    if not timed:
        return []
    lines = ["", "Wall seconds of each round (the table reports the fastest):", ""]
    lines += [f"- {row.label}: {', '.join(map(_figures, row.rounds))}" for row in timed]
    return lines


def _startup_lines(results: Results) -> list[str]:
    timed = [row for row in results.rows if row.startup_s is not None]
    if not timed:
        return []
    each = "; ".join(f"{row.label} {row.startup_s:.1f} s" for row in timed)
    return ["", f"Worker start-up (imports, slowest worker, not in the times above): {each}."]


def _store_lines(results: Results) -> list[str]:
    if not results.store_bytes:
        return []
    sizes = "; ".join(
        f"W={w}: sources {s / MB:.1f} MB, dataset {d / MB:.1f} MB"
        for w, (s, d) in sorted(results.store_bytes.items())
    )
    return ["", f"Stores on disk (N = {results.studies}): {sizes}."]


def _probe_lines(results: Results) -> list[str]:
    """The 1-study peaks next to the N-study ones: memory must not grow with N."""
    if not results.probe:
        return []
    lines = [
        "",
        f"Peak RSS per worker, 1 study vs {results.studies} studies (W=1):",
        "",
        f"| step | 1 study MiB | {results.studies} studies MiB |",
        "| --- | ---: | ---: |",
    ]
    for probe in results.probe:
        full = results.row(probe.label)
        lines.append(f"| {probe.label} | {_mib(probe.peak_rss)} | {_mib(full and full.peak_rss)} |")
    return lines


# ---------------------------------------------------------------------------------------------
# Floors and baseline: each in a fresh single-threaded python


def _io_counters() -> dict[str, int]:
    """This process's rchar and wchar (bytes passed to read and write calls)."""
    fields = dict(line.split(": ") for line in Path("/proc/self/io").read_text().splitlines())
    return {"read": int(fields["rchar"]), "written": int(fields["wchar"])}


def _peak_rss() -> int:
    """This process's peak resident set in bytes: VmHWM of /proc/self/status.

    Not ``ru_maxrss``: Linux carries that across fork and exec, so a worker spawned by a large
    client process would report the client's size.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024  # kB
    raise RuntimeError("no VmHWM in /proc/self/status")


def _decode_stdlib(data: bytes) -> int:
    import gzip

    return len(gzip.decompress(data))


def _decode_fast(data: bytes, zero_test: bool = False) -> int:
    """Decode as rga's ingest does: zlib-ng's C gzip reader into one reused 256 KiB buffer.

    Of the decoders measured here (stdlib, isal, libdeflate, zlib-ng whole or streamed) this was
    the fastest: a reused buffer stays in cache and costs no page faults. With ``zero_test``,
    each buffer is also compared with zeros, as ingest tests each mask plane (a 512 x 512 uint8
    plane is 256 KiB): the least an ingest that looks at every voxel once can cost in Python.
    """
    from zlib_ng import zlib_ng

    reader = zlib_ng._GzipReader(data)  # every member; checks each CRC
    buffer = bytearray(DECODE_STEP)
    zero = bytes(DECODE_STEP) if zero_test else None
    total = with_set_bytes = 0  # the second is what ingest would go on to crop
    while n := reader.readinto(buffer):
        total += n
        with_set_bytes += zero is not None and buffer != zero
    return total


def _time_decode(studies: list[dict], decode: Callable[[bytes], int]) -> float:
    """Seconds decoding every file, each study's files read into memory before its timing."""
    seconds = 0.0
    for study in studies:
        payloads = [Path(p).read_bytes() for p in [study["ct"], *study["masks"]]]
        started = time.perf_counter()
        for payload in payloads:
            decode(payload)
        seconds += time.perf_counter() - started
    return seconds


def _time_sum(studies: list[dict]) -> float:
    """Seconds of one ``np.sum`` over each CT, loaded as nibabel gives it (int16)."""
    import nibabel as nib

    seconds = 0.0
    for study in studies:
        ct = np.asanyarray(nib.load(study["ct"]).dataobj)
        started = time.perf_counter()
        np.sum(ct)
        seconds += time.perf_counter() - started
    return seconds


def _run_baseline(spec: dict) -> dict[str, float]:
    from benchmarks.baseline import baseline_study

    spacing = tuple(spec["spacing"])
    before, started, cpu = _io_counters(), time.perf_counter(), time.process_time()
    for study in spec["studies"]:
        baseline_study(Path(study["ct"]), [Path(p) for p in study["masks"]], spacing, spec["size"])
    wall, after = time.perf_counter() - started, _io_counters()
    return {
        "wall": wall,
        "cpu": time.process_time() - cpu,
        "peak_rss": _peak_rss(),
        "read": after["read"] - before["read"],
        "written": after["written"] - before["written"],
    }


def child_main(kind: str, spec_path: str) -> None:
    """Entry point of a measuring subprocess: print its numbers as one JSON line."""
    spec = json.loads(Path(spec_path).read_text())
    studies = spec["studies"]
    if kind == "gzip":
        out = {"wall": _time_decode(studies, _decode_stdlib)}
    elif kind == "fast":
        out = {"wall": _time_decode(studies, _decode_fast)}
    elif kind == "scan":
        out = {"wall": _time_decode(studies, partial(_decode_fast, zero_test=True))}
    elif kind == "sum":
        out = {"wall": _time_sum(studies)}
    elif kind == "baseline":
        out = _run_baseline(spec)
    else:
        raise ValueError(f"unknown measurement {kind!r}")
    print(json.dumps(out))


def _in_subprocess(kind: str, spec_path: Path) -> dict:
    """Run ``child_main(kind)`` in a fresh single-threaded python and return its numbers."""
    env = {**os.environ, **SINGLE_THREAD, "PYTHONPATH": str(REPO)}
    code = f"from benchmarks.pipeline import child_main; child_main({kind!r}, {str(spec_path)!r})"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise RuntimeError(f"the {kind} measurement failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure_floors(spec_path: Path, studies: int, kinds: Sequence[str]) -> list[Row]:
    """The floors of ``kinds`` (keys of FLOORS), each in its own process, on one core."""
    return [
        Row(FLOORS[kind], _in_subprocess(kind, spec_path)["wall"], 1, studies) for kind in kinds
    ]


def measure_baseline(spec_path: Path, studies: int) -> Row:
    """The baseline, in its own process, on one core."""
    base = _in_subprocess("baseline", spec_path)
    return Row(
        BASELINE,
        base["wall"],
        1,
        studies,
        base["peak_rss"],
        base["read"],
        base["written"],
        base["cpu"],
    )


# ---------------------------------------------------------------------------------------------
# rga: the real CLI, in this process, against a fresh local cluster per step


RGA_TASK_MODULES = ("flows.ingest", "flows.inputs.layouts", "flows.inputs.staging", "flows.build")


def _import_rga() -> float:
    """Run on each worker: import what rga's tasks run, in seconds (once per worker)."""
    started = time.perf_counter()
    for name in RGA_TASK_MODULES:
        importlib.import_module(name)
    return time.perf_counter() - started


def _worker_report() -> dict[str, int]:
    """Run on each worker: its I/O counters, peak RSS and CPU seconds (all threads) so far."""
    return {**_io_counters(), "peak_rss": _peak_rss(), "cpu": time.process_time()}


def run_rga_step(label: str, argv: list[str], workers: int, studies: int) -> Row:
    """``rga argv`` on a new ``workers``-process cluster; fails unless it exits with 0."""
    from distributed import Client, LocalCluster

    from flows.cli import main as rga

    with (
        LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
        ) as cluster,
        Client(cluster) as client,
    ):
        startup = max(client.run(_import_rga).values())
        before, own = client.run(_worker_report), _io_counters()
        started, own_cpu = time.perf_counter(), time.process_time()
        # rga's summary lines go to stderr so that stdout carries the report only
        with contextlib.redirect_stdout(sys.stderr):
            code = rga([*argv, "--scheduler", cluster.scheduler_address, "--quiet"])
        wall = time.perf_counter() - started
        own_after, after = _io_counters(), client.run(_worker_report)
        own_cpu = time.process_time() - own_cpu  # the client, and the scheduler it hosts
    if code != 0:
        raise RuntimeError(f"rga {' '.join(argv)} exited with {code}")
    read = _delta(own, own_after, "read") + sum(_delta(before[w], after[w], "read") for w in after)
    written = _delta(own, own_after, "written")
    written += sum(_delta(before[w], after[w], "written") for w in after)
    peak = max(report["peak_rss"] for report in after.values())
    cpu = own_cpu + sum(_delta(before[w], after[w], "cpu") for w in after)
    return Row(label, wall, workers, studies, peak, read, written, cpu, startup)


def _delta(before: dict[str, int], after: dict[str, int], key: str) -> int:
    return after[key] - before[key]


def _count_sources(path: Path) -> int:
    from storage.location import StoreRef
    from storage.sources import list_studies

    return len(list_studies(StoreRef(str(path))))


def _count_dataset(path: Path) -> int:
    from storage.dataset import read_index
    from storage.location import StoreRef

    return int(read_index(StoreRef(str(path))).committed.sum())


@dataclass(frozen=True)
class RgaOptions:
    """The CLI arguments shared by every rga run of a benchmark."""

    spacing: tuple[float, float, float]
    image_size: int
    studies: tuple[str, ...]  # the data folder may hold more, from runs with a larger --studies

    def ingest_argv(self, data: Path, sources: Path) -> list[str]:
        picked = [arg for study in self.studies for arg in ("--study", study)]
        spacing = [repr(s) for s in self.spacing]
        layout = ["--layout", "radgenome", "--spacing", *spacing]
        return ["ingest", str(data), str(sources), *layout, *picked]

    def build_argv(self, sources: Path, dest: Path) -> list[str]:
        return ["build", str(sources), str(dest), "--image-size", str(self.image_size)]


def run_rga(
    data: Path, work: Path, workers: int, studies: int, options: RgaOptions
) -> tuple[Row, Row, tuple[int, int]]:
    """Ingest then build ``studies`` studies of ``data`` with ``workers`` workers."""
    shutil.rmtree(work, ignore_errors=True)  # a reused --work folder: ingest from scratch
    sources, dest = work / "sources.zarr", work / "dataset.zarr"
    ingest = run_rga_step(
        ingest_label(workers), options.ingest_argv(data, sources), workers, studies
    )
    build = run_rga_step(build_label(workers), options.build_argv(sources, dest), workers, studies)
    found = (_count_sources(sources), _count_dataset(dest))
    if found != (studies, studies):
        raise RuntimeError(f"expected {studies} studies in both stores, found {found}")
    return ingest, build, (_disk_bytes(sources), _disk_bytes(dest))


def _disk_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


# ---------------------------------------------------------------------------------------------
# The run


def machine() -> dict[str, str]:
    """What the numbers were measured on."""
    info = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    cpu = next(
        (ln.split(":", 1)[1].strip() for ln in info.splitlines() if ln.startswith("model name")),
        platform.processor() or "unknown CPU",
    )
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    packages = ["numpy", "zarr", "dask", "distributed", "numcodecs", "zlib-ng", "nibabel"]
    versions = ", ".join(f"{p} {_version(p)}" for p in packages)
    return {
        "machine": platform.machine(),
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "ram": f"{ram / GIB:.1f} GiB",
        "versions": f"Python {platform.python_version()}, {versions}",
    }


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def _write_spec(path: Path, studies: list[ReferenceStudy], shape, image_size: int) -> None:
    """What the subprocesses measure: every study's files, the spacing and the image size."""
    spec = {
        "studies": [{"ct": str(s.ct), "masks": [str(p) for p in s.files()[1:]]} for s in studies],
        "spacing": list(spacing_of(shape)),
        "size": image_size,
    }
    path.write_text(json.dumps(spec))


def run(args: argparse.Namespace, command: str) -> Results:
    """Generate or reuse the studies, then measure everything on them."""
    shape = tuple(args.shape)
    data = Path(args.data).expanduser()
    studies = reference_studies(data, args.studies, shape)
    input_bytes = sum(p.stat().st_size for s in studies for p in s.files())
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="rga-pipeline-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        spec = work / "studies.json"
        _write_spec(spec, studies, shape, args.image_size)
        options = RgaOptions(spacing_of(shape), args.image_size, tuple(s.study_id for s in studies))
        timed, stores = _time_in_rounds(args, spec, data, work, options)
        _say("stdlib floor and baseline (once)")
        for row in measure_floors(spec, args.studies, TIMED_ONCE):
            timed[row.label] = [row]
        rows = [fastest(timed[label]) for label in FLOORS.values()]
        rows.append(measure_baseline(spec, args.studies))
        for workers in args.workers:
            ingest = fastest(timed[ingest_label(workers)])
            build = fastest(timed[build_label(workers)])
            rows += [ingest, build, combined(end_to_end_label(workers), ingest, build)]
        probe = _memory_probe(data, work, studies[0], options) if args.memory_probe else []
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)
    return Results(
        command,
        args.studies,
        shape,
        args.image_size,
        input_bytes / args.studies,
        machine(),
        rows,
        stores,
        probe,
    )


def _time_in_rounds(
    args: argparse.Namespace, spec: Path, data: Path, work: Path, options: RgaOptions
) -> tuple[dict[str, list[Row]], dict[int, tuple[int, int]]]:
    """Every round of the fast floors and of rga's steps (rows by label), and the store sizes."""
    timed: dict[str, list[Row]] = {}
    stores = {}
    repeated = [kind for kind in FLOORS if kind not in TIMED_ONCE]
    for round_number in range(1, args.repeat + 1):
        _say(f"round {round_number} of {args.repeat}: fast floors")
        for row in measure_floors(spec, args.studies, repeated):
            timed.setdefault(row.label, []).append(row)
        for workers in args.workers:
            _say(f"round {round_number} of {args.repeat}: rga with {workers} worker(s)")
            step_dir = work / f"w{workers}"
            ingest, build, stores[workers] = run_rga(data, step_dir, workers, args.studies, options)
            for row in (ingest, build):
                timed.setdefault(row.label, []).append(row)
            if not args.work:
                shutil.rmtree(step_dir)  # the stores can be large; their sizes are kept
    return timed, stores


def _memory_probe(data: Path, work: Path, first: ReferenceStudy, options: RgaOptions) -> list[Row]:
    """W=1 ingest and build of the first study alone, for its peak RSS."""
    _say("memory probe: 1 study, 1 worker")
    probe = replace(options, studies=(first.study_id,))
    ingest, build, _ = run_rga(data, work / "probe", 1, 1, probe)
    return [ingest, build]


def _say(text: str) -> None:
    print(f"[pipeline] {text}", file=sys.stderr, flush=True)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.pipeline", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--studies", type=int, default=4, help="studies (default 4)")
    parser.add_argument(
        "--shape", type=int, nargs=3, default=[512, 512, 300], metavar=("I", "J", "K")
    )
    parser.add_argument(
        "--data",
        help="where the studies are generated and reused (default ~/.cache/rga-benchmark/IxJxK)",
    )
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="default 1 2")
    parser.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="rounds of the fast floors and of rga's steps; rows report the fastest (default 3)",
    )
    parser.add_argument("--results", default=str(RESULTS), help="Markdown file appended to")
    parser.add_argument("--image-size", type=int, default=384, help="pixels (default 384)")
    parser.add_argument(
        "--work",
        help="folder for the stores, kept after the run (default: a temporary one, deleted)",
    )
    parser.add_argument(
        "--memory-probe",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also ingest and build the first study alone with 1 worker (default on)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Measure, print the report, and append it to the results file."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(argv)
    if min(args.studies, *args.shape, *args.workers, args.repeat) < 1:
        raise SystemExit("--studies, --shape, --workers and --repeat must be positive")
    if args.data is None:
        args.data = f"~/.cache/rga-benchmark/{'x'.join(map(str, args.shape))}"
    results = run(args, shlex.join(["python", "-m", "benchmarks.pipeline", *argv]))
    text = render(results, time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))
    print(text)
    with Path(args.results).open("a") as f:
        f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
