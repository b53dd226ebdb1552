"""Survive image files that cannot be read: decode in the transform, skip in the dataset, count in the batch.

A dataset folder written without `embed_images` stores absolute paths, so an image can go missing
or get corrupted after preparation. Decoding therefore happens in the transforms (the image column
cast with `decode=False`, see `lazy_images`), where a bad file raises `UnreadableImageError` naming
the image id and file instead of an error from inside `datasets`. `SkipUnreadable` serves the next
readable example in its place and lists the skipped image ids under `UNREADABLE_KEY`; the collators
stack those ids into the batch, which is how the count crosses from the `DataLoader` worker
processes to the main process (`semipose.training.data_health` counts them and enforces the limit).

Illustration (not run: needs a prepared dataset folder):

```python
labeled = lazy_images(load_pose_dataset(folder, "ratio_10", "labeled"))
labeled = SkipUnreadable(labeled.with_transform(LabeledTransform(256)))
labeled[3][UNREADABLE_KEY]  # ids of the unreadable images served around, usually []
```
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import PIL.Image
import PIL.ImageOps
from datasets import Dataset as HFDataset
from datasets import Image
from torch.utils.data import Dataset

from ..modeling.pipeline_pose_estimation import UnreadableImageError, open_image_file, to_rgb

logger = logging.getLogger(__name__)

UNREADABLE_KEY = "unreadable_image_ids"
"""Example and batch key: ids of the images skipped because their file could not be read."""


def lazy_images(dataset: HFDataset) -> HFDataset:
    """`dataset` with its `image` column left undecoded, so the transform decodes (and may skip) each file."""
    return dataset.cast_column("image", Image(decode=False))


def stored_image_file(image: dict[str, Any]) -> bytes | str:
    """The file of an undecoded `image` cell (see `lazy_images`): its embedded bytes, else its path."""
    return image["bytes"] or image["path"]


def decode_row_image(row: dict[str, Any]) -> PIL.Image.Image:
    """The row's image in RGB, decoding `{"path", "bytes"}` as `datasets.Image` does (EXIF orientation applied),
    converted as inference converts (`to_rgb`: 16-bit scaled, transparency on white), so that training, the
    trainer's evaluation and `semipose evaluate --model` see the same pixels.

    Raises:
        UnreadableImageError: the file is missing, truncated or not an image (names `image_id` and file).
    """
    image, image_id = row["image"], row.get("image_id")
    if not isinstance(image, PIL.Image.Image):
        if not isinstance(image, dict):
            raise ValueError(
                f"Image {image_id}: expected a PIL image or a {{'path', 'bytes'}} dict in column 'image', got "
                f"{type(image).__name__}."
            )
        try:
            with open_image_file(stored_image_file(image), f"Image {image_id}") as opened:
                image = PIL.ImageOps.exif_transpose(opened)
        except (FileNotFoundError, UnreadableImageError) as error:  # a missing file is skipped like a corrupt one
            raise UnreadableImageError(str(error), image_id) from error
    return image if image.mode == "RGB" else to_rgb(image)


class SkipUnreadable(Dataset):
    """Serves the next readable example in place of one whose image cannot be read, listing what it skipped.

    Every example gains `UNREADABLE_KEY`: the ids of the unreadable images passed over to reach it
    (usually none). Skipping forward keeps batches full, so no step ever sees an empty batch.

    Args:
        dataset: indexable dataset whose items raise `UnreadableImageError` for a bad image file
            (a `datasets.Dataset` through `lazy_images` and `LabeledTransform` / `UnlabeledTransform`).
    """

    def __init__(self, dataset: Sequence):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict[str, Any]:
        skipped = []
        for position in range(index, index + len(self.dataset)):
            try:
                example = self.dataset[position % len(self.dataset)]
            except UnreadableImageError as error:
                logger.warning("Skipping an unreadable training image: %s", error)
                skipped.append(error.image_id)
                continue
            return {**example, UNREADABLE_KEY: skipped}
        raise UnreadableImageError(
            f"None of the {len(self.dataset)} images of this dataset can be read (ids {skipped[:10]} ...); "
            "check that the image files the dataset folder points to still exist."
        )


def first_readable_images(dataset: Sequence, count: int) -> list[PIL.Image.Image]:
    """The first `count` readable images of a dataset's rows (RGB), passing over unreadable files."""
    images = []
    for index in range(len(dataset)):
        if len(images) == count:
            break
        try:
            images.append(decode_row_image(dataset[index]))
        except UnreadableImageError as error:
            logger.warning("Not drawing an unreadable image: %s", error)
    return images


def check_images_readable(dataset: HFDataset, split: str) -> None:
    """Open every image header of a split whose `image` column is undecoded; raise naming the unreadable ones.

    Evaluation needs every validation image, so the main job checks them before training instead of failing
    at the first evaluation, hours later. Only headers are read (about 0.1 ms an image): a missing, foreign or
    header-truncated file is found here, one truncated further in when evaluation decodes it.
    """
    failures = []
    for row in dataset.select_columns(["image", "image_id"]):
        try:
            with open_image_file(stored_image_file(row["image"]), f"image {row['image_id']}"):
                pass
        except (FileNotFoundError, UnreadableImageError) as error:
            failures.append(str(error))
    if failures:
        raise UnreadableImageError(
            f"{split} split: {len(failures)} of {len(dataset)} images cannot be read; first {min(len(failures), 5)}: "
            + " ".join(failures[:5])
        )
