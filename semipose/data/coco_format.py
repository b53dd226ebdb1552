"""Read COCO-format person keypoint annotations into one dataset row per image.

One reader serves every source: COCO `person_keypoints_{train,val}2017.json`, CrowdPose
`crowdpose_*.json`, the synthetic generator's output, animal datasets (AP-10K, MacaquePose) and the
label-file converters' output. The skeleton is the category's (`coco_skeleton`): its keypoint names must be
the skeleton's when one is given, and `category` keeps one category of a file that has several. It checks
the whole file (required fields and their types, values that fit the int64 / float32 columns, keypoint lists
of length 3K for the skeleton, positive image sizes, duplicate ids, annotations of unknown images, RLE regions
that cover exactly the image, missing or unreadable image files) and raises
`ValueError` / `FileNotFoundError` naming the file, the record and what was expected.

Row schema (`pose_features`), one row per image with M people and R ignore regions:

- `image`: absolute path of the image file (`datasets.Image()` once written).
- `image_id`, `file_name`, `width`, `height`; `crowd_index`: CrowdPose `crowdIndex`, else None.
- people = non-crowd annotations with at least one labeled keypoint (visibility > 0):
  `annotation_ids` [M], `keypoints` [M][K][3] (x, y, v), `bboxes` [M][4] (x, y, w, h), `areas` [M],
  `num_keypoints` [M] (labeled keypoints, counted from `keypoints`).
- ignore regions = crowd annotations and annotations with zero labeled keypoints:
  `ignore_annotation_ids`, `ignore_bboxes`, `ignore_areas`, `ignore_iscrowd` [R] and
  `ignore_rles` [R]: the COCO compressed RLE `counts` string of the region at the image's
  (height, width), from its polygons or RLE, or from its box when it has no segmentation.

Areas are the annotation's `area`, or the box's `w * h` where the file has none (CrowdPose).

Example:

```python
>>> from semipose.data.coco_format import read_coco_keypoints
>>> rows = read_coco_keypoints("tests/fixtures/coco/test_coco.json", "tests/fixtures/coco",
...                            show_progress=False)
>>> len(rows), sum(len(row["annotation_ids"]) for row in rows)
(4, 12)

```
"""

from __future__ import annotations

import json
import math
import os
from collections import defaultdict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from datasets import Features, Image, List, Value
from pycocotools import mask as mask_utils
from tqdm.auto import tqdm

from ..modeling.pipeline_pose_estimation import open_image_file
from ..skeletons import Skeleton, resolve_skeleton

PEOPLE_COLUMNS = ("annotation_ids", "keypoints", "bboxes", "areas", "num_keypoints")
IGNORE_COLUMNS = (
    "ignore_annotation_ids", "ignore_bboxes", "ignore_areas", "ignore_iscrowd", "ignore_rles",
)
_VISIBILITIES = (0, 1, 2)
_MISSING = object()
_SINGULAR = {"images": "image", "annotations": "annotation", "categories": "category"}


_INT64_RANGE = (-(2**63), 2**63 - 1)
_FLOAT32_MAX = float(np.finfo(np.float32).max)


def _is_int(value: Any) -> bool:
    """An integer that fits the int64 id columns (not a bool)."""
    return isinstance(value, int) and not isinstance(value, bool) and _INT64_RANGE[0] <= value <= _INT64_RANGE[1]


def _is_number(value: Any) -> bool:
    """A number that stays finite in the float32 columns."""
    is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
    return is_number and math.isfinite(value) and abs(value) <= _FLOAT32_MAX


_KINDS = {
    "int": (_is_int, "a 64-bit integer"),
    "positive int": (lambda v: _is_int(v) and 0 < v < 2**31, "a positive 32-bit integer"),
    "number": (_is_number, "a finite float32 number"),
    "number or null": (lambda v: v is None or _is_number(v), "a finite float32 number or null"),
    "area": (lambda v: _is_number(v) and v >= 0, "a finite float32 number >= 0"),
    "0 or 1": (lambda v: v in (0, 1) and not isinstance(v, float), "0 or 1"),
    "str": (lambda v: isinstance(v, str) and v != "", "a non-empty string"),
    "list": (lambda v: isinstance(v, list), "a list"),
    "segmentation": (lambda v: isinstance(v, (list, dict)), "a list of polygons or an RLE dict"),
}


def pose_features(num_keypoints: int) -> Features:
    """The `datasets.Features` of a dataset row for a skeleton of `num_keypoints` keypoints."""
    return Features({
        "image": Image(),
        "image_id": Value("int64"),
        "file_name": Value("string"),
        "width": Value("int32"),
        "height": Value("int32"),
        "crowd_index": Value("float32"),
        "annotation_ids": List(Value("int64")),
        "keypoints": List(List(List(Value("float32"), length=3), length=num_keypoints)),
        "bboxes": List(List(Value("float32"), length=4)),
        "areas": List(Value("float32")),
        "num_keypoints": List(Value("int32")),
        "ignore_annotation_ids": List(Value("int64")),
        "ignore_bboxes": List(List(Value("float32"), length=4)),
        "ignore_areas": List(Value("float32")),
        "ignore_iscrowd": List(Value("bool")),
        "ignore_rles": List(Value("string")),
    })


def unlabeled_row(
    image_id: int, image_path: str, file_name: str, width: int, height: int,
    crowd_index: float | None = None,
) -> dict[str, Any]:
    """A row in the schema of `pose_features` with no people and no ignore regions."""
    row = {
        "image": image_path, "image_id": image_id, "file_name": file_name,
        "width": width, "height": height, "crowd_index": crowd_index,
    }
    row.update({column: [] for column in PEOPLE_COLUMNS + IGNORE_COLUMNS})
    return row


def without_annotations(row: dict[str, Any]) -> dict[str, Any]:
    """A copy of `row` with its people and ignore regions removed (an unlabeled row)."""
    return unlabeled_row(
        row["image_id"], row["image"], row["file_name"], row["width"], row["height"],
        row["crowd_index"],
    )


def read_image_size(path: Path, record: str, *, decode: bool = False) -> tuple[int, int]:
    """Open an image file and return its (width, height); errors name `record` (see `open_image_file`).

    Args:
        path: the image file.
        record: who refers to it, for error messages (e.g. "ann.json: image id 785").
        decode: also decode all pixels, which catches truncated files (about 5 ms per COCO
            image); otherwise only the header is read.
    """
    with open_image_file(path, record) as image:
        if decode:
            image.load()
        return image.size


def read_coco_keypoints(
    annotation_file: str | Path | Mapping[str, Any],
    image_dir: str | Path,
    skeleton: str | Path | Skeleton | None = None,
    *,
    category: str | None = None,
    source: str | None = None,
    decode_images: bool = False,
    show_progress: bool = True,
    allow_outside_image_dir: bool = False,
) -> list[dict[str, Any]]:
    """Validate a COCO-format keypoint file and return one row per image, by image id.

    Args:
        annotation_file: COCO-format json (`images`, `annotations`, optional `categories`), or its contents.
        image_dir: folder the images' `file_name`s are relative to.
        skeleton: skeleton, registered name or skeleton file; every keypoint list must hold 3 * K numbers and a
            category that names its keypoints must name the skeleton's. None: the category's (`coco_skeleton`).
        category: keep only this category's annotations (by `name`), and the images that have any; None: every
            category, which must then share one keypoint layout.
        source: how errors name in-memory contents (default: the file's path).
        decode_images: fully decode every image to catch truncated files (slow on COCO);
            by default each image's header is read and its size checked against the json.
        show_progress: show a tqdm bar while the image files are checked.
        allow_outside_image_dir: accept `file_name`s that leave `image_dir` (`../x.jpg`, an absolute path);
            by default such a record raises ValueError naming it, so a json cannot make the dataset read
            files from elsewhere on the machine.

    Returns:
        Rows in the schema of `pose_features`, `image` holding the absolute image path.
    """
    if isinstance(annotation_file, Mapping):
        file, data = Path(source or "annotations"), _check_layout(dict(annotation_file), Path(source or "annotations"))
    else:
        file = Path(annotation_file)
        data = load_coco_json(file)
    skeleton = coco_skeleton(data, file, skeleton, category)
    data = _only_category(data, file, category)
    images = _parse_images(data["images"], file)
    annotations = _parse_annotations(data["annotations"], file, images, skeleton)
    image_dir = Path(image_dir).resolve()
    rows = []
    for image in tqdm(sorted(images.values(), key=lambda image: image["id"]),
                      desc=f"Checking images of {file.name}", disable=not show_progress):
        path = _image_path(image, image_dir, file, allow_outside_image_dir)
        _check_image_file(image, path, file, decode_images)
        rows.append(_image_row(image, path, annotations[image["id"]], file))
    return rows


def load_coco_json(file: str | Path) -> dict[str, Any]:
    """Load a COCO-format annotation file and check its top-level layout."""
    file = Path(file)
    if not file.is_file():
        raise FileNotFoundError(f"Annotation file {file} does not exist.")
    try:
        data = json.loads(file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{file}: not valid JSON ({error}).") from error
    return _check_layout(data, file)


def _check_layout(data: Any, file: Path) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ValueError(
            f"{file}: expected a JSON object at the top level, got {type(data).__name__}."
        )
    for key in ("images", "annotations"):
        _field(data, key, "list", f"{file}: top level")
    if not data["images"]:
        raise ValueError(f"{file}: the `images` list is empty; expected at least one image.")
    return data


def _field(record: Any, name: str, kind: str, where: str, default: Any = _MISSING) -> Any:
    """Return `record[name]` after checking it is of `kind` (a key of `_KINDS`)."""
    if not isinstance(record, dict):
        raise ValueError(f"{where}: expected a JSON object, got {type(record).__name__}.")
    check, expected = _KINDS[kind]
    if name not in record:
        if default is not _MISSING:
            return default
        raise ValueError(f"{where}: missing required field {name!r} (expected {expected}).")
    value = record[name]
    if not check(value):
        raise ValueError(
            f"{where}: field {name!r} must be {expected}, got {type(value).__name__} {value!r:.80}."
        )
    return value


def _record_name(file: Path, section: str, index: int, record: Any) -> str:
    """How errors name a record: by its id when it has an integer one, else by position."""
    record_id = record.get("id") if isinstance(record, dict) else None
    if not _is_int(record_id):
        return f"{file}: {section}[{index}]"
    return f"{file}: {_SINGULAR[section]} id {record_id}"


def coco_skeleton(
    data: dict[str, Any], file: Path, skeleton: str | Path | Skeleton | None = None, category: str | None = None
) -> Skeleton:
    """The skeleton of a COCO-format file's keypoints, checked against the categories that name them.

    `category` picks one category by name; otherwise every category that names keypoints must name the same
    ones (AP-10K's 54 species share one layout), and a skeleton shared by several categories is named after the
    file. A given `skeleton` must have exactly those names, in order;
    None takes the skeleton of the (first such) category (`Skeleton.from_coco_category`).
    """
    named = _keypoint_categories(data, file, category)
    if skeleton is not None:
        skeleton = resolve_skeleton(skeleton)
        for where, record in named:
            if list(record["keypoints"]) != list(skeleton.keypoint_names):
                raise ValueError(
                    f"{where}: names the keypoints {record['keypoints']}, but the {skeleton.name!r} skeleton has "
                    f"{list(skeleton.keypoint_names)}; pass the skeleton that matches the file (or none, to take "
                    "the category's)."
                )
        return skeleton
    if not named:
        records = [_record_name(file, "categories", index, record).removeprefix(f"{file}: ")
                   for index, record in enumerate(data.get("categories", []))]
        raise ValueError(
            f"{file}: no category names its keypoints (categories: {records or 'none'}); pass a skeleton (a name "
            "or a skeleton file)."
        )
    layouts = {tuple(record["keypoints"]) for _, record in named}
    if len(layouts) > 1:
        names = [record.get("name") for _, record in named]
        raise ValueError(
            f"{file}: its categories {names} name {len(layouts)} different keypoint layouts; pick one with "
            "category=NAME (--category)."
        )
    where, record = named[0]
    if len(named) > 1:  # one layout under several names (AP-10K's species): named after the file
        return Skeleton.from_coco_category(record, where, name=file.stem)
    return Skeleton.from_coco_category(record, where)


def _keypoint_categories(
    data: dict[str, Any], file: Path, category: str | None
) -> list[tuple[str, dict[str, Any]]]:
    """(record name, category) of the categories that name keypoints: all of them, or the one called `category`."""
    categories = []
    for index, record in enumerate(_field(data, "categories", "list", f"{file}: top level", [])):
        where = _record_name(file, "categories", index, record)
        names = _field(record, "keypoints", "list", where, None)
        if category is None and names is not None or category is not None and record.get("name") == category:
            categories.append((where, record))
    if category is not None and not categories:
        known = [record.get("name") for record in data.get("categories", []) if isinstance(record, dict)]
        raise ValueError(f"{file}: no category is called {category!r}; its categories: {known}.")
    if category is not None and not isinstance(categories[0][1].get("keypoints"), list):
        raise ValueError(f"{categories[0][0]}: category {category!r} names no keypoints.")
    return categories


def _only_category(data: dict[str, Any], file: Path, category: str | None) -> dict[str, Any]:
    """`data` with only the annotations of `category` and the images that have any (all of it for None)."""
    if category is None:
        return data
    ids = {record.get("id") for _, record in _keypoint_categories(data, file, category)}
    annotations = [ann for ann in data["annotations"] if isinstance(ann, dict) and ann.get("category_id") in ids]
    kept_images = {ann.get("image_id") for ann in annotations}
    images = [image for image in data["images"] if isinstance(image, dict) and image.get("id") in kept_images]
    if not images:
        raise ValueError(f"{file}: no image has an annotation of category {category!r}.")
    return {**data, "images": images, "annotations": annotations}


def _parse_images(records: list[Any], file: Path) -> dict[int, dict[str, Any]]:
    """Validate the `images` records; return them by id."""
    images: dict[int, dict[str, Any]] = {}
    for index, record in enumerate(records):
        where = _record_name(file, "images", index, record)
        image = {
            "id": _field(record, "id", "int", where),
            "file_name": _field(record, "file_name", "str", where),
            "width": _field(record, "width", "positive int", where),
            "height": _field(record, "height", "positive int", where),
            "crowd_index": _field(record, "crowdIndex", "number or null", where, None),
        }
        if image["id"] in images:
            raise ValueError(f"{where}: duplicate image id (images[{index}]); ids must be unique.")
        images[image["id"]] = image
    return images


def _parse_annotations(
    records: list[Any], file: Path, images: dict[int, dict[str, Any]], skeleton: Skeleton
) -> dict[int, list[dict[str, Any]]]:
    """Validate the `annotations` records; return them grouped by image id."""
    by_image: dict[int, list[dict[str, Any]]] = defaultdict(list)
    seen: set[int] = set()
    for index, record in enumerate(records):
        where = _record_name(file, "annotations", index, record)
        annotation = _parse_annotation(record, where, skeleton)
        if annotation["id"] in seen:
            raise ValueError(f"{where}: duplicate annotation id (annotations[{index}]).")
        if annotation["image_id"] not in images:
            raise ValueError(
                f"{where}: refers to image id {annotation['image_id']}, which is not in `images`."
            )
        seen.add(annotation["id"])
        by_image[annotation["image_id"]].append(annotation)
    return by_image


def _parse_annotation(record: Any, where: str, skeleton: Skeleton) -> dict[str, Any]:
    """Validate one annotation's fields, keypoints and box."""
    keypoints = _field(record, "keypoints", "list", where)
    expected = 3 * skeleton.num_keypoints
    if len(keypoints) != expected:
        raise ValueError(
            f"{where}: keypoints has {len(keypoints)} numbers, expected {expected} "
            f"(x, y, v for each of the {skeleton.num_keypoints} keypoints of the "
            f"{skeleton.name!r} skeleton)."
        )
    if not all(_is_number(value) for value in keypoints):
        raise ValueError(f"{where}: keypoints must all be finite float32 numbers, got {keypoints!r:.80}.")
    if any(v not in _VISIBILITIES for v in keypoints[2::3]):
        raise ValueError(
            f"{where}: keypoint visibilities must be 0, 1 or 2, got {keypoints[2::3]}."
        )
    bbox = _field(record, "bbox", "list", where)
    box_area = bbox[2] * bbox[3] if len(bbox) == 4 and all(_is_number(value) for value in bbox) else None
    if box_area is None or min(bbox[2:]) < 0 or not _is_number(box_area):
        raise ValueError(
            f"{where}: bbox must be [x, y, w, h] of finite float32 numbers with w, h >= 0, got {bbox!r:.80}."
        )
    return {
        "id": _field(record, "id", "int", where),
        "image_id": _field(record, "image_id", "int", where),
        "iscrowd": bool(_field(record, "iscrowd", "0 or 1", where, 0)),
        "keypoints": [keypoints[i:i + 3] for i in range(0, expected, 3)],
        "bbox": bbox,
        "area": _field(record, "area", "area", where, box_area),
        "segmentation": _field(record, "segmentation", "segmentation", where, None),
        "where": where,
    }


def _image_path(image: dict[str, Any], image_dir: Path, file: Path, allow_outside: bool) -> Path:
    """The image's file under `image_dir`; ValueError for a `file_name` that leaves it, unless allowed."""
    path = Path(os.path.normpath(image_dir / image["file_name"]))
    if not allow_outside and (Path(image["file_name"]).is_absolute() or not path.is_relative_to(image_dir)):
        raise ValueError(
            f"{file}: image id {image['id']}: file_name {image['file_name']!r} leaves the image folder {image_dir} "
            f"(it names {path}); expected a path inside it. If that is intended, pass allow_outside_image_dir=True "
            "(the converters' --allow-outside-image-dir)."
        )
    return path


def _check_image_file(image: dict[str, Any], path: Path, file: Path, decode: bool) -> None:
    """Check the image file exists, opens, and has the size the json says."""
    where = f"{file}: image id {image['id']}"
    size = read_image_size(path, where, decode=decode)
    if size != (image["width"], image["height"]):
        raise ValueError(
            f"{where}: json says {image['width']}x{image['height']} (width x height) but "
            f"{path} is {size[0]}x{size[1]}."
        )


def _image_row(
    image: dict[str, Any], path: Path, annotations: list[dict[str, Any]], file: Path
) -> dict[str, Any]:
    """Split an image's annotations into people and ignore regions and build its row."""
    row = unlabeled_row(
        image["id"], str(path), image["file_name"], image["width"], image["height"],
        image["crowd_index"],
    )
    for annotation in sorted(annotations, key=lambda annotation: annotation["id"]):
        labeled = sum(v > 0 for _, _, v in annotation["keypoints"])
        if annotation["iscrowd"] or labeled == 0:
            _append(row, IGNORE_COLUMNS, (
                annotation["id"], annotation["bbox"], annotation["area"], annotation["iscrowd"],
                _region_rle(annotation, image["height"], image["width"]),
            ))
        else:
            _append(row, PEOPLE_COLUMNS, (
                annotation["id"], annotation["keypoints"], annotation["bbox"], annotation["area"],
                labeled,
            ))
    return row


def _append(row: dict[str, Any], columns: tuple[str, ...], values: tuple[Any, ...]) -> None:
    for column, value in zip(columns, values, strict=True):
        row[column].append(value)


def _region_rle(annotation: dict[str, Any], height: int, width: int) -> str:
    """Compressed RLE `counts` of an ignore region: its segmentation, else its box."""
    segmentation = annotation["segmentation"]
    if isinstance(segmentation, dict):
        rle = _rle_from_dict(segmentation, height, width, annotation["where"])
    else:
        polygons = _valid_polygons(segmentation or [], annotation["where"])
        if polygons:
            rle = mask_utils.merge(mask_utils.frPyObjects(polygons, height, width))
        else:
            box = np.array([annotation["bbox"]], dtype=np.float64)
            rle = mask_utils.frPyObjects(box, height, width)[0]
    return rle["counts"].decode("utf-8")


def _rle_from_dict(segmentation: dict[str, Any], height: int, width: int, where: str) -> dict:
    """Compress an RLE segmentation (uncompressed `counts` list or compressed string)."""
    size = segmentation.get("size")
    counts = segmentation.get("counts")
    if size != [height, width]:
        raise ValueError(
            f"{where}: RLE segmentation size must be the image's [height, width] = "
            f"[{height}, {width}], got {size!r}."
        )
    if isinstance(counts, list) and all(_is_int(count) and count >= 0 for count in counts):
        if sum(counts) != height * width:
            raise ValueError(
                f"{where}: RLE counts must add up to height * width = {height * width} pixels, "
                f"got {sum(counts)}."
            )
        return mask_utils.frPyObjects(segmentation, height, width)
    if isinstance(counts, str):
        runs = compressed_rle_runs(counts)
        if runs is None or min(runs, default=0) < 0 or sum(runs) != height * width:
            total = "unparsable" if runs is None else f"{len(runs)} runs of {sum(runs)} pixels"
            raise ValueError(
                f"{where}: RLE counts {counts!r:.40} is not a compressed mask of height * width = "
                f"{height * width} pixels ({total})."
            )
        return {"size": size, "counts": counts.encode("utf-8")}
    raise ValueError(
        f"{where}: RLE counts must be a list of non-negative integers or a compressed string, "
        f"got {type(counts).__name__}."
    )


def compressed_rle_runs(counts: str) -> list[int] | None:
    """Run lengths of a COCO compressed RLE string (pycocotools' `rleFrString`), None if it is malformed.

    pycocotools itself reads past the end of a malformed string and leaves pixels uninitialized when the
    runs cover fewer than height * width pixels, so strings are checked here before they reach it.
    """
    runs: list[int] = []
    position = 0
    while position < len(counts):
        value, shift, more = 0, 0, True
        while more:
            char = ord(counts[position]) - 48 if position < len(counts) else -1
            if not 0 <= char < 64:
                return None
            value |= (char & 0x1F) << shift
            more, position, shift = bool(char & 0x20), position + 1, shift + 5
            if not more and char & 0x10:
                value -= 1 << shift
        runs.append(value + runs[-2] if len(runs) > 2 else value)
    return runs


def _valid_polygons(polygons: list[Any], where: str) -> list[list[float]]:
    """Check polygons are flat [x1, y1, x2, y2, ...] lists; drop degenerate ones (< 3 points)."""
    for polygon in polygons:
        if (not isinstance(polygon, list) or len(polygon) % 2
                or not all(_is_number(value) for value in polygon)):
            raise ValueError(
                f"{where}: each segmentation polygon must be a flat list [x1, y1, x2, y2, ...] "
                f"of an even count of numbers, got {polygon!r:.80}."
            )
    return [polygon for polygon in polygons if len(polygon) >= 6]
