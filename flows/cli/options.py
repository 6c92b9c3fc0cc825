"""What every ``rga`` command shares, defined once: the argument types, the verbosity, store and
storage options, cluster options, and the two kinds of error a command reports.

The conventions (README "Commands"): exit status 0 when everything was done; 1 for bad input
(a store, input folder or option file that is missing, unreadable or malformed, data that cannot
be used, studies that failed); 2 for a usage error (a bad flag or value, a missing argument, a
split, study or class name that names nothing: fix the command line). Data (tables,
results, summaries) goes to stdout; progress, warnings and errors go to stderr.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from distributed import Client

from flows.runtime.cluster import ClusterOptions, dask_client
from flows.runtime.progress import Progress
from storage.location import (
    STORAGE_OPTIONS_CONFIG,
    StoreRef,
    parse_storage_options,
    resolve_storage_options,
)

EXIT_OK, EXIT_BAD_INPUT, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """A problem with what the user asked for (exit status 2), reported as one sentence."""


def sentence(error: BaseException) -> str:
    """The one sentence an error is reported with (a KeyError's own text, not its repr)."""
    if isinstance(error, KeyError) and error.args:
        return str(error.args[0])
    return str(error)


@contextmanager
def usage_errors(*kinds: type[Exception]) -> Iterator[None]:
    """Errors of ``kinds`` raised while the arguments are interpreted are usage errors (2).

    Wraps the checks of the command line itself (flag values and the split, study and class
    names it gives), so that the same exception types raised while folders, files and stores
    are read remain bad input (1).
    """
    caught = kinds or (ValueError, KeyError, FileNotFoundError)
    try:
        yield
    except caught as error:
        raise UsageError(sentence(error)) from error


# --- argument types -------------------------------------------------------------------------


def positive_int(text: str) -> int:
    """A whole number of at least 1, or an argparse error that says which it is not."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return value


def positive_mm(text: str) -> float:
    """A finite number of millimetres above 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text} must be a positive number of mm")
    return value


def probability(text: str) -> float:
    """A number in (0, 1]."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError(f"{value} must be in (0, 1]")
    return value


def storage_option(text: str) -> str:
    """One ``KEY=VALUE`` flag, checked as it is parsed (the value is never echoed)."""
    try:
        parse_storage_options([text])
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return text


# --- verbosity ------------------------------------------------------------------------------


def add_verbosity(parser: argparse.ArgumentParser, *, command: bool = True) -> None:
    """``-v``: before the command (``rga -v build ...``) or after it (``rga build ... -v``)."""
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        # On a command, an absent -v must not reset one given before the command.
        default=argparse.SUPPRESS if command else False,
        help="log details and tracebacks",
    )


# --- stores and their storage options -------------------------------------------------------


def add_storage_options(parser: argparse.ArgumentParser) -> None:
    """``--storage-option KEY=VALUE``, for every command that opens a store, folder or file."""
    parser.add_argument(
        "--storage-option",
        action="append",
        type=storage_option,
        metavar="KEY=VALUE",
        help="fsspec option for URLs (repeatable; JSON values allowed), e.g. "
        "endpoint_url=http://127.0.0.1:9000; also read from the Dask config key "
        f"{STORAGE_OPTIONS_CONFIG}, and s3fs reads AWS_* itself: keep secrets out of command lines",
    )


def storage_options(args: argparse.Namespace) -> dict[str, Any]:
    """The command's ``--storage-option`` flags (the Dask config default is merged in by
    ``StoreRef``, ``Folder`` and ``read_text`` for every remote address)."""
    with usage_errors(ValueError):
        flags = parse_storage_options(getattr(args, "storage_option", None) or [])
        resolve_storage_options(flags)  # the Dask config key must be a mapping
    return flags


def store(url: str, args: argparse.Namespace) -> StoreRef:
    """A store address with the command's storage options."""
    return StoreRef(url, storage_options(args))


# --- cluster --------------------------------------------------------------------------------


def add_cluster_options(parser: argparse.ArgumentParser) -> None:
    """Where a computing command runs, and ``--quiet``."""
    group = parser.add_argument_group("cluster")
    group.add_argument(
        "--scheduler",
        help="address of a running Dask scheduler (else DASK_SCHEDULER_ADDRESS); "
        "'threads' or 'synchronous' runs in this process without a cluster",
    )
    group.add_argument("--workers", type=positive_int, help="local cluster: worker processes")
    group.add_argument(
        "--threads-per-worker", type=positive_int, default=1, help="local cluster (default 1)"
    )
    group.add_argument("--memory-limit", default="auto", help="local cluster: per worker")
    group.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="no progress lines (studies done, rate, ETA, failures) on stderr: logs and "
        "the summary only",
    )


def cluster_options(args: argparse.Namespace) -> ClusterOptions:
    return ClusterOptions(args.scheduler, args.workers, args.threads_per_worker, args.memory_limit)


@contextmanager
def cluster(args: argparse.Namespace) -> Iterator[Client | None]:
    """The command's Dask client while the block runs; its dashboard link goes to stderr."""
    with dask_client(cluster_options(args)) as client:
        if client is not None and not quiet(args):
            print(f"Dask dashboard: {client.dashboard_link}", file=sys.stderr, flush=True)
        yield client


def quiet(args: argparse.Namespace) -> bool:
    return bool(getattr(args, "quiet", False))


def progress(what: str, args: argparse.Namespace) -> Progress:
    """The progress display of one step (stderr): ``on_batch`` itself, ``.failed`` as
    ``on_failure``."""
    return Progress(what, quiet=quiet(args))


def note(text: str) -> None:
    """A progress line, warning or error: stderr, never mixed into the data on stdout."""
    print(text, file=sys.stderr, flush=True)
