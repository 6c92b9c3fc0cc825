"""The ``rga`` command line: demo, ingest, build, info."""

from __future__ import annotations

import argparse
import logging
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

from flows.build import BuildParameters
from flows.cluster import ClusterOptions, dask_client
from flows.ingest import IngestSummary, ingest
from flows.inputs import phantom_inputs
from flows.projection import ATTENUATION_MODELS, CANVAS
from flows.update import UpdateSummary, build, update
from storage.buildlog import read_records
from storage.location import StoreRef
from storage.lock import StoreLocked

log = logging.getLogger("rga")
LAYOUTS = ("phantom",)


class UsageError(Exception):
    """A problem with what the user asked for, reported as one sentence."""


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``rga`` console script; returns the exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    _configure_logging(args.verbose)
    try:
        return args.run(args)
    except (UsageError, ValueError, KeyError, FileNotFoundError, StoreLocked) as error:
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        print(f"rga {args.command}: error: {message}", file=sys.stderr)
        log.debug("details", exc_info=True)
        return 2
    except KeyboardInterrupt:
        print("rga: interrupted; committed studies are intact", file=sys.stderr)
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rga",
        description="Build anatomy-labelled chest radiographs (PA and lateral, one mask per "
        "class) from CT volumes and their 3D masks.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log details and tracebacks")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = commands.add_parser(
        "demo", help="generate phantom studies, ingest and build them", description=_DEMO_HELP
    )
    demo.add_argument("dir", nargs="?", default="rga-demo", help="output folder (default rga-demo)")
    demo.add_argument("--studies", type=_positive, default=5, help="how many phantoms (default 5)")
    _phantom_options(demo, default_shape=(128, 128, 160))
    _build_options(demo)
    _cluster_options(demo)
    demo.set_defaults(run=_run_demo)

    ingest_cmd = commands.add_parser(
        "ingest", help="write study inputs into a sources store", description=_INGEST_HELP
    )
    ingest_cmd.add_argument("input", nargs="?", help="input folder or URL (not for phantom)")
    ingest_cmd.add_argument("sources", help="sources store to write (path or URL)")
    ingest_cmd.add_argument("--layout", choices=LAYOUTS, required=True, help="input layout")
    ingest_cmd.add_argument("--studies", type=_positive, default=5, help="phantom: how many")
    _phantom_options(ingest_cmd, default_shape=(128, 128, 160))
    _cluster_options(ingest_cmd)
    ingest_cmd.set_defaults(run=_run_ingest)

    build_cmd = commands.add_parser(
        "build", help="project a sources store into a dataset store", description=_BUILD_HELP
    )
    build_cmd.add_argument("sources", help="sources store (path or URL)")
    build_cmd.add_argument("dest", help="dataset store to create (path or URL); replaced")
    _build_options(build_cmd)
    _cluster_options(build_cmd)
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
    _cluster_options(update_cmd)
    update_cmd.set_defaults(run=_run_update)

    log_cmd = commands.add_parser("log", help="show the build log of a dataset store")
    log_cmd.add_argument("dest", help="dataset store (path or URL)")
    log_cmd.set_defaults(run=_run_log)

    info = commands.add_parser("info", help="describe a dataset store")
    info.add_argument("dest", help="dataset store (path or URL)")
    info.set_defaults(run=_run_info)
    return parser


_DEMO_HELP = (
    "Generate phantom thorax CTs with all 210 classes, ingest them into DIR/sources.zarr, "
    "build DIR/dataset.zarr, and print how to open it."
)
_INGEST_HELP = (
    "Write studies into a sources store (CT int16 + sparse 3D masks). With --layout phantom "
    "there is no INPUT: synthetic studies are generated (--studies, --shape, --seed)."
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


def _phantom_options(parser: argparse.ArgumentParser, default_shape: tuple[int, ...]) -> None:
    parser.add_argument(
        "--shape",
        type=_positive,
        nargs=3,
        default=list(default_shape),
        metavar=("I", "J", "K"),
        help=f"phantom voxels (default {' '.join(map(str, default_shape))})",
    )
    parser.add_argument("--seed", type=int, default=0, help="phantom seed (default 0)")


def _build_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--image-size", type=_positive, default=CANVAS, help=f"pixels (default {CANVAS})"
    )
    parser.add_argument(
        "--attenuation",
        choices=ATTENUATION_MODELS,
        default="linear",
        help="linear line integral (paper, default) or exponential 1-exp(-integral)",
    )


def _cluster_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("cluster")
    group.add_argument(
        "--scheduler",
        help="address of a running Dask scheduler (else DASK_SCHEDULER_ADDRESS); "
        "'threads' or 'synchronous' runs in this process without a cluster",
    )
    group.add_argument("--workers", type=_positive, help="local cluster: worker processes")
    group.add_argument(
        "--threads-per-worker", type=_positive, default=1, help="local cluster (default 1)"
    )
    group.add_argument("--memory-limit", default="auto", help="local cluster: per worker")


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return value


def _cluster(args: argparse.Namespace) -> ClusterOptions:
    return ClusterOptions(args.scheduler, args.workers, args.threads_per_worker, args.memory_limit)


def _params(args: argparse.Namespace) -> BuildParameters:
    return BuildParameters(canvas=args.image_size, attenuation=args.attenuation)


def _progress(what: str):
    def report(done: int, total: int) -> None:
        print(f"  {what}: {done}/{total} studies", flush=True)

    return report


def _run_demo(args: argparse.Namespace) -> int:
    folder = Path(args.dir)
    sources, dest = StoreRef(str(folder / "sources.zarr")), StoreRef(str(folder / "dataset.zarr"))
    inputs = phantom_inputs(args.studies, tuple(args.shape), args.seed)
    params = _params(args)
    with dask_client(_cluster(args)) as client:
        if client is not None:
            print(f"Dask dashboard: {client.dashboard_link}")
        ingested = ingest(inputs, sources, on_batch=_progress("ingest"))
        _print_ingest(ingested)
        built = build(sources, dest, params, on_batch=_progress("build"))
    _print_build(built)
    _print_info(dest)
    return 0 if not (ingested.failed or built.failed) else 1


def _run_ingest(args: argparse.Namespace) -> int:
    if args.input is not None:
        raise UsageError("the phantom layout takes no INPUT, only SOURCES")
    inputs = phantom_inputs(args.studies, tuple(args.shape), args.seed)
    sources = StoreRef(args.sources)
    with dask_client(_cluster(args)):
        summary = ingest(inputs, sources, on_batch=_progress("ingest"))
    _print_ingest(summary)
    return 0 if not summary.failed else 1


def _run_build(args: argparse.Namespace) -> int:
    sources, dest, params = StoreRef(args.sources), StoreRef(args.dest), _params(args)
    if not sources.exists():
        raise UsageError(f"no sources store at {args.sources}; create one with `rga ingest`")
    with dask_client(_cluster(args)):
        summary = build(sources, dest, params, on_batch=_progress("build"))
    _print_build(summary)
    return 0 if not summary.failed else 1


def _run_update(args: argparse.Namespace) -> int:
    sources, dest, params = StoreRef(args.sources), StoreRef(args.dest), _params(args)
    if not sources.exists():
        raise UsageError(f"no sources store at {args.sources}; create one with `rga ingest`")
    with dask_client(_cluster(args)):
        summary = update(
            sources,
            dest,
            params,
            rebuild=args.rebuild,
            prune=args.prune,
            wait=args.wait,
            on_batch=_progress("update"),
        )
    _print_build(summary)
    return 0 if not summary.failed else 1


def _run_log(args: argparse.Namespace) -> int:
    dest = StoreRef(args.dest)
    if not dest.exists():
        raise UsageError(f"no dataset store at {args.dest}")
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
    dest = StoreRef(args.dest)
    if not dest.exists():
        raise UsageError(f"no dataset store at {args.dest}")
    _print_info(dest)
    return 0


def _print_ingest(summary: IngestSummary) -> None:
    print(
        f"Ingested {len(summary.ingested)} studies into {summary.sources} "
        f"in {summary.seconds:.1f} s"
    )
    for study_id, error in summary.failed.items():
        print(f"  FAILED {study_id}: {error}")


def _print_build(summary: UpdateSummary) -> None:
    print(
        f"Built {len(summary.built)} studies into {summary.dest} in {summary.seconds:.1f} s "
        f"({len(summary.added)} added, {len(summary.changed)} changed, "
        f"{len(summary.unchanged)} unchanged, {len(summary.removed)} removed)"
    )
    if summary.gone and not summary.removed:
        print(f"  {len(summary.gone)} studies are gone from the sources (--prune removes them):")
        print("   ", ", ".join(summary.gone[:20]) + (" ..." if len(summary.gone) > 20 else ""))
    for study_id, error in summary.failed.items():
        print(f"  FAILED {study_id}: {error}")


def _print_info(dest: StoreRef) -> None:
    from catalog.reader import open_catalog  # the read side is only needed here

    everything = open_catalog(dest, include_uncommitted=True)
    ds = open_catalog(dest)
    splits = {str(s): int((ds["split"] == s).sum()) for s in sorted(set(ds["split"].values))}
    params = everything.attrs.get("rga_parameters", {})
    print(f"Dataset {dest.url}")
    print(f"  studies: {ds.sizes['study']} committed of {everything.sizes['study']} ({splits})")
    views = ", ".join(map(str, ds["view"].values))
    print(f"  views: {views}; images {ds.sizes['y']} x {ds.sizes['x']}")
    print(f"  labels: {ds.sizes['label']} classes in {ds.sizes['region']} regions")
    masks = ds.sizes["study"] * ds.sizes["view"] * ds.sizes["label"]
    print(f"  masks: {masks:,}; parameters {params}")
    print("Open it lazily with:")
    print("  from catalog import open_catalog, select")
    print(f"  ds = open_catalog({dest.url!r})")
    print('  heart = select(ds, label="heart", view="PA").mask')


def _configure_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not verbose:
        # Per-study failures are printed in the summary; worker chatter is noise here.
        logging.getLogger("distributed").setLevel(logging.ERROR)
        warnings.filterwarnings("ignore", module="distributed")


if __name__ == "__main__":
    sys.exit(main())
