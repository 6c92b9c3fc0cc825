"""The ``rga stats``, ``rga measure`` and ``rga preview`` commands: outputs people look at.

Registered on the ``rga`` parser by ``flows/cli/main.py``; shared options, exit codes and where
output goes are in ``flows/cli/options.py``: what the arguments name is checked first (a usage
error, 2), then stores and data are read (``ValueError``, ``KeyError`` or ``FileNotFoundError``:
bad input, 1); either is printed as one sentence without a traceback.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from flows.cli.options import (
    UsageError,
    add_cluster_options,
    add_storage_options,
    cluster,
    note,
    storage_options,
    store,
    usage_errors,
)
from flows.maths.bootstrap import RESAMPLES, SEED
from flows.maths.measurements import CutPoints
from flows.reports.tables import Table, to_text, write_report
from storage.masks import PngFolder

PER_STUDY_ROWS_SHOWN = 40  # longer per-study tables go to files only

_STATS_HELP = (
    "Describe a dataset store from its stored per-study arrays only (no mask is read): the "
    "inventory of paper Table 2 by split (stored, available and non-empty masks counted "
    "separately), the mean footprint per body system and view with bootstrap 95% CIs, share of "
    "image and PA/LL ratio (Table A4), the measurements by grade with exclusion reasons, and "
    "label prevalence. Prints the tables; --out DIR also writes CSV, JSON, Markdown and PNG "
    "figures."
)
_MEASURE_HELP = (
    "Run the clinical measurements (cardiothoracic ratio, spinal curvature deviation, Cobb-style "
    "kyphosis; graded negative/mild/moderate/severe) on predicted masks: PRED is a store in the "
    "dataset schema or a folder PRED/<study>/<view>/<label>.png (label names verbatim; non-zero "
    "= foreground; a missing file = empty mask). With --reference CSV (columns study, condition, "
    "grade) it reports agreement: accuracy, off-by-one accuracy, macro-F1, weighted F1, linear "
    "and quadratic weighted kappa, each with a bootstrap 95% CI."
)
_PREVIEW_HELP = (
    "Write a PNG of both views of one study with colour overlays of chosen classes (--labels) "
    "and/or systems (--systems, region masks) and a legend. Reads only the image and the chosen "
    "masks of that study."
)


def register(commands: Any) -> None:
    """Add the stats, measure and preview commands to the ``rga`` sub-command parsers."""
    stats = commands.add_parser(
        "stats", help="dataset statistics and figures", description=_STATS_HELP
    )
    stats.add_argument("dest", metavar="DEST", help="dataset store (path or URL)")
    stats.add_argument(
        "--out", metavar="DIR", help="folder for the CSV, JSON, Markdown and PNG outputs"
    )
    _bootstrap_options(stats)
    _cut_point_options(stats)
    add_storage_options(stats)
    stats.set_defaults(run=_run_stats)

    measure = commands.add_parser(
        "measure", help="clinical measurements of predicted masks", description=_MEASURE_HELP
    )
    measure.add_argument("pred", metavar="PRED", help="prediction store or folder of PNG masks")
    measure.add_argument(
        "--dest", help="the dataset the masks were predicted for (pixel spacing, image size)"
    )
    measure.add_argument(
        "--pixel-spacing", type=float, metavar="MM", help="mm per pixel for every study and view"
    )
    measure.add_argument(
        "--image-size",
        type=int,
        metavar="PIXELS",
        help="PNG masks: pixels (default: DEST's, or 384)",
    )
    measure.add_argument(
        "--reference", metavar="CSV", help="CSV of reference grades: study, condition, grade"
    )
    measure.add_argument(
        "--out", metavar="DIR", help="folder for measurements.csv, the report and figures"
    )
    _bootstrap_options(measure)
    _cut_point_options(measure)
    add_storage_options(measure)
    add_cluster_options(measure)
    measure.set_defaults(run=_run_measure)

    preview = commands.add_parser(
        "preview", help="PNG of one study with coloured overlays", description=_PREVIEW_HELP
    )
    preview.add_argument("dest", metavar="DEST", help="dataset store (path or URL)")
    preview.add_argument("study", metavar="STUDY", help="study id")
    preview.add_argument("--labels", nargs="+", metavar="LABEL", help="classes to overlay")
    preview.add_argument("--systems", nargs="+", metavar="SYSTEM", help="systems (region masks)")
    preview.add_argument("--out", metavar="PNG", help="PNG to write (default preview-STUDY.png)")
    preview.add_argument("--scale", type=int, default=1, help="enlarge each pixel (default 1)")
    add_storage_options(preview)
    preview.set_defaults(run=_run_preview)


def _bootstrap_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--bootstrap",
        type=int,
        default=RESAMPLES,
        metavar="N",
        help=f"resamples (default {RESAMPLES})",
    )
    parser.add_argument("--seed", type=int, default=SEED, help=f"bootstrap seed (default {SEED})")


def _cut_point_options(parser: argparse.ArgumentParser) -> None:
    defaults = CutPoints()
    group = parser.add_argument_group("grading cut-points (mild, moderate, severe above each)")
    for flag, name in (
        ("--ctr-cutpoints", "cardiothoracic_ratio"),
        ("--scoliosis-cutpoints", "spinal_curvature_deg"),
        ("--kyphosis-cutpoints", "kyphosis_deg"),
    ):
        points = getattr(defaults, name)
        group.add_argument(
            flag,
            type=float,
            nargs=3,
            metavar=("MILD", "MODERATE", "SEVERE"),
            default=list(points),
            dest=name,
            help=f"{name} (default {' '.join(f'{p:g}' for p in points)})",
        )


def cut_points(args: argparse.Namespace) -> CutPoints:
    """The grading cut-points the flags ask for (a usage error if they do not increase)."""
    with usage_errors(ValueError):
        return CutPoints(
            tuple(args.cardiothoracic_ratio),
            tuple(args.spinal_curvature_deg),
            tuple(args.kyphosis_deg),
        )


def _open_catalog(url: str, args: argparse.Namespace):
    """The dataset store at ``url``, with the command's storage options; bad input if none."""
    from catalog.reader import open_catalog

    ref = store(url, args)
    if not ref.exists():
        raise FileNotFoundError(f"no dataset store at {url}")
    return open_catalog(ref)


def _print_tables(tables: Sequence[Table]) -> None:
    for table in tables:
        print(to_text(table))


def _run_stats(args: argparse.Namespace) -> int:
    from flows.stats import dataset_statistics

    grading = cut_points(args)
    _check_bootstrap(args)
    stats = dataset_statistics(_open_catalog(args.dest, args), grading, args.bootstrap, args.seed)
    _print_tables(stats.tables)
    if args.out:
        from flows.reports.figures import footprint_figure, measurements_figure, save_figure

        extra = {
            "dataset": args.dest,
            "bootstrap": {"resamples": args.bootstrap, "seed": args.seed},
        }
        written = write_report(args.out, "statistics", stats.tables, extra)
        written.append(
            save_figure(footprint_figure(stats.footprint), Path(args.out) / "footprint.png")
        )
        if stats.measured is not None:
            figure = measurements_figure(stats.measured, grading)
            written.append(save_figure(figure, Path(args.out) / "measurements.png"))
        print(f"Wrote {len(written)} files into {args.out}")
    return 0


def _run_measure(args: argparse.Namespace) -> int:
    from flows.measure import measure
    from flows.predictions import open_predictions
    from flows.references import agreement_by_condition, read_reference_grades
    from flows.reports.measurement import (
        agreement_tables,
        exclusion_table,
        per_study_table,
        summary_table,
    )

    grading = cut_points(args)
    _check_bootstrap(args)
    # A missing or malformed --reference file is bad input (exit 1), as --class-map is.
    reference_grades = read_reference_grades(args.reference) if args.reference else None
    options = storage_options(args)
    _check_pixel_spacing(args, options)
    dataset = _open_catalog(args.dest, args) if args.dest else None
    with cluster(args):
        predictions = open_predictions(
            args.pred,
            options,
            reference=dataset,
            pixel_spacing=args.pixel_spacing,
            image_size=args.image_size,
        )
        result = measure(predictions, grading, args.pred)
        per_study = per_study_table(result.measured)
        tables = [summary_table(result.measured, grading), exclusion_table(result.measured)]
        if reference_grades is not None:
            agreements = agreement_by_condition(
                result.measured, reference_grades, args.bootstrap, args.seed
            )
            tables += agreement_tables(agreements)
        if len(per_study.rows) <= PER_STUDY_ROWS_SHOWN:
            _print_tables([per_study])
        _print_tables(tables)
        if args.out:
            from flows.reports.figures import measurements_figure, save_figure

            extra = {"predictions": args.pred, "failed": result.failed}
            written = write_report(args.out, "measurements_report", [per_study, *tables], extra)
            figure = measurements_figure(result.measured, grading)
            written.append(save_figure(figure, Path(args.out) / "measurements.png"))
            print(f"Wrote {len(written)} files into {args.out}")
        for study, error in result.failed.items():
            note(f"  FAILED {study}: {error}")
        return 1 if result.failed else 0


def _check_pixel_spacing(args: argparse.Namespace, options: dict[str, Any]) -> None:
    """A folder of PNG masks needs --pixel-spacing or --dest: a missing argument (2)."""
    if args.pixel_spacing is not None or args.dest is not None:
        return
    if not store(args.pred, args).exists() and PngFolder(args.pred, options).exists():
        raise UsageError(
            "a folder of PNG masks has no pixel spacing: give --pixel-spacing MM or "
            "--dest DATASET (the dataset the masks were predicted for)"
        )


def _run_preview(args: argparse.Namespace) -> int:
    from flows.reports.preview import save_preview

    out = args.out or f"preview-{args.study}.png"
    ds = _open_catalog(args.dest, args)
    with usage_errors(ValueError, KeyError):  # STUDY, --labels, --systems, --out: as named
        path = save_preview(ds, args.study, out, args.labels, args.systems, scale=args.scale)
    print(f"Wrote {path}")
    return 0


def _check_bootstrap(args: argparse.Namespace) -> None:
    if args.bootstrap < 1:
        raise UsageError(f"--bootstrap must be at least 1, not {args.bootstrap}")
