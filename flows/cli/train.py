"""The ``rga train`` and ``rga predict`` commands (PyTorch: the optional extra ``rga[train]``).

Registered on the ``rga`` parser by ``flows/cli/main.py``; torch is imported only when one of
them runs, so the rest of ``rga`` works without it. Options, exit codes and where output goes
follow ``flows/cli/options.py``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from flows.cli.options import (
    add_storage_options,
    note,
    positive_int,
    probability,
    quiet,
    store,
    usage_errors,
)
from flows.train import AUGMENTATIONS
from storage.masks import is_dataset_store

_TRAIN_HELP = (
    "Train a 2D U-Net (MONAI) with one sigmoid output per class on the committed studies of "
    "--split: per-class BCE plus soft Dice, masked so that classes a study's input did not "
    "provide add neither loss nor gradient; augmentation keeps orientation (no flips). MODEL "
    "(a folder) receives model.pt, config.json (label order, image size, normalisation, the "
    "dataset's input hashes, versions) and checkpoint.pt after every epoch. Deterministic on "
    "CPU for a --seed. Needs pip install 'radgenome-anatomy[train]'."
)
_PREDICT_HELP = (
    "Predict the committed studies of --split with a trained MODEL and write PRED, a store in "
    "the dataset schema that rga evaluate, rga compare and rga measure read. Uses a GPU when "
    "there is one (--device auto)."
)


def register(commands: Any) -> None:
    """Add ``train`` and ``predict`` to the ``rga`` subcommands."""
    train = commands.add_parser("train", help="train a U-Net on a dataset", description=_TRAIN_HELP)
    train.add_argument("dataset", metavar="DATASET", help="dataset store")
    train.add_argument("model", metavar="MODEL", help="model folder to write (local path)")
    train.add_argument("--split", default="train", help="train on (default train)")
    train.add_argument("--epochs", type=positive_int, default=40, help="(default 40)")
    train.add_argument("--batch-size", type=positive_int, default=8, help="(default 8)")
    train.add_argument(
        "--image-size", type=positive_int, help="pixels the model sees (default the dataset's)"
    )
    train.add_argument("--lr", type=float, default=2e-3, help="Adam learning rate (default 2e-3)")
    train.add_argument("--seed", type=int, default=0, help="(default 0)")
    _device(train)
    train.add_argument(
        "--workers", type=int, default=0, help="DataLoader worker processes (default 0)"
    )
    train.add_argument(
        "--augment",
        choices=AUGMENTATIONS,
        default="intensity",
        help="brightness and contrast (intensity, the default); geometric adds rotations up to "
        "3 degrees, 5%% zoom and 2%% shifts; never flips",
    )
    train.add_argument("--resume", action="store_true", help="continue from MODEL's checkpoint")
    train.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    add_storage_options(train)
    train.set_defaults(run=_run_train)

    predict = commands.add_parser(
        "predict", help="predict masks with a trained model", description=_PREDICT_HELP
    )
    predict.add_argument("model", metavar="MODEL", help="model folder (rga train)")
    predict.add_argument("dataset", metavar="DATASET", help="dataset store")
    predict.add_argument("pred", metavar="PRED", help="prediction store to write (replaced)")
    predict.add_argument("--split", default="valid", help="predict for (default valid)")
    predict.add_argument(
        "--threshold", type=probability, default=0.5, help="sigmoid cut (default 0.5)"
    )
    predict.add_argument("--batch-size", type=positive_int, default=8, help="(default 8)")
    _device(predict)
    predict.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    add_storage_options(predict)
    predict.set_defaults(run=_run_predict)


def _device(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--device", choices=("auto", "cpu", "cuda"), default="auto", help="(default auto)"
    )
    parser.add_argument(
        "--threads",
        type=positive_int,
        help="CPU threads for torch (default: the cores this process may use, whatever "
        "OMP_NUM_THREADS says; Dask sets it to 1 for its workers)",
    )


def _torch() -> None:
    from flows.train import require_torch

    require_torch()


def _dataset(url: str, args: argparse.Namespace) -> Any:
    dataset = store(url, args)
    if not is_dataset_store(dataset):
        raise FileNotFoundError(f"no dataset store at {url}")
    return dataset


def _run_train(args: argparse.Namespace) -> int:
    _torch()
    from catalog.reader import open_catalog, select
    from flows.train.fit import TrainOptions, resolve_device, train

    dataset = _dataset(args.dataset, args)
    with usage_errors(KeyError, ValueError):
        select(open_catalog(dataset), split=args.split)
        resolve_device(args.device)
        if args.workers < 0:
            raise ValueError("--workers must be 0 or more")
    options = TrainOptions(
        split=args.split,
        epochs=args.epochs,
        batch_size=args.batch_size,
        image_size=args.image_size,
        lr=args.lr,
        seed=args.seed,
        device=args.device,
        workers=args.workers,
        resume=args.resume,
        augment=args.augment,
        threads=args.threads,
    )

    def batch(epoch: int, step: int, steps: int, loss: float) -> None:
        if not quiet(args) and sys.stderr.isatty():
            print(
                f"\r  epoch {epoch}/{args.epochs}: batch {step}/{steps}, loss {loss:.4f}",
                end="",
                file=sys.stderr,
                flush=True,
            )

    def epoch(done: int, loss: float, seconds: float) -> None:
        if not quiet(args):
            end = "\r" if sys.stderr.isatty() else ""
            note(f"{end}  epoch {done}/{args.epochs}: loss {loss:.4f} in {seconds:.1f} s")

    summary = train(dataset, Path(args.model), options, on_batch=batch, on_epoch=epoch)
    total = sum(summary.seconds_per_epoch)
    print(
        f"Trained {summary.epochs} epochs on {summary.items} radiographs ({summary.device}) into "
        f"{summary.model} in {total:.1f} s; final loss {summary.losses[-1]:.4f}",
        flush=True,
    )
    return 0


def _run_predict(args: argparse.Namespace) -> int:
    _torch()
    from catalog.reader import open_catalog, select
    from flows.train.fit import resolve_device
    from flows.train.predict import predict

    dataset = _dataset(args.dataset, args)
    with usage_errors(KeyError, ValueError):
        select(open_catalog(dataset), split=args.split)
        resolve_device(args.device)

    def progress(done: int, total: int) -> None:
        if not quiet(args):
            note(f"  predict: {done}/{total} studies")

    summary = predict(
        Path(args.model),
        dataset,
        store(args.pred, args),
        split=args.split,
        threshold=args.threshold,
        batch_size=args.batch_size,
        device=args.device,
        threads=args.threads,
        on_batch=progress,
    )
    print(
        f"Predicted {len(summary.predicted)} studies ({summary.device}) into {summary.dest} in "
        f"{summary.seconds:.1f} s",
        flush=True,
    )
    return 0
