"""The failure report of a sources store: a JSON file beside it, ``<store>.failures.json``.

It holds, per study, the error of its latest failed ingest and the warnings of its latest
ingest, plus a summary of the last run. A run replaces the entries of the studies it attempted
and keeps the others, so re-ingesting the failed studies after a fix shrinks the report to what
is still broken. The file is outside the store: zarr never sees it and store bytes never change
because of it. Entries are sorted, so the same outcome gives the same bytes.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from typing import Any

import fsspec

from storage.location import StoreRef

REPORT_SUFFIX = ".failures.json"
REPORT_FORMAT = 1


def report_ref(sources: StoreRef) -> StoreRef:
    """Where the failure report of ``sources`` lives."""
    return StoreRef(sources.url.rstrip("/") + REPORT_SUFFIX, sources.storage_options)


def read_report(sources: StoreRef) -> dict[str, Any]:
    """The report of ``sources``; an empty report when there is none yet."""
    ref = report_ref(sources)
    try:
        with fsspec.open(ref.url, "r", encoding="utf-8", **dict(ref.storage_options)) as f:
            return json.load(f)
    except FileNotFoundError:
        return {"format": REPORT_FORMAT, "sources": sources.url, "failures": {}, "warnings": {}}


def update_report(
    sources: StoreRef,
    attempted: Collection[str],
    failures: Mapping[str, str],
    warnings: Mapping[str, Sequence[str]],
    last_run: Mapping[str, Any],
) -> str:
    """Record one run's outcome for the studies it ``attempted``; return the report's URL."""
    report = read_report(sources)
    tried = set(attempted)
    kept_failures = {k: v for k, v in report.get("failures", {}).items() if k not in tried}
    kept_warnings = {k: v for k, v in report.get("warnings", {}).items() if k not in tried}
    merged = {
        "format": REPORT_FORMAT,
        "sources": sources.url,
        "last_run": dict(last_run),
        "failures": dict(sorted({**kept_failures, **failures}.items())),
        "warnings": dict(
            sorted({**kept_warnings, **{k: list(v) for k, v in warnings.items() if v}}.items())
        ),
    }
    ref = report_ref(sources)
    with fsspec.open(ref.url, "w", encoding="utf-8", **dict(ref.storage_options)) as f:
        f.write(json.dumps(merged, indent=1, ensure_ascii=False) + "\n")
    return ref.url
