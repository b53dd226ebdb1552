"""What a semi run's teacher would teach: its pseudo people on validation per crowd bin, and on crowded
unlabeled images at the end of the burn-in, the end of the ramp-up and the end of training.

Run by `runner` in the run's own subprocess (one torch thread) once the main job has finished:

    python -m benchmarks.ssl_grid.teacher_readout RUN_DIR --dataset_folder F --dataset_config ratio_5 \
        --person_threshold 0.2 --snapshot_steps 400 500 1000 --output readout.json

- `pseudo_label_curves`: the final teacher's people on the validation images, filtered as pseudo labels
  are (person score >= each threshold, a keypoint >= the keypoint threshold), precision and recall at
  OKS 0.5 against the ground truth (`pseudo_label_quality`), for all images and per crowd bin;
- `teacher_snapshots`: the teacher's filtered people at each snapshot on the first `--figure_images`
  unlabeled images of the hard bin (crowdIndex >= 0.8), which the figure draws next to the truth.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
from transformers import AutoImageProcessor, AutoModelForPoseEstimation

from semipose.data.dataset_folder import load_pose_dataset, read_dataset_skeleton
from semipose.evaluation import ground_truth_from_rows
from semipose.evaluation.protocols import CROWD_INDEX_THRESHOLDS, crowd_index_bins
from semipose.evaluation.pseudo_label_quality import pseudo_label_quality
from semipose.evaluation.trainer_metrics import people_from_pose_estimates
from semipose.inference import PoseEstimator
from semipose.training.trainer import TEACHER_DIR

from .regimes import CROWD_BINS

CURVE_THRESHOLDS = (0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6)
FIGURE_IMAGES = 3


def load_teacher(run_dir: Path, step: int) -> PoseEstimator:
    """The teacher saved in the run's checkpoint of `step`, with the checkpoint's image processor."""
    checkpoint = run_dir / f"checkpoint-{step}"
    if not (checkpoint / TEACHER_DIR).is_dir():
        raise FileNotFoundError(f"{checkpoint}: no {TEACHER_DIR}/ folder (was the run semi, the step after burn-in?).")
    model = AutoModelForPoseEstimation.from_pretrained(checkpoint / TEACHER_DIR, use_safetensors=True)
    return PoseEstimator(model, AutoImageProcessor.from_pretrained(checkpoint), batch_size=32, flip_test=False)


def pseudo_label_curves(ground_truth: dict[str, Any], people: list[tuple], skeleton: str,
                        keypoint_threshold: float) -> dict[str, list[dict[str, float]]]:
    """Precision / recall / people per image of the filtered people per person threshold, for all images
    and for each crowd bin (a bin without images is left out)."""
    bins = dict(zip(CROWD_BINS, crowd_index_bins(ground_truth["images"])))
    subsets = {"all": [image["id"] for image in ground_truth["images"]], **bins}
    curves = {}
    for name, image_ids in subsets.items():
        if not image_ids:
            continue
        subset_truth, subset_people = _subset(ground_truth, people, set(image_ids))
        curves[name] = [
            {"person_threshold": threshold, **{key: round(value, 4) for key, value in pseudo_label_quality(
                subset_truth, subset_people, skeleton, person_threshold=threshold,
                keypoint_threshold=keypoint_threshold).items()}}
            for threshold in CURVE_THRESHOLDS
        ]
    return curves


def _subset(ground_truth: dict[str, Any], people: list[tuple], image_ids: set[int]) -> tuple[dict, list]:
    truth = {
        **ground_truth,
        "images": [image for image in ground_truth["images"] if image["id"] in image_ids],
        "annotations": [ann for ann in ground_truth["annotations"] if ann["image_id"] in image_ids],
    }
    return truth, [found for found in people if found[0] in image_ids]


def crowded_unlabeled_rows(folder: Path, config: str, count: int):
    """The first `count` unlabeled images of `config` in the hard crowd bin (all of them if fewer)."""
    unlabeled = load_pose_dataset(folder, config, "unlabeled")
    hard_from = CROWD_INDEX_THRESHOLDS[1]
    hard = [index for index, value in enumerate(unlabeled["crowd_index"]) if value is not None and value >= hard_from]
    return unlabeled.select(hard[:count])


def filtered_people(estimate: dict, person_threshold: float) -> dict[str, list]:
    """One image's people at or above `person_threshold`: keypoints [M, K, 3] as (x, y, score), scores [M]."""
    scores = estimate["scores"].numpy()
    keep = scores >= person_threshold
    keypoints = np.concatenate([estimate["keypoints"].numpy(), estimate["keypoint_scores"].numpy()[..., None]], -1)
    return {"keypoints": np.round(keypoints[keep], 2).tolist(), "scores": np.round(scores[keep], 3).tolist()}


def read_teacher(run_dir: Path, folder: Path, config: str, snapshot_steps: list[int], person_threshold: float,
                 keypoint_threshold: float, figure_images: int) -> dict[str, Any]:
    """The readout of the module docstring, as one json-able dict."""
    skeleton = read_dataset_skeleton(folder)
    validation = load_pose_dataset(folder, config, "validation")
    ground_truth = ground_truth_from_rows(validation.remove_columns("image"), skeleton)
    final_teacher = load_teacher(run_dir, snapshot_steps[-1])
    estimates = final_teacher.predict(list(validation["image"]))
    people = people_from_pose_estimates(list(validation["image_id"]), estimates)
    crowded = crowded_unlabeled_rows(folder, config, figure_images)
    images = list(crowded["image"])
    snapshots = []
    for step in snapshot_steps:
        teacher = final_teacher if step == snapshot_steps[-1] else load_teacher(run_dir, step)
        found = teacher.predict(images)
        snapshots.append({"step": step, "people": [filtered_people(estimate, person_threshold) for estimate in found]})
    return {
        "person_threshold": person_threshold, "keypoint_threshold": keypoint_threshold,
        "pseudo_label_curves": pseudo_label_curves(ground_truth, people, skeleton, keypoint_threshold),
        "teacher_snapshots": {"image_ids": list(crowded["image_id"]), "snapshots": snapshots},
    }


def readout_parser(description: str) -> argparse.ArgumentParser:
    """The command line every teacher readout shares: the run, its data, its snapshots and its pseudo-label filter."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("run_dir", type=Path, help="The main job's output_dir (with checkpoint-N/teacher).")
    parser.add_argument("--dataset_folder", type=Path, required=True)
    parser.add_argument("--dataset_config", required=True)
    parser.add_argument("--snapshot_steps", type=int, nargs="+", required=True, help="The last one is the final.")
    parser.add_argument("--person_threshold", type=float, required=True)
    parser.add_argument("--keypoint_threshold", type=float, default=0.3)
    parser.add_argument("--output", type=Path, required=True)
    return parser


def main() -> None:
    parser = readout_parser(__doc__.splitlines()[0])
    parser.add_argument("--figure_images", type=int, default=FIGURE_IMAGES)
    args = parser.parse_args()
    readout = read_teacher(args.run_dir, args.dataset_folder, args.dataset_config, args.snapshot_steps,
                           args.person_threshold, args.keypoint_threshold, args.figure_images)
    args.output.write_text(json.dumps(readout))


if __name__ == "__main__":
    main()
