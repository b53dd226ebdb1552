"""Evaluation in the shapes the Trainer reports and saves.

- `add_pose_estimates`: feed `post_process_pose_estimation` outputs to a `KeypointEvaluator`;
- `prefixed_metrics`: `{"AP": ...}` -> `{"eval_AP": ...}` (the Trainer's `metric_key_prefix`);
- `save_evaluation`: the predictions as a COCO keypoint results json next to a metrics json.

Example:

```python
>>> evaluator = KeypointEvaluator.from_rows(validation_rows, "coco")
>>> add_pose_estimates(evaluator, batch_image_ids, image_processor.post_process_pose_estimation(
...     outputs, target_sizes=batch_sizes))
>>> metrics = prefixed_metrics(evaluator.compute(), "eval")
>>> save_evaluation("outputs", metrics, evaluator.results_json(), "eval")
```
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .keypoint_evaluator import KeypointEvaluator, to_numpy


def add_pose_estimates(
    evaluator: KeypointEvaluator,
    image_ids: Sequence[int],
    pose_estimates: Sequence[Mapping[str, Any]],
) -> None:
    """Add one image's post-processed people per image id.

    Args:
        evaluator: the evaluator to feed.
        image_ids: B image ids.
        pose_estimates: B dicts with `keypoints` [M, K, 2] (x, y in original image pixels),
            `keypoint_scores` [M, K] and `scores` [M], as `post_process_pose_estimation` returns.
    """
    keypoints = []
    for people in pose_estimates:
        keypoint_scores = to_numpy(people["keypoint_scores"])[..., None]
        keypoints.append(np.concatenate([to_numpy(people["keypoints"]), keypoint_scores], axis=-1))
    evaluator.add_batch(image_ids, keypoints, [estimate["scores"] for estimate in pose_estimates])


def prefixed_metrics(
    stats: Mapping[str, float], metric_key_prefix: str = "eval"
) -> dict[str, float]:
    """Stats keyed the Trainer's way: `{"AP": 0.5}` -> `{"eval_AP": 0.5}`."""
    return {f"{metric_key_prefix}_{name}": float(value) for name, value in stats.items()}


def save_evaluation(
    output_dir: str | Path,
    metrics: Mapping[str, float],
    results: list[dict[str, Any]],
    metric_key_prefix: str = "eval",
) -> tuple[Path, Path]:
    """Write `{prefix}_keypoint_results.json` (COCO results) and `{prefix}_keypoint_metrics.json`.

    Args:
        output_dir: folder to write into (created if missing).
        metrics: the metrics to save, e.g. from `prefixed_metrics`.
        results: the COCO keypoint results, e.g. `KeypointEvaluator.results_json()`.
        metric_key_prefix: file name prefix, the Trainer's `metric_key_prefix`.

    Returns:
        The paths of the results file and the metrics file.
    """
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    results_file = output_dir / f"{metric_key_prefix}_keypoint_results.json"
    metrics_file = output_dir / f"{metric_key_prefix}_keypoint_metrics.json"
    results_file.write_text(json.dumps(results))
    metrics_file.write_text(json.dumps(dict(metrics), indent=2) + "\n")
    return results_file, metrics_file
