"""Validation rows -> model inputs for evaluation: the image processor's letterbox, plus what maps back.

Evaluation sees each validation image once, un-augmented, exactly as a user's image would go through
`PoseImageProcessor`; predictions are mapped back to original pixels with `target_sizes`.

Example:

```python
>>> loader = DataLoader(validation_rows, batch_size=8, collate_fn=EvaluationCollator(image_processor))
>>> sorted(next(iter(loader)))
['image_ids', 'pixel_values', 'target_sizes']
```
"""

from __future__ import annotations

from typing import Any

import PIL.Image
import torch

from ..data.unreadable import UnreadableImageError, decode_row_image


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
            f"Validation split: {error}. Evaluation scores every validation image (a skipped one would count its "
            "people as missed): restore the file, or drop its row from the validation split.",
            error.image_id,
        ) from error
