"""``rga train``: a U-Net on the committed studies of one split, a checkpoint every epoch.

Deterministic on CPU for a seed: the shuffle order, the augmentation and the initial weights
come from generators seeded by it, torch runs its deterministic algorithms, and a resumed run
restores every generator from the checkpoint, so it ends where an uninterrupted run ends.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from catalog import RadiographDataset, open_catalog
from flows.export import OutputExists
from flows.train.augment import augment
from flows.train.loss import masked_bce_dice
from flows.train.model import CHECKPOINT, WEIGHTS, ModelConfig, build_network
from storage.location import StoreRef


@dataclass(frozen=True)
class TrainOptions:
    """The flags of ``rga train``."""

    split: str = "train"
    epochs: int = 40
    batch_size: int = 8
    image_size: int | None = None  # default: the dataset's
    lr: float = 2e-3
    seed: int = 0
    device: str = "auto"
    workers: int = 0  # DataLoader worker processes
    resume: bool = False
    augment: str = "intensity"  # none, intensity, or geometric (intensity plus small moves)
    threads: int | None = None  # torch CPU threads (default: every core this process may use)


@dataclass
class TrainSummary:
    """What a training run did."""

    model: str
    epochs: int = 0
    items: int = 0
    losses: list[float] = field(default_factory=list)
    seconds_per_epoch: list[float] = field(default_factory=list)
    device: str = "cpu"


def resolve_device(name: str) -> torch.device:
    """``auto``: the GPU if there is one, else the CPU; ``cuda`` without one is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda: no CUDA device is available here")
    if name not in ("cpu", "cuda"):
        raise ValueError(f"--device is auto, cpu or cuda, not {name!r}")
    return torch.device(name)


def train(
    dataset: StoreRef,
    model_dir: Path,
    options: TrainOptions,
    *,
    on_batch: Callable[[int, int, int, float], None] | None = None,
    on_epoch: Callable[[int, float, float], None] | None = None,
) -> TrainSummary:
    """Train into ``model_dir`` (weights, ``config.json``, ``checkpoint.pt``); see the module."""
    device = resolve_device(options.device)
    use_threads(options.threads)
    checkpoint_path = model_dir / CHECKPOINT
    if model_dir.exists() and any(model_dir.iterdir()) and not options.resume:
        raise OutputExists(f"{model_dir} exists: choose another folder, or --resume to continue")
    if options.resume and not checkpoint_path.exists():
        raise FileNotFoundError(f"--resume: {checkpoint_path} does not exist")
    data = RadiographDataset(dataset, split=options.split)
    if len(data) == 0:
        raise ValueError(f"{dataset.url} has no committed study in split {options.split!r}")
    canvas = int(open_catalog(dataset).sizes["y"])
    size = options.image_size or canvas
    config = ModelConfig(
        labels=data.labels,
        views=data.views,
        image_size=size,
        dataset=_provenance(dataset, data.studies),
        training={**asdict(options), "image_size": size, "versions": _versions()},
    )
    torch.use_deterministic_algorithms(True, warn_only=device.type != "cpu")
    torch.manual_seed(options.seed)
    network = build_network(config)
    network.set_prior(_class_shares(data, size, config.views))
    network = network.to(device)
    optimiser = torch.optim.Adam(network.parameters(), lr=options.lr)
    shuffle = torch.Generator().manual_seed(options.seed)
    augmentation = torch.Generator().manual_seed(options.seed + 1)
    first_epoch = 0
    summary = TrainSummary(model=str(model_dir), items=len(data), device=device.type)
    if options.resume:
        state = torch.load(checkpoint_path, map_location=device, weights_only=False)
        network.load_state_dict(state["model"])
        optimiser.load_state_dict(state["optimiser"])
        shuffle.set_state(state["shuffle"])
        augmentation.set_state(state["augmentation"])
        first_epoch = int(state["epoch"])
        summary.losses = list(state["losses"])
    loader = DataLoader(
        data,
        batch_size=options.batch_size,
        shuffle=True,
        generator=shuffle,
        num_workers=options.workers,
        persistent_workers=options.workers > 0,
    )
    model_dir.mkdir(parents=True, exist_ok=True)
    for epoch in range(first_epoch, options.epochs):
        started = time.perf_counter()
        network.train()
        total, count = 0.0, 0
        for step, batch in enumerate(loader):
            images, masks = _resized(batch["image"], batch["mask"], size)
            images, masks = augment(images, masks, augmentation, options.augment)
            images, masks = images.to(device), masks.to(device)
            available = batch["available"].to(device)
            views = view_indices(batch["view"], config.views).to(device)
            optimiser.zero_grad(set_to_none=True)
            loss = masked_bce_dice(network(images, views), masks, available)
            loss.backward()
            optimiser.step()
            total, count = total + float(loss.detach()) * len(images), count + len(images)
            if on_batch:
                on_batch(epoch + 1, step + 1, len(loader), total / count)
        summary.losses.append(total / count)
        summary.seconds_per_epoch.append(time.perf_counter() - started)
        _save(model_dir, network, optimiser, shuffle, augmentation, epoch + 1, summary, config)
        if on_epoch:
            on_epoch(epoch + 1, summary.losses[-1], summary.seconds_per_epoch[-1])
    summary.epochs = options.epochs
    return summary


def use_threads(threads: int | None) -> None:
    """Give torch ``threads`` CPU threads (default every core this process may use). Set
    explicitly: a Dask cluster started earlier in the process leaves ``OMP_NUM_THREADS=1``
    behind, which would halve training speed on two cores."""
    torch.set_num_threads(threads or len(os.sched_getaffinity(0)))


def view_indices(views: list[str], order: list[str]) -> torch.Tensor:
    """The positions of a batch's views in the model's view order."""
    return torch.tensor([order.index(v) for v in views], dtype=torch.long)


def _class_shares(data: RadiographDataset, size: int, views: list[str]) -> torch.Tensor:
    """(view, label, size, size): the share of training radiographs whose class covers each
    pixel, among those whose input has the class (the soft atlas)."""
    covered = torch.zeros(len(views), len(data.labels), size, size, dtype=torch.float64)
    given = torch.zeros(len(views), len(data.labels), 1, 1, dtype=torch.float64)
    for index in range(len(data)):
        item = data[index]
        image = torch.from_numpy(item["image"])[None]
        _, mask = _resized(image, torch.from_numpy(item["mask"])[None], size, soft=True)
        available = torch.from_numpy(item["available"]).double().view(-1, 1, 1)
        view = views.index(item["view"])
        covered[view] += mask[0].double() * available
        given[view] += available
    return (covered / given.clamp(min=1)).float()


def _resized(
    images: torch.Tensor, masks: torch.Tensor, size: int, *, soft: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """Images (bilinear, antialiased) and masks (share of the pixel; >= 0.5 unless ``soft``)."""
    if images.shape[-1] == size and images.shape[-2] == size:
        return images, masks.float()
    images = F.interpolate(images, size=(size, size), mode="bilinear", antialias=True)
    masks = F.interpolate(masks.float(), size=(size, size), mode="area")
    return images, masks if soft else (masks >= 0.5).float()


def _save(
    model_dir: Path,
    network: torch.nn.Module,
    optimiser: torch.optim.Optimizer,
    shuffle: torch.Generator,
    augmentation: torch.Generator,
    epochs_done: int,
    summary: TrainSummary,
    config: ModelConfig,
) -> None:
    """The checkpoint, the weights and the config, each replaced atomically."""
    state = {
        "epoch": epochs_done,
        "model": network.state_dict(),
        "optimiser": optimiser.state_dict(),
        "shuffle": shuffle.get_state(),
        "augmentation": augmentation.get_state(),
        "losses": summary.losses,
    }
    _atomic(model_dir / CHECKPOINT, lambda path: torch.save(state, path))
    _atomic(model_dir / WEIGHTS, lambda path: torch.save(network.state_dict(), path))
    training = {**config.training, "epochs_done": epochs_done, "losses": summary.losses}
    done = ModelConfig(**{**asdict(config), "training": training})
    done.save(model_dir)


def _atomic(path: Path, write: Callable[[Path], Any]) -> None:
    partial = path.with_name(path.name + ".partial")
    write(partial)
    os.replace(partial, path)


def _provenance(dataset: StoreRef, studies: list[str]) -> dict[str, Any]:
    """The dataset a model saw: its address, build parameters and the digest of its inputs."""
    ds = open_catalog(dataset)
    hashes = dict(zip((str(s) for s in ds["study"].values), ds["input_hash"].values, strict=True))
    lines = "".join(f"{study}\t{hashes[study]}\n" for study in studies)
    return {
        "url": dataset.url,
        "studies": len(studies),
        "input_hashes_sha256": hashlib.sha256(lines.encode()).hexdigest(),
        "parameters": dict(ds.attrs.get("rga_parameters", {})),
    }


def _versions() -> dict[str, str]:
    names = ("radgenome-anatomy", "torch", "monai", "numpy")
    found = {}
    for name in names:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "unknown"
    return found
