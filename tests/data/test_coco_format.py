"""Tests of the COCO-format reader on the real fixture, on RLE/box ignore regions and on bad input."""

import copy
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from semipose.data.coco_format import (
    IGNORE_COLUMNS,
    PEOPLE_COLUMNS,
    pose_features,
    read_coco_keypoints,
    without_annotations,
)


@pytest.fixture(scope="module")
def fixture_json(coco_fixture_dir: Path) -> dict:
    return json.loads((coco_fixture_dir / "test_coco.json").read_text())


@pytest.fixture(scope="module")
def fixture_rows(coco_fixture_dir: Path) -> list[dict]:
    annotation_file = coco_fixture_dir / "test_coco.json"
    return read_coco_keypoints(annotation_file, coco_fixture_dir, show_progress=False)


def _decode(rle_counts: str, row: dict) -> np.ndarray:
    return mask_utils.decode({"size": [row["height"], row["width"]], "counts": rle_counts.encode()})


def test_fixture_rows_hold_every_person_and_ignore_region(fixture_rows, fixture_json, coco_fixture_dir):
    assert [row["image_id"] for row in fixture_rows] == [785, 40083, 196141, 197388]
    assert [len(row["annotation_ids"]) for row in fixture_rows] == [1, 2, 4, 5]
    assert [row["ignore_annotation_ids"] for row in fixture_rows] == [[], [1202706], [508900], []]
    assert all(row["ignore_iscrowd"] in ([], [False]) for row in fixture_rows)
    assert all(row["crowd_index"] is None for row in fixture_rows)
    images = {image["id"]: image for image in fixture_json["images"]}
    for row in fixture_rows:
        image = images[row["image_id"]]
        assert [row[key] for key in ("width", "height", "file_name")] == \
            [image[key] for key in ("width", "height", "file_name")]
        assert row["image"] == str((coco_fixture_dir / image["file_name"]).resolve())


def test_fixture_people_values_equal_the_json(fixture_rows, fixture_json):
    annotations = {annotation["id"]: annotation for annotation in fixture_json["annotations"]}
    for row in fixture_rows:
        for index, annotation_id in enumerate(row["annotation_ids"]):
            annotation = annotations[annotation_id]
            assert np.array(row["keypoints"][index]).ravel().tolist() == annotation["keypoints"]
            assert row["bboxes"][index] == annotation["bbox"]
            assert row["areas"][index] == annotation["area"]
            assert row["num_keypoints"][index] == annotation["num_keypoints"] > 0
        for index, annotation_id in enumerate(row["ignore_annotation_ids"]):
            assert annotations[annotation_id]["num_keypoints"] == 0
            assert row["ignore_bboxes"][index] == annotations[annotation_id]["bbox"]
            assert row["ignore_areas"][index] == annotations[annotation_id]["area"]


def test_fixture_ignore_rles_decode_to_the_polygon_pixels(fixture_rows, coco_fixture_dir):
    reference = COCO(str(coco_fixture_dir / "test_coco.json"))
    for row in fixture_rows:
        for annotation_id, counts in zip(row["ignore_annotation_ids"], row["ignore_rles"], strict=True):
            expected = reference.annToMask(reference.anns[annotation_id])
            np.testing.assert_array_equal(_decode(counts, row), expected)
            assert abs(expected.sum() - reference.anns[annotation_id]["area"]) < 0.1 * expected.sum()


def test_rows_match_the_features_and_unlabeled_rows_are_empty(fixture_rows):
    features = pose_features(17)
    encoded = features.encode_example(fixture_rows[2])
    assert encoded["image"] == {"path": fixture_rows[2]["image"], "bytes": None}
    empty = without_annotations(fixture_rows[2])
    assert set(empty) == set(fixture_rows[2]) == set(features)
    assert all(empty[name] == [] for name in PEOPLE_COLUMNS + IGNORE_COLUMNS)
    assert all(empty[name] == fixture_rows[2][name] for name in ("image", "image_id", "width", "height"))
    assert fixture_rows[2]["annotation_ids"] == [460541, 488308, 1717641, 1724673]


def _write_regions_dataset(folder: Path) -> Path:
    """A 20x30 image with a crowd region as uncompressed RLE, a keypoint-less box and a person."""
    Image.new("RGB", (30, 20)).save(folder / "a.png")
    crowd_mask = np.zeros((20, 30), dtype=np.uint8, order="F")
    crowd_mask[2:9, 4:13] = 1
    counts = mask_utils.encode(crowd_mask)["counts"].decode()
    uncompressed = _uncompressed_counts(crowd_mask)
    compressed = mask_utils.frPyObjects({"counts": uncompressed, "size": [20, 30]}, 20, 30)
    assert compressed["counts"].decode() == counts
    keypoints = [0] * 51
    keypoints[0:3] = [5, 6, 2]
    data = {
        "images": [{"id": 7, "file_name": "a.png", "width": 30, "height": 20}],
        "annotations": [
            {"id": 1, "image_id": 7, "iscrowd": 1, "bbox": [4, 2, 9, 7], "keypoints": [0] * 51,
             "segmentation": {"counts": uncompressed, "size": [20, 30]}},
            {"id": 2, "image_id": 7, "iscrowd": 0, "bbox": [20, 10, 5, 4], "keypoints": [0] * 51},
            {"id": 3, "image_id": 7, "iscrowd": 0, "bbox": [1, 1, 8, 8], "keypoints": keypoints},
        ],
    }
    (folder / "regions.json").write_text(json.dumps(data))
    return folder / "regions.json"


def _uncompressed_counts(mask: np.ndarray) -> list[int]:
    """COCO uncompressed RLE counts (column-major runs, starting with zeros)."""
    flat = mask.ravel(order="F")
    changes = np.flatnonzero(np.diff(flat)) + 1
    return np.diff(np.concatenate([[0], changes, [flat.size]])).tolist()


def test_crowd_rle_and_box_regions_become_compressed_rles(tmp_path):
    (row,) = read_coco_keypoints(_write_regions_dataset(tmp_path), tmp_path, "coco", show_progress=False)
    assert row["annotation_ids"] == [3] and row["num_keypoints"] == [1]
    assert row["areas"] == [64]  # no `area` field: the box's w * h
    assert row["ignore_annotation_ids"] == [1, 2]
    assert row["ignore_iscrowd"] == [True, False]
    assert row["ignore_areas"] == [63, 20]
    crowd, box = (_decode(counts, row) for counts in row["ignore_rles"])
    assert crowd.sum() == 63 and crowd[2:9, 4:13].all()
    assert box.sum() == 20 and box[10:14, 20:25].all()


def _set(path: tuple, value):
    """Mutation of the fixture json: set the item at `path` to `value`."""
    def mutate(data):
        for key in path[:-1]:
            data = data[key]
        data[path[-1]] = value
    return mutate


def _delete(path: tuple):
    """Mutation of the fixture json: delete the item at `path`."""
    def mutate(data):
        for key in path[:-1]:
            data = data[key]
        del data[path[-1]]
    return mutate


BAD_INPUTS = [
    pytest.param(_set(("images", 1, "file_name"), "nope.jpg"), FileNotFoundError,
                 ["image id 40083", "nope.jpg", "does not exist"], id="missing image file"),
    pytest.param(_set(("annotations", 2, "keypoints"), [1, 2, 2] * 16), ValueError,
                 ["annotation id 230195", "48 numbers", "expected 51"], id="wrong keypoint length"),
    pytest.param(_delete(("annotations", 0, "bbox")), ValueError,
                 ["annotation id 442619", "missing required field 'bbox'"], id="missing field"),
    pytest.param(_delete(("images",)), ValueError, ["top level", "'images'"], id="missing images"),
    pytest.param(_set(("images", 0, "id"), "785"), ValueError, ["images[0]", "'id'", "a 64-bit integer"],
                 id="string id"),
    pytest.param(_set(("images", 0, "width"), 0), ValueError, ["image id 785", "positive 32-bit integer"],
                 id="zero width"),
    pytest.param(_set(("images", 1, "id"), 785), ValueError, ["image id 785", "duplicate image id"],
                 id="duplicate image id"),
    pytest.param(_set(("annotations", 1, "id"), 442619), ValueError,
                 ["annotation id 442619", "duplicate annotation id", "annotations[1]"],
                 id="duplicate annotation id"),
    pytest.param(_set(("annotations", 0, "image_id"), 9), ValueError,
                 ["annotation id 442619", "image id 9", "not in `images`"], id="unknown image"),
    pytest.param(_set(("annotations", 0, "keypoints"), [1, 1, 3] * 17), ValueError,
                 ["annotation id 442619", "0, 1 or 2"], id="bad visibility"),
    pytest.param(_set(("images", 0, "height"), 424), ValueError,
                 ["image id 785", "640x424", "is 640x425"], id="size differs from the file"),
    pytest.param(_set(("annotations", 3, "segmentation"), [[1, 2, 3]]), ValueError,
                 ["annotation id 1202706", "polygon"], id="odd polygon"),
]


@pytest.mark.parametrize("mutate, error, parts", BAD_INPUTS)
def test_bad_input_raises_naming_file_record_and_expectation(
    tmp_path, coco_fixture_dir, fixture_json, mutate, error, parts
):
    data = copy.deepcopy(fixture_json)
    mutate(data)
    annotation_file = tmp_path / "bad.json"
    annotation_file.write_text(json.dumps(data))
    with pytest.raises(error) as raised:
        read_coco_keypoints(annotation_file, coco_fixture_dir, show_progress=False)
    message = str(raised.value)
    assert str(annotation_file) in message
    for part in parts:
        assert part in message


def _image_dir_with(tmp_path: Path, coco_fixture_dir: Path, replace: bytes) -> Path:
    """Fixture images linked into tmp, with 000000000785.jpg replaced by `replace`."""
    folder = tmp_path / "images"
    folder.mkdir()
    for image in coco_fixture_dir.glob("*.jpg"):
        (folder / image.name).symlink_to(image)
    (folder / "000000000785.jpg").unlink()
    (folder / "000000000785.jpg").write_bytes(replace)
    return folder


def test_corrupt_image_raises(tmp_path, coco_fixture_dir):
    folder = _image_dir_with(tmp_path, coco_fixture_dir, b"not a jpeg at all")
    expected = r"image id 785: image file .*000000000785.jpg is not a readable image"
    with pytest.raises(ValueError, match=expected):
        read_coco_keypoints(coco_fixture_dir / "test_coco.json", folder, show_progress=False)


def test_truncated_image_is_caught_when_decoding(tmp_path, coco_fixture_dir):
    data = (coco_fixture_dir / "000000000785.jpg").read_bytes()
    folder = _image_dir_with(tmp_path, coco_fixture_dir, data[: len(data) // 2])
    annotation_file = coco_fixture_dir / "test_coco.json"
    assert len(read_coco_keypoints(annotation_file, folder, show_progress=False)) == 4
    with pytest.raises(ValueError, match="image id 785.*not a readable image.*truncated"):
        read_coco_keypoints(annotation_file, folder, decode_images=True, show_progress=False)


def test_image_too_large_for_pil_is_refused_as_unreadable(monkeypatch, coco_fixture_dir):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 640 x 425 is over twice that: DecompressionBombError
    expected = r"image id 785: image file .*000000000785.jpg is not a readable image"
    with pytest.raises(ValueError, match=expected):
        read_coco_keypoints(coco_fixture_dir / "test_coco.json", coco_fixture_dir, show_progress=False)


def test_keypoint_names_must_match_the_skeleton(coco_fixture_dir):
    expected = r"category id 1: names the keypoints \['nose', .*the 'crowdpose' skeleton has \['left_shoulder'"
    with pytest.raises(ValueError, match=expected):
        read_coco_keypoints(coco_fixture_dir / "test_coco.json", coco_fixture_dir, "crowdpose")


def test_missing_or_invalid_annotation_file(tmp_path, coco_fixture_dir):
    with pytest.raises(FileNotFoundError, match="missing.json does not exist"):
        read_coco_keypoints(tmp_path / "missing.json", coco_fixture_dir)
    (tmp_path / "broken.json").write_text("{\"images\": [")
    with pytest.raises(ValueError, match="broken.json: not valid JSON"):
        read_coco_keypoints(tmp_path / "broken.json", coco_fixture_dir)


@pytest.mark.parametrize("outside", ["../000000000785.jpg", "absolute"])
def test_file_name_that_leaves_the_image_folder_is_refused_unless_allowed(tmp_path, coco_fixture_dir, fixture_json,
                                                                           outside):
    """Image 785 named `../000000000785.jpg` from an `images/` sub-folder, or by its absolute path: both name a
    real file outside the folder, refused naming the record, read when `allow_outside_image_dir=True`."""
    images = tmp_path / "images"
    images.mkdir()
    for image in coco_fixture_dir.glob("*.jpg"):
        (images / image.name).symlink_to(image)
    (tmp_path / "000000000785.jpg").symlink_to(coco_fixture_dir / "000000000785.jpg")
    data = copy.deepcopy(fixture_json)
    file_name = outside if outside != "absolute" else str(tmp_path / "000000000785.jpg")
    next(image for image in data["images"] if image["id"] == 785)["file_name"] = file_name
    annotation_file = tmp_path / "outside.json"
    annotation_file.write_text(json.dumps(data))
    expected = rf"outside.json: image id 785: file_name '{file_name}' leaves the image folder .*images"
    with pytest.raises(ValueError, match=expected):
        read_coco_keypoints(annotation_file, images, show_progress=False)
    rows = read_coco_keypoints(annotation_file, images, show_progress=False, allow_outside_image_dir=True)
    assert rows[0]["image"] == str(tmp_path / "000000000785.jpg")
