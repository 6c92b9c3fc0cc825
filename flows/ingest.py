"""Ingest: study inputs -> sources store, one task per study on the cluster.

Per study, one task reads the CT and every mask (one at a time, each kept compressed), derives
the classes the input lacks as unions of their members, and only then writes the study, so a
bad input file fails the study before any earlier version of it is replaced. A study that fails
is reported with its id and the reason; the other studies are written. Every run updates the
failure report beside the store (``storage/reports.py``). After every batch the client merges
the study index's segments (``storage/sources.py``), so an update reads one small object.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import dask

from catalog.taxonomy import load_taxonomy
from flows.inputs.nifti import InputError
from flows.inputs.staging import emit, plan_derivation, stage
from flows.inputs.study import StudyInput
from flows.runtime.allocator import roomy_allocator
from flows.runtime.failure import Failure, capture, log_details
from storage.files import Folder
from storage.location import StoreRef, check_study_id, redact
from storage.reports import update_report
from storage.sources import create_sources, merge_index, write_study

log = logging.getLogger(__name__)


@dataclass
class IngestSummary:
    """What an ingest did."""

    sources: str
    ingested: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    warnings: dict[str, list[str]] = field(default_factory=dict)
    seconds: float = 0.0
    report: str | None = None  # URL of the failure report


@dataclass(frozen=True)
class StudyOutcome:
    """What happened to one study: its failure (None when written) and its warnings."""

    failure: Failure | None = None
    warnings: tuple[str, ...] = ()


def ingest(
    inputs: Sequence[StudyInput],
    sources: StoreRef,
    *,
    batch_size: int = 64,
    on_batch: Callable[[int, int], None] | None = None,
    on_failure: Callable[[str, str], None] | None = None,
    run_info: Mapping[str, Any] | None = None,
) -> IngestSummary:
    """Write every input into ``sources`` (created if needed), a bounded batch at a time.

    Afterwards the failure report beside the store is updated for the studies attempted;
    ``run_info`` (input URL, layout) is recorded in it as the last run.
    """
    started = time.perf_counter()
    create_sources(sources, load_taxonomy().names)
    summary = IngestSummary(sources=sources.url)
    for start in range(0, len(inputs), batch_size):
        batch = inputs[start : start + batch_size]
        tasks = [dask.delayed(_ingest_one, pure=False)(sources, item) for item in batch]
        for item, outcome in zip(batch, dask.compute(*tasks), strict=True):
            if outcome.warnings:
                summary.warnings[item.study_id] = list(outcome.warnings)
            if outcome.failure is None:
                summary.ingested.append(item.study_id)
            else:
                error = summary.failed[item.study_id] = outcome.failure.message
                log.info("study %s was not ingested: %s", item.study_id, error)
                log_details(log, "ingest", item.study_id, outcome.failure)
                if on_failure:  # as it happens, for progress displays
                    on_failure(item.study_id, error)
        merge_index(sources)  # the batch's index segments become one
        if on_batch:
            on_batch(start + len(batch), len(inputs))
    summary.seconds = time.perf_counter() - started
    last_run = {
        **dict(run_info or {}),
        "studies": len(inputs),
        "ingested": len(summary.ingested),
        "failed": len(summary.failed),
    }
    attempted = [item.study_id for item in inputs]
    summary.report = update_report(sources, attempted, summary.failed, summary.warnings, last_run)
    return summary


def _ingest_one(sources: StoreRef, item: StudyInput) -> StudyOutcome:
    """Load, check, complete and write one study; errors come back as sentences, never raised."""
    try:
        with roomy_allocator():
            warnings = _ingest(sources, item)
    except Exception as error:
        secrets = (sources.storage_options, *_input_options(item))
        failure = capture(error, _sentence(error)).redacted(lambda text: redact(text, *secrets))
        if isinstance(error, _EXPECTED):
            log.info("study %s was not ingested: %s", item.study_id, failure.message)
        else:
            log.warning("ingest of study %s failed unexpectedly: %s", item.study_id, failure)
        return StudyOutcome(failure)
    return StudyOutcome(None, tuple(warnings))


def _ingest(sources: StoreRef, item: StudyInput) -> list[str]:
    """``_ingest_one``'s work; returns the study's warnings."""
    check_study_id(item.study_id)
    taxonomy = load_taxonomy()
    study = item.load()
    # Every mask is read and checked before anything is written (see the module docstring).
    staged = stage(study.masks, study.ct.shape, taxonomy)
    if not staged:
        raise InputError("no masks: the input provided no class at all")
    derivation = plan_derivation(staged, taxonomy)
    attrs = {"split": item.split, **study.attrs}
    unmapped = sorted(set(attrs.pop("unmapped", [])))
    warnings = list(attrs.pop("warnings", []))
    if unmapped:
        warnings.append(
            f"{len(unmapped)} structures have no class in the vocabulary and were skipped: "
            + ", ".join(unmapped)
        )
    attrs.update(
        {
            "unmapped": unmapped,
            "derived": list(derivation.derived),
            "derived_partial": {k: list(v) for k, v in derivation.partial.items()},
            "warnings": warnings,
        }
    )
    write_study(
        sources,
        item.study_id,
        ct=study.ct,
        spacing=study.spacing,
        affine=study.affine,
        masks=(
            (taxonomy.index(name), box.origin, box.data, composed)
            for name, box, composed in emit(staged, derivation, taxonomy)
        ),
        attrs=attrs,
    )
    return warnings


# Problems with the input or its storage: reported as a sentence, no traceback unless -v.
_EXPECTED = (InputError, ValueError, KeyError, OSError)


def _sentence(error: Exception) -> str:
    """The error as the sentence users see (the type only for errors that are not ours)."""
    if isinstance(error, InputError | FileNotFoundError):
        return str(error)
    if isinstance(error, KeyError) and error.args:
        return str(error.args[0])
    if isinstance(error, ValueError) and type(error) is ValueError:
        return str(error)
    return f"{type(error).__name__}: {error}"


def _input_options(item: StudyInput) -> list[Mapping[str, Any]]:
    """The storage options of the folders an input reads from (to keep them out of messages)."""
    return [v.storage_options for v in vars(item).values() if isinstance(v, Folder)]
