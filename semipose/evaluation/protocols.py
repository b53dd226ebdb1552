"""OKS AP under the COCO and the CrowdPose rules, on top of pycocotools.

COCO: pycocotools' `COCOeval(gt, dt, "keypoints")` as is, with the skeleton's sigmas.

CrowdPose: the rules of the CrowdPose benchmark as xtcocotools implements them
(`COCOeval(gt, dt, "keypoints_crowd", sigmas, use_area=False)`), expressed on pycocotools:

- the OKS scale of a ground truth is its box `w * h * 0.53`, not its `area`;
- a ground truth with `num_keypoints` 0 is ignored (pycocotools' keypoint rule already);
- a prediction whose keypoint scores are all <= 0 is dropped before matching;
- maxDets 20; AP(E), AP(M), AP(H) re-run the evaluation on the images whose `crowdIndex` is
  < 0.2, in [0.2, 0.8), >= 0.8, and report the mean of the precision table rounded to 4
  decimals, -1 for a bin without ground truth (all as the reference does). Images without a
  `crowdIndex` fall in no bin.

pycocotools prints progress; it is captured and sent to this module's debug log.
"""

from __future__ import annotations

import contextlib
import copy
import io
import logging
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

logger = logging.getLogger(__name__)

COCO_STAT_NAMES = ("AP", "AP50", "AP75", "APM", "APL", "AR", "AR50", "AR75", "ARM", "ARL")
CROWDPOSE_STAT_NAMES = ("AP", "AP50", "AP75", "AR", "AR50", "AR75", "AP(E)", "AP(M)", "AP(H)")
CROWDPOSE_BOX_AREA_FACTOR = 0.53
CROWD_INDEX_THRESHOLDS = (0.2, 0.8)
_CROWDPOSE_SUMMARY_INDICES = (0, 1, 2, 5, 6, 7)


@contextlib.contextmanager
def captured_pycocotools_output() -> Iterator[None]:
    """Silence pycocotools' prints, keeping them in the debug log."""
    buffer = io.StringIO()
    try:
        with contextlib.redirect_stdout(buffer):
            yield
    finally:
        if buffer.getvalue():
            logger.debug("pycocotools output:\n%s", buffer.getvalue().rstrip())


def score_coco(
    ground_truth: dict[str, Any], results: list[dict[str, Any]], sigmas: Sequence[float]
) -> dict[str, float]:
    """COCO keypoint AP/AR: the 10 stats of pycocotools' keypoint summary.

    Args:
        ground_truth: COCO-format ground truth (see `semipose.evaluation.ground_truth`).
        results: COCO keypoint results (`image_id`, `category_id`, `keypoints` [3K], `score`).
        sigmas: K per-keypoint OKS constants.
    """
    with captured_pycocotools_output():
        cocoeval = keypoint_cocoeval(ground_truth, results, sigmas)
        cocoeval.evaluate()
        cocoeval.accumulate()
        cocoeval.summarize()
    return dict(zip(COCO_STAT_NAMES, map(float, cocoeval.stats), strict=True))


def score_crowdpose(
    ground_truth: dict[str, Any], results: list[dict[str, Any]], sigmas: Sequence[float]
) -> dict[str, float]:
    """CrowdPose keypoint AP/AR and AP(E)/AP(M)/AP(H) (rules in the module docstring).

    Args:
        ground_truth: COCO-format ground truth; images may carry `crowdIndex`.
        results: COCO keypoint results (`image_id`, `category_id`, `keypoints` [3K], `score`).
        sigmas: K per-keypoint OKS constants.
    """
    scored = [result for result in results if max(result["keypoints"][2::3]) > 0]
    with captured_pycocotools_output():
        cocoeval = keypoint_cocoeval(with_box_areas(ground_truth), scored, sigmas)
        cocoeval.evaluate()
        cocoeval.accumulate()
        cocoeval.summarize()
        stats = [cocoeval.stats[index] for index in _CROWDPOSE_SUMMARY_INDICES]
        stats += [_bin_ap(cocoeval, ids) for ids in crowd_index_bins(ground_truth["images"])]
    return dict(zip(CROWDPOSE_STAT_NAMES, map(float, stats), strict=True))


def with_box_areas(ground_truth: dict[str, Any]) -> dict[str, Any]:
    """The ground truth with every `area` replaced by the CrowdPose OKS scale, box `w * h * 0.53`."""
    annotations = [
        {**ann, "area": ann["bbox"][2] * ann["bbox"][3] * CROWDPOSE_BOX_AREA_FACTOR}
        for ann in ground_truth["annotations"]
    ]
    return {**ground_truth, "annotations": annotations}


def crowd_index_bins(images: list[dict[str, Any]]) -> tuple[list[int], list[int], list[int]]:
    """Image ids of the easy, medium and hard CrowdPose bins, by `crowdIndex`."""
    low, high = CROWD_INDEX_THRESHOLDS
    bins: tuple[list[int], list[int], list[int]] = ([], [], [])
    for image in images:
        if "crowdIndex" in image:
            crowd_index = image["crowdIndex"]
            bins[0 if crowd_index < low else 1 if crowd_index < high else 2].append(image["id"])
    return bins


def _bin_ap(cocoeval: COCOeval, image_ids: list[int]) -> float:
    """AP over a subset of images, as xtcocotools' `get_type_result` computes it."""
    cocoeval.params.imgIds = image_ids
    cocoeval.evaluate()
    cocoeval.accumulate()
    return round(np.mean(cocoeval.eval["precision"][:, :, :, 0, :]), 4)


def keypoint_cocoeval(
    ground_truth: dict[str, Any], results: list[dict[str, Any]], sigmas: Sequence[float]
) -> COCOeval:
    """A keypoint COCOeval (not run yet) on copies of the inputs, which pycocotools writes into."""
    coco_gt = COCO()
    coco_gt.dataset = copy.deepcopy(ground_truth)
    coco_gt.createIndex()
    coco_dt = coco_gt.loadRes(copy.deepcopy(results)) if results else _no_results(coco_gt)
    cocoeval = COCOeval(coco_gt, coco_dt, "keypoints")
    cocoeval.params.kpt_oks_sigmas = np.asarray(sigmas, dtype=np.float64)
    return cocoeval


def _no_results(coco_gt: COCO) -> COCO:
    """An empty results object (pycocotools' `loadRes` fails on an empty list)."""
    coco_dt = COCO()
    coco_dt.dataset = {
        "images": list(coco_gt.dataset["images"]),
        "categories": copy.deepcopy(coco_gt.dataset["categories"]),
        "annotations": [],
    }
    coco_dt.createIndex()
    return coco_dt
