"""benchmarks/training.py runs the whole loop end to end and renders its table (no timing is
judged; the model need not beat the atlas in one epoch)."""

import pytest

pytest.importorskip("torch")

from benchmarks import training as bench


def test_the_training_benchmark_runs_on_a_tiny_corpus(capsys):
    argv = ["--studies", "5", "--epochs", "1", "--image-size", "32", "--no-append"]
    assert bench.main(argv) == 0
    table = capsys.readouterr().out
    assert "| predictor | view | dice | hd95 | nsd |" in table
    for predictor in ("U-Net (rga train)", "atlas (baseline)"):
        for group in ("all classes", "PA", "LL"):
            assert f"| {predictor} | {group} | " in table
    assert "s per epoch" in table and "s per study" in table
