"""Codec round trip on the real COCO fixture: ground truth -> letterboxed input -> decode -> OKS AP.

Shared by the codec tests of both model families (not a test module itself).
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable
from pathlib import Path

import torch
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

INPUT_SIZE = 512
STRIDE = 4
SIGMA = 2.0
HEATMAP_SIZE = (INPUT_SIZE // STRIDE, INPUT_SIZE // STRIDE)


def _load_ground_truth(fixture_dir: Path) -> COCO:
    with contextlib.redirect_stdout(io.StringIO()):
        return COCO(str(fixture_dir / "test_coco.json"))


def _letterboxed_keypoints(ground_truth: COCO, image_id: int) -> tuple[torch.Tensor, float]:
    """The image's people (>= 1 labeled keypoint) as `[1, M, 17, 3]` in a 512-longest-side input, and the scale."""
    info = ground_truth.loadImgs(image_id)[0]
    scale = INPUT_SIZE / max(info["height"], info["width"])
    people = [a for a in ground_truth.loadAnns(ground_truth.getAnnIds(imgIds=image_id)) if a["num_keypoints"] > 0]
    keypoints = torch.tensor([a["keypoints"] for a in people], dtype=torch.float32).view(1, len(people), -1, 3)
    labeled = keypoints[..., 2:] > 0
    keypoints[..., :2] = ((keypoints[..., :2] + 0.5) * scale - 0.5) * labeled
    return keypoints, scale


def round_trip_ap(fixture_dir: Path, decode_ideal: Callable) -> float:
    """COCO keypoint AP of `decode_ideal(keypoints [1, M, 17, 3] input pixels) -> DecodedPoses` on the fixture.

    Decoded keypoints are mapped back from the letterboxed input to image pixels before scoring.
    """
    ground_truth = _load_ground_truth(fixture_dir)
    results = []
    for image_id in ground_truth.getImgIds():
        keypoints, scale = _letterboxed_keypoints(ground_truth, image_id)
        image = decode_ideal(keypoints).to_list()[0]
        image_keypoints = (image["keypoints"] + 0.5) / scale - 0.5
        triples = torch.cat([image_keypoints, image["keypoint_scores"].unsqueeze(-1)], dim=-1).flatten(1)
        results += [
            {"image_id": image_id, "category_id": 1, "keypoints": person.tolist(), "score": float(score)}
            for person, score in zip(triples, image["scores"])
        ]
    with contextlib.redirect_stdout(io.StringIO()):
        evaluation = COCOeval(ground_truth, ground_truth.loadRes(results), "keypoints")
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    return float(evaluation.stats[0])
