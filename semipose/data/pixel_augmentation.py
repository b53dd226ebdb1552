"""The pixel stage of a view: color jitter, cutout and joint cutout on a batch of normalized images.

One implementation for both strong views: `LabeledTransform` calls `augment_pixels` on each warped
labeled view (with a `torch.Generator`, on the CPU), and the strong view of unlabeled images
(`semipose.training.views.StrongView`) on each warped weak batch (torch's global RNG, on the device).
Given the same image and the same random draws, both give the same pixels.

Shapes: B images, M people, K keypoints, H x W pixels; images are normalized (mean / std), so 0 is
the mean color.

Example:

```python
>>> import torch
>>> from semipose.data.transforms import AugmentationConfig
>>> images = torch.zeros(2, 3, 64, 64)
>>> augment_pixels(images, AugmentationConfig.strong()).shape
torch.Size([2, 3, 64, 64])

```
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
from transformers.image_utils import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD

if TYPE_CHECKING:
    from .transforms import AugmentationConfig


def augment_pixels(
    pixel_values: torch.Tensor,
    augmentation: AugmentationConfig,
    keypoints: torch.Tensor | None = None,
    image_mean: Sequence[float] = IMAGENET_DEFAULT_MEAN,
    image_std: Sequence[float] = IMAGENET_DEFAULT_STD,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Jitter colors, then cut out random squares, then squares on random visible `keypoints`.

    Args:
        pixel_values: `[B, 3, H, W]` normalized images, already warped into the view.
        augmentation: `color_jitter`, `cutout_*` and `joint_cutout_*` are read; cutout sides are
            fractions of `min(H, W)`.
        keypoints: `[B, M, K, 3]` (x, y, v) in view pixels, the joint cutout's candidates; None skips it.
        image_mean, image_std: the normalization of `pixel_values`.
        generator: source of randomness; None uses torch's global RNG (on the images' device).

    Returns:
        `[B, 3, H, W]`; the draws are, in order: jitter factors, cutout centers, joint cutout choices.
    """
    size = tuple(pixel_values.shape[-2:])
    side = min(size)
    pixels = photometric_jitter(pixel_values, augmentation.color_jitter, image_mean, image_std, generator)
    if augmentation.cutout_holes > 0:
        centers = random_cutout_centers(pixels.shape[0], augmentation.cutout_holes, size, pixels.device, generator)
        pixels = cutout(pixels, centers, int(augmentation.cutout_size * side))
    if keypoints is not None and keypoints.shape[1] > 0 and augmentation.joint_cutout_probability > 0:
        centers = joint_cutout_centers(keypoints, augmentation.joint_cutout_probability, generator)
        pixels = cutout(pixels, centers, int(augmentation.joint_cutout_size * side))
    return pixels


def photometric_jitter(
    pixel_values: torch.Tensor,
    strength: float,
    mean: Sequence[float] = IMAGENET_DEFAULT_MEAN,
    std: Sequence[float] = IMAGENET_DEFAULT_STD,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Per-image random brightness, contrast and saturation on normalized images [B, 3, H, W].

    Factors are drawn from `[1 - strength, 1 + strength]`; contrast blends with each image's mean gray,
    saturation with each pixel's gray (ITU-R 601 weights); colors are clamped to [0, 1] once, at the end.
    """
    if strength <= 0:
        return pixel_values
    batch = pixel_values.shape[0]
    device = pixel_values.device
    mean_t = torch.tensor(mean, device=device, dtype=pixel_values.dtype).view(1, 3, 1, 1)
    std_t = torch.tensor(std, device=device, dtype=pixel_values.dtype).view(1, 3, 1, 1)
    rgb = pixel_values * std_t + mean_t
    brightness, contrast, saturation = (
        draw_uniform(batch, 1 - strength, 1 + strength, device, generator).view(batch, 1, 1, 1) for _ in range(3)
    )
    rgb = rgb * brightness
    gray = (0.299 * rgb[:, 0] + 0.587 * rgb[:, 1] + 0.114 * rgb[:, 2]).unsqueeze(1)
    rgb = (rgb - gray.mean(dim=(2, 3), keepdim=True)) * contrast + gray.mean(dim=(2, 3), keepdim=True)
    gray = (0.299 * rgb[:, 0] + 0.587 * rgb[:, 1] + 0.114 * rgb[:, 2]).unsqueeze(1)
    rgb = (rgb - gray) * saturation + gray
    return (rgb.clamp(0, 1) - mean_t) / std_t


def random_cutout_centers(
    batch_size: int, holes: int, size: tuple[int, int], device, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Uniform random centers [B, holes, 2] (x, y) inside an image of `size` (H, W)."""
    height, width = size
    scale = torch.tensor([width, height], device=device, dtype=torch.float32)
    return torch.rand(batch_size, holes, 2, device=device, generator=generator) * scale


def joint_cutout_centers(
    keypoints: torch.Tensor, probability: float, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Centers [B, M*K, 2] on a random subset of the visible keypoints [B, M, K, 3]; NaN where none."""
    batch = keypoints.shape[0]
    xy = keypoints[..., :2].reshape(batch, -1, 2)
    drawn = torch.rand(xy.shape[:2], device=xy.device, generator=generator) < probability
    chosen = (keypoints[..., 2].reshape(batch, -1) > 0) & drawn
    return torch.where(chosen.unsqueeze(-1), xy, torch.full_like(xy, float("nan")))


def cutout(pixel_values: torch.Tensor, centers: torch.Tensor, side: int) -> torch.Tensor:
    """Fill squares around `centers` [B, N, 2] (x, y; NaN = none) with 0, the mean color.

    A square holds the pixels whose centers lie in `[c - side / 2, c + side / 2)` on both axes. The
    squares are painted into a 2D difference array and summed up, so the cost does not grow with
    N x H x W (joint cutout may place dozens of squares per image).
    """
    batch, _, height, width = pixel_values.shape
    present = ~torch.isnan(centers).any(dim=-1)
    image_index = torch.arange(batch, device=centers.device).unsqueeze(1).expand_as(present)[present]
    low = torch.ceil(centers[present] - side / 2).long()
    high = torch.ceil(centers[present] + side / 2).long()
    x0, x1 = low[:, 0].clamp(0, width), high[:, 0].clamp(0, width)
    y0, y1 = low[:, 1].clamp(0, height), high[:, 1].clamp(0, height)
    corners = torch.zeros(batch, height + 1, width + 1, device=pixel_values.device)
    ones = torch.ones_like(image_index, dtype=corners.dtype)
    for ys, xs, sign in ((y0, x0, 1), (y0, x1, -1), (y1, x0, -1), (y1, x1, 1)):
        corners.index_put_((image_index, ys, xs), sign * ones, accumulate=True)
    hidden = corners.cumsum(1).cumsum(2)[:, :height, :width] > 0.5
    return pixel_values.masked_fill(hidden.unsqueeze(1), 0.0)


def draw_uniform(
    n: int, low: float, high: float, device, generator: torch.Generator | None = None
) -> torch.Tensor:
    """`n` numbers drawn uniformly from `[low, high)`."""
    return torch.rand(n, device=device, generator=generator) * (high - low) + low
