"""Rows -> batches: training rows stacked (people padded with all-zero rows), validation rows through the
image processor.

- `PoseDataCollator`: rows of `LabeledTransform` / `UnlabeledTransform` (`SemiSupervisedCollator` in
  `semipose.data.semi_supervised` pairs two of them).
- `EvaluationCollator`: validation rows, un-augmented, exactly as a user's image goes through
  `PoseImageProcessor`, plus the `target_sizes` that map predictions back to original pixels.

Shapes: B images, M people (per image; the batch holds the largest M), K keypoints, S input size.

Example:

```python
>>> from datasets import Dataset
>>> from torch.utils.data import DataLoader
>>> from semipose.data.coco_format import pose_features, read_coco_keypoints
>>> from semipose.data.transforms import LabeledTransform
>>> from semipose.modeling import PoseImageProcessor
>>> rows = read_coco_keypoints("tests/fixtures/coco/test_coco.json", "tests/fixtures/coco", show_progress=False)
>>> validation_rows = Dataset.from_list(rows, features=pose_features(17))
>>> loader = DataLoader(validation_rows.with_transform(LabeledTransform(256)), batch_size=4,
...                     collate_fn=PoseDataCollator())
>>> batch = next(iter(loader))
>>> sorted(batch), batch["keypoints"].shape  # [B, M, K, 3], M = most people in one image
(['ignore_mask', 'image_ids', 'keypoints', 'pixel_values'], torch.Size([4, 5, 17, 3]))
>>> loader = DataLoader(validation_rows, batch_size=4, collate_fn=EvaluationCollator(PoseImageProcessor()))
>>> sorted(next(iter(loader)))
['image_ids', 'pixel_values', 'target_sizes']

```
"""

from __future__ import annotations

from typing import Any

import PIL.Image
import torch
from torch.nn.utils.rnn import pad_sequence

from ..modeling.pipeline_pose_estimation import UnreadableImageError
from .unreadable import UNREADABLE_KEY, decode_row_image

LABEL_KEYS = ("keypoints", "ignore_mask")


class PoseDataCollator:
    """Collate rows from `LabeledTransform` or `UnlabeledTransform` into model inputs.

    Returns `pixel_values` `[B, 3, S, S]` and `image_ids` `[B]` int64; for labeled rows also
    `keypoints` `[B, M, K, 3]` (all-zero rows pad images with fewer people; M may be 0) and
    `ignore_mask` `[B, S, S]` bool. A batch must be all labeled or all unlabeled. Rows from
    `SkipUnreadable` add `unreadable_image_ids` `[U]` int64: the images skipped to fill the batch.
    """

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        if not features:
            raise ValueError("PoseDataCollator: expected at least one row, got an empty list.")
        batch = {
            "pixel_values": _stack(features, "pixel_values"),
            "image_ids": torch.tensor([int(row["image_id"]) for row in features]),
        }
        labeled = [all(key in row for key in LABEL_KEYS) for row in features]
        if any(labeled) and not all(labeled):
            ids = [int(row["image_id"]) for row, has in zip(features, labeled) if not has]
            raise ValueError(
                f"PoseDataCollator: rows {ids} lack {list(LABEL_KEYS)}; the other rows have them."
            )
        if all(labeled):
            batch["keypoints"] = pad_people([row["keypoints"] for row in features])
            batch["ignore_mask"] = _stack(features, "ignore_mask")
        if any(UNREADABLE_KEY in row for row in features):
            batch[UNREADABLE_KEY] = torch.tensor(
                [image_id for row in features for image_id in row.get(UNREADABLE_KEY, [])], dtype=torch.int64
            )
        return batch


def pad_people(keypoints: list[torch.Tensor]) -> torch.Tensor:
    """Pad per-image keypoints `[M_i, K, 3]` with all-zero people to `[B, max M_i, K, 3]`."""
    shapes = {tuple(people.shape[1:]) for people in keypoints}
    if len(shapes) != 1 or len(next(iter(shapes))) != 2:
        raise ValueError(
            f"pad_people: expected keypoints [M, K, 3] with one K per batch, got {sorted(shapes)}."
        )
    return pad_sequence(keypoints, batch_first=True, padding_value=0.0)


def _stack(features: list[dict[str, Any]], key: str) -> torch.Tensor:
    shapes = {tuple(row[key].shape) for row in features}
    if len(shapes) != 1:
        raise ValueError(
            f"PoseDataCollator: expected every {key!r} to have one shape, got {sorted(shapes)}."
        )
    return torch.stack([row[key] for row in features])


class EvaluationCollator:
    """Collate validation rows (dataset-folder schema; `image` decoded, or not, see `lazy_images`) with an image
    processor. An unreadable image raises `UnreadableImageError` naming it, instead of skewing the AP.

    Args:
        image_processor: a `PoseImageProcessor` (resize longest edge, pad, normalize).
    """

    def __init__(self, image_processor):
        if image_processor is None:
            raise ValueError("Evaluation needs an image processor (pass processing_class=PoseImageProcessor(...)).")
        self.image_processor = image_processor

    def __call__(self, rows: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        images = [_validation_image(row) for row in rows]
        pixel_values = self.image_processor(images, return_tensors="pt")["pixel_values"]
        return {
            "pixel_values": pixel_values,
            "image_ids": torch.tensor([int(row["image_id"]) for row in rows], dtype=torch.int64),
            "target_sizes": torch.tensor([[image.height, image.width] for image in images], dtype=torch.int64),
        }


def _validation_image(row: dict[str, Any]) -> PIL.Image.Image:
    """The row's RGB image; an unreadable file stops evaluation, since skipping it would bias AP."""
    try:
        return decode_row_image(row)
    except UnreadableImageError as error:
        raise UnreadableImageError(
            f"Validation split: {error} Evaluation scores every validation image (a skipped one would count its "
            "people as missed): restore the file, or drop its row from the validation split.",
            error.image_id,
        ) from error
