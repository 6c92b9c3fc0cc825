"""The evaluation commands end to end (flows/cli/evaluation.py): the demo's baseline, compare."""

import re

import pytest

from flows.cli import main


@pytest.mark.parametrize("command", ["evaluate", "compare", "atlas"])
def test_every_evaluation_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_code:
        main([command, "--help"])
    assert exit_code.value.code == 0 and f"usage: rga {command}" in capsys.readouterr().out


def test_bad_evaluation_arguments_get_a_message(capsys):
    for args, message in [
        (["evaluate", "p", "d"], "the following arguments are required: --gt"),
        (["compare", "a", "b", "--metric", "auc"], "invalid choice"),
        (["compare", "a", "b", "--alpha", "2"], "must be in (0, 1]"),
        (["atlas", "g", "d", "--threshold", "x"], "is not a number"),
    ]:
        with pytest.raises(SystemExit) as exit_code:
            main(args)
        assert exit_code.value.code == 2 and message in capsys.readouterr().err, args


def test_demo_ends_with_the_baseline_table_and_models_compare(tmp_path, capsys):
    folder = tmp_path / "demo"
    shape = ["48", "48", "64"]
    assert main(["demo", str(folder), "--studies", "5", "--shape", *shape, "--workers", "2"]) == 0
    out = capsys.readouterr().out
    assert "Baseline: mean-shape atlas of 4 training studies" in out
    assert "Evaluated on 1 validation studies" in out
    headline = out[out.index("Baseline: mean-shape atlas") :]
    columns = ("dice", "iou", "hd95", "asd", "nsd", "det_precision", "det_recall", "det_f1")
    assert re.search(r"^partition +group +classes +cases +" + " +".join(columns), headline, re.M)
    overall = re.search(r"^overall +all classes +420 +420 +(\S+)", headline, re.M)
    assert re.search(r"^view +PA +210 ", headline, re.M)
    assert re.search(r"^view +LL +210 ", headline, re.M)
    assert 0.3 < float(overall.group(1)) < 1.0  # the Dice of a real, imperfect baseline

    # A second "model": the ground truth itself on the same split, then the paired comparison.
    dataset, oracle = str(folder / "dataset.zarr"), str(tmp_path / "oracle")
    threads = ["--scheduler", "threads"]
    assert main(["evaluate", dataset, oracle, "--gt", dataset, "--split", "valid", *threads]) == 0
    perfect = r"^overall +all classes +420 +420 +1 +1 +0 +0 +1 +1 +1 +1$"
    assert re.search(perfect, capsys.readouterr().out, re.M)
    atlas = str(folder / "atlas-evaluation")
    assert main(["compare", atlas, oracle, "--names", "atlas", "oracle", "--bootstrap", "500"]) == 0
    line = next(r for r in capsys.readouterr().out.splitlines() if r.startswith("dice "))
    assert re.match(r"dice +atlas +oracle +420 ", line)
    assert line.split()[-1] == "oracle" and " yes " in line
