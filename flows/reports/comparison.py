"""The tables of a paired model comparison (``rga compare``): every test, and the pairs.

``tests_table`` holds every statistic of every test (``comparison.csv``); ``pairs_table`` is the
paper's Appendix C table, one row per model pair and metric (``class`` unit) or, for the
``study`` unit, the number of classes each model wins significantly.
"""

from __future__ import annotations

from collections.abc import Sequence

from flows.maths.paired import Comparison, PairedTest
from flows.reports.tables import Cell, Table

COLUMNS: tuple[str, ...] = tuple(PairedTest.__dataclass_fields__)
SUMMARY_COLUMNS: tuple[str, ...] = (
    "metric",
    "model_a",
    "model_b",
    "n",
    "mean_a",
    "mean_b",
    "mean_diff",
    "ci_low",
    "ci_high",
    "wilcoxon_w",
    "p_wilcoxon_bonferroni",
    "significant",
    "p_bootstrap_bonferroni",
    "bootstrap_significant",
    "cohen_dz",
    "rank_biserial",
    "better",
)


def tests_table(comparison: Comparison) -> Table:
    """Every test, every statistic (the CSV)."""
    rows = tuple(tuple(_cell(getattr(t, c)) for c in COLUMNS) for t in comparison.tests)
    return Table("comparison", _title(comparison), COLUMNS, rows, tuple(_notes(comparison)))


def pairs_table(comparison: Comparison) -> Table:
    """Appendix C: one row per model pair and metric (``class`` unit) or, for the ``study``
    unit, per pair and metric the number of classes each model wins significantly."""
    if comparison.unit == "class":
        rows = tuple(
            tuple(_shown(getattr(t, c)) for c in SUMMARY_COLUMNS) for t in comparison.tests
        )
        columns = SUMMARY_COLUMNS
    else:
        columns = ("metric", "model_a", "model_b", "classes", "a_better", "b_better", "not_sig")
        keyed: dict[tuple[str, str, str], list[PairedTest]] = {}
        for t in comparison.tests:
            keyed.setdefault((t.metric, t.model_a, t.model_b), []).append(t)
        rows = tuple(_wins_row(key, group) for key, group in keyed.items())
    return Table("pairs", _title(comparison), columns, rows, tuple(_notes(comparison)))


def _wins_row(key: tuple[str, str, str], group: Sequence[PairedTest]) -> tuple[Cell, ...]:
    metric, a, b = key
    a_wins, b_wins = (sum(t.better == model for t in group) for model in (a, b))
    return (metric, a, b, len(group), a_wins, b_wins, len(group) - a_wins - b_wins)


def _title(comparison: Comparison) -> str:
    unit = "class-wise mean scores" if comparison.unit == "class" else "studies within each class"
    return (
        f"Paired comparison over {unit}: {len(comparison.studies)} studies common to all "
        f"models, Bonferroni over {comparison.family_size} tests, alpha {comparison.alpha}"
    )


def _notes(comparison: Comparison) -> list[str]:
    notes = [
        "mean_diff = A - B with its 95% paired-bootstrap interval; rank_biserial > 0: A scores "
        "higher; better: the significantly better model (corrected Wilcoxon, in the direction "
        "of the signed ranks; lower is better for hd95 and asd)."
    ]
    for name, dropped in comparison.dropped.items():
        if dropped:
            shown = ", ".join(dropped[:10]) + (" ..." if len(dropped) > 10 else "")
            notes.append(f"{name}: {len(dropped)} studies not evaluated for all models: {shown}")
    return notes + [f"Note: {note}" for note in comparison.notes]


def _cell(value: object) -> Cell:
    if isinstance(value, bool):
        return str(value)
    return value  # type: ignore[return-value]


def _shown(value: object) -> Cell:
    if isinstance(value, bool):
        return "yes" if value else "no"
    return value  # type: ignore[return-value]
