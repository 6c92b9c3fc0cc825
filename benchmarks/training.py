"""The paper's loop on 2 CPU cores: a U-Net trained with ``rga train`` against the atlas baseline.

Runs the commands of issue 19 as a user would (through the ``rga`` CLI, in this process): ingest
phantom studies, build at the image size, the atlas of the train split, ``rga train``,
``rga predict`` on the valid split, ``rga evaluate`` of both, ``rga measure`` of the model. The
baseline is the atlas, scored on the same studies in the same run. Appends the Dice, HD95 and
NSD per view of both, the training time, seconds per epoch and prediction seconds per study to
benchmarks/RESULTS.md.

    python -m benchmarks.training [--studies 40] [--epochs 40] [--image-size 128] [--seed 0]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path

from catalog import open_catalog
from flows.aggregate import HEADLINE, class_means, partition_rows
from flows.cli import main as rga
from flows.maths.balanced import Row
from storage.location import StoreRef
from storage.results import open_results

RESULTS = Path(__file__).with_name("RESULTS.md")
METRICS = ("dice", "hd95", "nsd")


def _run(*argv: str) -> float:
    started = time.perf_counter()
    code = rga(list(argv))
    if code != 0:
        raise RuntimeError(f"rga {' '.join(argv)} exited with {code}")
    return time.perf_counter() - started


def headline(evaluation: Path) -> list[Row]:
    """Overall and per-view class-balanced rows of an evaluation folder."""
    results = open_results(StoreRef(str(evaluation)))
    return partition_rows(class_means(results), partitions=HEADLINE)


def run(work: Path, studies: int, epochs: int, image_size: int, seed: int) -> dict:
    """The pipeline; returns its timings and the headline rows of the model and the atlas."""
    sources, ds = str(work / "SOURCES"), str(work / "DS")
    quiet = ["-q", "--workers", "2"]
    timings = {
        "ingest": _run(
            "ingest",
            sources,
            "--layout",
            "phantom",
            "--studies",
            str(studies),
            "--seed",
            "5",
            *quiet,
        ),
        "build": _run("build", sources, ds, "--image-size", str(image_size), *quiet),
        "atlas": _run("atlas", ds, str(work / "ATLAS"), *quiet),
    }
    timings["train"] = _run(
        "train",
        ds,
        str(work / "MODEL"),
        "--epochs",
        str(epochs),
        "--image-size",
        str(image_size),
        "--seed",
        str(seed),
        "-q",
    )
    timings["predict"] = _run("predict", str(work / "MODEL"), ds, str(work / "PRED"), "-q")
    for name in ("ATLAS", "PRED"):
        _run(
            "evaluate",
            str(work / name),
            str(work / f"E-{name}"),
            "--gt",
            ds,
            "--split",
            "valid",
            *quiet,
        )
    _run("measure", str(work / "PRED"), "--dest", ds, *quiet)
    valid = int((open_catalog(ds)["split"].values == "valid").sum())
    return {
        "timings": timings,
        "valid": valid,
        "model": headline(work / "E-PRED"),
        "atlas": headline(work / "E-ATLAS"),
    }


def render(outcome: dict, args: argparse.Namespace, command: str) -> str:
    """The RESULTS.md section."""
    timings, valid = outcome["timings"], outcome["valid"]
    versions = ", ".join(f"{n} {metadata.version(n)}" for n in ("torch", "monai", "numpy"))
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    lines = [
        f"\n## Training: the loop of issue 19 ({when})",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, CPU only, Python "
        f"{platform.python_version()}; {versions}.",
        f"Command: `{command}`",
        f"{args.studies} phantom studies ({valid} valid), {args.image_size} x {args.image_size}; "
        "both predictors scored on the valid split in the same run (class-balanced means).\n",
        "| predictor | view | " + " | ".join(METRICS) + " |",
        "| --- | --- | " + " | ".join("---:" for _ in METRICS) + " |",
    ]
    for name in ("model", "atlas"):
        label = "U-Net (rga train)" if name == "model" else "atlas (baseline)"
        for row in outcome[name]:
            values = " | ".join(f"{row.values[m]:.3f}" for m in METRICS)
            lines.append(f"| {label} | {row.group} | {values} |")
    epochs = args.epochs
    lines += [
        "",
        f"Training: {timings['train']:.0f} s for {epochs} epochs "
        f"({timings['train'] / epochs:.1f} s per epoch); prediction "
        f"{timings['predict'] / valid:.2f} s per study (both views, model loading included); "
        f"ingest {timings['ingest']:.0f} s, build {timings['build']:.0f} s, atlas "
        f"{timings['atlas']:.0f} s.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=40)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-append", action="store_true", help="print, do not append")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="rga-training-bench-"))
    try:
        outcome = run(work, args.studies, args.epochs, args.image_size, args.seed)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    command = (
        f"python -m benchmarks.training --studies {args.studies} --epochs {args.epochs} "
        f"--image-size {args.image_size} --seed {args.seed}"
    )
    text = render(outcome, args, command)
    print(text)
    if not args.no_append:
        with RESULTS.open("a") as handle:
            handle.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
