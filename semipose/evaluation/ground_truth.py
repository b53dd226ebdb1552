"""Keypoint ground truth in the COCO format that pycocotools scores against.

Two sources give the same structure: a COCO-format dict or json file (the original annotation
file of COCO, CrowdPose, ...) and the rows of a semipose dataset split (people plus ignore
regions, no need for the original json). Only what keypoint evaluation reads is kept (no
segmentation): images with their CrowdPose `crowdIndex`, one category, and annotations with
`keypoints`, `num_keypoints`, `bbox`, `area`, `iscrowd`.

Ignore regions of a row (crowd annotations and people with zero labeled keypoints) become
annotations with all-zero keypoints and `num_keypoints` 0, their `iscrowd`, `bbox` and `area`
kept, so pycocotools flags and matches them exactly as it does on the original json. Annotation
ids are renumbered 1..N: pycocotools treats a matched id of 0 as "unmatched".

Example:

```python
>>> from semipose.data.coco_format import read_coco_keypoints
>>> from semipose.evaluation.ground_truth import ground_truth_from_rows
>>> rows = read_coco_keypoints("tests/fixtures/coco/test_coco.json", "tests/fixtures/coco",
...                            show_progress=False)
>>> ground_truth = ground_truth_from_rows(rows, "coco")
>>> len(ground_truth["images"]), len(ground_truth["annotations"])
(4, 14)

```
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..skeletons import Skeleton, resolve_skeleton

PERSON_CATEGORY_ID = 1
ROW_COLUMNS = (
    "image_id", "file_name", "width", "height", "crowd_index",
    "annotation_ids", "keypoints", "bboxes", "areas", "num_keypoints",
    "ignore_annotation_ids", "ignore_bboxes", "ignore_areas", "ignore_iscrowd",
)
_IMAGE_KEYS = ("id", "file_name", "width", "height", "crowdIndex")


def load_coco_ground_truth(
    ground_truth: Mapping[str, Any] | str | Path, skeleton: Skeleton | str | None = None
) -> tuple[dict[str, Any], Skeleton]:
    """Check a COCO-format keypoint dict (or json file) and keep what evaluation reads.

    Args:
        ground_truth: dict with `images`, `annotations` and one `categories` entry, or the path
            of such a json file.
        skeleton: the keypoint layout; None: the category's (`Skeleton.from_coco_category`).

    Returns:
        The normalized ground truth (annotation ids renumbered 1..N) and the skeleton.
    """
    source = str(ground_truth) if isinstance(ground_truth, (str, Path)) else "ground truth"
    if isinstance(ground_truth, (str, Path)):
        ground_truth = json.loads(Path(ground_truth).read_text())
    missing = [key for key in ("images", "annotations", "categories") if key not in ground_truth]
    if missing:
        raise ValueError(
            f"{source}: expected COCO keys images/annotations/categories, missing {missing}."
        )
    categories = ground_truth["categories"]
    if len(categories) != 1:
        raise ValueError(
            f"{source}: expected exactly one (person) category, got {len(categories)}."
        )
    if skeleton is None:
        skeleton = Skeleton.from_coco_category(categories[0], f"{source}: categories[0]")
    skeleton = resolve_skeleton(skeleton)
    images = [
        {key: image[key] for key in _IMAGE_KEYS if key in image} for image in ground_truth["images"]
    ]
    annotations = [_annotation(ann, skeleton, source) for ann in ground_truth["annotations"]]
    category = skeleton.coco_category(categories[0]["id"])
    return _assemble(images, annotations, category), skeleton


def _annotation(ann: Mapping[str, Any], skeleton: Skeleton, source: str) -> dict[str, Any]:
    """One checked annotation with the fields keypoint evaluation reads."""
    where = f"{source}: annotation id {ann.get('id')}"
    keypoints = [float(value) for value in ann["keypoints"]]
    if len(keypoints) != 3 * skeleton.num_keypoints:
        raise ValueError(
            f"{where}: {len(keypoints)} keypoint numbers, expected {3 * skeleton.num_keypoints} "
            f"for the {skeleton.name!r} skeleton."
        )
    if "area" not in ann and not skeleton.oks_area_from_bbox:
        raise ValueError(f"{where}: no `area`, which the {skeleton.name!r} OKS needs.")
    bbox = [float(value) for value in ann["bbox"]]
    labeled = int(np.count_nonzero(np.asarray(keypoints[2::3]) > 0))
    return {
        "image_id": ann["image_id"], "category_id": ann["category_id"], "keypoints": keypoints,
        "num_keypoints": ann.get("num_keypoints", labeled),
        "bbox": bbox, "area": float(ann.get("area", bbox[2] * bbox[3])),
        "iscrowd": int(ann.get("iscrowd", 0)),
    }


def ground_truth_from_rows(
    rows: Iterable[Mapping[str, Any]], skeleton: Skeleton | str
) -> dict[str, Any]:
    """Build COCO-format ground truth from dataset rows (people and ignore regions).

    Args:
        rows: rows in the schema of `semipose.data.coco_format.pose_features`, e.g. a validation
            `datasets.Dataset` (its images are not decoded). Only `image_id`, `keypoints` and
            `bboxes` are required: `num_keypoints` defaults to the labeled count, ignore columns
            to none, `areas` to the box's `w * h` where the OKS scale comes from the box
            (CrowdPose); COCO needs `areas`.
        skeleton: the keypoint layout of the rows.

    Returns:
        A dict with `images`, `annotations` and `categories`.
    """
    skeleton = resolve_skeleton(skeleton)
    if hasattr(rows, "select_columns"):
        rows = rows.select_columns([name for name in rows.column_names if name in ROW_COLUMNS])
    images, annotations = [], []
    for row in rows:
        images.append(_row_image(row))
        annotations += _row_people(row, skeleton) + _row_ignore_regions(row, skeleton)
    return _assemble(images, annotations, skeleton.coco_category(PERSON_CATEGORY_ID))


def _row_image(row: Mapping[str, Any]) -> dict[str, Any]:
    image = {"id": int(row["image_id"])}
    for key in ("file_name", "width", "height"):
        if row.get(key) is not None:
            image[key] = row[key]
    if row.get("crowd_index") is not None:
        image["crowdIndex"] = float(row["crowd_index"])
    return image


def _row_people(row: Mapping[str, Any], skeleton: Skeleton) -> list[dict[str, Any]]:
    """The labeled people of a row as COCO annotations."""
    keypoints = np.asarray(row["keypoints"], dtype=np.float64)
    expected = (skeleton.num_keypoints, 3)
    if keypoints.size == 0:
        keypoints = keypoints.reshape(0, *expected)
    if keypoints.shape[1:] != expected:
        raise ValueError(
            f"Row of image id {row['image_id']}: keypoints have shape {list(keypoints.shape)}, "
            f"expected [M, {expected[0]}, 3] for the {skeleton.name!r} skeleton."
        )
    counts = row.get("num_keypoints")
    if counts is None:
        counts = np.count_nonzero(keypoints[..., 2] > 0, axis=-1)
    boxes = _column(row, "bboxes")
    areas = _areas(row, skeleton, boxes, "areas")
    return [
        _row_annotation(row, person.reshape(-1).tolist(), int(count), bbox, area, iscrowd=False)
        for person, count, bbox, area in zip(keypoints, counts, boxes, areas, strict=True)
    ]


def _row_ignore_regions(row: Mapping[str, Any], skeleton: Skeleton) -> list[dict[str, Any]]:
    """The ignore regions of a row as annotations without keypoints."""
    zeros = [0.0] * (3 * skeleton.num_keypoints)
    boxes = _column(row, "ignore_bboxes")
    areas = _areas(row, skeleton, boxes, "ignore_areas")
    iscrowd = row.get("ignore_iscrowd")
    iscrowd = [False] * len(boxes) if iscrowd is None else iscrowd
    return [
        _row_annotation(row, zeros, 0, bbox, area, iscrowd=bool(crowd))
        for bbox, area, crowd in zip(boxes, areas, iscrowd, strict=True)
    ]


def _column(row: Mapping[str, Any], name: str) -> Sequence[Any]:
    """A list column of a row; absent or None reads as empty."""
    value = row.get(name)
    return [] if value is None else value


def _areas(
    row: Mapping[str, Any], skeleton: Skeleton, boxes: Sequence[Any], name: str
) -> Sequence[float]:
    """The row's areas; a skeleton whose OKS scale comes from the box may omit them."""
    areas = row.get(name)
    if areas is not None or len(boxes) == 0:
        return _column(row, name)
    if not skeleton.oks_area_from_bbox:
        raise ValueError(
            f"Row of image id {row['image_id']}: no `{name}`, which the {skeleton.name!r} OKS "
            f"needs."
        )
    return [float(box[2]) * float(box[3]) for box in boxes]


def _row_annotation(
    row: Mapping[str, Any], keypoints: list[float], num_keypoints: int,
    bbox: Iterable[float], area: float, *, iscrowd: bool,
) -> dict[str, Any]:
    return {
        "image_id": int(row["image_id"]), "category_id": PERSON_CATEGORY_ID, "keypoints": keypoints,
        "num_keypoints": num_keypoints, "bbox": [float(value) for value in bbox],
        "area": float(area), "iscrowd": int(iscrowd),
    }


def _assemble(
    images: list[dict[str, Any]], annotations: list[dict[str, Any]], category: dict[str, Any]
) -> dict[str, Any]:
    """The ground truth dict, annotation ids renumbered 1..N, duplicate image ids refused."""
    duplicates = [i for i, count in Counter(image["id"] for image in images).items() if count > 1]
    if duplicates:
        raise ValueError(f"Ground truth has duplicate image ids {sorted(duplicates)[:10]}.")
    for index, annotation in enumerate(annotations):
        annotation["id"] = index + 1
    return {"images": images, "annotations": annotations, "categories": [category]}
