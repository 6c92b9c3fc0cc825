"""Augmentation that keeps orientation: brightness and contrast, and with ``geometric`` small
rotations, zooms and shifts as well. Never flips: left and right are labels (a flipped left lung
is a right lung).

The default is ``intensity``: the model's prior is tied to the pixel grid, and radiographs
projected from CT are centred alike, so moves teach corrections that never occur (measured on
the phantom loop of benchmarks/training.py: class-balanced Dice 0.94 without moves, 0.92 with
them at a quarter of the learning rate; the atlas has 0.90). ``geometric`` is for data
positioned less alike.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

from flows.train import AUGMENTATIONS

MAX_DEGREES, MAX_SCALE, MAX_SHIFT = 3.0, 0.05, 0.02  # rotation, relative zoom, share of the image
MAX_CONTRAST, MAX_BRIGHTNESS = 0.15, 0.08  # relative contrast, offset on the [0, 1] scale


def augment(
    images: torch.Tensor, masks: torch.Tensor, generator: torch.Generator, kind: str = "intensity"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Randomly transform a batch of (N, 1, H, W) float images and (N, L, H, W) masks alike."""
    if kind not in AUGMENTATIONS:
        raise ValueError(f"augmentation is one of {', '.join(AUGMENTATIONS)}, not {kind!r}")
    if kind == "none":
        return images, masks
    n = images.shape[0]

    def uniform(limit: float) -> torch.Tensor:
        return (torch.rand(n, generator=generator) * 2 - 1) * limit

    if kind == "geometric":
        images, masks = _moved(images, masks, uniform)
    contrast = (1 + uniform(MAX_CONTRAST)).view(n, 1, 1, 1)
    brightness = uniform(MAX_BRIGHTNESS).view(n, 1, 1, 1)
    return ((images - 0.5) * contrast + 0.5 + brightness).clamp(0, 1), masks


def _moved(
    images: torch.Tensor, masks: torch.Tensor, uniform: Callable[[float], torch.Tensor]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Images (bilinear) and masks (nearest, so they stay binary) rotated, zoomed and shifted."""
    angle = uniform(math.radians(MAX_DEGREES))
    scale = 1 + uniform(MAX_SCALE)
    shift = torch.stack([uniform(MAX_SHIFT * 2), uniform(MAX_SHIFT * 2)], dim=1)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack(
        [torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1
    )
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    images = F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    masks = F.grid_sample(masks.float(), grid, mode="nearest", align_corners=False)
    return images, masks
