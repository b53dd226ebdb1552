"""The pose prior: joint angles of everyday poses, kept inside human joint limits.

Poses come from a mixture of types (standing, walking, gesturing, sitting, dynamic) so that a
model sees the common poses often and the rare ones at all; the angles feed `body.body_points`.
"""

from __future__ import annotations

import numpy as np

# Uniform ranges in degrees. Limb angles are drawn per side (suffix _left/_right).
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


def sample_pose_angles(
    rng: np.random.Generator, count: int, max_yaw: float = 180.0
) -> dict[str, np.ndarray]:
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
    angles = {name: np.empty(count) for name in [*_POSE_RANGES, *_side_ranges(_LIMB_RANGES)]}
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
