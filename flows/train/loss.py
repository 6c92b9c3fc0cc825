"""Per-class BCE plus soft Dice, masked by ``available``: a class the input did not provide is
unknown, so it adds neither loss nor gradient (it is not learned as empty)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

SMOOTH = 1.0  # soft Dice smoothing (pixels): keeps an empty class's Dice defined


def masked_bce_dice(
    logits: torch.Tensor, target: torch.Tensor, available: torch.Tensor
) -> torch.Tensor:
    """Mean over available (item, class) pairs of BCE + (1 - soft Dice).

    ``logits`` and ``target`` are (N, L, H, W), ``available`` (N, L) bool. Unavailable pairs are
    multiplied out before the mean, so their channels get exactly zero gradient.
    """
    target = target.float()
    weight = available.float()
    bce = F.binary_cross_entropy_with_logits(logits, target, reduction="none").mean(dim=(2, 3))
    probability = torch.sigmoid(logits)
    overlap = (probability * target).sum(dim=(2, 3))
    total = probability.sum(dim=(2, 3)) + target.sum(dim=(2, 3))
    dice = (2 * overlap + SMOOTH) / (total + SMOOTH)
    per_pair = (bce + 1 - dice) * weight
    return per_pair.sum() / weight.sum().clamp(min=1.0)
