"""What a semi run's teacher taught on the unlabeled frames that have labels the trainer never read.

The unlabeled split of a `labeled_n` / `ratio_r` config holds the other training frames with their
annotations removed; the `full` config's labeled split still has them. At each saved teacher (end of
burn-in, end of ramp-up, end of training) this scores the teacher's people on those frames, filtered
exactly as pseudo labels are (person score >= the run's threshold, a keypoint >= the keypoint threshold;
at most the model's `max_people`), against that truth: precision and recall at OKS 0.5
(`pseudo_label_quality`), pseudo people per frame, and the pixel error of the matched people
(`KeypointEvaluator`, original pixels). Frames from videos have no truth and are not scored.

Run by `bench_real` in the run's own subprocess once the main job has finished:

    python -m benchmarks.ssl_grid.unlabeled_readout RUN_DIR --dataset_folder F --dataset_config labeled_10 \
        --person_threshold 0.2 --snapshot_steps 400 500 1000 --output readout.json
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from semipose.data.dataset_folder import load_pose_dataset, read_dataset_metadata, read_dataset_skeleton
from semipose.evaluation import KeypointEvaluator, ground_truth_from_rows
from semipose.evaluation.pseudo_label_quality import pseudo_label_quality
from semipose.evaluation.trainer_metrics import people_from_pose_estimates
from semipose.modeling.codec_common import confident_people

from .teacher_readout import CURVE_THRESHOLDS, load_teacher, pseudo_label_curves, readout_parser


def hidden_truth_rows(folder: Path, config: str):
    """The training frames `config` leaves unlabeled, with the labels of the `full` config (None: it has none)."""
    labeled_ids = set(read_dataset_metadata(folder)["labeled_image_ids"][config])
    every_labeled = load_pose_dataset(folder, "full", "labeled")
    keep = [index for index, image_id in enumerate(every_labeled["image_id"]) if image_id not in labeled_ids]
    return every_labeled.select(keep) if keep else None


def filtered_pose_estimates(estimates: list[dict], person_threshold: float, keypoint_threshold: float) -> list[dict]:
    """Each image's people as the pseudo-label filter keeps them (score >= threshold, a confident keypoint)."""
    kept = []
    for people in estimates:
        keep = confident_people(people["scores"], people["keypoint_scores"], person_threshold, keypoint_threshold)
        kept.append({name: value[keep] for name, value in people.items()})
    return kept


def snapshot_quality(ground_truth: dict, image_ids: list[int], estimates: list[dict], skeleton,
                     person_threshold: float, keypoint_threshold: float) -> dict[str, float]:
    """Precision, recall, people per frame and pixel error of the pseudo people of one teacher."""
    people = people_from_pose_estimates(image_ids, estimates)
    quality = pseudo_label_quality(ground_truth, people, skeleton, person_threshold=person_threshold,
                                   keypoint_threshold=keypoint_threshold)
    kept = filtered_pose_estimates(estimates, person_threshold, keypoint_threshold)
    evaluator = KeypointEvaluator(ground_truth, skeleton)
    for image_id, keypoints, scores in people_from_pose_estimates(image_ids, kept):
        evaluator.add(image_id, keypoints, scores)
    pixels = evaluator.compute()
    scores = np.concatenate([found["scores"].numpy() for found in estimates]) if estimates else np.zeros(0)
    return {
        **{key: round(float(value), 4) for key, value in quality.items()},
        "pseudo_people_per_frame": round(sum(len(found["scores"]) for found in kept) / max(1, len(kept)), 4),
        "pixel_rmse": round(pixels["pixel_rmse"], 3), "pixel_median": round(pixels["pixel_median"], 3),
        "best_person_score_quartiles": np.round(np.quantile(scores, [0.25, 0.5, 0.75]), 4).tolist()
        if scores.size else [],
    }


def read_unlabeled(run_dir: Path, folder: Path, config: str, snapshot_steps: list[int], person_threshold: float,
                   keypoint_threshold: float) -> dict[str, Any]:
    """The readout of the module docstring, as one json-able dict (empty when no unlabeled frame has labels)."""
    rows = hidden_truth_rows(folder, config)
    if rows is None:
        return {}
    skeleton = read_dataset_skeleton(folder)
    ground_truth = ground_truth_from_rows(rows.remove_columns("image"), skeleton)
    image_ids, images = list(rows["image_id"]), list(rows["image"])
    snapshots, estimates = [], []
    for step in snapshot_steps:
        estimates = load_teacher(run_dir, step).predict(images)
        snapshots.append({"step": step, **snapshot_quality(ground_truth, image_ids, estimates, skeleton,
                                                            person_threshold, keypoint_threshold)})
    curves = pseudo_label_curves(ground_truth, people_from_pose_estimates(image_ids, estimates), skeleton,
                                 keypoint_threshold)["all"]
    return {"unlabeled_with_truth": {"frames": len(image_ids), "person_threshold": person_threshold,
                                     "keypoint_threshold": keypoint_threshold, "snapshots": snapshots,
                                     "final_curve": curves, "curve_thresholds": list(CURVE_THRESHOLDS)}}


def main() -> None:
    args = readout_parser(__doc__.splitlines()[0]).parse_args()
    readout = read_unlabeled(args.run_dir, args.dataset_folder, args.dataset_config, args.snapshot_steps,
                             args.person_threshold, args.keypoint_threshold)
    args.output.write_text(json.dumps(readout))


if __name__ == "__main__":
    main()
