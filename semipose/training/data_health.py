"""Count the unreadable training images the data pipeline skipped, log them, and stop when there are too many.

`SkipUnreadable` (in the `DataLoader` workers) passes over image files that cannot be read and the
collators put the skipped ids in the batch under `unreadable_image_ids`; a worker's own counters never
reach the main process, the batch does. `UnreadableImagesMixin` takes that key out of every batch
before the training step, keeps the distinct ids, adds `train/unreadable_images` to each training log
and raises `TooManyUnreadableImagesError` once more than `max_unreadable_fraction` of the training
images (both streams) are known to be unreadable. Distinct ids make the limit independent of the
order images are drawn in and of how many epochs see the same bad file.

Illustration (not run: trains a model):

```python
trainer = SemiPoseTrainer(model=model, args=args, train_dataset=pairs, data_collator=collator,
                          max_unreadable_fraction=0.01)  # stop once more than 1% are unreadable
trainer.train()
trainer.unreadable_images.count  # distinct unreadable image ids seen so far: 0 while every file reads
```
"""

from __future__ import annotations

import logging
import math
from typing import Any

from ..data.unreadable import UNREADABLE_KEY

logger = logging.getLogger(__name__)

DEFAULT_MAX_UNREADABLE_FRACTION = 0.01


class TooManyUnreadableImagesError(ValueError):
    """More than `max_unreadable_fraction` of the training images could not be read."""


class UnreadableImageMonitor:
    """The distinct unreadable training images seen so far, against the allowed number.

    Args:
        num_images: training images in all streams (labeled + unlabeled).
        max_unreadable_fraction: largest allowed fraction of unreadable images, in [0, 1].
    """

    def __init__(self, num_images: int, max_unreadable_fraction: float = DEFAULT_MAX_UNREADABLE_FRACTION):
        if not 0 <= max_unreadable_fraction <= 1:
            raise ValueError(f"max_unreadable_fraction: expected a fraction in [0, 1], got {max_unreadable_fraction}.")
        self.num_images = num_images
        self.max_unreadable_fraction = max_unreadable_fraction
        self.limit = math.floor(max_unreadable_fraction * num_images)
        self.image_ids: set[int] = set()

    @property
    def count(self) -> int:
        return len(self.image_ids)

    def observe(self, batch: dict[str, Any]) -> None:
        """Take `unreadable_image_ids` out of `batch` (the model never sees it), warn about new ones, check."""
        skipped = batch.pop(UNREADABLE_KEY, None)
        new = set() if skipped is None else {int(image_id) for image_id in skipped.tolist()} - self.image_ids
        if not new:
            return
        self.image_ids |= new
        logger.warning(
            "Skipped unreadable training image(s) %s: %d of %d training images unreadable so far (limit %d = %g).",
            sorted(new), self.count, self.num_images, self.limit, self.max_unreadable_fraction,
        )
        if self.count > self.limit:
            raise TooManyUnreadableImagesError(
                f"{self.count} of the {self.num_images} training images cannot be read (ids "
                f"{sorted(self.image_ids)[:20]}), more than max_unreadable_fraction={self.max_unreadable_fraction:g} "
                f"allows ({self.limit}). The worker warnings name the files; restore them, re-run the dataset "
                "preparation, or raise --max_unreadable_fraction."
            )


def num_training_images(dataset: Any) -> int:
    """Images behind a training dataset: `num_images` of one that pairs streams (`SemiSupervisedDataset`), looked
    for through wrappers that keep the wrapped one as `.dataset` (`SeededSamples`), else its length; 0 for None."""
    if dataset is None:
        return 0
    inner = dataset
    while not hasattr(inner, "num_images") and hasattr(inner, "dataset"):
        inner = inner.dataset
    return getattr(inner, "num_images", None) or len(dataset)


class UnreadableImagesMixin:
    """Trainer mixin: `unreadable_image_ids` leave each batch before the step, are counted, logged and limited.

    Args:
        max_unreadable_fraction: keyword argument of the trainer's constructor; see `UnreadableImageMonitor`.
    """

    def __init__(self, *args, max_unreadable_fraction: float = DEFAULT_MAX_UNREADABLE_FRACTION, **kwargs):
        super().__init__(*args, **kwargs)
        num_images = num_training_images(self.train_dataset)
        self.unreadable_images = UnreadableImageMonitor(num_images, max_unreadable_fraction)

    def training_step(self, model, inputs, num_items_in_batch=None):
        self.unreadable_images.observe(inputs)
        return super().training_step(model, inputs, num_items_in_batch)

    def log(self, logs: dict[str, float], *args, **kwargs) -> None:
        if "loss" in logs:
            logs["train/unreadable_images"] = self.unreadable_images.count
        super().log(logs, *args, **kwargs)
