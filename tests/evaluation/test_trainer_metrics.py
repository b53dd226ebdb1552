"""Trainer helpers: post-processed poses into the evaluator and into pseudo-label people, prefixed metrics."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from semipose.evaluation import KeypointEvaluator
from semipose.evaluation.trainer_metrics import (
    add_pose_estimates,
    people_from_pose_estimates,
    prefixed_metrics,
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


def test_people_from_pose_estimates_are_what_pseudo_label_quality_reads():
    estimate = {"keypoints": torch.tensor([[[1.0, 2.0], [3.0, 4.0]]]), "keypoint_scores": torch.tensor([[0.5, 0.25]]),
                "scores": torch.tensor([0.75])}
    [(image_id, keypoints, scores)] = people_from_pose_estimates([7], [estimate])
    assert image_id == 7 and keypoints.tolist() == [[[1.0, 2.0, 0.5], [3.0, 4.0, 0.25]]] and scores.tolist() == [0.75]
    with pytest.raises(ValueError, match="one image id per pose estimate, got 2 ids and 1 estimates"):
        people_from_pose_estimates([7, 8], [estimate])
