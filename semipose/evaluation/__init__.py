"""OKS AP evaluation for COCO and CrowdPose keypoints, on top of pycocotools."""

from .ground_truth import ground_truth_from_rows, load_coco_ground_truth
from .keypoint_evaluator import KeypointEvaluator
from .protocols import COCO_STAT_NAMES, CROWDPOSE_STAT_NAMES, score_coco, score_crowdpose

__all__ = [
    "COCO_STAT_NAMES",
    "CROWDPOSE_STAT_NAMES",
    "KeypointEvaluator",
    "ground_truth_from_rows",
    "load_coco_ground_truth",
    "score_coco",
    "score_crowdpose",
]
