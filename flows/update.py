"""Incremental builds: build only new and changed studies, commit atomically, log the run.

``update`` compares each source study's input hash (its content hash, the build parameters and
the output format) with what the dataset store has committed, and builds only what differs.
A changed study is rebuilt into a spare slot and swapped in by the commit, so readers see the
old version or the new one, never a mix. ``build`` is an update that starts from an empty store.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version

import numpy as np

import storage.dataset as dataset_store
from catalog.taxonomy import load_taxonomy
from flows.build import (
    DEFAULT_PARAMETERS,
    BuildParameters,
    build_batch,
    dataset_template,
    input_hash,
)
from flows.runtime.cluster import scheduler_threads
from flows.runtime.failure import log_details
from storage.buildlog import append_record
from storage.errors import STORE_ERRORS
from storage.location import StoreRef
from storage.lock import Hold, store_lock
from storage.sources import SourceStudy, list_studies

log = logging.getLogger(__name__)
BATCH_PER_THREAD = 2  # studies per scheduler thread in one build batch


class ParametersChanged(ValueError):
    """The store was built with other parameters than the ones asked for."""


class UpdateStopped(RuntimeError):
    """Writing to the dataset store failed (an OSError of the store): the run stopped."""


@dataclass(frozen=True)
class Plan:
    """What an update will do, decided from hashes alone (no study data is read)."""

    build: tuple[tuple[SourceStudy, int], ...]  # (study, target slot), in slot order
    retire: dict[str, int]  # changed study -> its currently committed slot
    new_rows: tuple[SourceStudy, ...]  # studies that get a slot appended at the end
    unchanged: tuple[str, ...]
    gone: dict[str, int]  # committed in the store, absent from the sources -> slot


@dataclass
class UpdateSummary:
    """What an update did."""

    dest: str
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    gone: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def built(self) -> list[str]:
        return self.added + self.changed


def plan_update(
    studies: Sequence[SourceStudy],
    index: dataset_store.StoreIndex,
    params: BuildParameters,
    *,
    reuse_uncommitted: bool = True,
) -> Plan:
    """Assign every new or changed study a slot: a leftover uncommitted slot of the same id
    (from a crash, a failure or an earlier change) when there is one, else a slot whose id was
    never written (a crash mid-append), else a new slot at the end.

    ``reuse_uncommitted=False`` (after a lease take-over, whose previous holder may still be
    writing its uncommitted slots) gives every study a new slot at the end.
    """
    committed: dict[str, int] = {}
    spare: dict[str, int] = {}
    free: list[int] = []
    for slot, (study_id, flag) in enumerate(zip(index.study, index.committed, strict=True)):
        if flag:
            committed.setdefault(study_id, slot)
        elif not reuse_uncommitted:
            continue
        elif not study_id:
            free.append(slot)
        else:
            spare.setdefault(study_id, slot)
    targets: list[tuple[SourceStudy, int]] = []
    retire: dict[str, int] = {}
    new_rows: list[SourceStudy] = []
    unchanged: list[str] = []
    for study in studies:
        current = committed.get(study.study_id)
        if current is not None and index.input_hash[current] == input_hash(study, params):
            unchanged.append(study.study_id)
            continue
        if current is not None:
            retire[study.study_id] = current
        slot = spare.get(study.study_id)
        if slot is None and free:
            slot = free.pop(0)
        elif slot is None:
            slot = len(index.study) + len(new_rows)
            new_rows.append(study)
        targets.append((study, slot))
    present = {s.study_id for s in studies}
    gone = {study_id: slot for study_id, slot in committed.items() if study_id not in present}
    return Plan(
        build=tuple(sorted(targets, key=lambda pair: pair[1])),
        retire=retire,
        new_rows=tuple(new_rows),
        unchanged=tuple(unchanged),
        gone=gone,
    )


def update(
    sources: StoreRef,
    dest: StoreRef,
    params: BuildParameters = DEFAULT_PARAMETERS,
    *,
    rebuild: bool = False,
    prune: bool = False,
    wait: bool = False,
    batch_size: int | None = None,
    on_batch: Callable[[int, int], None] | None = None,
    on_failure: Callable[[str, str], None] | None = None,
) -> UpdateSummary:
    """Bring ``dest`` up to date with ``sources`` (creating it if needed), holding its lock.

    Runs on the current Dask scheduler; studies go ``batch_size`` at a time, each batch
    committed as soon as it is written, so a crash loses at most the batch in flight. The
    default is two studies per scheduler thread: a worker then holds about two studies'
    projections whatever the number of studies (Dask runs a batch's projections before their
    writes), which measured faster than larger batches too (benchmarks/RESULTS.md).
    """
    if batch_size is None:
        batch_size = BATCH_PER_THREAD * scheduler_threads()
    started = time.perf_counter()
    studies = list_studies(sources)
    summary = UpdateSummary(dest=dest.url)
    with _stop_on_store_errors(dest, summary), store_lock(dest, wait=wait) as hold:
        if dest.exists() and (rebuild or not dataset_store.is_complete(dest)):
            _remove(dest)  # --rebuild, or a first build that crashed before it was laid out
        if dest.exists():
            if dataset_store.repair(dest):
                log.warning("%s: finished the slots an interrupted run had begun", dest.url)
            index = dataset_store.read_index(dest)
            _check_parameters(dest, index, params)
        else:
            if not studies:
                raise ValueError(f"{sources.url} holds no complete study to build")
            index = dataset_store.StoreIndex((), np.zeros(0, bool), (), {})
        if hold.taken_over:
            log.warning(
                "%s: the previous update stopped without releasing the store; its unfinished "
                "slots are left alone (it may still be writing them) and new slots appended",
                dest.url,
            )
        plan = plan_update(studies, index, params, reuse_uncommitted=not hold.taken_over)
        hold.fence()
        _allocate(dest, plan, index, params)
        summary.unchanged = list(plan.unchanged)
        summary.gone = sorted(plan.gone)
        _build(sources, dest, plan, params, batch_size, on_batch, summary, on_failure, hold)
        if prune and plan.gone:
            hold.fence()
            dataset_store.set_committed(dest, {slot: False for slot in plan.gone.values()})
            dataset_store.erase(dest, sorted(plan.gone.values()))
            summary.removed = sorted(plan.gone)
        summary.seconds = time.perf_counter() - started
        if summary.added or summary.changed or summary.removed or summary.failed:
            hold.fence()
            append_record(dest, _record(summary, params, hold.token))
    return summary


@contextlib.contextmanager
def _stop_on_store_errors(dest: StoreRef, summary: UpdateSummary) -> Iterator[None]:
    """An error of the store itself (disk full, no permission, a lost connection) stops the run
    with one sentence; what was committed stays, and a rerun finishes the rest."""
    try:
        yield
    except FileNotFoundError:
        raise  # a missing store or input: the caller's own sentence
    except STORE_ERRORS as error:
        done = len(summary.added) + len(summary.changed)
        raise UpdateStopped(
            f"the update of {dest.url} stopped: {error}. The {done} studies it committed "
            "before that, and every earlier one, are intact; fix the cause (e.g. free disk "
            "space) and run the update again to finish"
        ) from error


def build(
    sources: StoreRef, dest: StoreRef, params: BuildParameters = DEFAULT_PARAMETERS, **options
) -> UpdateSummary:
    """Build ``dest`` afresh from every complete study of ``sources`` (replacing ``dest``)."""
    return update(sources, dest, params, rebuild=True, **options)


def _check_parameters(
    dest: StoreRef, index: dataset_store.StoreIndex, params: BuildParameters
) -> None:
    stored = index.attrs.get("rga_parameters", {})
    if stored != asdict(params):
        raise ParametersChanged(
            f"{dest.url} was built with {_describe(stored)}, not {_describe(asdict(params))}; "
            "pass --rebuild to rebuild every study with the new parameters"
        )


_PARAMETER_NAMES = {"canvas": "image size", "attenuation": "attenuation"}  # as the CLI says


def _describe(params: dict) -> str:
    return ", ".join(f"{_PARAMETER_NAMES.get(k, k)} {v}" for k, v in sorted(params.items()))


def _allocate(
    dest: StoreRef, plan: Plan, index: dataset_store.StoreIndex, params: BuildParameters
) -> None:
    """Name the reused slots, then create the store or append the new slots (uncommitted)."""
    reused = [(s, slot) for s, slot in plan.build if slot < len(index.study)]
    if reused:  # slots found free or spare get their study's id before any data is written
        studies = [s for s, _ in reused]
        dataset_store.name_slots(
            dest,
            [slot for _, slot in reused],
            [s.study_id for s in studies],
            [s.split for s in studies],
        )
    if not plan.new_rows:
        return
    if dest.exists():
        ids = [s.study_id for s in plan.new_rows]
        dataset_store.append(dest, ids, [s.split for s in plan.new_rows])
    else:
        dataset_store.create(dest, dataset_template(plan.new_rows, load_taxonomy(), params))


def _build(
    sources: StoreRef,
    dest: StoreRef,
    plan: Plan,
    params: BuildParameters,
    batch_size: int,
    on_batch: Callable[[int, int], None] | None,
    summary: UpdateSummary,
    on_failure: Callable[[str, str], None] | None,
    hold: Hold,
) -> None:
    """Build and commit the planned studies one batch at a time (each commit fenced)."""
    taxonomy = load_taxonomy()
    total = len(plan.build)
    for start in range(0, total, batch_size):
        batch = plan.build[start : start + batch_size]
        result = build_batch(sources, dest, batch, taxonomy, params)
        flags: dict[int, bool] = {}
        for study, slot in batch:
            failure = result.errors[study.study_id]
            if failure is not None:
                error = summary.failed[study.study_id] = failure.message
                log.error("study %s was not built: %s", study.study_id, error)
                log_details(log, "projection", study.study_id, failure)
                if on_failure:  # as it happens, for progress displays
                    on_failure(study.study_id, error)
                continue
            flags[slot] = True
            if study.study_id in plan.retire:
                flags[plan.retire[study.study_id]] = False
                summary.changed.append(study.study_id)
            else:
                summary.added.append(study.study_id)
        hold.fence()
        dataset_store.set_committed(dest, flags)
        if on_batch:
            on_batch(start + len(batch), total)


def _remove(dest: StoreRef) -> None:
    """Delete a whole store (``--rebuild``, ``rga build``)."""
    import fsspec  # only needed here

    fs, path = fsspec.core.url_to_fs(dest.url, **dict(dest.storage_options))
    if fs.exists(path):
        fs.rm(path, recursive=True)


def _record(summary: UpdateSummary, params: BuildParameters, lock_token: int) -> dict:
    try:
        package = version("radgenome-anatomy")
    except PackageNotFoundError:
        package = "unknown"
    return {
        "time": datetime.now(UTC).isoformat(timespec="seconds"),
        "added": summary.added,
        "changed": summary.changed,
        "removed": summary.removed,
        "failed": summary.failed,
        "gone": summary.gone,
        "unchanged": len(summary.unchanged),
        "parameters": asdict(params),
        "version": package,
        "seconds": round(summary.seconds, 1),
        "lock_token": lock_token,  # which acquisition of the store's lock wrote it
    }
