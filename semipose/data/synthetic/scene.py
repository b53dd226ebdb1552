"""One synthetic image and its annotations, drawn from (seed, split, index) alone, so that any
image can be made again without the others."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils

from ...skeletons import get_skeleton
from .background import paint_background, sample_distractors
from .body import BODY_KEYPOINTS
from .config import SyntheticConfig
from .figures import Figures, sample_figures
from .rendering import draw_label_map, keypoint_visibility, paint_picture

SPLITS = {"train": 0, "val": 1}
"""Split name -> number used in the random seed and the image ids."""


@dataclass
class SyntheticScene:
    """One rendered image and its people, far to near.

    Attributes:
        image: the RGB picture.
        keypoints: `[N, K, 3]` (x, y, v) in the config's skeleton; v = 0 has x = y = 0.
        boxes: `[N, 4]` (x, y, w, h) extent of each figure inside the frame.
        areas: `[N]` pixels of each figure inside the frame.
        segmentations: N COCO compressed RLEs (`size`, `counts` as str) of the whole figures.
        crowd_index: CrowdPose `crowdIndex` (crowdpose skeleton), else None.
    """

    image: Image.Image
    keypoints: np.ndarray
    boxes: np.ndarray
    areas: np.ndarray
    segmentations: list[dict[str, Any]]
    crowd_index: float | None

    def coco_annotations(self, image_id: int) -> list[dict[str, Any]]:
        """COCO annotation records (id `image_id * 100 + person`); figures without pixels in the
        frame are left out."""
        records = []
        for person, (keypoints, box, area, rle) in enumerate(
            zip(self.keypoints, self.boxes, self.areas, self.segmentations)
        ):
            if area <= 0:
                continue
            flat = [[round(float(x), 2), round(float(y), 2), int(v)] for x, y, v in keypoints]
            records.append({
                "id": image_id * 100 + person, "image_id": image_id, "category_id": 1,
                "keypoints": [value for point in flat for value in point],
                "num_keypoints": int((keypoints[:, 2] > 0).sum()),
                "bbox": [round(float(value), 2) for value in box], "area": float(area),
                "iscrowd": 0, "segmentation": rle,
            })
        return records


def generate_scene(config: SyntheticConfig, split: str, index: int) -> SyntheticScene:
    """Render image `index` of `split` ("train" or "val"); depends only on (seed, split, index)."""
    if split not in SPLITS:
        raise ValueError(f"Unknown split {split!r}; expected one of {list(SPLITS)}.")
    rng = np.random.default_rng([config.seed, SPLITS[split], index])
    return render_scene(rng, sample_figures(rng, config), config)


def render_scene(
    rng: np.random.Generator, figures: Figures, config: SyntheticConfig
) -> SyntheticScene:
    """Draw `figures` (far to near) over a random background and annotate them.

    Args:
        rng: source of the background, distractors, lighting, blur and noise.
        figures: placed people, e.g. from `sample_figures` or `make_figures(...).shifted(...)`.
        config: image size, clutter, blur, noise and skeleton.
    """
    size = config.image_size
    background = paint_background(rng, size, config.clutter)
    distractors, distractor_colors = sample_distractors(rng, config)
    labels, part_labels = draw_label_map(size, distractors, figures)
    colors = np.zeros((max(len(distractors), part_labels.max()) + 1, 3))
    colors[1:len(distractors) + 1] = distractor_colors
    colors[part_labels[part_labels > 0]] = figures.colors[part_labels > 0]
    image = paint_picture(rng, labels, background, colors, config)
    visibility = keypoint_visibility(figures, labels, part_labels, size)
    columns = [BODY_KEYPOINTS.index(name) for name in get_skeleton(config.skeleton).keypoint_names]
    keypoints = np.concatenate(
        [figures.keypoints[:, columns], visibility[:, columns, None]], axis=-1
    )
    keypoints[keypoints[..., 2] == 0] = 0
    segmentations, boxes, areas = _figure_masks(figures, size)
    crowd = crowd_index(keypoints, boxes) if config.skeleton == "crowdpose" else None
    return SyntheticScene(image, keypoints, boxes, areas, segmentations, crowd)


def _figure_masks(
    figures: Figures, size: int
) -> tuple[list[dict[str, Any]], np.ndarray, np.ndarray]:
    """Compressed RLE, (x, y, w, h) box and pixel area of each whole figure inside the frame."""
    segmentations, boxes, areas = [], [], []
    for polygons, drawn in zip(figures.polygons, figures.drawn):
        # pycocotools puts pixel i on [i, i + 1); integer coordinates are pixel centers here.
        rle = mask_utils.merge(mask_utils.frPyObjects(
            [(polygon + 0.5).ravel().tolist() for polygon in polygons[drawn]], size, size
        ))
        segmentations.append({"size": [size, size], "counts": rle["counts"].decode("ascii")})
        boxes.append(mask_utils.toBbox(rle) - np.array([0.5, 0.5, 0, 0]))
        areas.append(float(mask_utils.area(rle)))
    return segmentations, np.array(boxes).reshape(-1, 4), np.array(areas)


def crowd_index(keypoints: np.ndarray, boxes: np.ndarray) -> float:
    """CrowdPose's crowd index of one image: the mean over people of (labeled keypoints of other
    people inside the person's box) / (the person's labeled keypoints), capped at 1.

    The cap keeps the value in [0, 1]; CrowdPose's easy/medium/hard split (< 0.2, < 0.8, >= 0.8)
    is unchanged by it. People without labeled keypoints are skipped; no people gives 0.

    Args:
        keypoints: `[N, K, 3]` (x, y, v) of the image's people.
        boxes: `[N, 4]` (x, y, w, h) of the same people.
    """
    labeled = keypoints[..., 2] > 0
    ratios = []
    for person, (x, y, w, h) in enumerate(boxes):
        if not labeled[person].any():
            continue
        others = np.delete(np.arange(len(keypoints)), person)
        points = keypoints[others][labeled[others]]
        inside = ((points[:, 0] >= x) & (points[:, 0] <= x + w)
                  & (points[:, 1] >= y) & (points[:, 1] <= y + h))
        ratios.append(inside.sum() / labeled[person].sum())
    return float(min(1.0, np.mean(ratios))) if ratios else 0.0
