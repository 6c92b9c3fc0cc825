"""``rga train`` and ``rga predict`` on the demo dataset (CPU, small image size)."""

import json
import sys

import pytest

torch = pytest.importorskip("torch")

from catalog import open_catalog  # noqa: E402
from flows.cli import main  # noqa: E402
from flows.train.fit import TrainOptions, train  # noqa: E402
from flows.train.model import ModelConfig  # noqa: E402
from storage.location import StoreRef  # noqa: E402

FAST = TrainOptions(epochs=2, batch_size=4, image_size=32, seed=0, device="cpu")


def _weights(folder):
    return torch.load(folder / "model.pt", weights_only=True)


def _same(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture(scope="module")
def trained(demo_dir, tmp_path_factory):
    folder = tmp_path_factory.mktemp("model") / "m"
    summary = train(StoreRef(str(demo_dir / "dataset.zarr")), folder, FAST)
    return folder, summary


def test_training_is_deterministic_on_cpu_and_resumes_where_it_stopped(demo_dir, trained, tmp_path):
    dataset = StoreRef(str(demo_dir / "dataset.zarr"))
    folder, summary = trained
    assert summary.epochs == 2 and len(summary.losses) == 2 and summary.items == 6
    again = tmp_path / "again"
    train(dataset, again, FAST)
    assert _same(_weights(folder), _weights(again))
    other = tmp_path / "other"
    train(dataset, other, TrainOptions(**{**FAST.__dict__, "seed": 1}))
    assert not _same(_weights(folder), _weights(other))
    stopped = tmp_path / "stopped"
    train(dataset, stopped, TrainOptions(**{**FAST.__dict__, "epochs": 1}))
    resumed = train(dataset, stopped, TrainOptions(**{**FAST.__dict__, "resume": True}))
    assert resumed.losses == summary.losses
    assert _same(_weights(folder), _weights(stopped))


def test_the_model_folder_says_what_the_model_is(demo_dir, trained):
    folder, _ = trained
    config = ModelConfig.load(folder)
    truth = open_catalog(str(demo_dir / "dataset.zarr"))
    assert config.labels == [str(n) for n in truth.label.values]  # the label order
    assert config.views == ["PA", "LL"] and config.image_size == 32
    assert "uint8 / 255" in config.normalisation
    assert config.dataset["url"].endswith("dataset.zarr") and config.dataset["studies"] == 3
    assert len(config.dataset["input_hashes_sha256"]) == 64
    assert config.training["seed"] == 0 and config.training["epochs_done"] == 2
    assert {"torch", "monai", "numpy"} <= set(config.training["versions"])
    assert json.loads((folder / "config.json").read_text())["labels"][0] == config.labels[0]


def test_predictions_are_a_store_that_evaluate_and_measure_read(
    demo_dir, trained, tmp_path, capsys
):
    folder, _ = trained
    dataset, pred = str(demo_dir / "dataset.zarr"), str(tmp_path / "pred.zarr")
    argv = ["predict", str(folder), dataset, pred, "--split", "train", "--device", "cpu"]
    assert main(argv) == 0
    assert "Predicted 3 studies" in capsys.readouterr().out
    predicted = open_catalog(pred)
    assert predicted.mask.shape == open_catalog(dataset).mask.shape
    assert predicted.attrs["rga_prediction"]["model"] == "U-Net (rga train)"
    evaluation = str(tmp_path / "evaluation")
    assert main(["evaluate", pred, evaluation, "--gt", dataset, "--scheduler", "threads"]) == 0
    assert main(["measure", pred, "--dest", dataset, "--scheduler", "threads"]) == 0


def test_the_train_command_and_its_refusals(demo_dir, trained, tmp_path, capsys, monkeypatch):
    folder, _ = trained
    dataset = str(demo_dir / "dataset.zarr")
    small = ["--epochs", "1", "--image-size", "32", "--device", "cpu", "-q"]
    assert main(["train", dataset, str(tmp_path / "m"), *small]) == 0
    assert "Trained 1 epochs on 6 radiographs (cpu)" in capsys.readouterr().out
    assert main(["train", dataset, str(folder), *small]) == 2  # exists: --resume
    assert "--resume to continue" in capsys.readouterr().err
    assert main(["train", dataset, str(tmp_path / "n"), "--split", "nope", *small]) == 2
    assert "no split 'nope'" in capsys.readouterr().err
    if not torch.cuda.is_available():
        assert main(["train", dataset, str(tmp_path / "g"), "--device", "cuda"]) == 2
        assert "no CUDA device" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "monai", None)  # as if the [train] extra were missing
    assert main(["train", dataset, str(tmp_path / "x"), *small]) == 1
    assert "pip install 'radgenome-anatomy[train]'" in capsys.readouterr().err
