"""CrowdPose rules against the reference, xtcocotools' `keypoints_crowd`.

xtcocotools is a test-only reference (its index wheel breaks with numpy 2; build it from source
with `pip install --no-build-isolation xtcocotools`). Its numbers on two seeded cases are recorded
in `crowdpose_xtcocotools_reference.json` together with the inputs that produced them, so the
comparison runs without it; where it is importable, further tests run it live. Regenerate the
recording with `PYTHONPATH=. python tests/evaluation/test_protocols.py`.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import logging
from pathlib import Path

import numpy as np
import pytest

from semipose.evaluation import CROWDPOSE_STAT_NAMES, KeypointEvaluator
from semipose.evaluation.protocols import crowd_index_bins, score_crowdpose
from semipose.skeletons import get_skeleton

CROWDPOSE = get_skeleton("crowdpose")
REFERENCE_FILE = Path(__file__).parent / "crowdpose_xtcocotools_reference.json"
REFERENCE_CASES = {  # name: (seed, crowd index of each image)
    "all_bins": (0, (0.0, 0.1, 0.2, 0.45, 0.79, 0.8, 0.9, 1.0)),
    "no_hard_image": (4, (0.05, 0.3, 0.6)),
}
XTCOCOTOOLS = "test-only reference; build: pip install --no-build-isolation xtcocotools"
# A standing person in the unit box, CrowdPose order: shoulders, elbows, wrists, hips, knees, ankles
# (left/right alternating), head, neck.
_TEMPLATE = np.array([
    [0.3, 0.2], [0.7, 0.2], [0.2, 0.35], [0.8, 0.35], [0.15, 0.5], [0.85, 0.5], [0.35, 0.55],
    [0.65, 0.55], [0.35, 0.75], [0.65, 0.75], [0.35, 0.95], [0.65, 0.95], [0.5, 0.02], [0.5, 0.15],
])


def _person(rng: np.random.Generator) -> tuple[np.ndarray, list[float]]:
    """True keypoint positions [14, 2] of a random person and its box."""
    height = rng.uniform(40, 300)
    width = height * rng.uniform(0.3, 0.7)
    x, y = rng.uniform(0, 640 - width), rng.uniform(0, 480 - height)
    points = _TEMPLATE * [width, height] + [x, y] + rng.normal(0, 0.02 * height, (14, 2))
    return points, [round(x, 2), round(y, 2), round(width, 2), round(height, 2)]


def _annotation(
    points: np.ndarray, bbox: list[float], visibility: np.ndarray, image_id: int
) -> dict:
    keypoints = np.concatenate([points * (visibility[:, None] > 0), visibility[:, None]], axis=1)
    return {
        "image_id": image_id, "category_id": 1, "iscrowd": 0, "bbox": bbox,
        "keypoints": np.round(keypoints, 2).reshape(-1).tolist(),
        "num_keypoints": int(np.count_nonzero(visibility)),
    }


def _detection(
    rng: np.random.Generator, image_id: int, points: np.ndarray, scale: float,
    max_score: float = 1.0,
) -> dict:
    """A prediction near `points`, with noise from tiny to far (OKS across the thresholds)."""
    noise = scale * rng.choice([0.01, 0.03, 0.05, 0.08, 0.12, 0.4])
    noisy = points + rng.normal(0, noise, points.shape)
    keypoints = np.concatenate([noisy, rng.uniform(0.05, 1, (14, 1))], axis=1)
    return {
        "image_id": image_id, "category_id": 1,
        "keypoints": np.round(keypoints, 2).reshape(-1).tolist(),
        "score": round(float(rng.uniform(0, max_score)), 2),
    }


def crowdpose_case(seed: int, crowd_indices: tuple[float, ...]) -> tuple[dict, list[dict]]:
    """A CrowdPose-style ground truth (no `area`, one image per crowd index) and predictions.

    Covers: 1-4 people per image with occluded/unlabeled keypoints, duplicates and misses, false
    positives, an ignore region without labeled keypoints (image 1), a person whose stored
    `num_keypoints` is 0 although keypoints are labeled (image 2, CrowdPose counts only visible
    ones), a crowd region (image 3), a prediction with all keypoint scores 0, more than 20
    predictions in one image (maxDets), tied scores.
    """
    rng = np.random.default_rng(seed)
    images, annotations, results = [], [], []
    for image_id, crowd_index in enumerate(crowd_indices, start=1):
        images.append({"id": image_id, "file_name": f"{image_id:06d}.jpg", "width": 640,
                       "height": 480, "crowdIndex": crowd_index})
        for _ in range(rng.integers(1, 5)):
            points, bbox = _person(rng)
            visibility = rng.choice([0, 1, 2], size=14, p=[0.15, 0.35, 0.5])
            annotations.append(_annotation(points, bbox, visibility, image_id))
            scale = np.sqrt(bbox[2] * bbox[3] * 0.53)
            results += [_detection(rng, image_id, points, scale) for _ in range(rng.integers(0, 3))]
        for _ in range(rng.integers(0, 3)):
            points, _ = _person(rng)
            results.append(_detection(rng, image_id, points, 1.0, max_score=0.6))
    _add_special_cases(rng, annotations, results, len(images))
    categories = [CROWDPOSE.coco_category()]
    ground_truth = {"images": images, "annotations": annotations, "categories": categories}
    for index, annotation in enumerate(annotations, start=1):
        annotation["id"] = index
    return ground_truth, results


def _add_special_cases(
    rng: np.random.Generator, annotations: list, results: list, num_images: int
) -> None:
    """The corner cases listed in `crowdpose_case`, appended in place."""
    points, bbox = _person(rng)
    annotations.append(_annotation(points, bbox, np.zeros(14), image_id=1))
    results.append(_detection(rng, 1, points, 5.0))
    points, bbox = _person(rng)
    annotations.append({**_annotation(points, bbox, np.ones(14), image_id=2), "num_keypoints": 0})
    results.append(_detection(rng, 2, points, 2.0))
    points, bbox = _person(rng)
    annotations.append({**_annotation(points, bbox, np.zeros(14), image_id=3), "iscrowd": 1})
    results += [_detection(rng, 3, points, 5.0) for _ in range(3)]
    zero_scores = _detection(rng, 1, points, 1.0)
    zero_scores["keypoints"][2::3] = [0.0] * 14
    results.append({**zero_scores, "score": 0.99})
    for _ in range(25):
        results.append(_detection(rng, num_images, _person(rng)[0], 1.0, max_score=0.5))


def xtcocotools_stats(ground_truth: dict, results: list[dict], tmp_path: Path) -> dict[str, float]:
    """The reference: xtcocotools `keypoints_crowd` as mmpose calls it (area from the box)."""
    from xtcocotools.coco import COCO
    from xtcocotools.cocoeval import COCOeval

    gt_file = tmp_path / "crowdpose_gt.json"
    gt_file.write_text(json.dumps(ground_truth))
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO(str(gt_file))
        coco_dt = coco_gt.loadRes(copy.deepcopy(results))
        sigmas = np.array(CROWDPOSE.sigmas)
        cocoeval = COCOeval(coco_gt, coco_dt, "keypoints_crowd", sigmas, use_area=False)
        cocoeval.evaluate()
        cocoeval.accumulate()
        cocoeval.summarize()
    return dict(zip(CROWDPOSE_STAT_NAMES, map(float, cocoeval.stats), strict=True))


def evaluator_stats(ground_truth: dict, results: list[dict]) -> dict[str, float]:
    """The evaluator's OKS stats (the pixel stats that follow them left out)."""
    evaluator = KeypointEvaluator.from_coco(ground_truth, "crowdpose")
    evaluator.add_results(results)
    return {name: value for name, value in evaluator.compute().items() if name in CROWDPOSE_STAT_NAMES}


def record_reference(tmp_dir: Path) -> None:
    """Run xtcocotools on the seeded cases and write the reference file."""
    from importlib.metadata import version

    cases = []
    for name, (seed, crowd_indices) in REFERENCE_CASES.items():
        ground_truth, results = crowdpose_case(seed, crowd_indices)
        stats = xtcocotools_stats(ground_truth, results, tmp_dir)
        cases.append({"name": name, "seed": seed, "crowd_indices": list(crowd_indices),
                      "xtcocotools_stats": stats, "ground_truth": ground_truth, "results": results})
    reference = {
        "generated_by": "crowdpose_case(seed, crowd_indices) in tests/evaluation/test_protocols.py",
        "reference": f"xtcocotools {version('xtcocotools')} COCOeval(gt, dt, 'keypoints_crowd', "
                     "CrowdPose sigmas, use_area=False)",
        "cases": cases,
    }
    REFERENCE_FILE.write_text(json.dumps(reference, separators=(",", ":")) + "\n")


def _reference_case(name: str) -> dict:
    cases = json.loads(REFERENCE_FILE.read_text())["cases"]
    return next(case for case in cases if case["name"] == name)


@pytest.mark.parametrize("name", list(REFERENCE_CASES))
def test_crowdpose_matches_recorded_xtcocotools_numbers(name):
    case = _reference_case(name)
    stats = evaluator_stats(case["ground_truth"], case["results"])
    assert list(stats) == list(CROWDPOSE_STAT_NAMES)
    assert stats == pytest.approx(case["xtcocotools_stats"], abs=1e-6)


def test_recorded_cases_cover_every_crowd_bin_and_an_empty_one():
    all_bins, no_hard = (_reference_case(n)["ground_truth"]["images"] for n in REFERENCE_CASES)
    assert [len(ids) for ids in crowd_index_bins(all_bins)] == [2, 3, 3]
    assert [len(ids) for ids in crowd_index_bins(no_hard)] == [1, 2, 0]
    recorded = {name: _reference_case(name)["xtcocotools_stats"] for name in REFERENCE_CASES}
    assert recorded["no_hard_image"]["AP(H)"] == -1.0
    assert 0 < recorded["all_bins"]["AP"] < 1 and recorded["all_bins"]["AP(H)"] > 0


@pytest.mark.parametrize("name", list(REFERENCE_CASES))
def test_xtcocotools_reproduces_the_recording(name, tmp_path):
    pytest.importorskip("xtcocotools", reason=XTCOCOTOOLS)
    case = _reference_case(name)
    stats = xtcocotools_stats(case["ground_truth"], case["results"], tmp_path)
    assert stats == pytest.approx(case["xtcocotools_stats"], abs=1e-12)


@pytest.mark.parametrize("seed", [10, 11, 12, 13, 14])
def test_crowdpose_matches_live_xtcocotools(seed, tmp_path):
    pytest.importorskip("xtcocotools", reason=XTCOCOTOOLS)
    ground_truth, results = crowdpose_case(seed, REFERENCE_CASES["all_bins"][1])
    expected = xtcocotools_stats(ground_truth, results, tmp_path)
    assert evaluator_stats(ground_truth, results) == pytest.approx(expected, abs=1e-6)


def test_crowd_index_bins_use_half_open_thresholds():
    crowd_indices = [0.0, 0.19999, 0.2, 0.79999, 0.8, 1.0]
    images = [{"id": i, "crowdIndex": c} for i, c in enumerate(crowd_indices)]
    images.append({"id": 99})
    assert crowd_index_bins(images) == ([0, 1], [2, 3], [4, 5])


def test_crowdpose_scale_is_the_box_not_the_area():
    """Every keypoint 10 px off along x and y: the OKS uses w * h * 0.53, whatever `area` says."""
    points = _TEMPLATE * [100, 200] + [50, 50]
    annotation = _annotation(points, [50, 50, 100, 200], np.full(14, 2), image_id=1)
    keypoints = np.concatenate([points + 10, np.ones((14, 1))], axis=1)
    prediction = {"image_id": 1, "category_id": 1, "score": 1.0,
                  "keypoints": keypoints.reshape(-1).tolist()}
    variances = (2 * np.array(CROWDPOSE.sigmas)) ** 2
    oks = np.mean(np.exp(-200 / variances / (100 * 200 * 0.53) / 2))
    expected_ar = np.mean([oks >= threshold for threshold in np.linspace(0.5, 0.95, 10)])
    assert 0 < expected_ar < 1
    for area in (1.0, 1e9):
        ground_truth = {"images": [{"id": 1, "crowdIndex": 0.5}],
                        "annotations": [{**annotation, "id": 1, "area": area}],
                        "categories": [CROWDPOSE.coco_category()]}
        stats = score_crowdpose(ground_truth, [prediction], CROWDPOSE.sigmas)
        assert stats["AR"] == pytest.approx(expected_ar, abs=1e-12)


def test_crowdpose_empty_predictions_score_zero_and_keep_empty_bins_undefined():
    ground_truth, _ = crowdpose_case(7, (0.1, 0.5))
    with pytest.warns(UserWarning, match="no predicted people"):
        stats = KeypointEvaluator.from_coco(ground_truth, "crowdpose").compute()
    missed = {"pixel_rmse": -1.0, "pixel_median": -1.0, "pck": 0.0, "matched_fraction": 0.0}
    assert stats == dict.fromkeys(CROWDPOSE_STAT_NAMES[:-1], 0.0) | {"AP(H)": -1.0} | missed


def test_pycocotools_output_is_captured_into_the_debug_log(capsys, caplog):
    ground_truth, results = crowdpose_case(8, (0.1, 0.5, 0.9))
    with caplog.at_level(logging.DEBUG, logger="semipose.evaluation.protocols"):
        score_crowdpose(ground_truth, results, CROWDPOSE.sigmas)
    assert capsys.readouterr().out == ""
    assert "Accumulating evaluation results" in caplog.text


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        record_reference(Path(tmp))
    print(f"wrote {REFERENCE_FILE}")
