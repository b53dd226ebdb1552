"""Stack transformed rows into a batch, padding the people dimension with all-zero rows.

Shapes: B images, M people (per image; the batch holds the largest M), K keypoints, S input size.

Example:

```python
>>> from torch.utils.data import DataLoader
>>> from semipose.data.collator import PoseDataCollator
>>> dataset = labeled.with_transform(LabeledTransform(256))
>>> loader = DataLoader(dataset, batch_size=8, collate_fn=PoseDataCollator())
>>> sorted(next(iter(loader)))
['ignore_mask', 'image_ids', 'keypoints', 'pixel_values']
```
"""

from __future__ import annotations

from typing import Any

import torch
from torch.nn.utils.rnn import pad_sequence

from .unreadable import UNREADABLE_KEY

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
