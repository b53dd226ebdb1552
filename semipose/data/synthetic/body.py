"""The 3D body model: joint angles and body proportions in, camera-frame 3D points out.

Keypoints are placed by forward kinematics (pelvis -> chest -> head, shoulder and hip -> limb
segments), so a pose drawn from `pose_prior` stays a human pose seen from any side.

Body frame: x = the person's left, y = up, z = the person's front; units of standing height.
Camera frame: X = image right, Y = up, Z = toward the camera (orthographic).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ...skeletons import get_skeleton

BODY_KEYPOINTS = get_skeleton("coco").keypoint_names + tuple(
    name for name in get_skeleton("crowdpose").keypoint_names
    if name not in get_skeleton("coco").keypoint_names
)
"""Every keypoint the body model places: the union of the COCO and CrowdPose names."""
FACE_KEYPOINTS = ("nose", "left_eye", "right_eye", "left_ear", "right_ear")
_FACE_OFFSETS = {  # position and outward normal in the head frame (head radius about 0.06)
    "nose": ((0.0, -0.008, 0.056), (0.0, 0.0, 1.0)),
    "left_eye": ((0.022, 0.012, 0.048), (0.35, 0.1, 1.0)),
    "right_eye": ((-0.022, 0.012, 0.048), (-0.35, 0.1, 1.0)),
    "left_ear": ((0.048, 0.002, -0.004), (1.0, 0.0, -0.1)),
    "right_ear": ((-0.048, 0.002, -0.004), (-1.0, 0.0, -0.1)),
}


@dataclass(frozen=True)
class _Limb:
    """An arm (rooted at the shoulder) or a leg (at the hip): three segments and one hinge.

    Attributes:
        ends: keypoints at the ends of the segments; the first is the hinge (elbow or knee).
        lengths: segment lengths, in units of standing height.
        bend_sign: sign of the hinge angle about x (elbows bend forward, knees backward).
        end_direction: direction of the last segment (hand or foot) in the lower segment's frame.
    """

    ends: tuple[str, str, str]
    lengths: tuple[float, float, float]
    bend_sign: float
    end_direction: tuple[float, float, float]


_LIMBS = {
    "shoulder": _Limb(("elbow", "wrist", "hand"), (0.186, 0.146, 0.07), -1.0, (0.0, -1.0, 0.0)),
    "hip": _Limb(("knee", "ankle", "toe"), (0.245, 0.246, 0.12), 1.0, (0.0, -0.2, 0.98)),
}


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
    limb = _LIMBS[joint]
    plane, elevation = angles[f"{joint}_plane_{side}"], angles[f"{joint}_elevation_{side}"]
    rotation = angles[f"{joint}_rotation_{side}"]
    bend = angles[f"{limb.ends[0]}_{side}"]
    axis = _vectors(-np.sin(np.radians(plane)), 0, np.cos(np.radians(plane)))
    upper_frame = _axis_angle(axis, elevation) @ _rotation("y", -rotation)
    down = np.array([0.0, -1.0, 0.0])
    lower_frame = upper_frame @ _rotation("x", limb.bend_sign * bend)
    end = np.array(limb.end_direction)
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
    limb = _LIMBS[joint]
    directions = (_apply(parent, d) for d in _limb_directions(angles, joint, side))
    start = points[f"{side}_{joint}"]
    for name, segment_length, direction in zip(limb.ends, limb.lengths, directions):
        start = start + direction * (segment_length * length)[:, None]
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
