"""Synthetic multi-person pose images: the built-in default data of semipose.

No dataset can be downloaded here, so every demo, test and benchmark trains on images made by
this module. Each image holds 1-8 people posed from a 3D kinematic body model with human joint
ranges (spine bend and twist; shoulders and hips by plane and angle of elevation, humeral and hip
rotation; elbows and knees that bend one way), seen by an orthographic camera from any side and
projected to the image. People differ in size, build, skin, hair and clothing colors; they overlap
(drawn far to near), leave the frame at its borders, and stand in front of cluttered backgrounds
with limb-like sticks. Blur and noise finish the picture.

Annotations follow COCO: `(x, y, v)` per keypoint with v = 2 visible, 1 hidden behind a nearer
person or body part, 0 not labeled (outside the frame, with x = y = 0, or a face point turned away
from the camera, as COCO annotators leave those). The same body model emits the COCO-17 or the
CrowdPose-14 skeleton (`semipose.skeletons`); CrowdPose images carry a `crowdIndex`. A person's
`segmentation` is the compressed RLE of its whole figure inside the frame (amodal: people in front
do not cut it), `area` its pixel count and `bbox` its extent, so OKS scales follow body size.

Determinism: image `i` of a split is drawn from `numpy.random.default_rng([seed, split, i])`
alone, so it does not depend on the other images nor on how many there are.

Example:

```python
>>> from semipose.data.synthetic import SyntheticConfig, generate_scene, prepare_synthetic_dataset
>>> config = SyntheticConfig(image_size=128, people=(1, 4), skeleton="crowdpose", num_train=200)
>>> scene = generate_scene(config, "train", 0)
>>> scene.image.size, scene.keypoints.shape[1:]
((128, 128), (14, 3))
>>> folder = prepare_synthetic_dataset("data/synthetic", config)  # load_dataset(folder, "ratio_10")
```
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Callable
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFilter
from pycocotools import mask as mask_utils
from tqdm.auto import tqdm

from ..skeletons import get_skeleton
from ..visualization import draw_people, make_grid

GENERATOR_VERSION = 2
"""Bump when the renderer changes its output, so cached folders are regenerated."""
MAX_PEOPLE = 8
SPLITS = {"train": 0, "val": 1}
"""Split name -> number used in the random seed and the image ids."""
IMAGE_ID_STRIDE = 100_000_000
"""Image ids are `split number * IMAGE_ID_STRIDE + index + 1`; annotation ids
`image id * 100 + person`."""
_SUPERSAMPLE = 2
_FACING_THRESHOLD = -0.2


@dataclass(frozen=True)
class SyntheticConfig:
    """Size and difficulty of a synthetic dataset; its hash names the cache folder.

    Attributes:
        image_size: side of the square images, in pixels.
        people: (min, max) people per image, inclusive, within [1, 8].
        height_range: (min, max) standing height of a person as a fraction of the image height.
        truncation: how far a person's box may leave the frame, as a fraction of the box size
            (0: fully inside whenever it fits; 0.5: up to about half outside).
        max_overlap: largest box IoU with an already placed person that placement accepts; after
            20 rejected positions the least overlapping one is kept, so counts are exact.
        clutter: 0 (smooth gradient background) to 1 (textures, stripes, shapes and limb-like
            sticks in clothing and skin colors).
        blur: largest Gaussian blur radius in pixels; each image draws one uniformly up to it.
        noise: largest standard deviation of zero-mean pixel noise, as a fraction of 255.
        max_yaw: largest turn of a person away from facing the camera, in degrees (180: seen
            from any side; from behind, left and right differ only by small cues).
        skeleton: `"coco"` (17 keypoints) or `"crowdpose"` (14, with `crowdIndex`).
        seed: seed of every random draw.
        num_train, num_val: images per split.
    """

    image_size: int = 128
    people: tuple[int, int] = (1, 4)
    height_range: tuple[float, float] = (0.2, 0.95)
    truncation: float = 0.3
    max_overlap: float = 0.5
    clutter: float = 0.5
    blur: float = 0.8
    noise: float = 0.03
    max_yaw: float = 180.0
    skeleton: str = "coco"
    seed: int = 0
    num_train: int = 1000
    num_val: int = 200

    def __post_init__(self) -> None:
        object.__setattr__(self, "people", tuple(self.people))
        object.__setattr__(self, "height_range", tuple(self.height_range))
        get_skeleton(self.skeleton)
        checks = {
            "image_size": (self.image_size >= 16, ">= 16"),
            "people": (len(self.people) == 2
                       and 1 <= self.people[0] <= self.people[1] <= MAX_PEOPLE,
                       f"(min, max) with 1 <= min <= max <= {MAX_PEOPLE}"),
            "height_range": (len(self.height_range) == 2
                             and 0.05 <= self.height_range[0] <= self.height_range[1] <= 2,
                             "(min, max) with 0.05 <= min <= max <= 2"),
            "truncation": (0 <= self.truncation < 1, "in [0, 1)"),
            "max_overlap": (0 <= self.max_overlap <= 1, "in [0, 1]"),
            "clutter": (0 <= self.clutter <= 1, "in [0, 1]"),
            "blur": (self.blur >= 0, ">= 0"),
            "noise": (0 <= self.noise <= 1, "in [0, 1]"),
            "max_yaw": (0 <= self.max_yaw <= 180, "in [0, 180] degrees"),
            "num_train": (self.num_train >= 1, ">= 1"),
            "num_val": (self.num_val >= 1, ">= 1"),
        }
        for name, (ok, expected) in checks.items():
            if not ok:
                raise ValueError(
                    f"SyntheticConfig.{name} must be {expected}, got {getattr(self, name)!r}."
                )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# ------------------------------------------------------------------------------------------------
# Body model. Body frame: x = the person's left, y = up, z = the person's front; units of standing
# height. Camera frame: X = image right, Y = up, Z = toward the camera (orthographic).

BODY_KEYPOINTS = get_skeleton("coco").keypoint_names + tuple(
    name for name in get_skeleton("crowdpose").keypoint_names
    if name not in get_skeleton("coco").keypoint_names
)
"""Every keypoint the body model places: the union of the COCO and CrowdPose names."""
_FACE = ("nose", "left_eye", "right_eye", "left_ear", "right_ear")
_FACE_OFFSETS = {  # position and outward normal in the head frame (head radius about 0.06)
    "nose": ((0.0, -0.008, 0.056), (0.0, 0.0, 1.0)),
    "left_eye": ((0.022, 0.012, 0.048), (0.35, 0.1, 1.0)),
    "right_eye": ((-0.022, 0.012, 0.048), (-0.35, 0.1, 1.0)),
    "left_ear": ((0.048, 0.002, -0.004), (1.0, 0.0, -0.1)),
    "right_ear": ((-0.048, 0.002, -0.004), (-1.0, 0.0, -0.1)),
}
_SEGMENTS = {"upper_arm": 0.186, "forearm": 0.146, "hand": 0.07, "thigh": 0.245, "shin": 0.246,
             "foot": 0.12}

# Pose prior: uniform ranges in degrees. Limb angles are drawn per side (suffix _left/_right).
_POSE_RANGES = {
    "yaw": (-180, 180), "pitch": (-12, 12), "roll": (-8, 8),
    "bend": (-5, 20), "side_bend": (-8, 8), "twist": (-20, 20),
    "head_pitch": (-20, 25), "head_yaw": (-50, 50), "head_roll": (-12, 12),
}
_LIMB_RANGES = {
    "shoulder_plane": (-20, 100), "shoulder_elevation": (0, 40), "shoulder_rotation": (-70, 20),
    "elbow": (0, 60), "hip_plane": (-30, 120), "hip_elevation": (0, 12), "hip_rotation": (-20, 20),
    "knee": (0, 15),
}
_ARCHETYPES = {  # name: (probability, ranges replacing the defaults)
    "standing": (0.28, {}),
    "walking": (0.25, {"elbow": (10, 100), "bend": (-5, 15)}),
    "gesturing": (0.2, {"shoulder_plane": (-40, 135), "shoulder_elevation": (0, 180),
                        "shoulder_rotation": (-90, 45), "elbow": (0, 150),
                        "hip_elevation": (0, 30)}),
    "sitting": (0.12, {"hip_plane": (75, 105), "hip_elevation": (50, 120), "knee": (50, 150),
                       "bend": (0, 40), "shoulder_elevation": (0, 110), "elbow": (0, 130)}),
    "dynamic": (0.15, {"bend": (-20, 80), "side_bend": (-30, 30), "twist": (-40, 40),
                       "head_pitch": (-40, 45), "head_yaw": (-70, 70), "head_roll": (-30, 30),
                       "shoulder_plane": (-40, 135), "shoulder_elevation": (0, 180),
                       "shoulder_rotation": (-90, 45), "elbow": (0, 150), "hip_plane": (-90, 180),
                       "hip_elevation": (0, 130), "hip_rotation": (-40, 40), "knee": (0, 150)}),
}
_LYING_PROBABILITY = 0.05
# Largest elevation per plane of elevation (degrees): arms cannot rise far behind the back, legs
# rise far only forward.
_SHOULDER_LIMIT = ((-40, 0, 110, 135), (60, 180, 180, 120))
_HIP_LIMIT = ((-90, 0, 60, 90, 120, 180), (30, 50, 110, 125, 100, 30))


def _vectors(x: Any, y: Any, z: Any) -> np.ndarray:
    """Stack broadcast coordinates into `[..., 3]` vectors."""
    return np.stack(np.broadcast_arrays(*(np.asarray(c, dtype=np.float64) for c in (x, y, z))), -1)


def _rotation(axis: str, degrees: np.ndarray) -> np.ndarray:
    """`[N, 3, 3]` rotations by `degrees` `[N]` about the x, y or z axis (right-handed)."""
    radians = np.radians(degrees)
    cos, sin = np.cos(radians), np.sin(radians)
    one, zero = np.ones_like(cos), np.zeros_like(cos)
    rows = {
        "x": ((one, zero, zero), (zero, cos, -sin), (zero, sin, cos)),
        "y": ((cos, zero, sin), (zero, one, zero), (-sin, zero, cos)),
        "z": ((cos, -sin, zero), (sin, cos, zero), (zero, zero, one)),
    }[axis]
    return np.stack([np.stack(row, -1) for row in rows], -2)


def _axis_angle(axis: np.ndarray, degrees: np.ndarray) -> np.ndarray:
    """`[N, 3, 3]` rotations by `degrees` `[N]` about unit `axis` `[N, 3]` (Rodrigues)."""
    radians = np.radians(degrees)[:, None, None]
    x, y, z = axis[:, 0], axis[:, 1], axis[:, 2]
    zero = np.zeros_like(x)
    cross = np.stack([np.stack(r, -1) for r in ((zero, -z, y), (z, zero, -x), (-y, x, zero))], -2)
    return np.eye(3) + np.sin(radians) * cross + (1 - np.cos(radians)) * (cross @ cross)


def _apply(rotation: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """Rotate `[N, 3]` (or broadcast `[3]`) vectors by `[N, 3, 3]` rotations."""
    return np.einsum("nij,nj->ni", rotation, np.broadcast_to(vectors, rotation.shape[:2]))


def sample_pose_angles(rng: np.random.Generator, count: int, max_yaw: float = 180.0) -> dict[str, np.ndarray]:
    """Draw joint angles (degrees) for `count` people from a mixture of everyday pose types.

    Types: standing, walking/running (legs and arms swing in opposition), gesturing (arms
    anywhere), sitting or squatting, and dynamic (every joint anywhere in its range); 5% of people
    are also rolled to any angle (lying, falling, acrobatics). Elevations are clipped to the
    joint limits of their plane, so no pose leaves the human range.

    Args:
        max_yaw: largest turn away from facing the camera, in degrees (180: any direction).

    Returns:
        Name -> `[count]` array; limb angles end in `_left` / `_right`.
    """
    names = list(_ARCHETYPES)
    probabilities = np.array([_ARCHETYPES[name][0] for name in names])
    kinds = rng.choice(len(names), size=count, p=probabilities / probabilities.sum())
    angles = {name: np.empty(count) for name in _angle_names()}
    for index, kind in enumerate(kinds):
        ranges = {**_POSE_RANGES, "yaw": (-max_yaw, max_yaw), **_side_ranges(_LIMB_RANGES),
                  **_side_ranges(_ARCHETYPES[names[kind]][1])}
        for name, (low, high) in ranges.items():
            angles[name][index] = rng.uniform(low, high)
        if names[kind] == "walking":
            _swing_limbs(rng, angles, index)
    lying = rng.random(count) < _LYING_PROBABILITY
    angles["roll"] = np.where(lying, rng.uniform(-180, 180, count), angles["roll"])
    for side in ("left", "right"):
        for joint, (planes, limits) in (("shoulder", _SHOULDER_LIMIT), ("hip", _HIP_LIMIT)):
            limit = np.interp(angles[f"{joint}_plane_{side}"], planes, limits)
            elevation = f"{joint}_elevation_{side}"
            angles[elevation] = np.minimum(angles[elevation], limit)
    return angles


def _angle_names() -> list[str]:
    return list(_POSE_RANGES) + list(_side_ranges(_LIMB_RANGES))


def _side_ranges(ranges: dict[str, tuple[float, float]]) -> dict[str, tuple[float, float]]:
    """Give limb ranges a `_left` and a `_right` copy; body ranges stay as they are."""
    out = {}
    for name, value in ranges.items():
        if name in _LIMB_RANGES:
            out.update({f"{name}_left": value, f"{name}_right": value})
        else:
            out[name] = value
    return out


def _swing_limbs(rng: np.random.Generator, angles: dict[str, np.ndarray], index: int) -> None:
    """Walking or running: each leg swings opposite the other and opposite its own-side arm."""
    swing = rng.uniform(-1, 1)
    leg, arm = rng.uniform(15, 50), rng.uniform(10, 50)
    for side, sign in (("left", 1), ("right", -1)):
        for joint, amount in (("hip", sign * swing * leg), ("shoulder", -sign * swing * arm)):
            plane = (90 if amount >= 0 else -90) + rng.uniform(-10, 10)
            angles[f"{joint}_plane_{side}"][index] = plane
            angles[f"{joint}_elevation_{side}"][index] = abs(amount)
        angles[f"knee_{side}"][index] = rng.uniform(5, 30) + (sign * swing < 0) * rng.uniform(0, 60)


def sample_body_proportions(rng: np.random.Generator, count: int) -> dict[str, np.ndarray]:
    """Per-person body proportions, name -> `[count]` factors of the mean adult: `torso`, `arms`,
    `legs` (lengths), `head` (size) and `build` (widths)."""
    factors = {"torso": 0.04, "arms": 0.04, "legs": 0.04, "head": 0.06, "build": 0.12}
    return {name: np.clip(rng.normal(1, spread, count), 1 - 3 * spread, 1 + 3 * spread)
            for name, spread in factors.items()}


def _frames(angles: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pelvis, chest and head rotations (body -> camera), each `[N, 3, 3]`."""
    pelvis = (_rotation("z", angles["roll"]) @ _rotation("x", angles["pitch"])
              @ _rotation("y", angles["yaw"]))
    chest = (pelvis @ _rotation("x", angles["bend"]) @ _rotation("z", angles["side_bend"])
             @ _rotation("y", angles["twist"]))
    head = (chest @ _rotation("x", angles["head_pitch"]) @ _rotation("y", angles["head_yaw"])
            @ _rotation("z", angles["head_roll"]))
    return pelvis, chest, head


def _limb_directions(
    angles: dict[str, np.ndarray], joint: str, side: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unit directions (parent frame) of a limb's upper segment, lower segment and end (hand/foot).

    The upper segment leaves the hanging-down direction by `elevation` within the plane at
    `plane` degrees (0 = sideways, 90 = forward), turned about itself by `rotation`; elbows bend
    forward, knees backward. Computed for the left side and mirrored for the right.
    """
    plane, elevation = angles[f"{joint}_plane_{side}"], angles[f"{joint}_elevation_{side}"]
    rotation = angles[f"{joint}_rotation_{side}"]
    bend = angles[f"elbow_{side}"] if joint == "shoulder" else angles[f"knee_{side}"]
    axis = _vectors(-np.sin(np.radians(plane)), 0, np.cos(np.radians(plane)))
    upper_frame = _axis_angle(axis, elevation) @ _rotation("y", -rotation)
    down = np.array([0.0, -1.0, 0.0])
    lower_frame = upper_frame @ _rotation("x", -bend if joint == "shoulder" else bend)
    end = down if joint == "shoulder" else np.array([0.0, -0.2, 0.98])
    directions = [_apply(upper_frame, down), _apply(lower_frame, down), _apply(lower_frame, end)]
    mirror = np.array([1.0 if side == "left" else -1.0, 1.0, 1.0])
    return tuple(direction * mirror for direction in directions)


def body_points(
    angles: dict[str, np.ndarray], proportions: dict[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """Camera-frame 3D points (pelvis at the origin, standing height 1) of N posed bodies.

    Returns:
        Name -> `[N, 3]`: every keypoint name of `BODY_KEYPOINTS`, plus `head_center`, `head_up`,
        `head_forward` and `{face point}_normal` (unit vectors), `{side}_hand` and `{side}_toe`
        (segment ends) and `torso_hull` `[N, 12, 3]` (corners of the torso's box-like volume).
    """
    pelvis, chest, head = _frames(angles)
    torso, build, head_size = proportions["torso"], proportions["build"], proportions["head"]
    lateral = 1 + 0.4 * (build - 1)
    points = {"neck": _apply(chest, _vectors(0, 0.30 * torso, 0))}
    head_base = points["neck"] + _apply(chest, _vectors(0, 0.035, 0))
    points["head_center"] = head_base + _apply(head, _vectors(0, 0.06, 0.01) * head_size[:, None])
    head_top = _apply(head, _vectors(0, 0.068, 0) * head_size[:, None])
    points["head"] = points["head_center"] + head_top
    points["head_up"] = _apply(head, np.array([0.0, 1.0, 0.0]))
    points["head_forward"] = _apply(head, np.array([0.0, 0.0, 1.0]))
    for name, (offset, normal) in _FACE_OFFSETS.items():
        points[name] = points["head_center"] + _apply(head, np.array(offset) * head_size[:, None])
        points[f"{name}_normal"] = _apply(head, np.array(normal) / np.linalg.norm(normal))
    for side, sign in (("left", 1.0), ("right", -1.0)):
        shoulder = _vectors(sign * 0.12 * lateral, 0.285 * torso, 0)
        points[f"{side}_shoulder"] = _apply(chest, shoulder)
        points[f"{side}_hip"] = _apply(pelvis, _vectors(sign * 0.085 * lateral, -0.01, 0))
        _add_limb(points, chest, angles, "shoulder", side, proportions["arms"])
        _add_limb(points, pelvis, angles, "hip", side, proportions["legs"])
    points["torso_hull"] = _torso_hull(pelvis, chest, torso, build)
    return points


def _add_limb(
    points: dict[str, np.ndarray], parent: np.ndarray, angles: dict[str, np.ndarray],
    joint: str, side: str, length: np.ndarray,
) -> None:
    """Place elbow, wrist and hand tip (or knee, ankle and toe) from the shoulder (or hip)."""
    upper, lower, end = (_apply(parent, d) for d in _limb_directions(angles, joint, side))
    arm = joint == "shoulder"
    names = ("elbow", "wrist", "hand") if arm else ("knee", "ankle", "toe")
    segments = ("upper_arm", "forearm", "hand") if arm else ("thigh", "shin", "foot")
    start = points[f"{side}_{joint}"]
    for name, segment, direction in zip(names, segments, (upper, lower, end)):
        start = start + direction * (_SEGMENTS[segment] * length)[:, None]
        points[f"{side}_{name}"] = start


def _torso_hull(
    pelvis: np.ndarray, chest: np.ndarray, torso: np.ndarray, build: np.ndarray
) -> np.ndarray:
    """`[N, 12, 3]` points whose projected convex hull is the torso: shoulders, waist, hips."""
    corners = []
    for frame, half_width, height, depth in (
        (chest, 0.155, 0.29 * torso, 0.055), (chest, 0.11, 0.14 * torso, 0.06),
        (pelvis, 0.135, -0.05, 0.065),
    ):
        for x_sign in (1, -1):
            for z_sign in (1, -1):
                local = _vectors(x_sign * half_width * build, height, z_sign * depth * build)
                corners.append(_apply(frame, local))
    return np.stack(corners, axis=1)


# ------------------------------------------------------------------------------------------------
# Parts: every drawn shape of a person is a polygon of _VERTICES points, with a color slot, a depth
# key (drawn far to near) and the keypoints it carries (a keypoint under another shape is hidden).

_VERTICES = 12
_COLOR_SLOTS = ("top", "bottom", "skin", "shoes", "hair", "sleeve", "leg", "eye")
_CAPSULES = {  # part: (start, end, radius, color slot, carried keypoints)
    "neck": ("neck", "head_center", 0.028, "skin", ("neck",)),
    **{f"{part}_{side}": (f"{side}_{start}", f"{side}_{end}", radius, slot,
                          tuple(f"{side}_{k}" for k in carried))
       for side in ("left", "right")
       for part, start, end, radius, slot, carried in (
           ("upper_arm", "shoulder", "elbow", 0.032, "top", ("shoulder", "elbow")),
           ("forearm", "elbow", "wrist", 0.026, "sleeve", ("elbow", "wrist")),
           ("hand", "wrist", "hand", 0.022, "skin", ("wrist",)),
           ("thigh", "hip", "knee", 0.05, "bottom", ("hip", "knee")),
           ("shin", "knee", "ankle", 0.037, "leg", ("knee", "ankle")),
           ("foot", "ankle", "toe", 0.022, "shoes", ("ankle",)),
       )},
}
_HEAD_KEYPOINTS = (*_FACE, "head")
_OTHER_PARTS = {  # part: (color slot, carried keypoints)
    "torso": ("top", ("left_shoulder", "right_shoulder", "left_hip", "right_hip", "neck")),
    "head": ("skin", _HEAD_KEYPOINTS),
    "hair": ("hair", _HEAD_KEYPOINTS),
    "left_eye_dot": ("eye", _HEAD_KEYPOINTS),
    "right_eye_dot": ("eye", _HEAD_KEYPOINTS),
}
_PARTS = tuple(_CAPSULES) + tuple(_OTHER_PARTS)
_PART_SLOTS = np.array([
    _COLOR_SLOTS.index(_CAPSULES[p][3] if p in _CAPSULES else _OTHER_PARTS[p][0]) for p in _PARTS
])
_CARRIES = np.array([  # [J, P]: keypoint j lies on part p
    [k in (_CAPSULES[p][4] if p in _CAPSULES else _OTHER_PARTS[p][1]) for p in _PARTS]
    for k in BODY_KEYPOINTS
])


@dataclass
class Figures:
    """N people of one image in pixels, ordered far to near (the drawing order).

    Attributes:
        heights: `[N]` standing heights in pixels.
        keypoints: `[N, J, 2]` image positions of every body-model keypoint (`BODY_KEYPOINTS`).
        labeled: `[N, J]` False for face points turned away from the camera (not labeled).
        polygons: `[N, P, V, 2]` outline of every part (`_PARTS`), image pixels.
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
    for name in _FACE:
        labeled[:, BODY_KEYPOINTS.index(name)] = points[f"{name}_normal"][:, 2] > _FACING_THRESHOLD
    polygons, depth = _part_shapes(points, proportions, scale, project)
    drawn = np.ones(depth.shape, dtype=bool)
    big_head = scale * proportions["head"] * 0.055 >= 3.5
    for eye in ("left_eye", "right_eye"):
        drawn[:, _PARTS.index(f"{eye}_dot")] = labeled[:, BODY_KEYPOINTS.index(eye)] & big_head
    colors = np.asarray(colors, dtype=np.float64)
    return Figures(scale, keypoints, labeled, polygons, depth, drawn, colors)


def _part_shapes(
    points: dict[str, np.ndarray], proportions: dict[str, np.ndarray], heights: np.ndarray,
    project: Callable[[np.ndarray], np.ndarray],
) -> tuple[np.ndarray, np.ndarray]:
    """Polygons `[N, P, V, 2]` (pixels) and depth keys `[N, P]` of every part."""
    build, head_size = proportions["build"], proportions["head"]
    starts = np.stack([points[s] for s, *_ in _CAPSULES.values()], 1)
    ends = np.stack([points[e] for _, e, *_ in _CAPSULES.values()], 1)
    radii = np.array([r for _, _, r, *_ in _CAPSULES.values()]) * (build * heights)[:, None]
    shapes = [_capsules(project(starts), project(ends), radii)]
    keys = [(starts[..., 2] + ends[..., 2]) / 2]
    torso = points["torso_hull"]
    shapes.append(_convex_hulls(project(torso))[:, None])
    keys.append(torso[..., 2].mean(axis=1, keepdims=True) - 0.04)
    up = project(points["head_up"])
    head_key = points["head_center"][:, 2] + 0.05
    facing = np.sign(points["head_forward"][:, 2])
    hair_shift = 0.014 * (points["head_up"] - points["head_forward"]) * head_size[:, None]
    hair_center = points["head_center"] + hair_shift
    eye_radius = 0.009 * head_size * heights
    for center, radii_xy, key in (
        (project(points["head_center"]), (0.052, 0.066), head_key),
        (project(hair_center), (0.056, 0.07), head_key - 0.001 * facing),
        (project(points["left_eye"]), None, head_key + 0.002),
        (project(points["right_eye"]), None, head_key + 0.002),
    ):
        if radii_xy is None:
            axes = (eye_radius, eye_radius)
        else:
            axes = tuple(r * head_size * heights for r in radii_xy)
        shapes.append(_ellipses(center, *axes, up)[:, None])
        keys.append(key[:, None])
    keys[0][:, list(_CAPSULES).index("neck")] = (keys[1][:, 0] + head_key) / 2
    return np.concatenate(shapes, axis=1), np.concatenate(keys, axis=1)


def _capsules(starts: np.ndarray, ends: np.ndarray, radii: np.ndarray) -> np.ndarray:
    """`[..., V, 2]` polygons of rounded segments (`starts`, `ends` `[..., 2]`, `radii` `[...]`)."""
    direction = ends - starts
    heading = np.arctan2(direction[..., 1], direction[..., 0])[..., None]
    arc = np.linspace(-np.pi / 2, np.pi / 2, _VERTICES // 2)
    rings = []
    for center, angle in ((ends, heading + arc), (starts, heading + np.pi + arc)):
        offsets = np.stack([np.cos(angle), np.sin(angle)], -1)
        rings.append(center[..., None, :] + radii[..., None, None] * offsets)
    return np.concatenate(rings, axis=-2)


def _ellipses(
    centers: np.ndarray, half_width: np.ndarray, half_height: np.ndarray, up: np.ndarray
) -> np.ndarray:
    """`[N, V, 2]` ellipses whose `half_height` axis points along the image vector `up` `[N, 2]`."""
    length = np.linalg.norm(up, axis=-1, keepdims=True)
    up = np.where(length > 1e-6, up / np.maximum(length, 1e-12), np.array([0.0, -1.0]))
    across = np.stack([-up[:, 1], up[:, 0]], -1)
    angle = np.linspace(0, 2 * np.pi, _VERTICES, endpoint=False)[None, :, None]
    width = np.asarray(half_width)[:, None, None] * np.cos(angle) * across[:, None]
    height = np.asarray(half_height)[:, None, None] * np.sin(angle) * up[:, None]
    return centers[:, None] + width + height


def _convex_hulls(points: np.ndarray) -> np.ndarray:
    """`[N, V, 2]` convex hulls of `[N, V, 2]` point sets (monotone chain, padded by repeating)."""
    hulls = np.empty_like(points)
    for index, cloud in enumerate(points):
        order = np.lexsort((cloud[:, 1], cloud[:, 0]))
        hull: list[np.ndarray] = []
        for sweep in (order, order[::-1]):
            chain: list[np.ndarray] = []
            for point in cloud[sweep]:
                while len(chain) >= 2 and _cross(chain[-2], chain[-1], point) <= 0:
                    chain.pop()
                chain.append(point)
            hull += chain[:-1]
        hulls[index] = _pad_polygon(np.array(hull))
    return hulls


def _cross(origin: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    return (a[0] - origin[0]) * (b[1] - origin[1]) - (a[1] - origin[1]) * (b[0] - origin[0])


# ------------------------------------------------------------------------------------------------
# Colors. Clothing colors come from the whole color space, and background shapes and sticks are
# drawn from the same colors (and skin tones), so no color marks a body part or a side.

_SKIN_TONES = np.array([
    (255, 222, 196), (234, 182, 140), (198, 134, 88), (141, 85, 54), (80, 50, 33),
])
_HAIR_COLORS = np.array([
    (22, 18, 16), (62, 40, 26), (112, 74, 42), (196, 164, 104), (168, 166, 160), (142, 64, 32),
])
_EYE_COLOR = (30, 24, 24)
_HAT_PROBABILITY = 0.15


def _clothing_colors(rng: np.random.Generator, count: int) -> np.ndarray:
    """`[count, 3]` RGB colors: any hue, any saturation, mostly mid to bright values."""
    rgb = rng.uniform(0, 255, (count, 3))
    gray = rgb.mean(axis=1, keepdims=True)
    saturation = rng.uniform(0, 1.3, (count, 1))
    value = rng.uniform(0.3, 1.15, (count, 1))
    return np.clip((gray + (rgb - gray) * saturation) * value, 0, 255)


def _skin_colors(rng: np.random.Generator, count: int) -> np.ndarray:
    """`[count, 3]` skin tones interpolated between light and dark anchors, slightly jittered."""
    position = rng.uniform(0, len(_SKIN_TONES) - 1, count)
    anchors = np.arange(len(_SKIN_TONES))
    tones = np.stack([np.interp(position, anchors, _SKIN_TONES[:, c]) for c in range(3)], -1)
    return np.clip(tones + rng.normal(0, 6, (count, 3)), 0, 255)


def sample_part_colors(rng: np.random.Generator, count: int) -> np.ndarray:
    """`[count, P, 3]` part colors: a palette per person (top, bottom, skin, shoes, hair, sleeves
    and lower legs either clothed or bare) with a little per-part shading."""
    top, bottom = _clothing_colors(rng, count), _clothing_colors(rng, count)
    skin = _skin_colors(rng, count)
    hair = _HAIR_COLORS[rng.integers(len(_HAIR_COLORS), size=count)]
    hair = hair * rng.uniform(0.85, 1.15, (count, 1))
    hair = np.where(rng.random((count, 1)) < _HAT_PROBABILITY, _clothing_colors(rng, count), hair)
    palette = {
        "top": top, "bottom": bottom, "skin": skin, "hair": hair,
        "shoes": _clothing_colors(rng, count) * rng.uniform(0.2, 0.7, (count, 1)),
        "sleeve": np.where(rng.random((count, 1)) < 0.5, top, skin),
        "leg": np.where(rng.random((count, 1)) < 0.7, bottom, skin),
        "eye": np.broadcast_to(np.array(_EYE_COLOR, dtype=np.float64), (count, 3)),
    }
    slots = np.stack([palette[slot] for slot in _COLOR_SLOTS], axis=1)
    shade = rng.uniform(0.9, 1.1, (count, len(_PARTS), 1))
    return np.clip(slots[:, _PART_SLOTS] * shade, 0, 255)


def _distractor_colors(rng: np.random.Generator, count: int) -> np.ndarray:
    skin = rng.random((count, 1)) < 0.3
    return np.where(skin, _skin_colors(rng, count), _clothing_colors(rng, count))


# ------------------------------------------------------------------------------------------------
# People in an image: sampling, placement.


def sample_figures(rng: np.random.Generator, config: SyntheticConfig) -> Figures:
    """Draw the people of one image (count, poses, bodies, colors), order them far to near and
    place them in the frame (truncation and overlap limits of `config`)."""
    size = config.image_size
    count = int(rng.integers(config.people[0], config.people[1] + 1))
    heights = rng.uniform(*config.height_range, count) * size
    order = np.argsort(heights * np.exp(rng.normal(0, 0.15, count)), kind="stable")
    figures = make_figures(
        sample_pose_angles(rng, count, config.max_yaw), sample_body_proportions(rng, count), heights,
        sample_part_colors(rng, count),
    )
    figures = Figures(*(getattr(figures, field.name)[order]
                        for field in dataclasses.fields(Figures)))
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


# ------------------------------------------------------------------------------------------------
# Rendering. Shapes are drawn, far to near, into a label map at _SUPERSAMPLE times the resolution;
# colors come from a lookup table, edges between shapes are darkened, then the image is shrunk.


def _background(rng: np.random.Generator, size: int, clutter: float) -> np.ndarray:
    """`[size, size, 3]` float32 background: a two-color gradient plus, with clutter, a smooth
    color texture and sometimes stripes."""
    axis = np.linspace(0, 1, size, dtype=np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    ramp = np.float32(np.cos(angle)) * axis[None, :] + np.float32(np.sin(angle)) * axis[:, None]
    ramp = (ramp - ramp.min()) / (np.ptp(ramp) + 1e-6)
    first, second = _distractor_colors(rng, 2).astype(np.float32)
    image = first + (second - first) * ramp[..., None]
    if clutter > 0:
        cells = int(rng.integers(2, 12))
        small = Image.fromarray(rng.integers(0, 256, (cells, cells, 3), dtype=np.uint8))
        texture = np.asarray(small.resize((size, size), Image.BICUBIC), dtype=np.float32) - 128
        image += texture * np.float32(clutter * rng.uniform(0.2, 0.8))
    if rng.random() < 0.4 * clutter:
        direction = rng.uniform(0, 2 * np.pi)
        phase = (np.cos(direction) * axis[None, :] + np.sin(direction) * axis[:, None]) * size
        stripes = np.sin(phase * np.float32(2 * np.pi / rng.uniform(2, 12)))
        image += np.float32(rng.uniform(10, 40)) * stripes[..., None]
    return image


def _distractors(
    rng: np.random.Generator, config: SyntheticConfig
) -> tuple[np.ndarray, np.ndarray]:
    """Background shapes and limb-like sticks, as `[D, V, 2]` polygons in image pixels and
    `[D, 3]` colors (clothing and skin colors, like the people's)."""
    polygons = _shapes(rng, config) + _sticks(rng, config)
    stacked = np.stack(polygons) if polygons else np.zeros((0, _VERTICES, 2))
    return stacked, _distractor_colors(rng, len(polygons))


def _shapes(rng: np.random.Generator, config: SyntheticConfig) -> list[np.ndarray]:
    """About `5 * clutter` triangles, quadrilaterals and ellipses, 3-25% of the image across."""
    shapes = []
    for _ in range(rng.poisson(5 * config.clutter)):
        center = rng.uniform(0, config.image_size, (1, 2))
        radii = rng.uniform(0.03, 0.25, 2) * config.image_size
        angle = rng.uniform(0, 2 * np.pi)
        up = np.array([[np.cos(angle), np.sin(angle)]])
        ellipse = _ellipses(center, radii[:1], radii[1:], up)
        corners = np.linspace(0, _VERTICES, int(rng.choice([3, 4, _VERTICES])), endpoint=False)
        shapes.append(_pad_polygon(ellipse[0, corners.astype(int)]))
    return shapes


def _sticks(rng: np.random.Generator, config: SyntheticConfig) -> list[np.ndarray]:
    """About `6 * clutter` chains of 1-3 rounded segments, as long and thick as the limbs of a
    person of a height drawn from `height_range`."""
    sticks = []
    for _ in range(rng.poisson(6 * config.clutter)):
        height = rng.uniform(*config.height_range) * config.image_size
        point, heading = rng.uniform(0, config.image_size, 2), rng.uniform(0, 2 * np.pi)
        radius = np.array([rng.uniform(0.02, 0.045) * height])
        for _ in range(rng.integers(1, 4)):
            direction = np.array([np.cos(heading), np.sin(heading)])
            end = point + rng.uniform(0.12, 0.22) * height * direction
            sticks.append(_capsules(point[None], end[None], radius)[0])
            point, heading = end, heading + rng.normal(0, 1.0)
    return sticks


def _pad_polygon(polygon: np.ndarray) -> np.ndarray:
    return np.concatenate([polygon, np.repeat(polygon[-1:], _VERTICES - len(polygon), 0)])


def _draw_labels(
    size: int, distractors: np.ndarray, figures: Figures
) -> tuple[np.ndarray, np.ndarray]:
    """Draw distractors, then every person's parts far to near, into an int32 label map.

    Returns:
        The `[S, S]` label map at `_SUPERSAMPLE` times `size` (0 = background, 1..D distractors,
        then parts in drawing order) and `[N, P]` each part's label (0 if not drawn).
    """
    canvas = Image.new("I", (size * _SUPERSAMPLE,) * 2, 0)
    draw = ImageDraw.Draw(canvas)
    for label, polygon in enumerate(distractors, start=1):
        draw.polygon(_to_canvas(polygon), fill=label)
    part_labels = np.zeros(figures.depth.shape, dtype=np.int64)
    label = len(distractors)
    for person in range(len(figures.depth)):
        for part in np.argsort(figures.depth[person], kind="stable"):
            if figures.drawn[person, part]:
                label += 1
                part_labels[person, part] = label
                draw.polygon(_to_canvas(figures.polygons[person, part]), fill=label)
    return np.asarray(canvas), part_labels


def _to_canvas(polygon: np.ndarray) -> list[float]:
    """Flat PIL coordinates of a `[V, 2]` polygon at `_SUPERSAMPLE` times the resolution."""
    return (polygon * _SUPERSAMPLE + (_SUPERSAMPLE - 1) / 2).ravel().tolist()


def _paint(
    rng: np.random.Generator, labels: np.ndarray, background: np.ndarray, colors: np.ndarray,
    config: SyntheticConfig,
) -> Image.Image:
    """Color the label map, darken shape edges, shrink it over the background (anti-aliased),
    light the picture unevenly, blur it and add noise."""
    edge = np.zeros(labels.shape, dtype=bool)
    edge[1:] |= labels[1:] > labels[:-1]
    edge[:-1] |= labels[:-1] > labels[1:]
    edge[:, 1:] |= labels[:, 1:] > labels[:, :-1]
    edge[:, :-1] |= labels[:, :-1] > labels[:, 1:]
    lut = np.clip(np.concatenate([colors, colors * 0.65]), 0, 255).astype(np.uint8)
    shapes = np.take(lut, labels + edge * len(colors), axis=0)
    covered = Image.fromarray(((labels > 0) * 255).astype(np.uint8)).reduce(_SUPERSAMPLE)
    alpha = np.asarray(covered, dtype=np.float32)[..., None] / 255
    shapes = np.asarray(Image.fromarray(shapes).reduce(_SUPERSAMPLE), dtype=np.float32)
    image = shapes + (1 - alpha) * background
    light = Image.fromarray(rng.uniform(0.8, 1.2, (3, 3)).astype(np.float32), "F")
    image *= np.asarray(light.resize(image.shape[1::-1], Image.BILINEAR))[..., None]
    picture = Image.fromarray(np.clip(image, 0, 255).astype(np.uint8))
    if (radius := rng.uniform(0, config.blur)) > 0.1:
        picture = picture.filter(ImageFilter.GaussianBlur(radius))
    # The difference of two uniforms (triangular, standard deviation 1 / sqrt(6)) looks Gaussian
    # and costs a fifth of a Gaussian draw.
    sigma = np.float32(rng.uniform(0, config.noise) * 255 * np.sqrt(6))
    shape = (*picture.size[::-1], 3)
    noise = (rng.random(shape, dtype=np.float32) - rng.random(shape, dtype=np.float32)) * sigma
    return Image.fromarray(np.clip(np.asarray(picture) + noise, 0, 255).astype(np.uint8))


def _visibility(
    figures: Figures, labels: np.ndarray, part_labels: np.ndarray, size: int
) -> np.ndarray:
    """`[N, J]` COCO visibility of every body-model keypoint.

    0: outside the frame, or a face point turned away from the camera; 1: the label-map pixel
    under it belongs to a shape drawn after the first part that carries it and not carrying it
    (a nearer person or body part); 2: otherwise.
    """
    x, y = figures.keypoints[..., 0], figures.keypoints[..., 1]
    inside = (x >= -0.5) & (x < size - 0.5) & (y >= -0.5) & (y < size - 0.5)
    column = np.clip(np.floor((x + 0.5) * _SUPERSAMPLE), 0, labels.shape[1] - 1).astype(int)
    row = np.clip(np.floor((y + 0.5) * _SUPERSAMPLE), 0, labels.shape[0] - 1).astype(int)
    under = labels[row, column]
    num_labels = max(labels.max(), part_labels.max()) + 1
    owner = np.full(num_labels, -1)
    part = np.zeros(num_labels, dtype=int)
    drawn = part_labels > 0
    owner[part_labels[drawn]] = np.nonzero(drawn)[0]
    part[part_labels[drawn]] = np.nonzero(drawn)[1]
    people = np.arange(len(part_labels))[:, None]
    never = np.iinfo(np.int64).max
    carried = np.where(_CARRIES[None] & drawn[:, None], part_labels[:, None], never)
    own = (owner[under] == people) & _CARRIES[np.arange(len(BODY_KEYPOINTS))[None], part[under]]
    hidden = (under > carried.min(axis=2)) & ~own
    return np.where(inside & figures.labeled, np.where(hidden, 1, 2), 0)


# ------------------------------------------------------------------------------------------------
# Scenes and their COCO annotations.


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
    background = _background(rng, size, config.clutter)
    distractors, distractor_colors = _distractors(rng, config)
    labels, part_labels = _draw_labels(size, distractors, figures)
    colors = np.zeros((max(len(distractors), part_labels.max()) + 1, 3))
    colors[1:len(distractors) + 1] = distractor_colors
    colors[part_labels[part_labels > 0]] = figures.colors[part_labels > 0]
    image = _paint(rng, labels, background, colors, config)
    visibility = _visibility(figures, labels, part_labels, size)
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


# ------------------------------------------------------------------------------------------------
# Files: COCO json + PNG per split, then the dataset folder.


def coco_categories(skeleton_name: str) -> list[dict[str, Any]]:
    """The single `person` category with the skeleton's keypoint names and 1-based limbs."""
    skeleton = get_skeleton(skeleton_name)
    return [{
        "id": 1, "name": "person", "supercategory": "person",
        "keypoints": list(skeleton.keypoint_names),
        "skeleton": [[a + 1, b + 1] for a, b in skeleton.limbs],
    }]


def write_coco_split(
    config: SyntheticConfig, split: str, image_root: str | Path, annotation_file: str | Path,
    *, show_progress: bool = True,
) -> Path:
    """Render every image of `split` to `image_root/{split}/{index:06d}.png`; write its COCO json.

    Returns:
        The annotation file.
    """
    image_root, annotation_file = Path(image_root), Path(annotation_file)
    (image_root / split).mkdir(parents=True, exist_ok=True)
    count = config.num_train if split == "train" else config.num_val
    images, annotations = [], []
    for index in tqdm(range(count), desc=f"Rendering synthetic {split}", unit="img",
                      disable=not show_progress):
        scene = generate_scene(config, split, index)
        image_id = SPLITS[split] * IMAGE_ID_STRIDE + index + 1
        file_name = f"{split}/{index:06d}.png"
        scene.image.save(image_root / file_name, compress_level=1)
        record = {"id": image_id, "file_name": file_name, "width": config.image_size,
                  "height": config.image_size}
        if scene.crowd_index is not None:
            record["crowdIndex"] = round(scene.crowd_index, 4)
        images.append(record)
        annotations += scene.coco_annotations(image_id)
    annotation_file.parent.mkdir(parents=True, exist_ok=True)
    annotation_file.write_text(json.dumps({
        "info": {"description": f"semipose synthetic people, {split} split",
                 "version": GENERATOR_VERSION, "synthetic_config": config.to_dict()},
        "images": images, "annotations": annotations,
        "categories": coco_categories(config.skeleton),
    }))
    return annotation_file


_RECORD_FILE = "synthetic_config.json"


def synthetic_dataset_dir(
    cache_root: str | Path, config: SyntheticConfig, *, ratios: tuple[float, ...] = (1, 5, 10)
) -> Path:
    """Dataset folder for `config` (and the labeled `ratios`) under `cache_root`, named by their
    hash, so a job renders each setting once.

    Example:

    ```python
    >>> root = synthetic_dataset_dir("~/.cache/semipose", config)
    >>> folder = prepare_synthetic_dataset(root, config)  # == root
    ```
    """
    key = hashlib.sha256(json.dumps(_record(config, ratios, False)["key"], sort_keys=True).encode())
    name = f"synthetic-{config.skeleton}-{config.image_size}px-{key.hexdigest()[:12]}"
    return Path(cache_root).expanduser() / name


def synthetic_source_dir(output_dir: str | Path) -> Path:
    """The folder beside a synthetic dataset folder that holds its PNGs and COCO json."""
    output_dir = Path(output_dir).expanduser().resolve()
    return output_dir.with_name(f"{output_dir.name}-source")


def prepare_synthetic_dataset(
    output_dir: str | Path,
    config: SyntheticConfig,
    *,
    ratios: tuple[float, ...] = (1, 5, 10),
    overwrite: bool = False,
    show_progress: bool = True,
    embed_images: bool = False,
) -> Path:
    """Render the synthetic images, write COCO json, and convert them into a dataset folder.

    `output_dir` becomes a dataset folder written by
    `semipose.data.dataset_folder.prepare_dataset_folder`, the converter real COCO goes through
    (it appears at once, when complete). Its rows refer by path to the PNGs in the sibling
    `{output_dir}-source/` (`images/{train,val}/`, COCO json in `annotations/`), unless
    `embed_images`. `{output_dir}-source/synthetic_config.json` records the settings, which makes
    the pair a cache: called again with the same config, ratios and embedding, this returns at once.

    Args:
        output_dir: the dataset folder to create (see `synthetic_dataset_dir` for a keyed one).
        config: what to render.
        ratios: labeled percentages, one config `ratio_{r}` each, drawn with `config.seed`.
        overwrite: replace a finished dataset made with other settings (one left unfinished by
            an interrupted run is always replaced; folders not made here never are).
        show_progress: tqdm bars.
        embed_images: store the PNG bytes inside the parquet files (portable).

    Returns:
        `output_dir`, ready for `datasets.load_dataset(output_dir, "ratio_10", split="labeled")`.

    Example:

    ```python
    >>> folder = prepare_synthetic_dataset("data/synthetic", SyntheticConfig(skeleton="crowdpose"))
    ```
    """
    from .dataset_folder import prepare_dataset_folder

    output_dir = Path(output_dir).expanduser().resolve()
    source = synthetic_source_dir(output_dir)
    record = _record(config, ratios, embed_images)
    if _reusable(output_dir, source, record, overwrite):
        return output_dir
    shutil.rmtree(source, ignore_errors=True)
    source.mkdir(parents=True)
    (source / _RECORD_FILE).write_text(json.dumps(record, indent=2))
    annotations = {split: source / "annotations" / f"{split}.json" for split in SPLITS}
    for split, annotation_file in annotations.items():
        write_coco_split(config, split, source / "images", annotation_file,
                         show_progress=show_progress)
    prepare_dataset_folder(
        annotations["train"], source / "images", annotations["val"], source / "images", output_dir,
        skeleton=config.skeleton, seed=config.seed, ratios=ratios, embed_images=embed_images,
        overwrite=True, show_progress=show_progress,
    )
    (source / _RECORD_FILE).write_text(json.dumps({**record, "complete": True}, indent=2))
    return output_dir


def _record(
    config: SyntheticConfig, ratios: tuple[float, ...], embed_images: bool
) -> dict[str, Any]:
    """What `synthetic_config.json` holds; `key` is what the cache folder name hashes."""
    key = {"generator_version": GENERATOR_VERSION, "config": config.to_dict(),
           "ratios": [float(ratio) for ratio in ratios]}
    return json.loads(json.dumps({"key": key, "embed_images": embed_images, "complete": False}))


def _reusable(output_dir: Path, source: Path, record: dict[str, Any], overwrite: bool) -> bool:
    """True if the folders already hold this dataset; raise if they hold what we may not replace."""
    from .dataset_folder import METADATA_FILE

    found = _read_record(source)
    dataset_exists = output_dir.exists() and (not output_dir.is_dir() or any(output_dir.iterdir()))
    if dataset_exists and not (output_dir / METADATA_FILE).is_file():
        raise FileExistsError(
            f"Refusing to write {output_dir}: it exists and is not a dataset folder (no "
            f"{METADATA_FILE}); choose a new or empty folder."
        )
    if found is None and dataset_exists and not overwrite:
        raise FileExistsError(
            f"Output folder {output_dir} already exists; pass overwrite=True to replace it."
        )
    if found is None or not found.get("complete") or not dataset_exists:
        return False
    if found == {**record, "complete": True}:
        return not overwrite
    if not overwrite:
        raise FileExistsError(
            f"{output_dir} holds a synthetic dataset made with other settings ({found['key']}, "
            f"embed_images={found['embed_images']}); expected {record['key']}, "
            f"embed_images={record['embed_images']}. Pass overwrite=True to replace it."
        )
    return False


def _read_record(source: Path) -> dict[str, Any] | None:
    """The settings recorded in a source folder; None if there is none (or it is empty)."""
    if not source.exists() or (source.is_dir() and not any(source.iterdir())):
        return None
    if not (source / _RECORD_FILE).is_file():
        raise FileExistsError(
            f"Refusing to write into {source}: it exists and has no {_RECORD_FILE}, so it was not "
            "made by prepare_synthetic_dataset; move it or choose another output folder."
        )
    return json.loads((source / _RECORD_FILE).read_text())


def render_contact_sheet(
    config: SyntheticConfig, count: int = 16, columns: int = 4, split: str = "train", scale: int = 2
) -> Image.Image:
    """A grid of the first `count` images of `split`, enlarged `scale` times, with their
    ground-truth skeletons drawn (occluded keypoints too; unlabeled ones are not)."""
    skeleton = get_skeleton(config.skeleton)
    tiles = []
    for index in range(count):
        scene = generate_scene(config, split, index)
        image = scene.image.resize((config.image_size * scale,) * 2, Image.BICUBIC)
        keypoints = scene.keypoints.copy()
        keypoints[..., :2] = (keypoints[..., :2] + 0.5) * scale - 0.5
        tiles.append(draw_people(image, keypoints, skeleton, threshold=0, line_width=scale))
    return make_grid(tiles, columns)
