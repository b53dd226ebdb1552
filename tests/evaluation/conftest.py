"""Fixtures for the evaluation tests: the COCO fixture's json and seeded predictions on it."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest


def perturbed_predictions(ground_truth: dict, seed: int) -> list[dict]:
    """COCO keypoint results from the ground truth: noisy copies (from 1% to 30% of the person's
    scale), misses, duplicates, predictions inside ignore regions and false positives."""
    rng = np.random.default_rng(seed)
    num_keypoints = len(ground_truth["categories"][0]["keypoints"])
    results = []
    for ann in ground_truth["annotations"]:
        x, y, width, height = ann["bbox"]
        for _ in range(rng.integers(0, 3)):
            if ann["num_keypoints"]:
                noise = np.sqrt(ann["area"]) * rng.choice([0.01, 0.03, 0.06, 0.1, 0.3])
                xy = np.asarray(ann["keypoints"]).reshape(-1, 3)[:, :2]
                xy = xy + rng.normal(0, noise, xy.shape)
            else:
                xy = [x, y] + rng.uniform(0, 1, (num_keypoints, 2)) * [width, height]
            results.append(_result(rng, ann["image_id"], xy))
    for image in ground_truth["images"]:
        for _ in range(rng.integers(0, 3)):
            xy = rng.uniform(0, 1, (num_keypoints, 2)) * [image["width"], image["height"]]
            results.append(_result(rng, image["id"], xy))
    return results


def _result(rng: np.random.Generator, image_id: int, xy: np.ndarray) -> dict:
    keypoints = np.concatenate([xy, rng.uniform(0, 1, (len(xy), 1))], axis=1)
    return {"image_id": image_id, "category_id": 1, "keypoints": keypoints.reshape(-1).tolist(),
            "score": round(float(rng.uniform()), 3)}


@pytest.fixture(scope="session")
def coco_fixture_json(coco_fixture_dir: Path) -> Path:
    return coco_fixture_dir / "test_coco.json"


@pytest.fixture(scope="session")
def coco_ground_truth(coco_fixture_json: Path) -> dict:
    """The fixture's original json (do not modify: session scoped)."""
    return json.loads(coco_fixture_json.read_text())


@pytest.fixture(scope="session")
def make_predictions() -> Callable[[dict, int], list[dict]]:
    """`make_predictions(ground_truth, seed)`: seeded perturbations of the ground truth."""
    return perturbed_predictions
