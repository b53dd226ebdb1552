"""Evaluation in the shapes the Trainer reports: post-processed people into an evaluator, prefixed metrics.

- `people_from_pose_estimates`: `post_process_pose_estimation` outputs -> (image id, keypoints with their
  scores, person scores) per image, the people `KeypointEvaluator.add` and `pseudo_label_quality` take;
- `add_pose_estimates`: feed such outputs to a `KeypointEvaluator`;
- `prefixed_metrics`: `{"AP": ...}` -> `{"eval_AP": ...}` (the Trainer's `metric_key_prefix`).

Illustration (not run: needs validation rows and model outputs):

```python
evaluator = KeypointEvaluator.from_rows(validation_rows, "coco")
add_pose_estimates(evaluator, batch_image_ids, image_processor.post_process_pose_estimation(
    outputs, target_sizes=batch_sizes))
metrics = prefixed_metrics(evaluator.compute(), "eval")
```
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .keypoint_evaluator import KeypointEvaluator, to_numpy


def people_from_pose_estimates(
    image_ids: Sequence[int], pose_estimates: Sequence[Mapping[str, Any]]
) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """(image_id, keypoints [M, K, 3] as (x, y, keypoint score), person scores [M]) per image, float64.

    Args:
        image_ids: B image ids.
        pose_estimates: B dicts with `keypoints` [M, K, 2] (x, y in original image pixels),
            `keypoint_scores` [M, K] and `scores` [M], as `post_process_pose_estimation` returns.
    """
    if len(image_ids) != len(pose_estimates):
        raise ValueError(f"Expected one image id per pose estimate, got {len(image_ids)} ids and "
                         f"{len(pose_estimates)} estimates.")
    people = []
    for image_id, estimate in zip(image_ids, pose_estimates):
        keypoint_scores = to_numpy(estimate["keypoint_scores"])[..., None]
        keypoints = np.concatenate([to_numpy(estimate["keypoints"]), keypoint_scores], axis=-1)
        people.append((int(image_id), keypoints, to_numpy(estimate["scores"])))
    return people


def add_pose_estimates(
    evaluator: KeypointEvaluator,
    image_ids: Sequence[int],
    pose_estimates: Sequence[Mapping[str, Any]],
) -> None:
    """Add each image's post-processed people (see `people_from_pose_estimates`) to `evaluator`."""
    people = people_from_pose_estimates(image_ids, pose_estimates)
    evaluator.add_batch(
        [image_id for image_id, _, _ in people],
        [keypoints for _, keypoints, _ in people],
        [scores for _, _, scores in people],
    )


def prefixed_metrics(
    stats: Mapping[str, float], metric_key_prefix: str = "eval"
) -> dict[str, float]:
    """Stats keyed the Trainer's way: `{"AP": 0.5}` -> `{"eval_AP": 0.5}`."""
    return {f"{metric_key_prefix}_{name}": float(value) for name, value in stats.items()}
