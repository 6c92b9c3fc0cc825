"""Augmentation that keeps orientation: small rotations, scaling and shifts, brightness and
contrast. No flips: left and right are labels (a flipped left lung is a right lung)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

MAX_DEGREES, MAX_SCALE, MAX_SHIFT = 3.0, 0.05, 0.02  # rotation, relative zoom, share of the image


def augment(
    images: torch.Tensor, masks: torch.Tensor, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Randomly transform a batch: (N, 1, H, W) float images and (N, L, H, W) masks alike."""
    n = images.shape[0]

    def uniform(limit: float) -> torch.Tensor:
        return (torch.rand(n, generator=generator) * 2 - 1) * limit

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
    contrast = (1 + uniform(0.15)).view(n, 1, 1, 1)
    brightness = uniform(0.08).view(n, 1, 1, 1)
    images = ((images - 0.5) * contrast + 0.5 + brightness).clamp(0, 1)
    return images, masks
