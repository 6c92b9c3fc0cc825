"""Ingest: study inputs -> sources store, one task per study on the cluster.

A study that fails is reported with its id and the reason; the other studies are written.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import dask

from catalog.taxonomy import load_taxonomy
from flows.inputs import StudyInput
from storage.location import StoreRef, check_study_id
from storage.sources import create_sources, write_study

log = logging.getLogger(__name__)


@dataclass
class IngestSummary:
    """What an ingest did."""

    sources: str
    ingested: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0


def ingest(
    inputs: Sequence[StudyInput],
    sources: StoreRef,
    *,
    batch_size: int = 64,
    on_batch: Callable[[int, int], None] | None = None,
) -> IngestSummary:
    """Write every input into ``sources`` (created if needed), a bounded batch at a time."""
    started = time.perf_counter()
    create_sources(sources, load_taxonomy().names)
    summary = IngestSummary(sources=sources.url)
    for start in range(0, len(inputs), batch_size):
        batch = inputs[start : start + batch_size]
        tasks = [dask.delayed(_ingest_one, pure=False)(sources, item) for item in batch]
        for item, error in zip(batch, dask.compute(*tasks), strict=True):
            if error is None:
                summary.ingested.append(item.study_id)
            else:
                summary.failed[item.study_id] = error
                log.error("study %s was not ingested: %s", item.study_id, error)
        if on_batch:
            on_batch(start + len(batch), len(inputs))
    summary.seconds = time.perf_counter() - started
    return summary


def _ingest_one(sources: StoreRef, item: StudyInput) -> str | None:
    """Load one study and write it; return None, or the error as a sentence."""
    try:
        check_study_id(item.study_id)
        taxonomy = load_taxonomy()
        study = item.load()
        masks = ((taxonomy.index(name), box.origin, box.data) for name, box in study.masks)
        root = create_sources(sources, taxonomy.names)
        write_study(
            root,
            item.study_id,
            ct=study.ct,
            spacing=study.spacing,
            affine=study.affine,
            masks=masks,
            attrs={"split": item.split, **study.attrs},
        )
    except Exception as error:
        log.exception("ingest of study %s failed", item.study_id)
        return f"{type(error).__name__}: {error}"
    return None
