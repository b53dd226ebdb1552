"""OKS AP of COCO and CrowdPose keypoints (on top of pycocotools), and pixel error and PCK of matched people."""

from .ground_truth import ground_truth_from_rows, load_coco_ground_truth
from .keypoint_evaluator import KeypointEvaluator
from .pixel_error import DEFAULT_PCK_THRESHOLD, PIXEL_STAT_NAMES, PixelErrors, pixel_errors
from .protocols import COCO_STAT_NAMES, CROWDPOSE_STAT_NAMES, score_coco, score_crowdpose

__all__ = [
    "COCO_STAT_NAMES",
    "CROWDPOSE_STAT_NAMES",
    "DEFAULT_PCK_THRESHOLD",
    "KeypointEvaluator",
    "PIXEL_STAT_NAMES",
    "PixelErrors",
    "ground_truth_from_rows",
    "load_coco_ground_truth",
    "pixel_errors",
    "score_coco",
    "score_crowdpose",
]
