"""The dataset commands: ``rga demo``, ``ingest``, ``build``, ``update``, ``log`` and ``info``.

Registered on the ``rga`` parser by ``flows/cli/main.py``; shared options, exit codes and where
output goes are in ``flows/cli/options.py``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from catalog.totalsegmentator import parse_class_map, parse_name_map
from flows.build import BuildParameters
from flows.cli import evaluation as cli_evaluation
from flows.cli.options import (
    UsageError,
    add_cluster_options,
    add_storage_options,
    cluster,
    note,
    positive_int,
    positive_mm,
    progress,
    quiet,
    storage_options,
    store,
    usage_errors,
)
from flows.ingest import IngestSummary, ingest
from flows.inputs.layouts import LAYOUTS as FILE_LAYOUTS
from flows.inputs.layouts import LayoutOptions, ReadLimits, discover
from flows.inputs.nifti import DEFAULT_MAX_VOXELS, grid_affine
from flows.maths.projection import ATTENUATION_MODELS, CANVAS
from flows.phantom import phantom_inputs
from flows.update import UpdateSummary, build, update
from storage.buildlog import read_records
from storage.files import Folder, read_text
from storage.location import StoreRef

LAYOUTS = ("phantom", *FILE_LAYOUTS)
SHOWN_PER_KIND = 20  # failures (and warnings) listed on the terminal; the report has them all

_DEMO_HELP = (
    "Generate phantom thorax CTs with all 210 classes, ingest them into DIR/sources.zarr, "
    "build DIR/dataset.zarr, and print how to open it; then predict the valid split with the "
    "mean-shape atlas of the train split (DIR/atlas.zarr), evaluate it (DIR/atlas-evaluation) "
    "and print the headline table."
)
_INGEST_HELP = (
    "Write studies into a sources store (CT int16 + sparse 3D masks), one task per study; a bad "
    "study is reported and the others are written. Layouts: radgenome (CT-RATE-named volumes "
    "with seg_<volume>/<class>.nii.gz masks; geometry from --spacing/--orientation), "
    "totalsegmentator (<study>/ct.nii.gz with segmentations/<name>.nii.gz or one multi-label "
    "segmentations.nii.gz), generic (<study>/ct.nii.gz with masks/<class>.nii.gz). INPUT and "
    "SOURCES are paths or URLs (s3://...). With --layout phantom there is no INPUT: synthetic "
    "studies are generated (--studies, --shape, --seed). Failures go to SOURCES.failures.json."
)
_UPDATE_HELP = (
    "Bring DEST up to date with SOURCES: hash each study's inputs with the build parameters, "
    "build only new and changed studies, commit each batch atomically, and log the run. "
    "Unchanged studies are not read. A second update with nothing new changes no byte."
)
_BUILD_HELP = (
    "Project every complete study of SOURCES into PA and lateral radiographs with one mask per "
    "class, footprints and region masks, and write the dataset store DEST."
)


def register(commands: Any) -> None:
    """Add the dataset commands to the ``rga`` sub-command parsers."""
    demo = commands.add_parser(
        "demo", help="generate phantom studies, ingest and build them", description=_DEMO_HELP
    )
    demo.add_argument("dir", nargs="?", default="rga-demo", help="output folder (default rga-demo)")
    demo.add_argument(
        "--studies", type=positive_int, default=5, help="how many phantoms (default 5)"
    )
    _phantom_options(demo, default_shape=(128, 128, 160))
    _build_options(demo)
    add_cluster_options(demo)
    demo.set_defaults(run=_run_demo)

    ingest_cmd = commands.add_parser(
        "ingest", help="write study inputs into a sources store", description=_INGEST_HELP
    )
    ingest_cmd.add_argument("input", nargs="?", help="input folder or URL (not for phantom)")
    ingest_cmd.add_argument("sources", help="sources store to write (path or URL)")
    ingest_cmd.add_argument("--layout", choices=LAYOUTS, required=True, help="input layout")
    ingest_cmd.add_argument("--studies", type=positive_int, default=5, help="phantom: how many")
    _phantom_options(ingest_cmd, default_shape=(128, 128, 160))
    _layout_options(ingest_cmd)
    add_storage_options(ingest_cmd)
    add_cluster_options(ingest_cmd)
    ingest_cmd.set_defaults(run=_run_ingest)

    build_cmd = commands.add_parser(
        "build", help="project a sources store into a dataset store", description=_BUILD_HELP
    )
    build_cmd.add_argument("sources", help="sources store (path or URL)")
    build_cmd.add_argument("dest", help="dataset store to create (path or URL); replaced")
    _build_options(build_cmd)
    add_storage_options(build_cmd)
    add_cluster_options(build_cmd)
    build_cmd.set_defaults(run=_run_build)

    update_cmd = commands.add_parser(
        "update",
        help="build only new and changed studies into a dataset store",
        description=_UPDATE_HELP,
    )
    update_cmd.add_argument("sources", help="sources store (path or URL)")
    update_cmd.add_argument("dest", help="dataset store (path or URL); created if missing")
    update_cmd.add_argument(
        "--prune", action="store_true", help="remove studies that are gone from SOURCES"
    )
    update_cmd.add_argument(
        "--rebuild", action="store_true", help="rebuild every study (e.g. new parameters)"
    )
    update_cmd.add_argument(
        "--wait", action="store_true", help="queue behind another update of DEST instead of exiting"
    )
    _build_options(update_cmd)
    add_storage_options(update_cmd)
    add_cluster_options(update_cmd)
    update_cmd.set_defaults(run=_run_update)

    log_cmd = commands.add_parser("log", help="show the build log of a dataset store")
    log_cmd.add_argument("dest", help="dataset store (path or URL)")
    add_storage_options(log_cmd)
    log_cmd.set_defaults(run=_run_log)

    info = commands.add_parser("info", help="describe a dataset store")
    info.add_argument("dest", help="dataset store (path or URL)")
    add_storage_options(info)
    info.set_defaults(run=_run_info)


def _phantom_options(parser: argparse.ArgumentParser, default_shape: tuple[int, ...]) -> None:
    parser.add_argument(
        "--shape",
        type=positive_int,
        nargs=3,
        default=list(default_shape),
        metavar=("I", "J", "K"),
        help=f"phantom voxels (default {' '.join(map(str, default_shape))})",
    )
    parser.add_argument("--seed", type=int, default=0, help="phantom seed (default 0)")


def _build_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--image-size", type=positive_int, default=CANVAS, help=f"pixels (default {CANVAS})"
    )
    parser.add_argument(
        "--attenuation",
        choices=ATTENUATION_MODELS,
        default="linear",
        help="linear line integral (paper, default) or exponential 1-exp(-integral)",
    )


def _layout_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("input layouts")
    group.add_argument(
        "--study",
        action="append",
        metavar="ID",
        help="ingest only this study (repeatable; default: every study found)",
    )
    group.add_argument(
        "--split", help="totalsegmentator, generic: the split of every study (default unspecified)"
    )
    group.add_argument(
        "--spacing",
        type=positive_mm,
        nargs=3,
        metavar=("I", "J", "K"),
        help="radgenome: voxel spacing in mm along the array axes (default 1 1 3)",
    )
    group.add_argument(
        "--orientation", help="radgenome: where the array axes point, like RAS (default) or LPS"
    )
    group.add_argument(
        "--masks",
        metavar="URL",
        help="radgenome: where the seg_<volume> folders are (default INPUT)",
    )
    group.add_argument(
        "--class-map",
        metavar="CSV",
        help="totalsegmentator multi-label: id,name table (default: TotalSegmentator v2 'total')",
    )
    group.add_argument(
        "--label-map",
        metavar="CSV",
        help="totalsegmentator: table totalsegmentator,class of names to classes "
        "(default: the packaged catalog/totalsegmentator_map.csv)",
    )
    group.add_argument(
        "--max-voxels",
        type=positive_int,
        metavar="N",
        help="refuse a file whose header claims more voxels "
        f"(default {DEFAULT_MAX_VOXELS:,}: 512 x 512 x 2048)",
    )
    group.add_argument(
        "--follow-symlinks",
        action="store_true",
        default=None,
        help="read files that symbolic links place outside INPUT (default: refuse them)",
    )


_LAYOUT_FLAGS = {
    "split": ("totalsegmentator", "generic"),
    "spacing": ("radgenome",),
    "orientation": ("radgenome",),
    "masks": ("radgenome",),
    "class_map": ("totalsegmentator",),
    "label_map": ("totalsegmentator",),
    "study": FILE_LAYOUTS,
    "max_voxels": FILE_LAYOUTS,
    "follow_symlinks": FILE_LAYOUTS,
}


def _check_layout_flags(args: argparse.Namespace) -> None:
    for name, layouts in _LAYOUT_FLAGS.items():
        if getattr(args, name) is not None and args.layout not in layouts:
            flag = "--" + name.replace("_", "-")
            names = ", ".join(layouts[:-1]) + (" and " if len(layouts) > 1 else "") + layouts[-1]
            raise UsageError(f"{flag} applies to the {names} layout{'s' * (len(layouts) > 1)} only")


def _layout_settings(args: argparse.Namespace) -> LayoutOptions:
    options = storage_options(args)
    settings: dict = {"studies": tuple(args.study) if args.study else None}
    if args.split is not None:
        settings["split"] = args.split
    if args.spacing is not None:
        settings["spacing"] = tuple(args.spacing)
    if args.orientation is not None:
        settings["orientation"] = args.orientation
    preset = LayoutOptions(**settings)
    with usage_errors(ValueError):  # --spacing and --orientation are flag values: usage (2)
        grid_affine(preset.spacing, preset.orientation)
    if args.masks is not None:
        settings["masks"] = Folder(args.masks, options)
    if args.class_map is not None:
        settings["class_map"] = parse_class_map(read_text(args.class_map, options), args.class_map)
    if args.label_map is not None:
        settings["name_map"] = parse_name_map(read_text(args.label_map, options), args.label_map)
    settings["limits"] = ReadLimits(
        max_voxels=args.max_voxels or DEFAULT_MAX_VOXELS,
        follow_symlinks=bool(args.follow_symlinks),
    )
    return LayoutOptions(**settings)


def _params(args: argparse.Namespace) -> BuildParameters:
    with usage_errors(ValueError):
        return BuildParameters(canvas=args.image_size, attenuation=args.attenuation)


def _sources(args: argparse.Namespace) -> StoreRef:
    """The SOURCES a build or update reads: bad input (1) if there is none."""
    sources = store(args.sources, args)
    if not sources.exists():
        raise FileNotFoundError(f"no sources store at {args.sources}; create one with `rga ingest`")
    return sources


def _dataset(args: argparse.Namespace) -> StoreRef:
    """The dataset store DEST a read-side command opens: bad input (1) if there is none."""
    dest = store(args.dest, args)
    if not dest.exists():
        raise FileNotFoundError(f"no dataset store at {args.dest}")
    return dest


def _run_demo(args: argparse.Namespace) -> int:
    folder = Path(args.dir)
    sources, dest = StoreRef(str(folder / "sources.zarr")), StoreRef(str(folder / "dataset.zarr"))
    with usage_errors(ValueError):
        inputs = phantom_inputs(args.studies, tuple(args.shape), args.seed)
    params = _params(args)
    with cluster(args):
        shown = progress("ingest", args)
        ingested = ingest(inputs, sources, on_batch=shown, on_failure=shown.failed)
        shown.finish()
        _print_ingest(ingested)
        shown = progress("build", args)
        built = build(sources, dest, params, on_batch=shown, on_failure=shown.failed)
        shown.finish()
        baseline = cli_evaluation.demo_baseline(folder, dest)
    _print_build(built)
    _print_info(dest)
    print(baseline)
    return 0 if not (ingested.failed or built.failed) else 1


def _run_ingest(args: argparse.Namespace) -> int:
    _check_layout_flags(args)
    sources = store(args.sources, args)
    if args.layout == "phantom":
        if args.input is not None:
            raise UsageError("the phantom layout takes no INPUT, only SOURCES")
        with usage_errors(ValueError):
            inputs = phantom_inputs(args.studies, tuple(args.shape), args.seed)
        run_info = {"layout": "phantom"}
    else:
        if args.input is None:
            raise UsageError(f"the {args.layout} layout needs INPUT and SOURCES")
        # INPUT and the option files are read before anything runs: a missing or malformed one
        # is bad input (exit 1) and no study is read.
        root = Folder(args.input, storage_options(args))
        inputs = discover(args.layout, root, _layout_settings(args))
        if not inputs:
            raise UsageError(f"no {args.layout} studies found under {args.input}")
        run_info = {"layout": args.layout, "input": args.input}
    if not quiet(args):
        note(f"Ingesting {len(inputs)} studies ({args.layout} layout) into {args.sources}")
    with cluster(args):
        shown = progress("ingest", args)  # started once the cluster is up: honest rates
        summary = ingest(
            inputs, sources, on_batch=shown, on_failure=shown.failed, run_info=run_info
        )
    shown.finish()
    _print_ingest(summary)
    return 0 if not summary.failed else 1


def _run_build(args: argparse.Namespace) -> int:
    params = _params(args)
    sources, dest = _sources(args), store(args.dest, args)
    with cluster(args):
        shown = progress("build", args)
        summary = build(sources, dest, params, on_batch=shown, on_failure=shown.failed)
    shown.finish()
    _print_build(summary)
    return 0 if not summary.failed else 1


def _run_update(args: argparse.Namespace) -> int:
    params = _params(args)
    sources, dest = _sources(args), store(args.dest, args)
    with cluster(args):
        shown = progress("update", args)
        summary = update(
            sources,
            dest,
            params,
            rebuild=args.rebuild,
            prune=args.prune,
            wait=args.wait,
            on_batch=shown,
            on_failure=shown.failed,
        )
    shown.finish()
    _print_build(summary)
    return 0 if not summary.failed else 1


def _run_log(args: argparse.Namespace) -> int:
    dest = _dataset(args)
    records = read_records(dest)
    if not records:
        print(f"{dest.url} has no build log")
    for r in records:
        failed = f", {len(r['failed'])} failed" if r["failed"] else ""
        print(
            f"{r['time']}  +{len(r['added'])} added, {len(r['changed'])} changed, "
            f"{len(r['removed'])} removed{failed}, {r['unchanged']} unchanged; "
            f"{r['parameters']}; rga {r['version']}; {r['seconds']} s"
        )
    return 0


def _run_info(args: argparse.Namespace) -> int:
    _print_info(_dataset(args))
    return 0


def _print_ingest(summary: IngestSummary) -> None:
    """The summary line on stdout; each failure and warning, and the report hint, on stderr."""
    failed = f"; {len(summary.failed)} failed" if summary.failed else ""
    warned = f"; {len(summary.warnings)} with warnings" if summary.warnings else ""
    print(
        f"Ingested {len(summary.ingested)} studies into {summary.sources} "
        f"in {summary.seconds:.1f} s{failed}{warned}",
        flush=True,
    )
    for kind, items in (("FAILED", summary.failed), ("WARNING", summary.warnings)):
        lines = [(s, m) for s, messages in items.items() for m in _as_list(messages)]
        for study_id, message in lines[:SHOWN_PER_KIND]:
            note(f"  {kind} {_printable(study_id)}: {message}")
        if len(lines) > SHOWN_PER_KIND:
            note(f"  ... and {len(lines) - SHOWN_PER_KIND} more {kind.lower()} lines")
    if summary.report and (summary.failed or summary.warnings):
        note(f"Report: {summary.report}")


def _as_list(messages: str | list[str]) -> list[str]:
    return [messages] if isinstance(messages, str) else list(messages)


def _printable(study_id: str) -> str:
    """A study id safe to print: odd ids (the ones that fail) are shown quoted and escaped."""
    return study_id if study_id.isprintable() and " " not in study_id else repr(study_id)


def _print_build(summary: UpdateSummary) -> None:
    """The summary line on stdout; studies gone from the sources and failures on stderr."""
    print(
        f"Built {len(summary.built)} studies into {summary.dest} in {summary.seconds:.1f} s "
        f"({len(summary.added)} added, {len(summary.changed)} changed, "
        f"{len(summary.unchanged)} unchanged, {len(summary.removed)} removed)",
        flush=True,
    )
    if summary.gone and not summary.removed:
        note(f"  {len(summary.gone)} studies are gone from the sources (--prune removes them):")
        note("    " + ", ".join(summary.gone[:20]) + (" ..." if len(summary.gone) > 20 else ""))
    for study_id, error in summary.failed.items():
        note(f"  FAILED {study_id}: {error}")


def _print_info(dest: StoreRef) -> None:
    from catalog.reader import open_catalog  # the read side is only needed here

    ds = open_catalog(dest, include_uncommitted=True)  # opened once: it is O(studies)
    committed = ds["committed"].values
    split = ds["split"].values[committed]
    splits = {str(s): int((split == s).sum()) for s in sorted(set(split))}
    params = ds.attrs.get("rga_parameters", {})
    print(f"Dataset {dest.url}")
    print(f"  studies: {committed.sum()} committed of {ds.sizes['study']} ({splits})")
    views = ", ".join(map(str, ds["view"].values))
    print(f"  views: {views}; images {ds.sizes['y']} x {ds.sizes['x']}")
    print(f"  labels: {ds.sizes['label']} classes in {ds.sizes['region']} regions")
    masks = int(committed.sum()) * ds.sizes["view"] * ds.sizes["label"]
    print(f"  masks: {masks:,}; parameters {params}")
    print("Open it lazily with:")
    print("  from catalog import open_catalog, select")
    print(f"  ds = open_catalog({dest.url!r})")
    print('  heart = select(ds, label="heart", view="PA").mask')
