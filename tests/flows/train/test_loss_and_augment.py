"""The masked loss (flows/train/loss.py) and orientation-keeping augmentation."""

import pytest

torch = pytest.importorskip("torch")

from flows.train.augment import augment  # noqa: E402
from flows.train.loss import SMOOTH, masked_bce_dice  # noqa: E402


def test_an_unavailable_class_gets_neither_loss_nor_gradient():
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 3, 8, 8, generator=generator, requires_grad=True)
    target = (torch.rand(2, 3, 8, 8, generator=generator) > 0.5).float()
    available = torch.tensor([[True, False, True], [True, True, True]])
    masked_bce_dice(logits, target, available).backward()
    assert torch.all(logits.grad[0, 1] == 0)  # unknown: not learned as empty
    assert torch.all(logits.grad[1, 1] != 0) and torch.all(logits.grad[0, 0] != 0)
    changed = target.clone()
    changed[0, 1] = 1 - changed[0, 1]  # what an unavailable channel holds does not matter
    assert masked_bce_dice(logits, changed, available) == masked_bce_dice(logits, target, available)


def test_the_loss_is_bce_plus_soft_dice_averaged_over_available_pairs():
    logits = torch.tensor([[[[0.0, 2.0]], [[5.0, -5.0]]]])  # (1, 2, 1, 2)
    target = torch.tensor([[[[0.0, 1.0]], [[1.0, 1.0]]]])
    available = torch.tensor([[True, False]])
    p = torch.sigmoid(logits[0, 0, 0])
    bce = torch.nn.functional.binary_cross_entropy(p, target[0, 0, 0])
    dice = (2 * (p * target[0, 0, 0]).sum() + SMOOTH) / (p.sum() + 1 + SMOOTH)
    expected = bce + 1 - dice
    assert torch.isclose(masked_bce_dice(logits, target, available), expected)
    nothing = torch.zeros(1, 2, dtype=torch.bool)
    assert masked_bce_dice(logits, target, nothing) == 0


def test_augmentation_never_swaps_left_and_right():
    images = torch.zeros(16, 1, 64, 64)
    masks = torch.zeros(16, 1, 64, 64)
    masks[..., 8:56, 4:24] = 1  # a structure on the image's left
    images[..., 8:56, 4:24] = 1
    moved_images, moved = augment(images, masks, torch.Generator().manual_seed(3), "geometric")
    assert not torch.equal(moved, masks)  # it does transform
    left, right = moved[..., :32].sum(dim=(1, 2, 3)), moved[..., 32:].sum(dim=(1, 2, 3))
    assert torch.all(left > 10 * right)
    assert set(torch.unique(moved).tolist()) <= {0.0, 1.0}  # masks stay binary
    again = augment(images, masks, torch.Generator().manual_seed(3), "geometric")
    assert torch.equal(again[1], moved) and torch.equal(again[0], moved_images)


def test_intensity_augmentation_leaves_the_geometry_and_none_leaves_everything():
    images = torch.rand(4, 1, 32, 32, generator=torch.Generator().manual_seed(1))
    masks = (images > 0.5).float()
    brighter, same_masks = augment(images, masks, torch.Generator().manual_seed(3), "intensity")
    assert torch.equal(same_masks, masks) and not torch.equal(brighter, images)
    assert augment(images, masks, torch.Generator(), "none") == (images, masks)
    with pytest.raises(ValueError, match="not 'flip'"):
        augment(images, masks, torch.Generator(), "flip")
