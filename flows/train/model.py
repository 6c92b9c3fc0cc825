"""The network and the model folder: MONAI's 2D U-Net with one sigmoid output per class, its
weights and ``config.json`` (label order, image size, normalisation, the dataset it saw).

MONAI rather than segmentation-models-pytorch: its U-Net needs no pretrained encoder, so nothing
is downloaded at run time, and it is the medical-imaging field's own library (residual units,
instance norm), installable with torch alone.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from monai.networks.nets import UNet

CONFIG, WEIGHTS, CHECKPOINT = "config.json", "model.pt", "checkpoint.pt"


@dataclass(frozen=True)
class ModelConfig:
    """What a model needs to be used again: written as ``config.json`` beside its weights."""

    labels: list[str]
    views: list[str]
    image_size: int
    channels: list[int] = field(default_factory=lambda: [16, 32, 64, 128, 256])
    normalisation: str = "image uint8 / 255 -> [0, 1]; sigmoid per class"
    dataset: dict[str, Any] = field(default_factory=dict)  # url, input hashes, parameters
    training: dict[str, Any] = field(default_factory=dict)  # options, epochs done, versions

    def save(self, folder: Path) -> None:
        """Write ``config.json`` (sorted keys: the same config gives the same bytes)."""
        text = json.dumps(asdict(self), indent=1, sort_keys=True) + "\n"
        (folder / CONFIG).write_text(text, encoding="utf-8")

    @classmethod
    def load(cls, folder: Path) -> ModelConfig:
        """Read a model folder's ``config.json``; a missing or malformed one raises ValueError."""
        path = folder / CONFIG
        try:
            return cls(**json.loads(path.read_text(encoding="utf-8")))
        except FileNotFoundError:
            raise FileNotFoundError(f"no model at {folder} ({CONFIG} is missing)") from None
        except (json.JSONDecodeError, TypeError) as error:
            raise ValueError(f"{path} is not an rga model config ({error})") from None


def build_network(config: ModelConfig) -> torch.nn.Module:
    """The 2D U-Net: 1 input channel, one output (a logit) per class."""
    channels = tuple(config.channels)
    return UNet(
        spatial_dims=2,
        in_channels=1,
        out_channels=len(config.labels),
        channels=channels,
        strides=(2,) * (len(channels) - 1),
        num_res_units=1,
        norm="instance",
    )
