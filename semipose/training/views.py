"""The strong view of an unlabeled batch, built on the device, and the geometry that ties it to the weak view.

The student sees ``strong = cutout(photometric(warp(weak, theta)))`` while the teacher sees the weak
view. ``theta`` is a per-image affine (rotation, scale, translation; no flip, so keypoint channels
keep their meaning) stored as a ``[B, 3, 3]`` matrix acting on *normalized* coordinates
(``grid_sample``'s ``align_corners=False`` convention, where pixel ``x`` of width ``W`` sits at
``(2x + 1) / W - 1``). Normalized coordinates are the same at every resolution, so one ``theta``
moves the input pixels, the stride-4 heatmaps and the keypoints consistently.

Shapes: B images, C channels, K keypoints, M people, H x W pixels of the tensor at hand.

Example:

```python
>>> import torch
>>> weak = torch.zeros(2, 3, 64, 64)
>>> theta = sample_strong_affine(2, (64, 64), StrongAugmentation())
>>> warp_images(weak, theta).shape
torch.Size([2, 3, 64, 64])
```
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from transformers.image_utils import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD

from ..data.transforms import pixel_to_normalized


@dataclass(frozen=True)
class StrongAugmentation:
    """How far the strong view departs from the weak one.

    Args:
        max_rotation: degrees, uniform in `[-max_rotation, max_rotation]`.
        scale_range: uniform scale factor range.
        max_translation: fraction of the image size, uniform per axis.
        color_jitter: strength of brightness, contrast and saturation jitter (0 disables).
        cutout_holes: random rectangles filled with the mean color, per image.
        cutout_size: side of a cutout rectangle as a fraction of the image side.
        joint_cutout_probability: chance that each pseudo-labeled keypoint is hidden by a square.
        joint_cutout_size: side of that square as a fraction of the image side.
    """

    max_rotation: float = 30.0
    scale_range: tuple[float, float] = (0.75, 1.25)
    max_translation: float = 0.1
    color_jitter: float = 0.4
    cutout_holes: int = 1
    cutout_size: float = 0.25
    joint_cutout_probability: float = 0.1
    joint_cutout_size: float = 0.1


def sample_strong_affine(
    batch_size: int,
    image_size: tuple[int, int],
    augmentation: StrongAugmentation,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """Random per-image affines `theta` [B, 3, 3] mapping weak-view to strong-view normalized coordinates."""
    height, width = image_size
    angle = _uniform(batch_size, -augmentation.max_rotation, augmentation.max_rotation, device) * math.pi / 180
    scale = _uniform(batch_size, *augmentation.scale_range, device)
    shift_x = _uniform(batch_size, -augmentation.max_translation, augmentation.max_translation, device) * width
    shift_y = _uniform(batch_size, -augmentation.max_translation, augmentation.max_translation, device) * height
    center_x, center_y = (width - 1) / 2, (height - 1) / 2
    cos, sin = scale * torch.cos(angle), scale * torch.sin(angle)
    pixel_affine = torch.zeros(batch_size, 3, 3, device=device)
    pixel_affine[:, 0, 0], pixel_affine[:, 0, 1] = cos, -sin
    pixel_affine[:, 1, 0], pixel_affine[:, 1, 1] = sin, cos
    pixel_affine[:, 0, 2] = center_x + shift_x - cos * center_x + sin * center_y
    pixel_affine[:, 1, 2] = center_y + shift_y - sin * center_x - cos * center_y
    pixel_affine[:, 2, 2] = 1.0
    to_normalized = pixel_to_normalized(width, height, torch.float32, device)
    return to_normalized @ pixel_affine @ torch.linalg.inv(to_normalized)


def warp_images(images: torch.Tensor, theta: torch.Tensor, mode: str = "bilinear") -> torch.Tensor:
    """Resample `images` [B, C, H, W] so that content at weak position p lands at `theta @ p`; outside is 0."""
    inverse = torch.linalg.inv(theta.float())[:, :2, :]
    grid = F.affine_grid(inverse, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid.to(images.dtype), mode=mode, padding_mode="zeros", align_corners=False)


def warped_frame_mask(theta: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bool [B, H, W]: pixels of the strong view that come from inside the weak view's frame."""
    ones = torch.ones(theta.shape[0], 1, *size, device=theta.device)
    return warp_images(ones, theta, mode="nearest")[:, 0] > 0.5


def transform_keypoints(keypoints: torch.Tensor, theta: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Map keypoints [B, M, K, 3] (x, y, v) in pixels of a `size` (H, W) view through `theta`.

    Keypoints that leave the frame get visibility 0; coordinates of invisible keypoints are kept
    as they are mapped (they are ignored by every consumer).
    """
    height, width = size
    to_normalized = pixel_to_normalized(width, height, torch.float32, keypoints.device)
    pixel_theta = torch.linalg.inv(to_normalized) @ theta.float() @ to_normalized
    xy1 = torch.cat([keypoints[..., :2], torch.ones_like(keypoints[..., :1])], dim=-1)
    mapped = torch.einsum("bij,bmkj->bmki", pixel_theta, xy1)[..., :2]
    inside = (mapped[..., 0] >= -0.5) & (mapped[..., 0] < width - 0.5)
    inside &= (mapped[..., 1] >= -0.5) & (mapped[..., 1] < height - 0.5)
    visibility = torch.where(inside, keypoints[..., 2], torch.zeros_like(keypoints[..., 2]))
    return torch.cat([mapped, visibility.unsqueeze(-1)], dim=-1)


def photometric_jitter(
    pixel_values: torch.Tensor,
    strength: float,
    mean: tuple[float, ...] = IMAGENET_DEFAULT_MEAN,
    std: tuple[float, ...] = IMAGENET_DEFAULT_STD,
) -> torch.Tensor:
    """Per-image random brightness, contrast and saturation on normalized images [B, 3, H, W]."""
    if strength <= 0:
        return pixel_values
    batch = pixel_values.shape[0]
    device = pixel_values.device
    mean_t = torch.tensor(mean, device=device, dtype=pixel_values.dtype).view(1, 3, 1, 1)
    std_t = torch.tensor(std, device=device, dtype=pixel_values.dtype).view(1, 3, 1, 1)
    rgb = pixel_values * std_t + mean_t
    brightness, contrast, saturation = (
        _uniform(batch, 1 - strength, 1 + strength, device).view(batch, 1, 1, 1) for _ in range(3)
    )
    rgb = rgb * brightness
    gray = (0.299 * rgb[:, 0] + 0.587 * rgb[:, 1] + 0.114 * rgb[:, 2]).unsqueeze(1)
    rgb = (rgb - gray.mean(dim=(2, 3), keepdim=True)) * contrast + gray.mean(dim=(2, 3), keepdim=True)
    gray = (0.299 * rgb[:, 0] + 0.587 * rgb[:, 1] + 0.114 * rgb[:, 2]).unsqueeze(1)
    rgb = (rgb - gray) * saturation + gray
    return (rgb.clamp(0, 1) - mean_t) / std_t


def random_cutout_centers(batch_size: int, holes: int, size: tuple[int, int], device) -> torch.Tensor:
    """Uniform random centers [B, holes, 2] inside an image of `size` (H, W)."""
    height, width = size
    scale = torch.tensor([width, height], device=device, dtype=torch.float32)
    return torch.rand(batch_size, holes, 2, device=device) * scale


def _uniform(n: int, low: float, high: float, device) -> torch.Tensor:
    return torch.rand(n, device=device) * (high - low) + low
