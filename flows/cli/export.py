"""The ``rga export`` command: a dataset in COCO, CheXmask CSV, PNG folders or nnU-Net v2.

Registered on the ``rga`` parser by ``flows/cli/main.py``; options, exit codes and where output
goes follow ``flows/cli/options.py``.
"""

from __future__ import annotations

import argparse
from typing import Any

from flows.cli.options import (
    add_cluster_options,
    add_storage_options,
    cluster,
    note,
    positive_int,
    progress,
    storage_options,
    store,
    usage_errors,
)
from flows.export import FORMATS, ExportOptions, ExportSummary, export
from flows.formats import nnunet
from storage.exports import ExportFolder
from storage.masks import is_dataset_store

_HELP = (
    "Write the committed studies of DATASET into OUT in a format segmentation tools read: "
    "coco (annotations.json with compressed RLE per class and image, PNG images), chexmask "
    "(masks.csv, one run-length code per class), png (images/ and masks/<study>/<view>/"
    "<label>.png, the layout rga evaluate reads) or nnunet (OUT/Dataset<ID>_<Name>, v2 "
    "region-based: every class rebuilt exactly from the label map). Classes the input did not "
    "provide are listed as unavailable, never written as empty. One Dask task per study; a "
    "rerun writes byte-identical files. OUT (for nnunet: its Dataset folder) must not exist "
    "unless --overwrite."
)


def register(commands: Any) -> None:
    """Add ``export`` to the ``rga`` subcommands."""
    cmd = commands.add_parser(
        "export", help="write COCO, CheXmask, PNG or nnU-Net files", description=_HELP
    )
    cmd.add_argument("dataset", metavar="DATASET", help="dataset store")
    cmd.add_argument("out", metavar="OUT", help="folder to write (path or URL)")
    cmd.add_argument("--format", required=True, choices=FORMATS, help="what to write")
    cmd.add_argument("--split", nargs="+", metavar="SPLIT", help="only these splits")
    cmd.add_argument("--view", nargs="+", metavar="VIEW", help="only these views (PA, LL)")
    cmd.add_argument("--labels", nargs="+", metavar="LABEL", help="only these classes")
    cmd.add_argument("--systems", nargs="+", metavar="SYSTEM", help="only these systems' classes")
    cmd.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")
    cmd.add_argument(
        "--dataset-id", type=positive_int, default=500, help="nnunet: the dataset id (default 500)"
    )
    cmd.add_argument(
        "--dataset-name",
        default="RadGenomeAnatomy",
        help="nnunet: the dataset name (default RadGenomeAnatomy)",
    )
    add_storage_options(cmd)
    add_cluster_options(cmd)
    cmd.set_defaults(run=_run_export)


def _run_export(args: argparse.Namespace) -> int:
    options = ExportOptions(
        format=args.format,
        split=args.split,
        views=args.view,
        labels=args.labels,
        systems=args.systems,
        overwrite=args.overwrite,
        nnunet_id=args.dataset_id,
        nnunet_name=args.dataset_name,
    )
    with usage_errors(ValueError):
        nnunet.dataset_folder(args.dataset_id, args.dataset_name)
    dataset = store(args.dataset, args)
    if not is_dataset_store(dataset):
        raise FileNotFoundError(f"no dataset store at {args.dataset}")
    _check_names(dataset, options)
    out = ExportFolder(args.out, storage_options(args))
    with cluster(args):
        summary = export(dataset, out, options, on_batch=progress("export", args))
    _print(summary)
    return 0 if not summary.failed else 1


def _check_names(dataset: Any, options: ExportOptions) -> None:
    """Split, view, class and system names that name nothing are usage errors."""
    from catalog.reader import open_catalog, select

    with usage_errors(KeyError):
        select(
            open_catalog(dataset),
            split=options.split,
            view=options.views,
            label=options.labels,
            system=options.systems,
        )


def _print(summary: ExportSummary) -> None:
    failed = f"; {len(summary.failed)} failed" if summary.failed else ""
    print(
        f"Exported {len(summary.exported)} studies as {summary.format} into {summary.out} "
        f"({summary.files} files) in {summary.seconds:.1f} s{failed}",
        flush=True,
    )
    for study, error in summary.failed.items():
        note(f"  FAILED {study}: {error}")
