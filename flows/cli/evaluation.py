"""The ``rga evaluate``, ``rga compare`` and ``rga atlas`` commands, and the demo's last step.

Registered on the ``rga`` parser by ``flows/cli/main.py``; shared options, exit codes and where
output goes are in ``flows/cli/options.py``: what the arguments name is checked first (a usage
error, 2), then stores and data are read (``ValueError``, ``KeyError`` or ``FileNotFoundError``:
bad input, 1); either is printed as one sentence without a traceback.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flows.aggregate import HEADLINE, class_means, models_table, partition_rows
from flows.atlas import AtlasSummary, predict_atlas, split_studies
from flows.cli.options import (
    UsageError,
    add_cluster_options,
    add_storage_options,
    cluster,
    note,
    positive_int,
    probability,
    quiet,
    storage_options,
    store,
    usage_errors,
)
from flows.compare import UNITS, compare_models
from flows.evaluate import EvaluateSummary, Predictions, evaluate, summary_title
from flows.formats.coco import open_coco
from flows.formats.nnunet import is_prediction_folder, open_nnunet
from flows.maths.metrics import METRICS, MetricOptions
from flows.reports.comparison import pairs_table, tests_table
from flows.reports.evaluation import summary_table
from flows.reports.tables import to_csv, to_markdown, to_text
from storage.location import StoreRef
from storage.masks import PngFolder, is_dataset_store
from storage.results import RESULTS_STORE, child, open_results, write_text

_EVALUATE_HELP = (
    "Score predicted masks against the ground truth of a dataset store: Dice, IoU, HD95, ASD, "
    "NSD and connected-component precision/recall/F1 for every study, view and class, one Dask "
    "task per study. PRED is a store in the dataset schema, or a folder of PNG masks "
    "PRED/<study>/<view>/<label>.png (non-zero = foreground; a missing file = empty mask), a "
    "COCO file (annotations.json of rga export, or a results list with scores and "
    "--coco-annotations), or an nnU-Net prediction folder (<case>.png label maps or "
    "--save_probabilities .npz, with the export's dataset.json). "
    "DEST (a folder) receives metrics.zarr, metrics.csv, per_class.csv, summary.csv, summary.md."
)
_COMPARE_HELP = (
    "Paired comparison of models evaluated with `rga evaluate` on the same ground truth, as the "
    "paper's Appendix C: for every pair, Wilcoxon signed-rank, paired bootstrap, Cohen's d_z "
    "and rank-biserial correlation, Bonferroni-corrected over all tests. Only studies evaluated "
    "for every model are paired; the others are listed."
)
_ATLAS_HELP = (
    "Baseline predictor: the mean-shape atlas of the training studies (per view and class, the "
    "pixels covered in at least THRESHOLD of them), written as the prediction of every study of "
    "another split into DEST, a store in the dataset schema that `rga evaluate` scores."
)


def register(commands: Any) -> None:
    """Add the evaluation commands to the ``rga`` sub-command parsers."""
    evaluate_cmd = commands.add_parser(
        "evaluate", help="score predicted masks against a dataset", description=_EVALUATE_HELP
    )
    evaluate_cmd.add_argument(
        "pred",
        metavar="PRED",
        help="prediction store, PNG folder, COCO .json or nnU-Net prediction folder",
    )
    evaluate_cmd.add_argument("dest", metavar="DEST", help="evaluation folder to write (replaced)")
    evaluate_cmd.add_argument("--gt", required=True, help="ground-truth dataset store")
    evaluate_cmd.add_argument("--split", help="evaluate only the studies of this split")
    evaluate_cmd.add_argument(
        "--coco-annotations",
        metavar="FILE",
        help="COCO results list: the export's annotations.json (its image and category ids)",
    )
    evaluate_cmd.add_argument(
        "--score-threshold",
        type=probability,
        default=0.5,
        help="COCO results: keep segments scored at least this (default 0.5)",
    )
    _metric_options(evaluate_cmd)
    add_storage_options(evaluate_cmd)
    add_cluster_options(evaluate_cmd)
    evaluate_cmd.set_defaults(run=_run_evaluate)

    compare_cmd = commands.add_parser(
        "compare", help="paired statistics between evaluated models", description=_COMPARE_HELP
    )
    compare_cmd.add_argument("results", nargs="+", metavar="RESULT", help="evaluation folders")
    compare_cmd.add_argument("--names", nargs="+", help="model names (default: folder names)")
    compare_cmd.add_argument(
        "--metric",
        nargs="+",
        choices=METRICS,
        default=["dice"],
        help="metrics to test (default dice); Bonferroni covers all of them",
    )
    compare_cmd.add_argument(
        "--unit",
        choices=UNITS,
        default="class",
        help="class: pair class-wise mean scores (Appendix C, default); study: one test per "
        "class, pairing the studies",
    )
    compare_cmd.add_argument("--bootstrap", type=positive_int, default=10_000, help="resamples")
    compare_cmd.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    compare_cmd.add_argument("--alpha", type=probability, default=0.05, help="default 0.05")
    compare_cmd.add_argument("--out", help="folder for comparison.md and comparison.csv")
    add_storage_options(compare_cmd)
    compare_cmd.set_defaults(run=_run_compare)

    atlas_cmd = commands.add_parser(
        "atlas", help="write the mean-shape atlas baseline prediction", description=_ATLAS_HELP
    )
    atlas_cmd.add_argument("gt", metavar="GT", help="dataset store with the training studies")
    atlas_cmd.add_argument("dest", metavar="DEST", help="prediction store to write (replaced)")
    atlas_cmd.add_argument("--train-split", default="train", help="atlas from (default train)")
    atlas_cmd.add_argument("--split", default="valid", help="predict for (default valid)")
    atlas_cmd.add_argument(
        "--threshold", type=probability, default=0.5, help="share of studies (default 0.5)"
    )
    add_storage_options(atlas_cmd)
    add_cluster_options(atlas_cmd)
    atlas_cmd.set_defaults(run=_run_atlas)


def _metric_options(parser: argparse.ArgumentParser) -> None:
    defaults = MetricOptions()
    parser.add_argument(
        "--tolerance-mm",
        type=float,
        default=defaults.tolerance_mm,
        help=f"NSD tolerance in mm (default {defaults.tolerance_mm})",
    )
    parser.add_argument(
        "--match-iou",
        type=float,
        default=defaults.match_iou,
        help="component match: overlap with IoU >= this (default 0: any overlap)",
    )


def _progress(what: str, args: argparse.Namespace) -> Callable[[int, int], None]:
    """Studies done, on stderr (none with --quiet)."""

    def report(done: int, total: int) -> None:
        if not quiet(args):
            note(f"  {what}: {done}/{total} studies")

    return report


def prediction_source(
    location: str,
    options: dict[str, Any] | None = None,
    *,
    coco_annotations: str | None = None,
    score_threshold: float = 0.5,
) -> Predictions:
    """What ``location`` holds: a COCO file (``.json``), an nnU-Net prediction folder (with its
    ``dataset.json``), a prediction store, or a folder of PNG masks."""
    options = options or {}
    if location.endswith(".json"):
        return open_coco(
            location, options, annotations_url=coco_annotations, score_threshold=score_threshold
        )
    store = StoreRef(location, options)
    if store.exists():
        if not is_dataset_store(store):
            raise ValueError(f"{location} is a Zarr store but not in the dataset schema")
        return store
    if is_prediction_folder(location, options):
        return open_nnunet(location, options)
    folder = PngFolder(location, options)
    if folder.exists():
        return folder
    raise FileNotFoundError(f"no prediction store or folder of masks (PNG, nnU-Net) at {location}")


def _run_evaluate(args: argparse.Namespace) -> int:
    with usage_errors(ValueError):
        options = MetricOptions(tolerance_mm=args.tolerance_mm, match_iou=args.match_iou)
    gt = store(args.gt, args)
    if not is_dataset_store(gt):
        raise FileNotFoundError(f"no ground-truth dataset store at {args.gt}")
    if args.split is not None:
        from catalog.reader import open_catalog, select

        with usage_errors(KeyError):  # --split names no split of the dataset
            select(open_catalog(gt), split=args.split)
    predictions = prediction_source(
        args.pred,
        storage_options(args),
        coco_annotations=args.coco_annotations,
        score_threshold=args.score_threshold,
    )
    dest = store(args.dest, args)
    with cluster(args):
        progress = _progress("evaluate", args)
        summary = evaluate(gt, predictions, dest, options, split=args.split, on_batch=progress)
    print_evaluation(summary)
    print(headline(dest))
    return 0 if not summary.failed else 1


def print_evaluation(summary: EvaluateSummary) -> None:
    """What was evaluated (stdout); what failed and which studies could not be paired (stderr)."""
    evaluated, seconds = len(summary.evaluated), summary.seconds
    print(f"Evaluated {evaluated} studies into {summary.dest} in {seconds:.1f} s", flush=True)
    for study_id, error in summary.failed.items():
        note(f"  FAILED {study_id}: {error}")
    if summary.missing:
        count = len(summary.missing)
        note(f"  {count} ground-truth studies have no prediction: {_some(summary.missing)}")
    if summary.unknown:
        count = len(summary.unknown)
        where = summary.prediction
        note(f"  {count} studies of {where} are not in the ground truth: {_some(summary.unknown)}")


def _some(names: list[str], limit: int = 10) -> str:
    return ", ".join(names[:limit]) + (" ..." if len(names) > limit else "")


def headline(dest: StoreRef) -> str:
    """The headline table of an evaluation: overall and by view (class-balanced means)."""
    results = open_results(child(dest, RESULTS_STORE))
    rows = partition_rows(class_means(results), partitions=HEADLINE)
    return to_text(summary_table(rows, summary_title(results)))


def _run_compare(args: argparse.Namespace) -> int:
    names = args.names or [Path(r.rstrip("/")).name for r in args.results]
    if len(args.results) < 2:
        raise UsageError("a comparison needs the results of at least two models")
    if len(names) != len(args.results):
        raise UsageError(f"{len(args.results)} results but {len(names)} names")
    if len(set(names)) != len(names):
        raise UsageError("model names must be unique; give them with --names")
    paths = zip(names, args.results, strict=True)
    results = {name: open_results(store(path, args)) for name, path in paths}
    comparison = compare_models(
        results,
        args.metric,
        unit=args.unit,
        n_boot=args.bootstrap,
        seed=args.seed,
        alpha=args.alpha,
    )
    models, pairs = models_table(results, comparison.studies), pairs_table(comparison)
    print(to_text(models) + "\n" + to_text(pairs), end="")
    if args.out:
        out = store(args.out, args)
        write_text(child(out, "comparison.md"), to_markdown(models) + "\n" + to_markdown(pairs))
        write_text(child(out, "models.csv"), to_csv(models))
        write_text(child(out, "comparison.csv"), to_csv(tests_table(comparison)))
        print(f"Wrote comparison.md, models.csv and comparison.csv into {args.out}")
    return 0


def _run_atlas(args: argparse.Namespace) -> int:
    gt = store(args.gt, args)
    if not is_dataset_store(gt):
        raise FileNotFoundError(f"no dataset store at {args.gt}")
    train, targets = split_studies(gt, args.train_split), split_studies(gt, args.split)
    for studies, role in ((train, "training"), (targets, "target")):
        if not studies:  # --train-split or --split names no committed study
            raise UsageError(f"the atlas needs at least one {role} study")
    with cluster(args):
        summary = predict_atlas(
            gt,
            store(args.dest, args),
            train,
            targets,
            args.threshold,
            on_batch=_progress("atlas", args),
        )
    _print_atlas(summary)
    return 0


def _print_atlas(summary: AtlasSummary) -> None:
    print(
        f"Atlas of {len(summary.train)} training studies ({summary.classes} classes) written as "
        f"the prediction of {len(summary.predicted)} studies into {summary.dest} "
        f"in {summary.seconds:.1f} s"
    )


def demo_baseline(folder: Path, dataset: StoreRef) -> str:
    """The demo's last step: atlas of the train split, scored on the valid split (a report)."""
    train, valid = split_studies(dataset, "train"), split_studies(dataset, "valid")
    if not (train and valid):
        return "Baseline skipped: the demo needs studies in both the train and valid splits."
    atlas = StoreRef(str(folder / "atlas.zarr"))
    evaluation = StoreRef(str(folder / "atlas-evaluation"))
    made = predict_atlas(dataset, atlas, train, valid)
    scored = evaluate(dataset, atlas, evaluation, split="valid")
    lines = [
        f"Baseline: mean-shape atlas of {len(made.train)} training studies -> {atlas.url}",
        f"Evaluated on {len(scored.evaluated)} validation studies -> {evaluation.url} "
        f"({len(scored.failed)} failed)",
        headline(evaluation),
        f"Compare models with: rga compare {evaluation.url} OTHER_EVALUATION ...",
    ]
    return "\n".join(lines)
