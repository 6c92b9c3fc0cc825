"""Paired comparison of models (paper Appendix C): Wilcoxon, paired bootstrap, effect sizes.

Units of pairing:
- ``class`` (Appendix C): one score per (view, label) class and model, the class's mean over the
  cases that every model has defined; the classes every model scores are the pairs.
- ``study``: within each class, the (study) cases every model has defined are the pairs; one
  test per class, model pair and metric.

Per test, with d = score(A) - score(B):
- Wilcoxon signed-rank, two-sided, zero differences dropped (``zero_method="wilcox"``);
- rank-biserial correlation r = (T+ - T-) / (T+ + T-) over the same non-zero differences
  (Kerby 2014; positive: A scores higher);
- Cohen's d_z = mean(d) / sd(d) (paired; sd with ddof 1);
- paired bootstrap: pairs resampled with replacement ``n_boot`` times by ``flows.maths.bootstrap``
  (seeded, so results are reproducible); the 95 % percentile interval of mean(d) and the
  two-sided p = (1 + #{|mean(d*) - mean(d)| >= |mean(d)|}) / (n_boot + 1);
- Bonferroni: each p-value times the number of tests in the family (model pairs x metrics,
  and x classes for the ``study`` unit), capped at 1. ``significant`` is the corrected Wilcoxon
  test; ``better`` is the model the signed ranks favour when it is significant.
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import xarray as xr
from scipy import stats

from flows.maths.bootstrap import percentile_interval, resamples_of
from flows.maths.metrics import LOWER_IS_BETTER
from flows.reports.tables import Cell, Table

UNITS: tuple[str, ...] = ("class", "study")


@dataclass(frozen=True)
class PairedTest:
    """One paired comparison of model A with model B on one metric (and class)."""

    metric: str
    group: str  # "all classes" (class unit) or "<view> <label>" (study unit)
    model_a: str
    model_b: str
    n: int
    mean_a: float
    mean_b: float
    mean_diff: float  # mean of A - B
    ci_low: float
    ci_high: float
    wilcoxon_w: float
    p_wilcoxon: float
    p_bootstrap: float
    cohen_dz: float
    rank_biserial: float
    p_wilcoxon_bonferroni: float = np.nan
    p_bootstrap_bonferroni: float = np.nan
    significant: bool = False
    bootstrap_significant: bool = False
    better: str = ""  # significantly better (corrected Wilcoxon, signed-rank direction), or ""


@dataclass
class Comparison:
    """All tests of one comparison, and what was left out."""

    tests: list[PairedTest]
    unit: str
    studies: list[str]  # the studies every model was evaluated on
    dropped: dict[str, list[str]] = field(default_factory=dict)  # per model: not in all
    family_size: int = 0
    alpha: float = 0.05
    notes: list[str] = field(default_factory=list)


def paired_statistics(
    a: np.ndarray, b: np.ndarray, *, n_boot: int = 10_000, seed: int = 0
) -> PairedTest:
    """Every statistic of one paired sample (``metric``/names are filled in by the caller)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError("paired samples must be 1D and of equal length")
    d = a - b
    n = d.size
    if n == 0:
        nan = float("nan")
        return PairedTest("", "", "", "", 0, nan, nan, nan, nan, nan, nan, nan, nan, nan, nan)
    w, p_w = wilcoxon(d)
    low, high, p_boot = paired_bootstrap(d, n_boot=n_boot, seed=seed)
    return PairedTest(
        metric="",
        group="",
        model_a="",
        model_b="",
        n=n,
        mean_a=float(a.mean()),
        mean_b=float(b.mean()),
        mean_diff=float(d.mean()),
        ci_low=low,
        ci_high=high,
        wilcoxon_w=w,
        p_wilcoxon=p_w,
        p_bootstrap=p_boot,
        cohen_dz=cohen_dz(d),
        rank_biserial=rank_biserial(d),
    )


def wilcoxon(d: np.ndarray) -> tuple[float, float]:
    """Two-sided Wilcoxon signed-rank statistic and p of differences ``d`` (zeros dropped)."""
    if not np.any(d != 0):
        return 0.0, 1.0  # no evidence of any difference
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy warns on small samples; the p-value stands
        result = stats.wilcoxon(d, zero_method="wilcox", alternative="two-sided")
    return float(result.statistic), float(result.pvalue)


def rank_biserial(d: np.ndarray) -> float:
    """Matched-pairs rank-biserial correlation (T+ - T-) / (T+ + T-), zeros dropped."""
    nonzero = d[d != 0]
    if nonzero.size == 0:
        return 0.0
    ranks = stats.rankdata(np.abs(nonzero))  # ties share their average rank
    plus, minus = ranks[nonzero > 0].sum(), ranks[nonzero < 0].sum()
    return float((plus - minus) / (plus + minus))


def cohen_dz(d: np.ndarray) -> float:
    """Paired Cohen's d: mean(d) / sd(d, ddof=1); +-inf for a constant non-zero shift."""
    if d.size < 2:
        return float("nan")
    mean, sd = float(d.mean()), float(d.std(ddof=1))
    if sd == 0:
        return 0.0 if mean == 0 else float(np.copysign(np.inf, mean))
    return mean / sd


def paired_bootstrap(d: np.ndarray, *, n_boot: int, seed: int) -> tuple[float, float, float]:
    """95 % percentile interval of mean(d) and the two-sided bootstrap p of mean(d) = 0."""
    means = np.array([d[index].mean() for index in resamples_of(d.size, n_boot, seed)])
    observed = float(d.mean())
    low, high = percentile_interval(means, 0.95)
    # Null distribution: the resampled means shifted to mean zero.
    extreme = np.count_nonzero(np.abs(means - observed) >= abs(observed))
    return float(low), float(high), (1 + extreme) / (n_boot + 1)


def compare_models(
    results: Mapping[str, xr.Dataset],
    metrics: Sequence[str] = ("dice",),
    *,
    unit: str = "class",
    n_boot: int = 10_000,
    seed: int = 0,
    alpha: float = 0.05,
) -> Comparison:
    """Paired tests between every two models of ``results`` (name -> evaluated results)."""
    if len(results) < 2:
        raise ValueError("a comparison needs the results of at least two models")
    if unit not in UNITS:
        raise ValueError(f"unknown unit {unit!r}; choose one of {', '.join(UNITS)}")
    names = list(results)
    notes = _check_comparable(results, metrics)
    common = _common_studies(results)
    if not common:
        raise ValueError("the results share no evaluated study; nothing can be paired")
    shared = set(common)
    dropped = {name: [s for s in _studies(ds) if s not in shared] for name, ds in results.items()}
    tests: list[PairedTest] = []
    for metric in metrics:
        scores = _scores(results, metric, common)  # (model, study, view, label), all defined
        for group, samples in _units(scores, unit):
            for i, j in itertools.combinations(range(len(names)), 2):
                test = paired_statistics(samples[i], samples[j], n_boot=n_boot, seed=seed)
                names_ij = {"model_a": names[i], "model_b": names[j]}
                tests.append(replace(test, metric=metric, group=group, **names_ij))
    tests = bonferroni(tests, alpha)
    family = sum(1 for t in tests if t.n)
    return Comparison(tests, unit, common, dropped, family, alpha, notes)


def bonferroni(tests: Sequence[PairedTest], alpha: float) -> list[PairedTest]:
    """Correct every p-value for the whole family (all ``tests``) and decide significance."""
    family = sum(1 for t in tests if t.n > 0)
    corrected = []
    for t in tests:
        p_w = min(1.0, t.p_wilcoxon * family) if t.n else np.nan
        p_b = min(1.0, t.p_bootstrap * family) if t.n else np.nan
        significant = bool(p_w < alpha)
        better = ""
        if significant and t.rank_biserial != 0:
            # the direction the signed ranks (the test that decided) favour
            a_higher = t.rank_biserial > 0
            better = t.model_a if a_higher != (t.metric in LOWER_IS_BETTER) else t.model_b
        corrected.append(
            replace(
                t,
                p_wilcoxon_bonferroni=p_w,
                p_bootstrap_bonferroni=p_b,
                significant=significant,
                bootstrap_significant=bool(p_b < alpha),
                better=better,
            )
        )
    return corrected


def _check_comparable(results: Mapping[str, xr.Dataset], metrics: Sequence[str]) -> list[str]:
    """Same metric options, classes and views everywhere; notes for softer differences."""
    first_name, first = next(iter(results.items()))
    notes = []
    for name, ds in results.items():
        for metric in metrics:
            if metric not in ds:
                raise ValueError(f"the results of {name} have no metric {metric!r}")
        if ds.attrs.get("metric_options") != first.attrs.get("metric_options"):
            raise ValueError(
                f"{name} and {first_name} were scored with different metric options "
                f"({ds.attrs.get('metric_options')} vs {first.attrs.get('metric_options')})"
            )
        for dim in ("view", "label"):
            if [str(v) for v in ds[dim].values] != [str(v) for v in first[dim].values]:
                raise ValueError(f"{name} and {first_name} have different {dim}s")
        if ds.attrs.get("ground_truth") != first.attrs.get("ground_truth"):
            notes.append(
                f"{name} was scored against {ds.attrs.get('ground_truth')}, "
                f"{first_name} against {first.attrs.get('ground_truth')}"
            )
    return notes


def _studies(ds: xr.Dataset) -> list[str]:
    return [str(s) for s in ds["study"].values]


def _common_studies(results: Mapping[str, xr.Dataset]) -> list[str]:
    """Studies evaluated for every model, in the first model's order."""
    others = [set(_studies(ds)) for ds in list(results.values())[1:]]
    first = _studies(next(iter(results.values())))
    return [s for s in first if all(s in other for other in others)]


def _scores(results: Mapping[str, xr.Dataset], metric: str, common: list[str]) -> xr.DataArray:
    """One metric of every model on the common studies; NaN wherever any model has NaN."""
    per_model = [ds[metric].sel(study=common) for ds in results.values()]
    stacked = xr.concat([v.drop_vars(_extra_coords(v)) for v in per_model], dim="model")
    return stacked.where(stacked.notnull().all("model"))


def _extra_coords(values: xr.DataArray) -> list[str]:
    return [c for c in values.coords if c not in values.dims]


def _units(scores: xr.DataArray, unit: str) -> list[tuple[str, np.ndarray]]:
    """(group, samples (model, n)) for each test group of ``unit``."""
    if unit == "class":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # classes nobody defines: NaN
            means = scores.mean("study", skipna=True).values  # (model, view, label)
        flat = means.reshape(means.shape[0], -1)
        keep = np.isfinite(flat).all(axis=0)
        return [("all classes", flat[:, keep])]
    values = scores.values  # (model, study, view, label)
    groups = []
    for v, view in enumerate(scores["view"].values):
        for i, label in enumerate(scores["label"].values):
            cell = values[:, :, v, i]
            keep = np.isfinite(cell).all(axis=0)
            if keep.any():
                groups.append((f"{view} {label}", cell[:, keep]))
    return groups


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
