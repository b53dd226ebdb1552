"""KeypointEvaluator under the COCO rules: OKS stats exactly pycocotools on the original json, pixel stats
after them; bad input. The pixel stats themselves are tested in test_pixel_error.py."""

from __future__ import annotations

import contextlib
import copy
import io
import json
import logging

import numpy as np
import pytest
import torch
from datasets import Dataset
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from semipose.data.coco_format import pose_features, read_coco_keypoints
from semipose.evaluation import COCO_STAT_NAMES, PIXEL_STAT_NAMES, KeypointEvaluator


@pytest.fixture
def new_evaluator(coco_fixture_json):
    """`new_evaluator()`: a fresh evaluator on the COCO fixture json."""
    return lambda: KeypointEvaluator.from_coco(coco_fixture_json)


@pytest.fixture(scope="module")
def fixture_rows(coco_fixture_json, coco_fixture_dir) -> list[dict]:
    return read_coco_keypoints(coco_fixture_json, coco_fixture_dir, show_progress=False)


def pycocotools_stats(ground_truth: dict | str, results: list[dict]) -> dict[str, float]:
    """pycocotools called directly, default keypoint parameters."""
    with contextlib.redirect_stdout(io.StringIO()):
        if isinstance(ground_truth, str):
            coco_gt = COCO(ground_truth)
        else:
            coco_gt = COCO()
            coco_gt.dataset = copy.deepcopy(ground_truth)
            coco_gt.createIndex()
        cocoeval = COCOeval(coco_gt, coco_gt.loadRes(copy.deepcopy(results)), "keypoints")
        cocoeval.evaluate()
        cocoeval.accumulate()
        cocoeval.summarize()
    return dict(zip(COCO_STAT_NAMES, map(float, cocoeval.stats), strict=True))


def evaluate(evaluator: KeypointEvaluator, results: list[dict]) -> dict[str, float]:
    evaluator.add_results(results)
    return evaluator.compute()


def evaluate_oks(evaluator: KeypointEvaluator, results: list[dict]) -> dict[str, float]:
    """The OKS stats of `evaluate` (the pixel stats left out), as pycocotools reports them."""
    stats = evaluate(evaluator, results)
    return {name: stats[name] for name in COCO_STAT_NAMES}


def ground_truth_people(ground_truth: dict) -> list[dict]:
    """The labeled people of the ground truth as predictions with score 1."""
    return [
        {"image_id": ann["image_id"], "category_id": 1, "keypoints": ann["keypoints"], "score": 1.0}
        for ann in ground_truth["annotations"] if ann["num_keypoints"] > 0
    ]


def with_crowd_region(ground_truth: dict) -> tuple[dict, list[dict]]:
    """The fixture with its zero-keypoint annotation 1202706 turned into a crowd region, and three
    predictions inside it (a crowd region absorbs them all, a plain ignore region only one)."""
    ground_truth = copy.deepcopy(ground_truth)
    region = next(ann for ann in ground_truth["annotations"] if ann["id"] == 1202706)
    region["iscrowd"] = 1
    x, y, width, height = region["bbox"]
    inside = [x + width / 2, y + height / 2, 1.0] * 17
    prediction = {"image_id": region["image_id"], "category_id": 1, "keypoints": inside}
    return ground_truth, [{**prediction, "score": 0.99} for _ in range(3)]


def test_ground_truth_scored_as_predictions_gives_ap_1(
    new_evaluator, fixture_rows, coco_ground_truth
):
    for evaluator in (new_evaluator(), KeypointEvaluator.from_rows(fixture_rows, "coco")):
        stats = evaluate(evaluator, ground_truth_people(coco_ground_truth))
        assert list(stats) == list(evaluator.stat_names) == [*COCO_STAT_NAMES, *PIXEL_STAT_NAMES]
        assert stats["AP"] == 1.0
        exact = {"pixel_rmse": 0.0, "pixel_median": 0.0, "pck": 1.0, "matched_fraction": 1.0}
        assert stats == pytest.approx(dict.fromkeys(COCO_STAT_NAMES, 1.0) | exact, abs=1e-12)


@pytest.mark.parametrize("seed", range(5))
def test_perturbed_ground_truth_gives_exactly_pycocotools(
    seed, new_evaluator, coco_fixture_json, coco_ground_truth, make_predictions
):
    results = make_predictions(coco_ground_truth, seed)
    expected = pycocotools_stats(str(coco_fixture_json), results)
    assert 0.05 < expected["AP"] < 0.95
    assert evaluate_oks(new_evaluator(), results) == expected
    assert evaluate_oks(KeypointEvaluator.from_coco(coco_ground_truth), results) == expected


@pytest.mark.parametrize("seed", range(3))
def test_rows_give_exactly_pycocotools_with_a_crowd_region(
    seed, tmp_path, coco_fixture_dir, coco_ground_truth, make_predictions
):
    ground_truth, inside_region = with_crowd_region(coco_ground_truth)
    annotation_file = tmp_path / "with_crowd.json"
    annotation_file.write_text(json.dumps(ground_truth))
    rows = read_coco_keypoints(annotation_file, coco_fixture_dir, show_progress=False)
    assert sum(sum(row["ignore_iscrowd"]) for row in rows) == 1
    results = make_predictions(ground_truth, seed) + inside_region
    expected = pycocotools_stats(ground_truth, results)
    assert expected != pycocotools_stats(coco_ground_truth, results)
    assert evaluate_oks(KeypointEvaluator.from_rows(rows, "coco"), results) == expected


def test_float32_dataset_rows_match_pycocotools(
    fixture_rows, coco_fixture_json, coco_ground_truth, make_predictions
):
    """Parquet stores keypoints, boxes and areas as float32; the stats stay within 1e-6."""
    dataset = Dataset.from_list(fixture_rows, features=pose_features(17))
    for seed in range(3):
        results = make_predictions(coco_ground_truth, seed)
        stats = evaluate_oks(KeypointEvaluator.from_rows(dataset, "coco"), results)
        assert stats == pytest.approx(pycocotools_stats(str(coco_fixture_json), results), abs=1e-6)


def per_image_arrays(results: list[dict]) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """image id -> (keypoints [M, 17, 3], scores [M])."""
    grouped: dict[int, list[dict]] = {}
    for result in results:
        grouped.setdefault(result["image_id"], []).append(result)
    return {
        image_id: (np.reshape([r["keypoints"] for r in people], (-1, 17, 3)),
                   np.array([r["score"] for r in people]))
        for image_id, people in grouped.items()
    }


def test_add_add_batch_and_tensors_equal_add_results(
    new_evaluator, coco_ground_truth, make_predictions
):
    results = make_predictions(coco_ground_truth, 0)
    expected = evaluate(new_evaluator(), results)
    arrays = per_image_arrays(results)
    one_by_one = new_evaluator()
    for image_id, (keypoints, scores) in arrays.items():
        one_by_one.add(image_id, torch.from_numpy(keypoints), torch.from_numpy(scores))
    batched = new_evaluator()
    keypoints, scores = zip(*arrays.values())
    batched.add_batch(list(arrays), list(keypoints), [s.tolist() for s in scores])
    for evaluator in (one_by_one, batched):
        assert sorted(evaluator.image_ids) == sorted(arrays)
        assert evaluator.compute() == expected


def test_merged_evaluators_equal_one_evaluator(new_evaluator, coco_ground_truth, make_predictions):
    results = make_predictions(coco_ground_truth, 1)
    image_ids = sorted({image["id"] for image in coco_ground_truth["images"]})
    parts = [new_evaluator(), new_evaluator()]
    for part, ids in zip(parts, (image_ids[:2], image_ids[2:])):
        part.add_results([result for result in results if result["image_id"] in ids])
    merged = new_evaluator()
    merged.merge(*parts)
    assert merged.compute() == evaluate(new_evaluator(), results)
    with pytest.raises(ValueError, match="already added"):
        merged.merge(parts[0])
    fresh = new_evaluator()
    with pytest.raises(ValueError, match="already added"):
        fresh.merge(parts[0], parts[0])
    assert fresh.results_json() == []


def test_results_json_round_trips(new_evaluator, coco_ground_truth, make_predictions):
    evaluator = new_evaluator()
    evaluator.add_results(make_predictions(coco_ground_truth, 2))
    reloaded = new_evaluator()
    reloaded.add_results(json.loads(json.dumps(evaluator.results_json())))
    assert reloaded.results_json() == evaluator.results_json()
    assert reloaded.compute() == evaluator.compute()
    evaluator.reset()
    assert evaluator.results_json() == [] and evaluator.image_ids == []


def test_no_predictions_warn_and_score_zero(new_evaluator):
    evaluator = new_evaluator()
    evaluator.add(785, np.zeros((0, 17, 3)), np.zeros(0))
    with pytest.warns(UserWarning, match="no predicted people"):
        stats = evaluator.compute()
    missed = {"pixel_rmse": -1.0, "pixel_median": -1.0, "pck": 0.0, "matched_fraction": 0.0}
    assert stats == dict.fromkeys(COCO_STAT_NAMES, 0.0) | missed


NAN_PERSON = np.stack([np.zeros((17, 3)), np.full((17, 3), np.nan)])


@pytest.mark.parametrize(("image_id", "keypoints", "scores", "message"), [
    (12345, np.zeros((1, 17, 3)), [1.0], r"image ids \[12345\] that are not in the ground truth"),
    (785, np.zeros((1, 14, 3)), [1.0], r"Image id 785: keypoints have shape \[1, 14, 3\], exp"),
    (785, np.zeros((2, 17, 2)), [1.0, 1.0], r"Image id 785: keypoints have shape \[2, 17, 2\]"),
    (785, np.zeros((2, 17, 3)), [1.0], r"Image id 785: scores have shape \[1\], expected \[2\]"),
    (785, NAN_PERSON, [1.0, 1.0], r"Image id 785: predicted people \[1\] have NaN"),
    (785, np.zeros((1, 17, 3)), [np.inf], r"Image id 785: predicted people \[0\] have NaN or inf"),
])
def test_bad_predictions_raise_naming_the_image(
    image_id, keypoints, scores, message, new_evaluator
):
    evaluator = new_evaluator()
    with pytest.raises(ValueError, match=message):
        evaluator.add(image_id, keypoints, scores)
    assert evaluator.image_ids == []


def test_bad_results_raise_naming_the_result(new_evaluator):
    evaluator = new_evaluator()
    good = {"image_id": 785, "keypoints": [0.0] * 51, "score": 1.0}
    short = {"image_id": 40083, "keypoints": [0.0] * 42, "score": 1.0}
    with pytest.raises(ValueError, match=r"Result 1 \(image id 40083\): 42 keypoint numbers, exp"):
        evaluator.add_results([good, short])
    with pytest.raises(ValueError, match=r"Result 0 \(image id 785\): expected keys 'keypoints'"):
        evaluator.add_results([{"image_id": 785, "keypoints": [0.0] * 51}])
    with pytest.raises(ValueError, match="Result 0 has no 'image_id'"):
        evaluator.add_results([{"keypoints": [0.0] * 51, "score": 1.0}])
    with pytest.raises(ValueError, match="one entry per image: got 2 image ids, 1 keypoint arrays"):
        evaluator.add_batch([785, 40083], [np.zeros((0, 17, 3))], [[], []])
    evaluator.add_results([good])
    with pytest.raises(ValueError, match=r"image ids \[785\] were already added"):
        evaluator.add(785, np.zeros((0, 17, 3)), [])


def test_pycocotools_prints_go_to_the_debug_log(new_evaluator, coco_ground_truth, capsys, caplog):
    evaluator = new_evaluator()
    evaluator.add_results(ground_truth_people(coco_ground_truth))
    with caplog.at_level(logging.DEBUG, logger="semipose.evaluation.protocols"):
        evaluator.compute()
    assert capsys.readouterr().out == ""
    assert "Running per image evaluation" in caplog.text


def test_compute_leaves_ground_truth_and_results_untouched(
    new_evaluator, coco_ground_truth, make_predictions
):
    evaluator = new_evaluator()
    evaluator.add_results(make_predictions(coco_ground_truth, 3))
    before = copy.deepcopy((evaluator.ground_truth, evaluator.results_json()))
    first = evaluator.compute()
    assert (evaluator.ground_truth, evaluator.results_json()) == before
    assert evaluator.compute() == first
