"""Paired comparison of models (paper Appendix C): the evaluated results paired, case by case.

Units of pairing:
- ``class`` (Appendix C): one score per (view, label) class and model, the class's mean over the
  cases that every model has defined; the classes every model scores are the pairs.
- ``study``: within each class, the (study) cases every model has defined are the pairs; one
  test per class, model pair and metric.

Each pair of models gets the statistics of ``flows.maths.paired`` (Wilcoxon signed-rank,
rank-biserial correlation, Cohen's d_z, paired bootstrap); Bonferroni covers the whole family
(model pairs x metrics, and x classes for the ``study`` unit). ``flows.reports.comparison``
renders the ``Comparison``.
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import replace

import numpy as np
import xarray as xr

from flows.maths.paired import Comparison, PairedTest, bonferroni, paired_statistics

UNITS: tuple[str, ...] = ("class", "study")


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
