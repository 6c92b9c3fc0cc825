"""benchmarks/export.py runs end to end and renders its table (no timing is judged)."""

from benchmarks import export as bench


def test_the_export_benchmark_runs_on_a_tiny_dataset(capsys):
    assert (
        bench.main(
            [
                "--studies",
                "1",
                "--shape",
                "32",
                "32",
                "40",
                "--formats",
                "coco",
                "chexmask",
                "--no-append",
            ]
        )
        == 0
    )
    table = capsys.readouterr().out
    assert "| format | baseline s/study | rga 1 core s/study |" in table
    assert "| coco | " in table and "| chexmask | " in table
    assert "Command: `python -m benchmarks.export --studies 1 --shape 32 32 40" in table


def test_the_baseline_writes_what_the_format_needs(tmp_path):
    dataset = bench.make_dataset(tmp_path, 1, (32, 32, 40))
    bench.baseline(dataset, tmp_path / "coco", "coco")
    bench.baseline(dataset, tmp_path / "nnunet", "nnunet")
    assert (tmp_path / "coco" / "annotations.json").stat().st_size > 1000
    assert len(list((tmp_path / "nnunet").glob("*_labels.png"))) == 2
