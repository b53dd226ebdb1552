"""COCO-format ground truth from dataset rows and from COCO dicts."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from datasets import Dataset

from semipose.data.coco_format import pose_features, read_coco_keypoints
from semipose.evaluation.ground_truth import ground_truth_from_rows, load_coco_ground_truth


@pytest.fixture(scope="module")
def fixture_rows(coco_fixture_json, coco_fixture_dir) -> list[dict]:
    return read_coco_keypoints(coco_fixture_json, coco_fixture_dir, show_progress=False)


def by_area(annotations: list[dict]) -> dict[float, dict]:
    return {round(ann["area"], 3): ann for ann in annotations}


def test_rows_give_the_json_annotations_with_ignore_regions(fixture_rows, coco_ground_truth):
    ground_truth = ground_truth_from_rows(fixture_rows, "coco")
    assert [image["id"] for image in ground_truth["images"]] == [785, 40083, 196141, 197388]
    assert [ann["id"] for ann in ground_truth["annotations"]] == list(range(1, 15))
    built = by_area(ground_truth["annotations"])
    original = by_area(coco_ground_truth["annotations"])
    assert built.keys() == original.keys()
    for area, ann in built.items():
        for key in ("image_id", "bbox", "num_keypoints", "iscrowd", "keypoints"):
            assert ann[key] == original[area][key], key
    ignored = [ann for ann in ground_truth["annotations"] if ann["num_keypoints"] == 0]
    assert [ann["image_id"] for ann in ignored] == [40083, 196141]
    assert all(ann["keypoints"] == [0.0] * 51 for ann in ignored)
    assert ground_truth["categories"][0]["keypoints"][:2] == ["nose", "left_eye"]
    assert "crowdIndex" not in ground_truth["images"][0]


def test_dataset_rows_are_read_without_decoding_images(fixture_rows):
    rows = [{**row, "image": "/does/not/exist.jpg"} for row in fixture_rows]
    dataset = Dataset.from_list(rows, features=pose_features(17))
    ground_truth = ground_truth_from_rows(dataset, "coco")
    assert len(ground_truth["annotations"]) == 14
    first = ground_truth["annotations"][0]
    assert first["bbox"] == [float(np.float32(v)) for v in fixture_rows[0]["bboxes"][0]]


def test_minimal_crowdpose_rows_default_areas_counts_and_ignore_regions():
    keypoints = np.zeros((2, 14, 3))
    keypoints[0, :3] = [[10, 20, 2], [30, 40, 1], [50, 60, 2]]
    keypoints[1, 5] = [5, 5, 1]
    rows = [{"image_id": 7, "keypoints": keypoints.tolist(), "crowd_index": 0.25,
             "bboxes": [[0, 0, 10, 20], [1, 1, 4, 5]],
             "ignore_bboxes": [[2, 2, 3, 3]], "ignore_iscrowd": [True]}]
    ground_truth = ground_truth_from_rows(rows, "crowdpose")
    assert ground_truth["images"] == [{"id": 7, "crowdIndex": 0.25}]
    people, region = ground_truth["annotations"][:2], ground_truth["annotations"][2]
    assert [ann["num_keypoints"] for ann in people] == [3, 1]
    assert [ann["area"] for ann in people] == [200.0, 20.0]
    assert region == {"id": 3, "image_id": 7, "category_id": 1, "keypoints": [0.0] * 42,
                      "num_keypoints": 0, "bbox": [2.0, 2.0, 3.0, 3.0], "area": 9.0, "iscrowd": 1}


def test_bad_rows_raise_naming_the_image():
    row = {"image_id": 9, "keypoints": np.zeros((1, 14, 3)).tolist(), "bboxes": [[0, 0, 1, 1]],
           "areas": [1.0]}
    with pytest.raises(ValueError, match=r"image id 9: keypoints have shape \[1, 14, 3\], exp"):
        ground_truth_from_rows([row], "coco")
    no_areas = {**row, "keypoints": np.zeros((1, 17, 3)).tolist(), "areas": None}
    with pytest.raises(ValueError, match=r"image id 9: no `areas`, which the 'coco' OKS needs"):
        ground_truth_from_rows([no_areas], "coco")
    with pytest.raises(ValueError, match=r"duplicate image ids \[9\]"):
        ground_truth_from_rows([no_areas | {"areas": [1.0]}] * 2, "coco")


def test_coco_dict_is_normalized_and_checked(coco_ground_truth):
    ground_truth, skeleton = load_coco_ground_truth(coco_ground_truth)
    assert skeleton.name == "coco"
    assert set(ground_truth["annotations"][0]) == {
        "id", "image_id", "category_id", "keypoints", "num_keypoints", "bbox", "area", "iscrowd"}
    broken = copy.deepcopy(coco_ground_truth)
    del broken["annotations"][3]["area"]
    with pytest.raises(ValueError, match="annotation id 1202706: no `area`"):
        load_coco_ground_truth(broken)
    broken["annotations"][3]["area"] = 1.0
    broken["annotations"][3]["keypoints"] = [0] * 42
    with pytest.raises(ValueError, match="annotation id 1202706: 42 keypoint numbers, expected 51"):
        load_coco_ground_truth(broken, "coco")
    with pytest.raises(ValueError, match="exactly one"):
        two_categories = coco_ground_truth["categories"] * 2
        load_coco_ground_truth(coco_ground_truth | {"categories": two_categories})
    with pytest.raises(ValueError, match=r"missing \['images'\]"):
        load_coco_ground_truth({"annotations": [], "categories": []})
