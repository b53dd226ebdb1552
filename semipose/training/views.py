"""The strong view of an unlabeled batch, built on the device, and the geometry that ties it to the weak view.

`StrongView` is the one call of a semi-supervised step that makes it: the student sees
``strong = cutout(jitter(warp(weak, theta)))`` while the teacher sees the weak view, and the
teacher's heatmaps, its pseudo people and the frame mask are moved by the same ``theta``. ``theta``
is a per-image affine (rotation, scale, translation; no flip, so keypoint channels keep their
meaning) stored as a ``[B, 3, 3]`` matrix acting on *normalized* coordinates (``grid_sample``'s
``align_corners=False`` convention, where pixel ``x`` of width ``W`` sits at ``(2x + 1) / W - 1``).
Normalized coordinates are the same at every resolution, so one ``theta`` moves the input pixels,
the stride-4 heatmaps and the keypoints consistently. (The data side's views are pixel-frame
matrices instead, see `semipose.data.transforms`.) Jitter and cutouts are
`semipose.data.pixel_augmentation.augment_pixels`, the labeled strong view's own pixel stage.

Shapes: B images, C channels, K keypoints, M people, H x W pixels of the tensor at hand.

Example:

```python
>>> import dataclasses
>>> import torch
>>> from semipose.data.transforms import AugmentationConfig
>>> strong_view = StrongView(dataclasses.replace(AugmentationConfig.strong(), flip_probability=0.0))
>>> strong = strong_view(torch.zeros(2, 3, 64, 64), teacher_heatmaps=torch.zeros(2, 17, 16, 16))
>>> strong.pixel_values.shape, strong.theta.shape, strong.frame_mask.shape
(torch.Size([2, 3, 64, 64]), torch.Size([2, 3, 3]), torch.Size([2, 16, 16]))

```
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from transformers.image_utils import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD

from ..data.pixel_augmentation import augment_pixels, draw_uniform
from ..data.transforms import AugmentationConfig
from ..modeling.input_geometry import pixel_to_normalized


@dataclass(frozen=True)
class StrongBatch:
    """What `StrongView` returns: the student's input and everything moved into its frame.

    Attributes:
        pixel_values: `[B, 3, H, W]` float32 strong view of the weak images.
        theta: `[B, 3, 3]` weak-view -> strong-view normalized coordinates.
        teacher_heatmaps: `[B, K, h, w]` float32 teacher heatmaps moved into the strong view (the
            consistency target; outside the weak frame 0).
        frame_mask: `[B, h, w]` bool, True where the strong view's heatmap pixel comes from inside the weak frame.
        keypoints: `[B, M, K, 3]` pseudo people in strong-view pixels (visibility 0 once outside the
            frame), or None when none were given.
    """

    pixel_values: torch.Tensor
    theta: torch.Tensor
    teacher_heatmaps: torch.Tensor
    frame_mask: torch.Tensor
    keypoints: torch.Tensor | None = None


class StrongView:
    """Weak batch (+ teacher heatmaps and pseudo people) -> `StrongBatch`, with torch's global RNG.

    Draws, in order: theta (rotation, scale, x shift, y shift; B each), then `augment_pixels`' jitter
    factors, cutout centers and joint cutout choices (on the pseudo people, in strong-view pixels).

    Args:
        augmentation: the strengths (`SemiPoseTrainingArguments.strong_augmentation`); `flip_probability`
            must be 0, since theta does not mirror (the heatmap channels would need swapping).
        image_mean, image_std: the normalization of the weak pixel values.
    """

    def __init__(
        self,
        augmentation: AugmentationConfig,
        image_mean: Sequence[float] = IMAGENET_DEFAULT_MEAN,
        image_std: Sequence[float] = IMAGENET_DEFAULT_STD,
    ):
        if augmentation.flip_probability != 0:
            raise ValueError(
                "StrongView: expected flip_probability 0 (theta does not mirror, so the teacher's heatmap channels "
                f"would need swapping), got {augmentation.flip_probability}."
            )
        self.augmentation = augmentation
        self.image_mean, self.image_std = image_mean, image_std

    def __call__(
        self, pixel_values: torch.Tensor, teacher_heatmaps: torch.Tensor, keypoints: torch.Tensor | None = None
    ) -> StrongBatch:
        """The strong view of `pixel_values` [B, 3, H, W] (the weak view, normalized).

        Args:
            pixel_values: the weak unlabeled batch.
            teacher_heatmaps: `[B, K, h, w]` the teacher's heatmaps on it.
            keypoints: `[B, M, K, 3]` pseudo people in weak-view pixels, or None (consistency mode).
        """
        size = tuple(pixel_values.shape[-2:])
        theta = sample_strong_affine(pixel_values.shape[0], size, self.augmentation, pixel_values.device)
        heatmaps = warp_by_theta(teacher_heatmaps.float(), theta)
        moved = None if keypoints is None else transform_keypoints_by_theta(keypoints.float(), theta, size)
        warped = warp_by_theta(pixel_values.float(), theta)
        strong = augment_pixels(warped, self.augmentation, moved, self.image_mean, self.image_std)
        frame_mask = warped_frame_mask(theta, tuple(heatmaps.shape[-2:]))
        return StrongBatch(strong, theta, heatmaps, frame_mask, moved)


def sample_strong_affine(
    batch_size: int,
    image_size: tuple[int, int],
    augmentation: AugmentationConfig,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """Random per-image affines `theta` [B, 3, 3] mapping weak-view to strong-view normalized coordinates.

    Reads `max_rotation` (degrees), `scale_range` and `max_translation` (a fraction of each side); never flips.
    """
    height, width = image_size
    angle = draw_uniform(batch_size, -augmentation.max_rotation, augmentation.max_rotation, device) * math.pi / 180
    scale = draw_uniform(batch_size, *augmentation.scale_range, device)
    shift_x = draw_uniform(batch_size, -augmentation.max_translation, augmentation.max_translation, device) * width
    shift_y = draw_uniform(batch_size, -augmentation.max_translation, augmentation.max_translation, device) * height
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


def warp_by_theta(images: torch.Tensor, theta: torch.Tensor, mode: str = "bilinear") -> torch.Tensor:
    """Resample `images` [B, C, H, W] so that content at weak position p lands at `theta @ p`; outside is 0."""
    inverse = torch.linalg.inv(theta.float())[:, :2, :]
    grid = F.affine_grid(inverse, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid.to(images.dtype), mode=mode, padding_mode="zeros", align_corners=False)


def warped_frame_mask(theta: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bool [B, H, W]: pixels of the strong view that come from inside the weak view's frame."""
    ones = torch.ones(theta.shape[0], 1, *size, device=theta.device)
    return warp_by_theta(ones, theta, mode="nearest")[:, 0] > 0.5


def transform_keypoints_by_theta(
    keypoints: torch.Tensor, theta: torch.Tensor, size: tuple[int, int]
) -> torch.Tensor:
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
