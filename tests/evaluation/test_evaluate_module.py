"""The `evaluate` module in metrics/coco_keypoints: loads offline from its path, same numbers."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import evaluate
import numpy as np
import pytest

from semipose.evaluation import KeypointEvaluator

METRIC_DIR = Path(__file__).parents[2] / "metrics" / "coco_keypoints"
CROWDPOSE_REFERENCE = Path(__file__).parent / "crowdpose_xtcocotools_reference.json"


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_EVALUATE_OFFLINE", "1")


def per_image_inputs(ground_truth: dict, results: list[dict]) -> tuple[list[dict], list[dict]]:
    """The module's inputs: one prediction and one reference dict per image of the ground truth."""
    num_keypoints = len(ground_truth["categories"][0]["keypoints"])
    predictions, references = [], []
    for image in ground_truth["images"]:
        people = [r for r in results if r["image_id"] == image["id"]]
        annotations = [a for a in ground_truth["annotations"] if a["image_id"] == image["id"]]
        shape = (num_keypoints, 3)
        predictions.append({
            "image_id": image["id"], "scores": [r["score"] for r in people],
            "keypoints": [np.reshape(r["keypoints"], shape).tolist() for r in people],
        })
        references.append({
            "image_id": image["id"], "crowd_index": image.get("crowdIndex"),
            "keypoints": [np.reshape(a["keypoints"], shape).tolist() for a in annotations],
            "bboxes": [a["bbox"] for a in annotations],
            "areas": [a.get("area", 0.0) for a in annotations],
            "iscrowd": [bool(a["iscrowd"]) for a in annotations],
        })
    return predictions, references


def test_coco_config_loads_from_its_path_and_matches_the_evaluator(
    tmp_path, coco_fixture_json, coco_ground_truth, make_predictions
):
    results = make_predictions(coco_ground_truth, 0)
    evaluator = KeypointEvaluator.from_coco(coco_fixture_json)
    evaluator.add_results(results)
    predictions, references = per_image_inputs(coco_ground_truth, results)
    metric = evaluate.load(str(METRIC_DIR), "coco", cache_dir=str(tmp_path))
    metric.add_batch(predictions=predictions[:2], references=references[:2])
    metric.add_batch(predictions=predictions[2:], references=references[2:])
    assert metric.compute() == evaluator.compute()


def test_pixel_options_reach_the_evaluator(tmp_path, coco_fixture_json, coco_ground_truth, make_predictions):
    results = make_predictions(coco_ground_truth, 1)
    options = {"pck_threshold": 0.1, "pck_pixels": 8.0, "min_oks": 0.2}
    evaluator = KeypointEvaluator.from_coco(coco_fixture_json, **options)
    evaluator.add_results(results)
    predictions, references = per_image_inputs(coco_ground_truth, results)
    metric = evaluate.load(str(METRIC_DIR), "coco", cache_dir=str(tmp_path))
    stats = metric.compute(predictions=predictions, references=references, **options)
    assert stats == evaluator.compute() and "pck_pixels" in stats


def test_crowdpose_config_matches_the_evaluator_with_counted_keypoints(tmp_path, monkeypatch):
    """References carry no `num_keypoints`: the module counts labeled keypoints, so it equals the
    evaluator on the recorded CrowdPose case with its stored counts replaced by counted ones."""
    case = json.loads(CROWDPOSE_REFERENCE.read_text())["cases"][0]
    ground_truth = copy.deepcopy(case["ground_truth"])
    for annotation in ground_truth["annotations"]:
        visibilities = np.asarray(annotation["keypoints"][2::3])
        annotation["num_keypoints"] = int(np.count_nonzero(visibilities > 0))
    evaluator = KeypointEvaluator.from_coco(ground_truth, "crowdpose")
    evaluator.add_results(case["results"])
    predictions, references = per_image_inputs(ground_truth, case["results"])
    monkeypatch.chdir(METRIC_DIR.parents[1])
    metric = evaluate.load("metrics/coco_keypoints", "crowdpose", cache_dir=str(tmp_path))
    stats = metric.compute(predictions=predictions, references=references)
    assert stats == evaluator.compute()
    assert all(stats[name] > 0 for name in ("AP(E)", "AP(M)", "AP(H)"))


def test_unknown_config_is_refused(tmp_path):
    with pytest.raises(ValueError, match="Unknown config 'mpii'"):
        evaluate.load(str(METRIC_DIR), "mpii", cache_dir=str(tmp_path))
