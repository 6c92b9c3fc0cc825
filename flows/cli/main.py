"""The ``rga`` command line: the parser, the dispatch to the command groups, and exit codes.

Command groups: ``dataset`` (demo, ingest, build, update, log, info), ``evaluation``
(evaluate, compare, atlas) and ``reports`` (stats, measure, preview). Shared options and the
conventions (exit codes, stdout for data and stderr for the rest) are in ``options``.
"""

from __future__ import annotations

import argparse
import logging
import sys
import textwrap
import warnings
from collections.abc import Sequence
from typing import Any

from flows.cli import dataset as cli_dataset
from flows.cli import evaluation as cli_evaluation
from flows.cli import export as cli_export
from flows.cli import reports as cli_reports
from flows.cli import train as cli_train
from flows.cli.options import EXIT_BAD_INPUT, EXIT_USAGE, UsageError, add_verbosity, sentence
from flows.export import OutputExists
from flows.runtime.cluster import SchedulerUnreachable
from flows.train import MissingExtra
from flows.update import ParametersChanged, UpdateStopped
from storage.errors import STORE_ERRORS
from storage.lock import ConditionalWritesUnsupported, LeaseLost, StoreLocked

log = logging.getLogger("rga")

# Refusals that a flag resolves (--scheduler, --rebuild, --wait, --overwrite): usage errors, 2.
_FIXED_BY_A_FLAG = (SchedulerUnreachable, ParametersChanged, StoreLocked, OutputExists)
# Raised while reading stores and data, after the arguments were checked: bad input, status 1.
_BAD_INPUT = (ValueError, KeyError, FileNotFoundError, MissingExtra)  # MissingExtra: no torch
# The store could not be written (full, another updater took over, no conditional writes): 1.
_UNSAFE_STORE = (UpdateStopped, LeaseLost, ConditionalWritesUnsupported)
_RERUN = "Everything committed before it is intact; run the command again to finish"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``rga`` console script; returns the exit code."""
    parser = _parser()
    args = parser.parse_args(argv)  # argparse's own errors exit with status 2
    _configure_logging(args.verbose)
    try:
        return args.run(args)
    except (UsageError, *_FIXED_BY_A_FLAG) as error:
        return _error(args, error, EXIT_USAGE)
    except (*_BAD_INPUT, *_UNSAFE_STORE) as error:
        return _error(args, error, EXIT_BAD_INPUT)
    except STORE_ERRORS as error:  # the store failed outside an update's guard (5xx, offline)
        stopped = OSError(f"stopped on a storage error: {sentence(error)}. {_RERUN}")
        return _error(args, stopped, EXIT_BAD_INPUT)
    except KeyboardInterrupt:
        print("rga: interrupted; committed studies are intact", file=sys.stderr)
        return 130


def _error(args: argparse.Namespace, error: BaseException, code: int) -> int:
    print(f"rga {args.command}: error: {sentence(error)}", file=sys.stderr)
    log.debug("details", exc_info=True)
    return code


class _HelpFormatter(argparse.HelpFormatter):
    """Wraps help text at spaces only: flags and config keys (``rga.storage-options``) stay
    whole, so they can be copied from ``--help``."""

    def _split_lines(self, text: str, width: int) -> list[str]:
        return textwrap.wrap(" ".join(text.split()), width, break_on_hyphens=False)


class _Parser(argparse.ArgumentParser):
    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(**kwargs)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="rga",
        description="Build anatomy-labelled chest radiographs (PA and lateral, one mask per "
        "class) from CT volumes and their 3D masks.",
    )
    add_verbosity(parser, command=False)
    commands = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", parser_class=_Parser
    )
    cli_dataset.register(commands)  # demo, ingest, build, update, log, info
    cli_evaluation.register(commands)  # evaluate, compare, atlas
    cli_reports.register(commands)  # stats, measure, preview
    cli_export.register(commands)  # export
    cli_train.register(commands)  # train, predict
    for command in commands.choices.values():
        add_verbosity(command)
    return parser


_CREDENTIAL_LOGGERS = ("botocore", "aiobotocore", "boto3", "s3transfer", "urllib3", "s3fs")


def _configure_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    # Their debug logs print request headers, which carry access key ids: never show them.
    for name in _CREDENTIAL_LOGGERS:
        logging.getLogger(name).setLevel(logging.INFO)
    if not verbose:
        # Per-study failures are printed in the summary and a lost scheduler raises; the rest of
        # distributed's logging, here and in local workers (which mirror it), is noise.
        logging.getLogger("distributed").setLevel(logging.CRITICAL)
        warnings.filterwarnings("ignore", module="distributed")
