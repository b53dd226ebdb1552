"""Trainer helpers: post-processed poses into the evaluator, prefixed metrics, saved files."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from semipose.evaluation import KeypointEvaluator
from semipose.evaluation.trainer_metrics import (
    add_pose_estimates,
    prefixed_metrics,
    save_evaluation,
)


def test_add_pose_estimates_joins_keypoints_and_their_scores(coco_fixture_json):
    evaluator = KeypointEvaluator.from_coco(coco_fixture_json)
    keypoints = torch.arange(2 * 17 * 2, dtype=torch.float32).reshape(2, 17, 2)
    keypoint_scores = torch.linspace(0, 1, 34).reshape(2, 17)
    estimates = [
        {"keypoints": keypoints, "keypoint_scores": keypoint_scores,
         "scores": torch.tensor([0.9, 0.4])},
        {"keypoints": torch.zeros(0, 17, 2), "keypoint_scores": torch.zeros(0, 17),
         "scores": torch.zeros(0)},
    ]
    add_pose_estimates(evaluator, [785, 40083], estimates)
    results = evaluator.results_json()
    assert evaluator.image_ids == [785, 40083]
    assert [r["image_id"] for r in results] == [785, 785]
    assert [r["score"] for r in results] == pytest.approx([0.9, 0.4])
    expected = torch.cat([keypoints, keypoint_scores[..., None]], dim=-1)[1].reshape(-1)
    assert np.array_equal(results[1]["keypoints"], expected.double().numpy())


def test_prefixed_metrics_follow_the_trainer_convention():
    assert prefixed_metrics({"AP": 0.5, "AP(E)": 0.25}) == {"eval_AP": 0.5, "eval_AP(E)": 0.25}
    assert prefixed_metrics({"AP": 1}, "test") == {"test_AP": 1.0}


def test_save_evaluation_writes_results_next_to_metrics(tmp_path):
    results = [{"image_id": 1, "category_id": 1, "keypoints": [1.0, 2.0, 0.5] * 17, "score": 0.7}]
    results_file, metrics_file = save_evaluation(tmp_path / "out", {"eval_AP": 0.25}, results)
    assert results_file == tmp_path / "out" / "eval_keypoint_results.json"
    assert metrics_file.parent == results_file.parent
    assert json.loads(results_file.read_text()) == results
    assert json.loads(metrics_file.read_text()) == {"eval_AP": 0.25}
