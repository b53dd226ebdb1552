"""People of one image as 2D figures: posed bodies projected to pixels, outlined part by part,
colored, and placed in the frame without piling up.

Image frame: x = right, y = down, pixels, with integer coordinates at pixel centers.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .body import BODY_KEYPOINTS, FACE_KEYPOINTS, body_points, sample_body_proportions
from .colors import sample_part_colors
from .config import SyntheticConfig
from .outlines import capsules, convex_hulls, ellipses
from .parts import CAPSULES, PARTS
from .pose_prior import sample_pose_angles

_FACING_THRESHOLD = -0.2
"""A face point is labeled while its outward normal's camera-frame z exceeds this."""


@dataclass
class Figures:
    """N people of one image in pixels, ordered far to near (the drawing order).

    Attributes:
        heights: `[N]` standing heights in pixels.
        keypoints: `[N, J, 2]` image positions of every body-model keypoint (`BODY_KEYPOINTS`).
        labeled: `[N, J]` False for face points turned away from the camera (not labeled).
        polygons: `[N, P, V, 2]` outline of every part (`PARTS`), image pixels.
        depth: `[N, P]` drawing key inside a person (larger is nearer).
        drawn: `[N, P]` whether the part is drawn (eye dots only on faces turned to the camera).
        colors: `[N, P, 3]` float RGB of each part.
    """

    heights: np.ndarray
    keypoints: np.ndarray
    labeled: np.ndarray
    polygons: np.ndarray
    depth: np.ndarray
    drawn: np.ndarray
    colors: np.ndarray

    def shifted(self, offsets: np.ndarray) -> Figures:
        """The same figures moved by `[N, 2]` pixel offsets."""
        return dataclasses.replace(self, keypoints=self.keypoints + offsets[:, None],
                                   polygons=self.polygons + offsets[:, None, None])

    def reordered(self, order: np.ndarray) -> Figures:
        """The figures `order` `[N]` picks, in that order."""
        return Figures(*(getattr(self, field.name)[order] for field in dataclasses.fields(self)))

    def boxes(self) -> np.ndarray:
        """`[N, 4]` (x0, y0, x1, y1) extent of each figure's parts."""
        corners = self.polygons.reshape(len(self.polygons), -1, 2)
        return np.concatenate([corners.min(axis=1), corners.max(axis=1)], axis=1)


def make_figures(
    angles: dict[str, np.ndarray], proportions: dict[str, np.ndarray], heights: np.ndarray,
    colors: np.ndarray,
) -> Figures:
    """Pose, project and outline N people with the pelvis at pixel (0, 0).

    Args:
        angles: joint angles, name -> `[N]` degrees (see `sample_pose_angles`).
        proportions: body factors, name -> `[N]` (`torso`, `arms`, `legs`, `head`, `build`).
        heights: `[N]` standing heights in pixels.
        colors: `[N, P, 3]` RGB of every part (see `sample_part_colors`).
    """
    points = body_points(angles, proportions)
    scale = np.asarray(heights, dtype=np.float64)

    def project(p: np.ndarray) -> np.ndarray:
        return np.stack([p[..., 0], -p[..., 1]], -1) * scale.reshape(-1, *[1] * (p.ndim - 1))

    keypoints = np.stack([project(points[name]) for name in BODY_KEYPOINTS], axis=1)
    labeled = np.ones(keypoints.shape[:2], dtype=bool)
    for name in FACE_KEYPOINTS:
        labeled[:, BODY_KEYPOINTS.index(name)] = points[f"{name}_normal"][:, 2] > _FACING_THRESHOLD
    polygons, depth = _part_shapes(points, proportions, scale, project)
    drawn = np.ones(depth.shape, dtype=bool)
    big_head = scale * proportions["head"] * 0.055 >= 3.5
    for eye in ("left_eye", "right_eye"):
        drawn[:, PARTS.index(f"{eye}_dot")] = labeled[:, BODY_KEYPOINTS.index(eye)] & big_head
    colors = np.asarray(colors, dtype=np.float64)
    return Figures(scale, keypoints, labeled, polygons, depth, drawn, colors)


def _part_shapes(
    points: dict[str, np.ndarray], proportions: dict[str, np.ndarray], heights: np.ndarray,
    project: Callable[[np.ndarray], np.ndarray],
) -> tuple[np.ndarray, np.ndarray]:
    """Polygons `[N, P, V, 2]` (pixels) and depth keys `[N, P]` of every part."""
    build, head_size = proportions["build"], proportions["head"]
    starts = np.stack([points[s] for s, *_ in CAPSULES.values()], 1)
    ends = np.stack([points[e] for _, e, *_ in CAPSULES.values()], 1)
    radii = np.array([r for _, _, r, *_ in CAPSULES.values()]) * (build * heights)[:, None]
    shapes = [capsules(project(starts), project(ends), radii)]
    keys = [(starts[..., 2] + ends[..., 2]) / 2]
    torso = points["torso_hull"]
    shapes.append(convex_hulls(project(torso))[:, None])
    keys.append(torso[..., 2].mean(axis=1, keepdims=True) - 0.04)
    up = project(points["head_up"])
    head_key = points["head_center"][:, 2] + 0.05
    facing = np.sign(points["head_forward"][:, 2])
    hair_shift = 0.014 * (points["head_up"] - points["head_forward"]) * head_size[:, None]
    hair_center = points["head_center"] + hair_shift
    for center, radii_xy, key in (  # radii in units of standing height times head size
        (project(points["head_center"]), (0.052, 0.066), head_key),
        (project(hair_center), (0.056, 0.07), head_key - 0.001 * facing),
        (project(points["left_eye"]), (0.009, 0.009), head_key + 0.002),
        (project(points["right_eye"]), (0.009, 0.009), head_key + 0.002),
    ):
        axes = (r * head_size * heights for r in radii_xy)
        shapes.append(ellipses(center, *axes, up)[:, None])
        keys.append(key[:, None])
    keys[0][:, list(CAPSULES).index("neck")] = (keys[1][:, 0] + head_key) / 2
    return np.concatenate(shapes, axis=1), np.concatenate(keys, axis=1)


def sample_figures(rng: np.random.Generator, config: SyntheticConfig) -> Figures:
    """Draw the people of one image (count, poses, bodies, colors), order them far to near and
    place them in the frame (truncation and overlap limits of `config`)."""
    size = config.image_size
    count = int(rng.integers(config.people[0], config.people[1] + 1))
    heights = rng.uniform(*config.height_range, count) * size
    order = np.argsort(heights * np.exp(rng.normal(0, 0.15, count)), kind="stable")
    angles = sample_pose_angles(rng, count, config.max_yaw)
    proportions = sample_body_proportions(rng, count)
    colors = sample_part_colors(rng, count)
    figures = make_figures(angles, proportions, heights, colors).reordered(order)
    return figures.shifted(_place(rng, figures.boxes(), config))


def _place(rng: np.random.Generator, boxes: np.ndarray, config: SyntheticConfig) -> np.ndarray:
    """`[N, 2]` offsets moving each box into the frame: its center is uniform over the positions
    that keep it at most `truncation` outside, preferring box IoU <= `max_overlap` with earlier
    boxes."""
    size, tries = config.image_size, 20
    offsets = np.zeros((len(boxes), 2))
    placed: list[np.ndarray] = []
    for index, box in enumerate(boxes):
        extent = box[2:] - box[:2]
        low = extent / 2 - config.truncation * extent
        high = size - extent / 2 + config.truncation * extent
        centers = rng.uniform(np.minimum(low, high), np.maximum(low, high), (tries, 2))
        candidates = np.concatenate([centers - extent / 2, centers + extent / 2], axis=1)
        overlap = _iou(candidates, np.array(placed)).max(axis=1) if placed else np.zeros(tries)
        accepted = np.flatnonzero(overlap <= config.max_overlap)
        choice = accepted[0] if len(accepted) else int(np.argmin(overlap))
        placed.append(candidates[choice])
        offsets[index] = candidates[choice, :2] - box[:2]
    return offsets


def _iou(boxes: np.ndarray, others: np.ndarray) -> np.ndarray:
    """`[A, B]` IoU of (x0, y0, x1, y1) boxes."""
    top_left = np.maximum(boxes[:, None, :2], others[None, :, :2])
    bottom_right = np.minimum(boxes[:, None, 2:], others[None, :, 2:])
    intersection = np.prod(np.clip(bottom_right - top_left, 0, None), axis=-1)
    areas = [np.prod(b[:, 2:] - b[:, :2], axis=-1) for b in (boxes, others)]
    return intersection / (areas[0][:, None] + areas[1][None] - intersection + 1e-9)
