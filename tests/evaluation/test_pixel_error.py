"""Pixel error and PCK of OKS-matched people: hand-computed cases, pycocotools' OKS, the real COCO fixture."""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import io
import json

import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from semipose.data.coco_format import read_coco_keypoints
from semipose.evaluation import COCO_STAT_NAMES, PIXEL_STAT_NAMES, KeypointEvaluator, pixel_errors
from semipose.evaluation.pixel_error import match_people, object_keypoint_similarity
from semipose.skeletons import Skeleton, get_skeleton

LIZARD = Skeleton.from_dict({"name": "lizard", "keypoints": ["head", "neck", "tail"]})


def annotation(image_id: int, keypoints: list[tuple[float, float, int]], bbox: list[float], **fields) -> dict:
    flat = [float(value) for keypoint in keypoints for value in keypoint]
    return {"image_id": image_id, "category_id": 1, "keypoints": flat, "bbox": bbox,
            "area": bbox[2] * bbox[3], "iscrowd": 0, **fields}


def result(image_id: int, xy: list[tuple[float, float]], score: float = 0.5) -> dict:
    """A predicted person whose keypoint scores are all 0: scores do not gate the pixel error."""
    return {"image_id": image_id, "keypoints": [v for x, y in xy for v in (x, y, 0.0)], "score": score}


def lizard_case() -> tuple[dict, list[dict]]:
    """Image 1: instance A (box 100 x 50, tail unlabeled) and B (box 40 x 80), each predicted with 5 px
    errors (3-4-5 triangles) except B's exact tail; A's prediction puts the unlabeled tail far away.
    Image 2: instance C with no prediction near (missed), a crowd region with labeled keypoints and an
    ignore region (no labeled keypoint), each with a prediction exactly on it (neither counts)."""
    people = [
        annotation(1, [(10, 10, 2), (20, 10, 2), (0, 0, 0)], [0, 0, 100, 50]),
        annotation(1, [(200, 200, 2), (210, 200, 1), (220, 200, 2)], [190, 180, 40, 80]),
        annotation(2, [(50, 50, 2), (60, 50, 2), (70, 50, 2)], [40, 40, 40, 20]),
        annotation(2, [(310, 310, 2), (320, 310, 2), (330, 310, 2)], [300, 300, 100, 100], iscrowd=1),
        annotation(2, [(0, 0, 0)] * 3, [500, 0, 50, 50]),
    ]
    ground_truth = {"images": [{"id": 1}, {"id": 2}], "annotations": people,
                    "categories": [LIZARD.coco_category()]}
    results = [
        result(1, [(13, 14), (23, 6), (500, 500)], score=0.1),
        result(1, [(197, 204), (214, 203), (220, 200)]),
        result(2, [(310, 310), (320, 310), (330, 310)]),
        result(2, [(510, 10), (520, 10), (530, 10)]),
    ]
    return ground_truth, results


def test_hand_computed_errors_missed_instance_crowd_and_unlabeled_keypoint():
    ground_truth, results = lizard_case()
    errors = pixel_errors(ground_truth, results, LIZARD)
    # measured: A head 5, A neck 5, B head 5, B neck 5, B tail 0; C's 3 keypoints missed.
    # PCK@0.05: A's limit 5 px (boundary: correct), B's 4 px -> A head, A neck, B tail of 8 labeled.
    assert errors.summary() == {
        "pixel_rmse": np.sqrt(100 / 5), "pixel_median": 5.0, "pck": 3 / 8, "matched_fraction": 2 / 3,
    }
    assert errors.per_keypoint() == {
        "head": {"count": 2, "missed": 1, "rmse": 5.0, "median": 5.0, "pck": 1 / 3},
        "neck": {"count": 2, "missed": 1, "rmse": 5.0, "median": 5.0, "pck": 1 / 3},
        "tail": {"count": 1, "missed": 1, "rmse": 0.0, "median": 0.0, "pck": 1 / 2},
    }
    details = errors.to_dict()
    assert [details[key] for key in ("labeled_instances", "matched_instances", "missed_instances")] == [3, 2, 1]


@pytest.mark.parametrize(("pck_pixels", "expected"), [(5.0, 5 / 8), (4.999, 1 / 8), (0.0, 1 / 8)])
def test_pck_at_a_fixed_distance_counts_the_boundary(pck_pixels, expected):
    ground_truth, results = lizard_case()
    errors = pixel_errors(ground_truth, results, LIZARD, pck_pixels=pck_pixels)
    assert errors.summary()["pck_pixels"] == expected
    assert list(errors.summary()) == [*PIXEL_STAT_NAMES, "pck_pixels"]
    assert errors.per_keypoint()["tail"]["pck_pixels"] == 1 / 2


def test_pck_threshold_scales_with_the_box():
    ground_truth, results = lizard_case()
    assert pixel_errors(ground_truth, results, LIZARD, pck_threshold=0.0625).summary()["pck"] == 5 / 8
    assert pixel_errors(ground_truth, results, LIZARD, pck_threshold=0.0499).summary()["pck"] == 1 / 8


def test_min_oks_leaves_weak_matches_missed():
    ground_truth, results = lizard_case()
    # OKS with sigma 0.025 (2 sigma squared 0.0025): A's exp(-25 / (5000 * 0.0025 * 2)) = 0.368, B's
    # (2 exp(-25 / 16) + 1) / 3 = 0.473; at min_oks 0.4 only B is matched (errors 5, 5, 0; its tail in PCK).
    a_oks, b_oks = np.exp(-1), (2 * np.exp(-25 / (3200 * 0.005)) + 1) / 3
    errors = pixel_errors(ground_truth, results, LIZARD, min_oks=0.4)
    assert a_oks < 0.4 < b_oks and errors.summary() == {
        "pixel_rmse": np.sqrt(50 / 3), "pixel_median": 5.0, "pck": 1 / 8, "matched_fraction": 1 / 3,
    }
    nothing = pixel_errors(ground_truth, results, LIZARD, min_oks=0.99).summary()
    assert nothing == {"pixel_rmse": -1.0, "pixel_median": -1.0, "pck": 0.0, "matched_fraction": 0.0}


def test_no_labeled_instance_is_undefined():
    ground_truth, results = lizard_case()
    ground_truth["annotations"] = ground_truth["annotations"][3:]
    errors = pixel_errors(ground_truth, results, LIZARD, pck_pixels=5)
    assert set(errors.summary().values()) == {-1.0}
    assert errors.per_keypoint()["head"] == {
        "count": 0, "missed": 0, "rmse": -1.0, "median": -1.0, "pck": -1.0, "pck_pixels": -1.0,
    }


def test_matching_maximises_total_oks_not_greedy():
    oks = np.array([[0.9, 0.8], [0.7, 0.0]])
    instances, predictions = match_people(oks)  # greedy would pair (0, 0) and leave instance 1 unmatched
    assert instances.tolist() == [0, 1] and predictions.tolist() == [1, 0]
    instances, predictions = match_people(np.array([[0.3, 0.2]]), min_oks=0.3)
    assert instances.tolist() == predictions.tolist() == []
    instances, predictions = match_people(np.zeros((2, 0)))
    assert instances.tolist() == predictions.tolist() == []


def test_each_prediction_matches_one_instance():
    """Two instances, one prediction between them nearer A: A matched, B missed."""
    ground_truth, _ = lizard_case()
    ground_truth["annotations"][1] = annotation(1, [(40, 10, 2), (50, 10, 2), (60, 10, 2)], [30, 0, 40, 20])
    errors = pixel_errors(ground_truth, [result(1, [(13, 14), (23, 6), (0, 0)])], LIZARD)
    assert errors.to_dict()["matched_instances"] == 1
    assert errors.summary()["pixel_rmse"] == 5.0


def pycocotools_oks(ground_truth: dict, results: list[dict], image_id: int, sigmas) -> np.ndarray:
    """pycocotools' `computeOks` of one image: [predictions by descending score, annotations]."""
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = copy.deepcopy(ground_truth)
        coco_gt.createIndex()
        cocoeval = COCOeval(coco_gt, coco_gt.loadRes(copy.deepcopy(results)), "keypoints")
    cocoeval.params.kpt_oks_sigmas = np.asarray(sigmas)
    cocoeval._prepare()
    return cocoeval.computeOks(image_id, 1)


def test_oks_equals_pycocotools(coco_ground_truth, make_predictions):
    results = make_predictions(coco_ground_truth, 0)
    sigmas = get_skeleton("coco").sigmas
    for image in coco_ground_truth["images"]:
        anns = [ann for ann in coco_ground_truth["annotations"] if ann["image_id"] == image["id"]]
        people = sorted((r for r in results if r["image_id"] == image["id"]), key=lambda r: -r["score"])
        labeled = [index for index, ann in enumerate(anns) if ann["num_keypoints"] > 0]
        truth = np.reshape([anns[index]["keypoints"] for index in labeled], (-1, 17, 3)).astype(float)
        areas = np.array([anns[index]["area"] for index in labeled])
        predicted = np.reshape([r["keypoints"] for r in people], (-1, 17, 3))
        ours = object_keypoint_similarity(truth, areas, predicted, sigmas)
        expected = pycocotools_oks(coco_ground_truth, results, image["id"], sigmas)[:, labeled].T
        np.testing.assert_allclose(ours, expected, rtol=1e-12, atol=0)


def test_crowdpose_oks_scale_comes_from_the_box():
    """A 5 px error on a person whose annotated area is tiny: no OKS overlap with the area, a match with the
    CrowdPose box scale (w * h * 0.53)."""
    crowdpose = get_skeleton("crowdpose")
    keypoints = [(100 + 10 * k, 100 + 5 * k, 2) for k in range(14)]
    ground_truth = {"images": [{"id": 1}], "categories": [crowdpose.coco_category()],
                    "annotations": [annotation(1, keypoints, [90, 90, 150, 100], area=1e-6)]}
    shifted = [result(1, [(x + 3, y + 4) for x, y, _ in keypoints])]
    by_box = pixel_errors(ground_truth, shifted, crowdpose).summary()
    assert by_box == {"pixel_rmse": 5.0, "pixel_median": 5.0, "pck": 1.0, "matched_fraction": 1.0}
    by_area = dataclasses.replace(crowdpose, name="crowdpose_by_area", oks_area_from_bbox=False)
    assert pixel_errors(ground_truth, shifted, by_area).summary()["matched_fraction"] == 0.0


def shifted_ground_truth(ground_truth: dict, dx: float, dy: float) -> list[dict]:
    """Every labeled person as a prediction moved by (dx, dy)."""
    results = []
    for ann in ground_truth["annotations"]:
        if ann["num_keypoints"] > 0:
            xyv = np.reshape(ann["keypoints"], (-1, 3)) + [dx, dy, 0]
            results.append({"image_id": ann["image_id"], "keypoints": xyv.reshape(-1).tolist(), "score": 1.0})
    return results


def test_coco_fixture_shifted_by_3_4(coco_fixture_json, coco_fixture_dir, coco_ground_truth):
    """All 181 labeled keypoints of the 12 labeled people 5 px off; only person 1724673 (box 30.4 x 96.1, 17
    labeled keypoints) has a box under 100 px, so its keypoints miss PCK@0.05 and the rest pass."""
    rows = read_coco_keypoints(coco_fixture_json, coco_fixture_dir, show_progress=False)
    results = shifted_ground_truth(coco_ground_truth, 3, 4)
    for evaluator in (KeypointEvaluator.from_coco(coco_fixture_json, pck_pixels=5),
                      KeypointEvaluator.from_rows(rows, "coco", pck_pixels=5)):
        evaluator.add_results(results)
        stats = evaluator.compute()
        assert list(stats) == [*COCO_STAT_NAMES, *PIXEL_STAT_NAMES, "pck_pixels"] == list(evaluator.stat_names)
        pixel = {name: stats[name] for name in (*PIXEL_STAT_NAMES, "pck_pixels")}
        assert pixel == {"pixel_rmse": 5.0, "pixel_median": 5.0, "pck": 164 / 181, "matched_fraction": 1.0,
                         "pck_pixels": 1.0}
        small = next(ann for ann in coco_ground_truth["annotations"] if ann["id"] == 1724673)
        for k, (name, breakdown) in enumerate(evaluator.per_keypoint().items()):
            labeled = sum(ann["keypoints"][3 * k + 2] > 0 for ann in coco_ground_truth["annotations"])
            assert small["keypoints"][3 * k + 2] > 0
            assert breakdown == {"count": labeled, "missed": 0, "rmse": 5.0, "median": 5.0,
                                 "pck": (labeled - 1) / labeled, "pck_pixels": 1.0}, name


def test_evaluator_counts_images_without_predictions_as_missed(coco_fixture_json, coco_ground_truth):
    evaluator = KeypointEvaluator.from_coco(coco_fixture_json)
    evaluator.add_results([r for r in shifted_ground_truth(coco_ground_truth, 3, 4) if r["image_id"] == 785])
    details = evaluator.pixel_errors().to_dict()
    assert (details["labeled_instances"], details["matched_instances"], details["missed_instances"]) == (12, 1, 11)
    stats = evaluator.compute()
    assert (stats["matched_fraction"], stats["pck"], stats["pixel_rmse"]) == (1 / 12, 17 / 181, 5.0)
    assert json.loads(json.dumps(details)) == details


@pytest.mark.parametrize(("options", "message"), [
    ({"pck_threshold": -0.1}, r"pck_threshold must be >= 0 \(a fraction of the box size\), got -0.1"),
    ({"pck_pixels": float("nan")}, r"pck_pixels must be >= 0 \(a distance in pixels\) or None, got nan"),
    ({"min_oks": 1.0}, r"min_oks must be in \[0, 1\) \(a match needs OKS > min_oks\), got 1.0"),
])
def test_bad_thresholds_raise(options, message, coco_fixture_json):
    with pytest.raises(ValueError, match=message):
        KeypointEvaluator.from_coco(coco_fixture_json, **options)
