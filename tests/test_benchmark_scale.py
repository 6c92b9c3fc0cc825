"""The scale benchmark's arithmetic and report (no timing is checked: the run is the
benchmark's business; its measurements are in benchmarks/RESULTS.md)."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from benchmarks.scale import OPERATIONS, QUANTITIES, Measured, growth_exponent, render

REPO = Path(__file__).resolve().parent.parent


def test_growth_exponent_is_the_log_log_slope():
    ns = [100, 1000, 10000, 100000]
    assert growth_exponent(ns, [5.0] * 4) == pytest.approx(0.0, abs=1e-9)
    assert growth_exponent(ns, [2.0 * n for n in ns]) == pytest.approx(1.0)
    assert growth_exponent(ns, [n**0.5 for n in ns]) == pytest.approx(0.5)
    assert growth_exponent(ns, [0.0, 1.0, 2.0, 3.0]) is None  # a zero has no logarithm
    assert growth_exponent([100], [1.0]) is None


def test_report_has_a_table_per_operation_and_the_exponents():
    rows = [
        Measured(n, op, 0.5, 300.0, 10, n if op == "stats" else 7, 100, 1, 0, 3)
        for n in (100, 1000)
        for op in OPERATIONS
    ]
    text = render(rows, "python -m benchmarks.scale --n 100 1000", 1000, 10)
    for operation in OPERATIONS:
        assert f"**{operation}**" in text
    assert "| 1,000 |" in text and "python -m benchmarks.scale --n 100 1000" in text
    exponents = text.split("Growth exponents")[1]
    stats = next(line for line in exponents.splitlines() if line.startswith("| stats |"))
    cells = [c.strip() for c in stats.strip("|").split("|")][1:]
    by_name = dict(zip([name for name, _ in QUANTITIES], cells, strict=True))
    assert by_name["written_bytes"] == "1.00" and float(by_name["seconds"]) == 0
    assert by_name["objects_rewritten"] == "-"


def _child(*argv):
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.scale_child", *argv],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def _child_peak():
    code = "from benchmarks.scale_child import peak_mb; print(peak_mb())"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True
    )
    return float(done.stdout)


def test_child_peak_is_its_own_not_its_parents():
    """getrusage's maximum survives exec: a child of a big parent would report the parent."""
    ballast = np.ones(400 * 2**20 // 8)  # 400 MB held here while the child runs
    assert ballast.sum() > 0
    assert _child_peak() < 200


def test_child_measures_an_operation_on_a_real_store(demo_dir):
    dest = str(demo_dir / "dataset.zarr")
    measured = _child("read one mask", "unused", dest, "phantom-0001", "384")
    assert set(measured) == {"seconds", "peak_mb", "tasks"}
    assert measured["seconds"] > 0 and measured["peak_mb"] > 0
    assert measured["tasks"] >= 1  # the mask was read through a Dask graph
