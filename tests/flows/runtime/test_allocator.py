"""roomy_allocator: temporaries stop faulting in fresh pages on a Dask-configured worker."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from flows.runtime.allocator import fixed_thresholds

REPO = Path(__file__).resolve().parents[3]
_CHURN = """
import ctypes, json, resource
# Count 4 KiB faults only: with transparent huge pages (numpy madvises large arrays) a 4 MiB block
# faults two or five times depending on what the kernel has free, which made this test flaky.
PR_SET_THP_DISABLE = 41
if ctypes.CDLL(None, use_errno=True).prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0) != 0:
    raise OSError(ctypes.get_errno(), "prctl(PR_SET_THP_DISABLE)")
import numpy as np
from flows.runtime.allocator import roomy_allocator

def faults_of_churn():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(100):
        block = np.empty(4 << 20, np.uint8)
        block[::4096] = 1  # touch every page
        del block
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

outside = faults_of_churn()
with roomy_allocator():
    inside = faults_of_churn()
print(json.dumps({"outside": outside, "inside": inside, "after": faults_of_churn()}))
"""


def _churn(environ: dict[str, str]) -> dict[str, int]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    done = subprocess.run(
        [sys.executable, "-c", _CHURN],
        env={**env, **environ},
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_temporaries_reuse_memory_inside_on_a_dask_worker_environment():
    faults = _churn({"MALLOC_TRIM_THRESHOLD_": "65536"})  # what Dask's nanny sets
    pages = 100 * (4 << 20) // 4096
    assert faults["outside"] > pages // 2  # every 4 MiB block is a fresh mmap
    assert faults["inside"] < pages // 20  # the heap keeps and reuses it
    assert faults["after"] > pages // 2  # the worker's own settings are back


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_a_process_with_dynamic_thresholds_is_left_alone():
    faults = _churn({})
    assert faults["after"] <= faults["inside"] + 1024  # nothing was fixed by leaving


def test_only_thresholds_the_environment_fixed_are_restored():
    assert fixed_thresholds({}) is None
    assert fixed_thresholds({"MALLOC_TRIM_THRESHOLD_": "65536"}) == {-1: 65536, -3: 128 << 10}
    assert fixed_thresholds(
        {"MALLOC_MMAP_THRESHOLD_": " 4096 ", "MALLOC_TRIM_THRESHOLD_": "x"}
    ) == {
        -1: 128 << 10,
        -3: 4096,
    }
