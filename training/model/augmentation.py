"""Training-time augmentation of N x 3 x H x W image batches.

The inputs are RGB in [0, 1], but for Cutout, which takes normalized images. Every random
draw comes from the ``torch.Generator`` passed in, so a resumed epoch repeats exactly.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

CROP_PADDING = 4


def augment(batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random crop after reflect padding and random horizontal flip, per image, in one gather."""
    count, _, size, _ = batch.shape
    padded = F.pad(batch, (CROP_PADDING,) * 4, mode="reflect")
    offsets = torch.randint(0, 2 * CROP_PADDING + 1, (count, 2), generator=generator)
    flips = torch.rand(count, generator=generator) < 0.5
    steps = torch.arange(size)
    rows = offsets[:, :1] + steps
    cols = offsets[:, 1:] + torch.where(flips[:, None], steps.flip(0), steps)
    crops = padded[torch.arange(count)[:, None, None], :, rows[:, :, None], cols[:, None, :]]
    return crops.permute(0, 3, 1, 2).contiguous()


def _blend(images: torch.Tensor, other: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """``other`` + factor * (images - other), per image, clipped to [0, 1]."""
    return (other + factor.view(-1, 1, 1, 1) * (images - other)).clamp(0, 1)


def _grayscale(images: torch.Tensor) -> torch.Tensor:
    weights = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
    return (images * weights).sum(dim=1, keepdim=True).expand_as(images)


def _warp(images: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """Affine warp per image (2x3 ``theta`` in normalized coordinates), grey outside."""
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images - 0.5, grid, align_corners=False) + 0.5


def _rotate(images: torch.Tensor, strength: torch.Tensor) -> torch.Tensor:
    angle = strength * torch.pi / 6  # up to 30 degrees either way
    cos, sin, zero = torch.cos(angle), torch.sin(angle), torch.zeros_like(angle)
    return _warp(images, torch.stack([cos, -sin, zero, sin, cos, zero], 1).view(-1, 2, 3))


def _shear(images: torch.Tensor, strength: torch.Tensor, axis: int) -> torch.Tensor:
    one, zero, shear = torch.ones_like(strength), torch.zeros_like(strength), 0.3 * strength
    rows = [one, shear, zero, zero, one, zero] if axis == 0 else [one, zero, zero, shear, one, zero]
    return _warp(images, torch.stack(rows, 1).view(-1, 2, 3))


def _sharpness(images: torch.Tensor, strength: torch.Tensor) -> torch.Tensor:
    kernel = torch.tensor([[1.0, 1.0, 1.0], [1.0, 5.0, 1.0], [1.0, 1.0, 1.0]]) / 13
    smooth = F.conv2d(
        F.pad(images, (1, 1, 1, 1), mode="replicate"), kernel.expand(3, 1, 3, 3), groups=3
    )
    return _blend(images, smooth, 1 + 0.9 * strength)


def _autocontrast(images: torch.Tensor) -> torch.Tensor:
    low = images.amin(dim=(2, 3), keepdim=True)
    high = images.amax(dim=(2, 3), keepdim=True)
    return torch.where(high > low, (images - low) / (high - low).clamp_min(1e-6), images)


# TrivialAugment's idea (Muller & Hutter, 2021) on tensors: each image gets one operation,
# drawn uniformly, at a uniformly drawn strength. ``strength`` is in [-1, 1].
AUGMENT_OPERATIONS: tuple[Callable[[torch.Tensor, torch.Tensor], torch.Tensor], ...] = (
    lambda x, s: x,
    lambda x, s: _blend(x, torch.zeros_like(x), 1 + 0.9 * s),  # brightness
    lambda x, s: _blend(x, x.mean(dim=(1, 2, 3), keepdim=True).expand_as(x), 1 + 0.9 * s),
    lambda x, s: _blend(x, _grayscale(x), 1 + 0.9 * s),  # saturation
    _sharpness,
    _rotate,
    lambda x, s: _shear(x, s, 0),
    lambda x, s: _shear(x, s, 1),
    lambda x, s: torch.where(x > 1 - s.abs().view(-1, 1, 1, 1), 1 - x, x),  # solarize
    lambda x, s: (
        torch.floor(x * 2 ** (8 - (4 * s.abs()).round()).view(-1, 1, 1, 1))
        / 2 ** (8 - (4 * s.abs()).round()).view(-1, 1, 1, 1)
    ),  # posterize to 4-8 bits
    lambda x, s: _autocontrast(x),
)


def trivial_augment(batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """One operation of ``AUGMENT_OPERATIONS`` per image, at a random strength."""
    count = batch.shape[0]
    choice = torch.randint(0, len(AUGMENT_OPERATIONS), (count,), generator=generator)
    strength = torch.rand(count, generator=generator) * 2 - 1
    results = torch.stack([operation(batch, strength) for operation in AUGMENT_OPERATIONS])
    return results[choice, torch.arange(count)]


def photo_augment(
    batch: torch.Tensor, zoom_out: float, blur: float, generator: torch.Generator
) -> torch.Tensor:
    """Changes toward the look of photos fitted to 32 px: with probability ``zoom_out`` the
    subject shrunk to 60-100% of the frame (a random place, reflected surroundings); with
    probability ``blur`` the image reduced to 12-28 px and enlarged back."""
    count, _, size, _ = batch.shape
    scale = torch.where(
        torch.rand(count, generator=generator) < zoom_out,
        1 / (0.6 + 0.4 * torch.rand(count, generator=generator)),
        torch.ones(count),
    )
    shift = (scale[:, None] - 1) * (torch.rand(count, 2, generator=generator) * 2 - 1)
    zero = torch.zeros(count)
    theta = torch.stack([scale, zero, shift[:, 0], zero, scale, shift[:, 1]], 1).view(-1, 2, 3)
    grid = F.affine_grid(theta, list(batch.shape), align_corners=False)
    batch = F.grid_sample(batch, grid, padding_mode="reflection", align_corners=False)
    chosen = torch.rand(count, generator=generator) < blur
    if chosen.any():
        side = int(torch.randint(12, size - 3, (1,), generator=generator))
        small = F.interpolate(batch[chosen], size=(side, side), mode="area")
        batch[chosen] = F.interpolate(small, size=(size, size), mode="bilinear")
    return batch


def cut_out(batch: torch.Tensor, size: int, generator: torch.Generator) -> torch.Tensor:
    """Zero one ``size`` x ``size`` square per normalized image, centred anywhere (Cutout)."""
    if size <= 0:
        return batch
    count, _, height, width = batch.shape
    centres = torch.rand(count, 2, generator=generator) * torch.tensor([height, width])
    rows = torch.arange(height)[None, :] - centres[:, :1] + size / 2
    cols = torch.arange(width)[None, :] - centres[:, 1:] + size / 2
    inside_rows = (rows >= 0) & (rows < size)
    inside_cols = (cols >= 0) & (cols < size)
    hole = inside_rows[:, :, None] & inside_cols[:, None, :]
    return batch.masked_fill(hole[:, None], 0.0)
