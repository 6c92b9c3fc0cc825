"""Export seconds per study for each format, against a straightforward loop in the same run.

The baseline is what a user writes by hand: xarray reads one mask at a time (``ds.mask.isel``),
pycocotools encodes it (COCO), a NumPy run-length loop (CheXmask), Pillow writes one PNG per mask
(PNG), and ``np.unique`` over stacked masks numbers the atoms (nnU-Net); one process, one core.
rga runs its export graph with one and with all cores. Appends the table to benchmarks/RESULTS.md.

    python -m benchmarks.export [--studies 8] [--shape 64 64 96] [--formats coco png ...]
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from importlib import metadata
from pathlib import Path

import dask
import numpy as np
import xarray as xr
from PIL import Image

from catalog import open_catalog
from flows.export import FORMATS, ExportOptions, export
from flows.ingest import ingest
from flows.phantom import phantom_inputs
from flows.update import build
from storage.exports import ExportFolder
from storage.location import StoreRef

RESULTS = Path(__file__).with_name("RESULTS.md")


def make_dataset(folder: Path, studies: int, shape: Sequence[int]) -> StoreRef:
    """A phantom dataset of ``studies`` studies (384 x 384 images, all 210 classes)."""
    sources, dataset = StoreRef(str(folder / "sources.zarr")), StoreRef(str(folder / "ds.zarr"))
    with dask.config.set(scheduler="threads"):
        ingest(phantom_inputs(studies, tuple(shape), seed=5), sources)
        build(sources, dataset)
    return dataset


# --- the straightforward loop -------------------------------------------------------------


def _masks_one_by_one(ds: xr.Dataset, s: int, v: int) -> list[np.ndarray]:
    return [ds.mask.isel(study=s, view=v, label=i).values for i in range(ds.sizes["label"])]


def _png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def _chexmask_rle(mask: np.ndarray) -> str:
    """The usual NumPy run-length encoder (CheXmask's convention)."""
    pixels = np.concatenate([[0], mask.ravel(), [0]])
    runs = np.flatnonzero(pixels[1:] != pixels[:-1]) + 1
    runs[1::2] -= runs[::2]
    return " ".join(str(x) for x in runs)


def baseline(dataset: StoreRef, out: Path, fmt: str) -> None:
    """Export ``fmt`` the straightforward way (one xarray read per mask, one core)."""
    from pycocotools import mask as coco_mask

    ds = open_catalog(dataset.url)
    available = ds.available.values
    out.mkdir(parents=True)
    annotations, rows, atoms = [], [], {(): 0}
    for s, study in enumerate(str(x) for x in ds.study.values):
        for v, view in enumerate(str(x) for x in ds.view.values):
            (out / f"{study}_{view}.png").write_bytes(_png(ds.image.isel(study=s, view=v).values))
            masks = _masks_one_by_one(ds, s, v)
            if fmt == "coco":
                for i, mask in enumerate(masks):
                    if available[s, i] and mask.any():
                        rle = coco_mask.encode(np.asfortranarray(mask.astype(np.uint8)))
                        area, box = int(coco_mask.area(rle)), coco_mask.toBbox(rle).tolist()
                        rle["counts"] = rle["counts"].decode()
                        annotations.append({"segmentation": rle, "area": area, "bbox": box})
            elif fmt == "chexmask":
                rows.append([study, view, *(_chexmask_rle(m) for m in masks)])
            elif fmt == "png":
                for i, mask in enumerate(masks):
                    if mask.any():
                        (out / f"{study}_{view}_{i}.png").write_bytes(
                            _png(mask.astype(np.uint8) * 255)
                        )
            else:  # nnunet: number each pixel's set of classes, write a uint16 label map
                stacked = np.stack(masks).reshape(len(masks), -1).T
                keys, inverse = np.unique(stacked, axis=0, return_inverse=True)
                ids = [atoms.setdefault(tuple(np.flatnonzero(k)), len(atoms)) for k in keys]
                labels = np.asarray(ids, np.uint16)[inverse.ravel()].reshape(masks[0].shape)
                (out / f"{study}_{view}_labels.png").write_bytes(_png(labels))
    if fmt == "coco":
        (out / "annotations.json").write_text(json.dumps({"annotations": annotations}))
    elif fmt == "chexmask":
        with (out / "masks.csv").open("w", newline="") as handle:
            csv.writer(handle).writerows(rows)


# --- the run ------------------------------------------------------------------------------


def _timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def measure(dataset: StoreRef, work: Path, formats: Sequence[str], cores: int) -> list[tuple]:
    """(format, baseline s, rga 1-core s, rga all-cores s) for each format."""
    rows = []
    for fmt in formats:
        base = _timed(lambda f=fmt: baseline(dataset, work / f"baseline-{f}", f))
        timings = []
        for workers in (1, cores):
            out = ExportFolder(str(work / f"rga-{fmt}-{workers}"))
            with dask.config.set(scheduler="threads", num_workers=workers):
                timings.append(_timed(lambda o=out, f=fmt: export(dataset, o, ExportOptions(f))))
        rows.append((fmt, base, *timings))
    return rows


def render(rows: Sequence[tuple], studies: int, cores: int, command: str) -> str:
    """The RESULTS.md section."""
    versions = ", ".join(
        f"{name} {metadata.version(name)}"
        for name in ("numpy", "zarr", "dask", "xarray", "pycocotools", "pillow")
    )
    lines = [
        f"\n## Export ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})\n",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}; {versions}.",
        f"Command: `{command}`",
        f"{studies} phantom studies, 2 views, 210 classes, 384 x 384. Seconds per study; the "
        "baseline reads one mask at a time with xarray on one core.\n",
        f"| format | baseline s/study | rga 1 core s/study | rga {cores} cores s/study "
        "| x faster (1 core) |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for fmt, base, one, many in rows:
        lines.append(
            f"| {fmt} | {base / studies:.3f} | {one / studies:.3f} | {many / studies:.3f} "
            f"| {base / one:.1f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=8)
    parser.add_argument("--shape", type=int, nargs=3, default=[64, 64, 96])
    parser.add_argument("--formats", nargs="+", choices=FORMATS, default=list(FORMATS))
    parser.add_argument("--no-append", action="store_true", help="print, do not append")
    args = parser.parse_args(argv)
    cores = os.cpu_count() or 1
    work = Path(tempfile.mkdtemp(prefix="rga-export-bench-"))
    try:
        dataset = make_dataset(work, args.studies, args.shape)
        rows = measure(dataset, work, args.formats, cores)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    command = (
        f"python -m benchmarks.export --studies {args.studies} --shape "
        f"{' '.join(map(str, args.shape))} --formats {' '.join(args.formats)}"
    )
    text = render(rows, args.studies, cores, command)
    print(text)
    if not args.no_append:
        with RESULTS.open("a") as handle:
            handle.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
