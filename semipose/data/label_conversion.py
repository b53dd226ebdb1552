"""What the label-file converters share: boxes from keypoints, COCO dicts in memory, a seeded validation hold-out.

The label files of the field (DeepLabCut / Lightning Pose CSV, SLEAP `.slp`) hold keypoints per image, but no
boxes, no OKS areas and often no validation split. A converter reads its format into `LabeledImage`s (an image's
path relative to one image root, its size, and each instance's `[K, 3]` keypoints) and calls `convert_labels`,
which gives what `prepare_dataset_folder` takes: a training and a validation COCO dict (in memory, category
`skeleton.coco_category()`), the image root both are relative to, the skeleton and the `sources` to record. The
images stay where they are.

Shapes: K keypoints of the skeleton; an instance is `[K, 3]` (x, y, v) in the coordinate convention of
`semipose.skeletons` (integer coordinates are pixel centers, so an image of width W spans x in [-0.5, W - 0.5]);
v is 2 for a labeled keypoint and 0, with x = y = 0, for an unlabeled one (the formats have no "occluded").

Example:

```python
>>> import numpy as np
>>> from semipose.data.label_conversion import LabeledImage, convert_labels, keypoints_from_xy
>>> from semipose.skeletons import Skeleton
>>> skeleton = Skeleton.from_dict({"name": "mouse", "keypoints": ["nose", "tail"]})
>>> keypoints_from_xy(np.array([[10.0, 20.0], [np.nan, np.nan]])).tolist()  # the tail is not labeled
[[10.0, 20.0, 2.0], [0.0, 0.0, 0.0]]
>>> mouse = keypoints_from_xy(np.array([[10.0, 10.0], [30.0, 20.0]]))
>>> images = [LabeledImage(f"frames/{i}.png", 40, 30, [mouse], f"labels.csv line {i + 4}") for i in range(5)]
>>> converted = convert_labels(images, "project", skeleton, ["labels.csv"], val_fraction=0.2, seed=0)
>>> len(converted.train["images"]), [image["file_name"] for image in converted.validation["images"]]
(4, ['frames/2.png'])
>>> converted.train["annotations"][0]["bbox"], converted.train["annotations"][0]["area"]
([8.0, 8.0, 24.0, 14.0], 336.0)

```
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..skeletons import Skeleton

logger = logging.getLogger(__name__)

BOX_PADDING = 0.1
"""Padding added on each side of the tight box of an instance's labeled keypoints, as a fraction of that box's
longer side (then clipped to the image). Labeled keypoints rarely reach an animal's outline (a nose tip, paws, a
tail base), so their tight box cuts the body off; 10% on each side brings the box, and the OKS area taken from it,
closer to what a box annotator would draw. A box without extent (one labeled keypoint, or all of them on one
spot) takes the padding from the image's longer side instead: a square of 20% of the image around the point, a
stated guess, where a zero area would make OKS score every prediction of that instance 0."""
DEFAULT_VAL_FRACTION = 0.1
"""The fraction of labeled images held out for validation when the label files name no validation split."""


@dataclass(frozen=True)
class LabeledImage:
    """One labeled image of a label file, as a converter reads it.

    Attributes:
        file_name: the image's path relative to the image root, with `/` separators (its key: unique, sorted
            for the validation draw, matched by `val_files`).
        width, height: the image's size in pixels.
        instances: one `[K, 3]` (x, y, v) array per labeled instance (see `keypoints_from_xy`).
        source: where the image is labeled, for error messages (`"CollectedData.csv line 5"`).
    """

    file_name: str
    width: int
    height: int
    instances: Sequence[np.ndarray]
    source: str


@dataclass(frozen=True)
class ConvertedLabels:
    """What `prepare_dataset_folder` needs from a label file: pass `image_root` as both image folders.

    Attributes:
        train, validation: COCO dicts (`images`, `annotations`, `categories`) whose `file_name`s are relative
            to `image_root`.
        image_root: the folder the images' `file_name`s are relative to.
        skeleton: the keypoint layout, the category of both dicts.
        sources: the label files and how the validation images were chosen, for the folder's metadata.
    """

    train: dict[str, Any]
    validation: dict[str, Any]
    image_root: Path
    skeleton: Skeleton
    sources: dict[str, str]


def keypoints_from_xy(xy: np.ndarray) -> np.ndarray:
    """`[K, 2]` (x, y) with NaN for an unlabeled keypoint -> `[K, 3]` (x, y, v): v = 2 where labeled, else
    (0, 0, 0). A keypoint with only one of x, y NaN counts as unlabeled; the readers refuse such input first."""
    xy = np.asarray(xy, dtype=np.float64)
    labeled = ~np.isnan(xy).any(axis=1)
    keypoints = np.zeros((len(xy), 3))
    keypoints[labeled, :2] = xy[labeled]
    keypoints[labeled, 2] = 2
    return keypoints


def keypoint_box(keypoints: np.ndarray, width: int, height: int, padding: float = BOX_PADDING) -> list[float]:
    """`[x, y, w, h]` box of an instance's labeled keypoints, padded and clipped to the image (see `BOX_PADDING`).

    Args:
        keypoints: `[K, 3]` (x, y, v); at least one with v > 0.
        width, height: the image's size; the box stays within [-0.5, W - 0.5] x [-0.5, H - 0.5].
        padding: fraction of the tight box's longer side added on each side (of the image's longer side for a
            tight box without extent).

    Example:

    ```python
    >>> keypoint_box(np.array([[10.0, 10.0, 2], [30.0, 20.0, 2], [0.0, 0.0, 0]]), 100, 100)
    [8.0, 8.0, 24.0, 14.0]
    >>> keypoint_box(np.array([[1.0, 50.0, 2]]), 100, 60)  # one keypoint: 10% of 100 each side, clipped
    [-0.5, 40.0, 11.5, 19.5]

    ```
    """
    labeled = keypoints[keypoints[:, 2] > 0, :2]
    if not len(labeled):
        raise ValueError("keypoint_box needs at least one labeled keypoint (v > 0), got none.")
    low, high = labeled.min(axis=0), labeled.max(axis=0)
    longer = float((high - low).max())
    pad = padding * (longer if longer > 0 else max(width, height))
    low = np.maximum(low - pad, -0.5)
    high = np.maximum(np.minimum(high + pad, [width - 0.5, height - 0.5]), low)
    return [float(low[0]), float(low[1]), float(high[0] - low[0]), float(high[1] - low[1])]


def coco_dict(images: Sequence[LabeledImage], skeleton: Skeleton) -> dict[str, Any]:
    """The COCO dict of labeled images: image ids 1..N in `file_name` order, annotation ids 1, 2, ... in that
    order; `area` is the padded box's w * h (the OKS scale; `keypoint_box`). Instances without a labeled
    keypoint are left out (they have no box); an image without instances stays, as an image with no animal.

    Raises:
        ValueError: two images have the same `file_name` (naming both sources), or an instance is not `[K, 3]`.
    """
    images = _sorted_unique(images)
    coco = {"images": [], "annotations": [], "categories": [skeleton.coco_category()]}
    for image_id, image in enumerate(images, 1):
        coco["images"].append({"id": image_id, "file_name": image.file_name, "width": image.width,
                               "height": image.height})
        for keypoints in image.instances:
            annotation = _annotation(keypoints, image, image_id, skeleton)
            if annotation is not None:
                coco["annotations"].append({"id": len(coco["annotations"]) + 1, **annotation})
    return coco


def _sorted_unique(images: Sequence[LabeledImage]) -> list[LabeledImage]:
    """The images by `file_name`; ValueError naming both sources of a `file_name` labeled twice."""
    images = sorted(images, key=lambda image: image.file_name)
    for first, second in zip(images, images[1:]):
        if first.file_name == second.file_name:
            raise ValueError(
                f"{second.source}: labels the image {second.file_name!r} that {first.source} labels too; "
                "each image must be labeled once (its image id must be unique)."
            )
    return images


def _annotation(keypoints: np.ndarray, image: LabeledImage, image_id: int, skeleton: Skeleton) -> dict | None:
    """A COCO annotation (no `id`) for one instance, or None for an instance without a labeled keypoint."""
    keypoints = np.asarray(keypoints, dtype=np.float64)
    if keypoints.shape != (skeleton.num_keypoints, 3):
        raise ValueError(
            f"{image.source}: an instance has keypoints of shape {keypoints.shape}, expected "
            f"({skeleton.num_keypoints}, 3) for the {skeleton.name!r} skeleton."
        )
    num_labeled = int((keypoints[:, 2] > 0).sum())
    if num_labeled == 0:
        return None
    bbox = keypoint_box(keypoints, image.width, image.height)
    return {"image_id": image_id, "category_id": 1, "iscrowd": 0, "num_keypoints": num_labeled,
            "keypoints": [float(value) for value in keypoints.reshape(-1)], "bbox": bbox,
            "area": bbox[2] * bbox[3]}


def hold_out_validation(
    coco: dict[str, Any], *, val_fraction: float = DEFAULT_VAL_FRACTION, seed: int = 0,
    val_files: Sequence[str] | None = None,
) -> tuple[dict[str, Any], dict[str, Any], str]:
    """Split a COCO dict into training and validation images, for label files without a validation split.

    The validation images are the listed `val_files`, else the first `round(val_fraction * N)` (at least 1, at
    most N - 1) of `numpy.random.default_rng(seed).permutation` of the N sorted `file_name`s: the same labels
    and seed always hold out the same images.

    Returns:
        The training dict, the validation dict and a one-line record of how the validation images were chosen.

    Raises:
        ValueError: a fraction outside (0, 1), a single image (nothing left to train on), or a listed file that is
            not among the labeled images (naming it).
    """
    names = sorted(image["file_name"] for image in coco["images"])
    if val_files is not None:
        held_out = _listed_files(val_files, names)
        record = f"the {len(held_out)} listed images (val_files) of {len(names)} labeled images"
    else:
        held_out = _drawn_files(names, val_fraction, seed)
        record = (f"{len(held_out)} of {len(names)} labeled images, the first of "
                  f"numpy.random.default_rng({seed}).permutation of the sorted file names (val_fraction "
                  f"{val_fraction:g})")
    return _subset(coco, held_out, inside=False), _subset(coco, held_out, inside=True), record


def _listed_files(val_files: Sequence[str], names: list[str]) -> set[str]:
    listed = [Path(name.replace("\\", "/")).as_posix() for name in val_files]
    unknown = [name for name in listed if name not in names]
    if unknown:
        raise ValueError(
            f"Validation files {unknown} are not among the {len(names)} labeled images (e.g. {names[:3]}); "
            "give their paths as the label file writes them."
        )
    if not listed or len(set(listed)) == len(names):
        raise ValueError(
            f"val_files must list at least one and fewer than all {len(names)} labeled images, got {len(listed)}."
        )
    return set(listed)


def _drawn_files(names: list[str], val_fraction: float, seed: int) -> set[str]:
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}.")
    if len(names) < 2:
        raise ValueError(
            f"Only {len(names)} labeled image: a validation image cannot be held out and leave one to train on."
        )
    count = min(max(1, round(val_fraction * len(names))), len(names) - 1)
    order = np.random.default_rng(seed).permutation(len(names))
    return {names[index] for index in order[:count]}


def _subset(coco: dict[str, Any], held_out: set[str], *, inside: bool) -> dict[str, Any]:
    """The images in `held_out` (`inside`) or all others, with their annotations."""
    images = [image for image in coco["images"] if (image["file_name"] in held_out) == inside]
    ids = {image["id"] for image in images}
    annotations = [annotation for annotation in coco["annotations"] if annotation["image_id"] in ids]
    return {"images": images, "annotations": annotations, "categories": coco["categories"]}


def convert_labels(
    images: Sequence[LabeledImage], image_root: str | Path, skeleton: Skeleton, label_files: Sequence[str | Path],
    *, val_fraction: float = DEFAULT_VAL_FRACTION, seed: int = 0, val_files: Sequence[str] | None = None,
) -> ConvertedLabels:
    """The training and validation COCO dicts of a converter's labeled images, with the sources to record.

    Args:
        images: every labeled image, `file_name`s relative to `image_root`.
        image_root: the folder the images' `file_name`s are relative to.
        skeleton: the keypoint layout of the instances.
        label_files: the files the labels were read from (recorded as the annotations' source).
        val_fraction, seed, val_files: the validation hold-out (`hold_out_validation`).

    Returns:
        A `ConvertedLabels`; its `sources` hold `train_annotations` and `val_annotations` (the label files, comma
        separated) and `validation` (how its images were chosen).
    """
    coco = coco_dict(images, skeleton)
    train, validation, record = hold_out_validation(coco, val_fraction=val_fraction, seed=seed,
                                                    val_files=val_files)
    files = ", ".join(str(Path(file).resolve()) for file in label_files)
    logger.info("Validation: %s.", record)
    return ConvertedLabels(train, validation, Path(image_root).resolve(), skeleton,
                           {"train_annotations": files, "val_annotations": files, "validation": record})
