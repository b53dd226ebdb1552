"""Dataset rows -> model inputs: one random affine view (scale, rotation, shift, flip) per image.

`LabeledTransform` and `UnlabeledTransform` are callables for `datasets.Dataset.with_transform`:
they take a batch of rows (a dict of column lists, row schema of `semipose.data.coco_format`) and
return a dict of per-row lists that `semipose.data.collator.PoseDataCollator` stacks.

Shapes: M people, K keypoints, (H, W) the decoded image, S the square input size.

Geometry. A view is ONE 3x3 matrix `A` from pixel coordinates of the decoded image to pixel
coordinates of the S x S input (integer coordinates are pixel centers, see `semipose.skeletons`). Its
identity is the placement of `semipose.modeling.input_geometry` (the longest side fitted to S, the photo at
the TOP-LEFT, padding at the bottom and right), the same one `PoseImageProcessor` uses at evaluation and
inference; the augmentation acts about the center of the placed photo, as HigherHRNet builds its crops: the
placement is multiplied by a random `scale`, rotated by `angle` degrees (counter-clockwise on screen),
shifted by `translation` input pixels and optionally mirrored:

    A = T(c_placed + translation) @ Mirror @ Rotate(angle) @ Scale(scale * S / max(H, W)) @ T(-c_image)

with `c_image = (W / 2 - 0.5, H / 2 - 0.5)`, `c_placed = (S W / max(H, W) / 2 - 0.5, S H / max(H, W) / 2 - 0.5)`
(where the placement puts `c_image`), `Mirror: x -> -x`. For a square image `c_placed` is the input center.
Image, ignore mask and keypoints all go through the same `A` (`input_geometry.render_input` /
`warp_by_matrix`, `transform_keypoints_by_view`), so they cannot disagree (the device-side strong view uses
normalized `theta` instead, see `semipose.training.views`);
the image is sampled bilinearly (after an exact box reduction by an integer factor when the view
shrinks it 2x or more), the mask by nearest neighbour, and input pixels whose center falls outside
the image are 0 after normalization (the mean color, as `PoseImageProcessor` pads; not ignored).
torchvision's `v2.functional.affine`
keeps the canvas size, so it would need a second resampling to reach S x S; decoding (to a
`tv_tensors.Image`) and normalization use `torchvision.transforms.v2.functional`. Color jitter,
cutout and joint cutout then run on the warped view (`semipose.data.pixel_augmentation`), the same
code the strong view of unlabeled images runs on the device, so the two strong views agree.

The `image` column may be decoded (PIL) or not (`{"path", "bytes"}`, see
`semipose.data.unreadable.lazy_images`): an undecoded file is decoded here, and one that cannot be
read raises `UnreadableImageError` naming the image id and file, which `SkipUnreadable` skips.

Randomness comes from `generator` (a `torch.Generator`), or torch's global RNG when it is None,
which the `DataLoader` seeds differently in every worker: keep None when `num_workers > 0`.

Example:

```python
>>> from datasets import Dataset
>>> from semipose.data.coco_format import pose_features, read_coco_keypoints
>>> from semipose.data.transforms import AugmentationConfig, LabeledTransform
>>> rows = read_coco_keypoints("tests/fixtures/coco/test_coco.json", "tests/fixtures/coco", show_progress=False)
>>> labeled = Dataset.from_list(rows, features=pose_features(17))  # or load_dataset(folder, "ratio_10", ...)
>>> transform = LabeledTransform(256, AugmentationConfig.strong(), skeleton="coco")
>>> labeled = labeled.with_transform(transform)
>>> example = labeled[0]
>>> example["pixel_values"].shape, example["ignore_mask"].shape
(torch.Size([3, 256, 256]), torch.Size([256, 256]))

```
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import PIL.Image
import torch
import torchvision.transforms.v2.functional as F
from pycocotools import mask as mask_utils
from transformers.image_utils import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD

from ..modeling.input_geometry import placed_extent, render_input, warp_by_matrix
from ..skeletons import Skeleton, resolve_skeleton
from .pixel_augmentation import augment_pixels
from .unreadable import decode_row_image

logger = logging.getLogger(__name__)

Batch = dict[str, list[Any]]


@dataclass(frozen=True)
class AugmentationConfig:
    """Strength of the random view drawn per image; the defaults are HigherHRNet's training recipe.

    Args:
        scale_range: `(low, high)` factor, drawn uniformly, on top of fitting the longest side to S.
        max_rotation: rotation angle drawn uniformly from `[-max_rotation, max_rotation]` degrees.
        max_translation: shift per axis drawn uniformly from `[-max_translation, max_translation]`
            times S.
        flip_probability: probability of a horizontal flip (left/right keypoints swapped).
        color_jitter: brightness, contrast and saturation factors drawn per image from
            `[1 - color_jitter, 1 + color_jitter]` (`pixel_augmentation.photometric_jitter`, on the
            warped view); 0 disables the photometric step.
        cutout_holes: squares of the mean color painted at random places of the view (their keypoints
            stay labeled, as the semi student's strong view keeps them).
        cutout_size: side of such a square as a fraction of S.
        joint_cutout_probability: chance that each visible keypoint is hidden by a square (views with
            keypoints: labeled images, and the pseudo people of the unlabeled strong view).
        joint_cutout_size: side of that square as a fraction of S.

    Example:

    ```python
    >>> AugmentationConfig.light().max_rotation, AugmentationConfig.none().flip_probability
    (10.0, 0.0)

    ```
    """

    scale_range: tuple[float, float] = (0.75, 1.5)
    max_rotation: float = 30.0
    max_translation: float = 40 / 512
    flip_probability: float = 0.5
    color_jitter: float = 0.0
    cutout_holes: int = 0
    cutout_size: float = 0.25
    joint_cutout_probability: float = 0.0
    joint_cutout_size: float = 0.1

    def __post_init__(self) -> None:
        low, high = self.scale_range
        checks = {
            "scale_range": (0 < low <= high, "0 < low <= high"),
            "max_rotation": (self.max_rotation >= 0, ">= 0 degrees"),
            "max_translation": (0 <= self.max_translation <= 1, "in [0, 1]"),
            "flip_probability": (0 <= self.flip_probability <= 1, "in [0, 1]"),
            "color_jitter": (0 <= self.color_jitter < 1, "in [0, 1)"),
            "cutout_holes": (self.cutout_holes >= 0, ">= 0"),
            "cutout_size": (0 <= self.cutout_size <= 1, "in [0, 1]"),
            "joint_cutout_probability": (0 <= self.joint_cutout_probability <= 1, "in [0, 1]"),
            "joint_cutout_size": (0 <= self.joint_cutout_size <= 1, "in [0, 1]"),
        }
        for name, (ok, expected) in checks.items():
            if not ok:
                got = getattr(self, name)
                raise ValueError(f"AugmentationConfig.{name}: expected {expected}, got {got}.")

    @classmethod
    def none(cls) -> AugmentationConfig:
        """No augmentation: the placement of `input_geometry` (longest side S, top-left) into S x S."""
        return cls(
            scale_range=(1.0, 1.0), max_rotation=0.0, max_translation=0.0, flip_probability=0.0
        )

    @classmethod
    def higherhrnet(cls) -> AugmentationConfig:
        """HigherHRNet's training recipe (scale 0.75-1.5, rotation 30, shift 40/512, flip): the real-data anchors."""
        return cls()

    @classmethod
    def light(cls) -> AugmentationConfig:
        """Mild geometry (rotation 10, scale 0.9-1.1, shift 5%, flip): the weak unlabeled view."""
        return cls(
            scale_range=(0.9, 1.1), max_rotation=10.0, max_translation=0.05, flip_probability=0.5
        )

    @classmethod
    def strong(cls) -> AugmentationConfig:
        """The semi student's strong view: rotation 30, scale 0.75-1.25, shift 10%, flip, color jitter 0.4,
        one random cutout of 1/4 side and joint cutout (10% of keypoints). The one definition of both strong
        views: labeled images take it as it is, the unlabeled strong view (`SemiPoseTrainingArguments.strong_*`
        default to it) without the flip."""
        return cls(
            scale_range=(0.75, 1.25), max_rotation=30.0, max_translation=0.1, flip_probability=0.5,
            color_jitter=0.4, cutout_holes=1, cutout_size=0.25, joint_cutout_probability=0.1,
            joint_cutout_size=0.1,
        )


class View(NamedTuple):
    """One sampled view: `matrix` [3, 3] float64 maps image pixels to input pixels."""

    matrix: torch.Tensor
    flipped: bool


def view_matrix(
    image_size: tuple[int, int],
    input_size: int,
    scale: float = 1.0,
    angle: float = 0.0,
    translation: tuple[float, float] = (0.0, 0.0),
    flipped: bool = False,
) -> torch.Tensor:
    """The affine matrix of one view (formula in the module docstring).

    Args:
        image_size: `(H, W)` of the decoded image.
        input_size: S, the side of the square model input.
        scale: factor on top of fitting the longest side to S.
        angle: rotation in degrees, counter-clockwise on screen.
        translation: `(dx, dy)` shift in input pixels.
        flipped: mirror the view horizontally.

    Returns:
        `[3, 3]` float64 tensor mapping homogeneous image pixel coordinates to input pixels.
    """
    height, width = image_size
    zoom = scale * input_size / max(height, width)
    radians = math.radians(angle)
    cos, sin = math.cos(radians) * zoom, math.sin(radians) * zoom
    mirror = -1.0 if flipped else 1.0
    linear = torch.tensor([[mirror * cos, mirror * sin], [-sin, cos]], dtype=torch.float64)
    image_center = torch.tensor([width / 2 - 0.5, height / 2 - 0.5], dtype=torch.float64)
    placed_height, placed_width = placed_extent(image_size, input_size)
    placed_center = torch.tensor([placed_width / 2 - 0.5, placed_height / 2 - 0.5], dtype=torch.float64)
    offset = placed_center + torch.tensor(translation, dtype=torch.float64) - linear @ image_center
    matrix = torch.eye(3, dtype=torch.float64)
    matrix[:2, :2], matrix[:2, 2] = linear, offset
    return matrix


def sample_view(
    config: AugmentationConfig,
    image_size: tuple[int, int],
    input_size: int,
    generator: torch.Generator | None = None,
) -> View:
    """Draw one random view; it always takes 5 numbers from `generator`: equal seeds, equal views.

    Args:
        config: augmentation strengths.
        image_size: `(H, W)` of the decoded image.
        input_size: S.
        generator: source of randomness; None uses torch's global RNG.
    """
    draws = torch.rand(5, generator=generator, dtype=torch.float64).tolist()
    low, high = config.scale_range
    shift = config.max_translation * input_size
    flipped = draws[4] < config.flip_probability
    matrix = view_matrix(
        image_size,
        input_size,
        scale=low + (high - low) * draws[0],
        angle=config.max_rotation * (2 * draws[1] - 1),
        translation=(shift * (2 * draws[2] - 1), shift * (2 * draws[3] - 1)),
        flipped=flipped,
    )
    return View(matrix, flipped)


def transform_keypoints_by_view(
    keypoints: torch.Tensor, view: View, input_size: int, flip_index: Sequence[int]
) -> torch.Tensor:
    """Map keypoints through a view; swap left/right channels after a flip.

    Args:
        keypoints: `[M, K, 3]` (x, y, v) in image pixels.
        view: the view the image went through.
        input_size: S.
        flip_index: K indices of the skeleton's horizontal-flip permutation.

    Returns:
        `[M, K, 3]` float32 in input pixels. Keypoints with v = 0, or whose pixel lies outside the
        S x S input (x or y outside `[-0.5, S - 0.5)`), become all-zero triples.
    """
    xy = keypoints[..., :2].double()
    moved = xy @ view.matrix[:2, :2].T + view.matrix[:2, 2]
    inside = ((moved >= -0.5) & (moved < input_size - 0.5)).all(dim=-1) & (keypoints[..., 2] > 0)
    result = torch.cat([moved.float(), keypoints[..., 2:]], dim=-1) * inside[..., None]
    return result[:, list(flip_index)] if view.flipped else result


def _rows(batch: Batch, required: Sequence[str], transform: str) -> list[dict[str, Any]]:
    """Split a batch (dict of column lists) into rows, checking the required columns exist."""
    missing = [column for column in required if column not in batch]
    if missing:
        raise ValueError(
            f"{transform} needs columns {list(required)}; missing {missing} in {sorted(batch)}."
        )
    num_rows = len(batch[required[0]])
    return [{column: values[row] for column, values in batch.items()} for row in range(num_rows)]


class _ViewTransform:
    """Shared part of both transforms: sample a view per row, render normalized pixel values.

    Subclasses define `transform_row(row) -> dict` and the `output_keys` it fills.
    """

    required_columns: tuple[str, ...] = ("image", "image_id")
    output_keys: tuple[str, ...]

    def __init__(
        self,
        input_size: int,
        augmentation: AugmentationConfig,
        image_mean: Sequence[float] = IMAGENET_DEFAULT_MEAN,
        image_std: Sequence[float] = IMAGENET_DEFAULT_STD,
        generator: torch.Generator | None = None,
    ) -> None:
        if input_size < 1:
            raise ValueError(f"input_size: expected a positive number of pixels, got {input_size}.")
        self.input_size = input_size
        self.augmentation = augmentation
        self.image_mean = list(image_mean)
        self.image_std = list(image_std)
        self.generator = generator

    def __call__(self, batch: Batch) -> dict[str, list[Any]]:
        rows = _rows(batch, self.required_columns, type(self).__name__)
        outputs = [self.transform_row(row) for row in rows]
        return {key: [output[key] for output in outputs] for key in self.output_keys}

    def _pixel_values(
        self, image: PIL.Image.Image, view: View, keypoints: torch.Tensor | None = None
    ) -> torch.Tensor:
        """`[3, S, S]` float32: normalize, warp through `view` (padding is 0, the mean color), then jitter
        colors and cut out squares (on `keypoints` `[M, K, 3]` in input pixels too, when given)."""
        pixels = F.to_image(image).as_subclass(torch.Tensor)
        output_size = (self.input_size, self.input_size)
        warped = render_input(pixels, view.matrix, output_size, self.image_mean, self.image_std)[None]
        joints = None if keypoints is None else keypoints[None]
        mean, std = self.image_mean, self.image_std
        return augment_pixels(warped, self.augmentation, joints, mean, std, self.generator)[0]

    def _sample_view(self, image: PIL.Image.Image) -> View:
        image_size = (image.height, image.width)
        return sample_view(self.augmentation, image_size, self.input_size, self.generator)


class UnlabeledTransform(_ViewTransform):
    """Weak view of an unlabeled image: mild affine + flip, outputs `pixel_values` and `image_id`.

    Args:
        input_size: S, side of the square model input.
        augmentation: view strengths; defaults to `AugmentationConfig.light()`.
        image_mean, image_std: per-channel normalization (ImageNet by default).
        generator: randomness; None (the default) uses torch's global RNG, per DataLoader worker.

    Illustration (not run: needs an unlabeled split, see the module's example):

    ```python
    unlabeled = unlabeled.with_transform(UnlabeledTransform(256))
    sorted(unlabeled[0])  # ['image_id', 'pixel_values']
    ```
    """

    output_keys = ("pixel_values", "image_id")

    def __init__(
        self,
        input_size: int,
        augmentation: AugmentationConfig | None = None,
        image_mean: Sequence[float] = IMAGENET_DEFAULT_MEAN,
        image_std: Sequence[float] = IMAGENET_DEFAULT_STD,
        generator: torch.Generator | None = None,
    ) -> None:
        augmentation = augmentation or AugmentationConfig.light()
        super().__init__(input_size, augmentation, image_mean, image_std, generator)

    def transform_row(self, row: dict[str, Any]) -> dict[str, Any]:
        """One row -> `{"pixel_values": [3, S, S] float32, "image_id": int}`."""
        image = decode_row_image(row)
        pixel_values = self._pixel_values(image, self._sample_view(image))
        return {"pixel_values": pixel_values, "image_id": row["image_id"]}


class LabeledTransform(_ViewTransform):
    """Augmented labeled image: pixel values, keypoints in input pixels and the ignore mask.

    Args:
        input_size: S, side of the square model input.
        augmentation: view strengths; defaults to `AugmentationConfig()` (HigherHRNet's recipe).
        skeleton: skeleton (or its name) whose `flip_index` swaps left/right after a flip; a skeleton that is never
            mirrored (`flip_index` None) gets no flips, whatever `augmentation.flip_probability` says (logged).
        image_mean, image_std: per-channel normalization (ImageNet by default).
        generator: randomness; None (the default) uses torch's global RNG, per DataLoader worker.

    Outputs per row: `pixel_values` `[3, S, S]` float32, `keypoints` `[M, K, 3]` float32 in input
    pixels (v = 0 and zero coordinates for unlabeled or out-of-frame keypoints), `ignore_mask`
    `[S, S]` bool (True = crowd / unannotated person region) and `image_id`.

    Illustration (not run: needs a labeled split, see the module's example):

    ```python
    transform = LabeledTransform(256, AugmentationConfig.light(), skeleton="crowdpose")
    example = labeled.with_transform(transform)[0]
    example["keypoints"].shape  # torch.Size([M, 14, 3]): M people, (x, y, visibility) in input pixels
    ```
    """

    required_columns = ("image", "image_id", "width", "height", "keypoints", "ignore_rles")
    output_keys = ("pixel_values", "keypoints", "ignore_mask", "image_id")

    def __init__(
        self,
        input_size: int,
        augmentation: AugmentationConfig | None = None,
        skeleton: Skeleton | str = "coco",
        image_mean: Sequence[float] = IMAGENET_DEFAULT_MEAN,
        image_std: Sequence[float] = IMAGENET_DEFAULT_STD,
        generator: torch.Generator | None = None,
    ) -> None:
        augmentation = augmentation or AugmentationConfig()
        self.skeleton = resolve_skeleton(skeleton)
        if not self.skeleton.can_flip and augmentation.flip_probability > 0:
            logger.info("No flip augmentation: the %r skeleton is never mirrored.", self.skeleton.name)
            augmentation = dataclasses.replace(augmentation, flip_probability=0.0)
        super().__init__(input_size, augmentation, image_mean, image_std, generator)

    def transform_row(self, row: dict[str, Any]) -> dict[str, Any]:
        """One row -> `pixel_values`, `keypoints`, `ignore_mask`, `image_id` (see the class)."""
        image = decode_row_image(row)
        _check_image_size(row, image)
        keypoints = _keypoints(row, self.skeleton.num_keypoints)
        view = self._sample_view(image)
        flip_index = self.skeleton.flip_index
        keypoints = transform_keypoints_by_view(keypoints, view, self.input_size, flip_index)
        return {
            "pixel_values": self._pixel_values(image, view, keypoints),
            "keypoints": keypoints,
            "ignore_mask": self._ignore_mask(row, view),
            "image_id": row["image_id"],
        }

    def _ignore_mask(self, row: dict[str, Any], view: View) -> torch.Tensor:
        """`[S, S]` bool: union of the row's ignore regions, warped through the view (nearest)."""
        regions = ignore_region_mask(row["ignore_rles"], (row["height"], row["width"]))
        if regions is None:
            return torch.zeros(self.input_size, self.input_size, dtype=torch.bool)
        output_size = (self.input_size, self.input_size)
        warped = warp_by_matrix(regions[None].float(), view.matrix, output_size, mode="nearest")
        return warped[0] > 0.5


def ignore_region_mask(rles: Sequence[str], image_size: tuple[int, int]) -> torch.Tensor | None:
    """Union of COCO compressed RLE regions as a `[H, W]` bool mask, or None when there are none.

    Args:
        rles: R compressed RLE `counts` strings, each encoded at `image_size`.
        image_size: `(H, W)`.
    """
    if not rles:
        return None
    height, width = image_size
    encoded = [{"size": [height, width], "counts": rle.encode("utf-8")} for rle in rles]
    return torch.from_numpy(mask_utils.decode(encoded).any(axis=2))


def _check_image_size(row: dict[str, Any], image: PIL.Image.Image) -> None:
    if (image.width, image.height) != (row["width"], row["height"]):
        raise ValueError(
            f"Image {row['image_id']} ({row.get('file_name', '?')}): the record says "
            f"{row['width']}x{row['height']} (width x height) but the image file is "
            f"{image.width}x{image.height}."
        )


def _keypoints(row: dict[str, Any], num_keypoints: int) -> torch.Tensor:
    """The row's keypoints as a `[M, K, 3]` float32 tensor, checking the shape."""
    expected = f"keypoints of shape [M, {num_keypoints}, 3]"
    record = f"Image {row['image_id']} ({row.get('file_name', '?')})"
    try:
        keypoints = torch.as_tensor(np.asarray(row["keypoints"], dtype=np.float32))
    except ValueError as error:
        raise ValueError(f"{record}: expected {expected}, got a ragged list.") from error
    if keypoints.ndim >= 1 and len(keypoints) == 0:
        return keypoints.reshape(0, num_keypoints, 3)
    if keypoints.ndim != 3 or tuple(keypoints.shape[1:]) != (num_keypoints, 3):
        raise ValueError(f"{record}: expected {expected}, got {list(keypoints.shape)}.")
    return keypoints
