"""The parts table: what is drawn of a person, in which color slot, carrying which keypoints.

Every drawn shape of a person is a part: a polygon with a color slot, a depth key (parts are
drawn far to near) and the keypoints it carries. A keypoint that lies under a shape not carrying
it is hidden, so this one table decides outlines (`figures`), palettes (`colors`) and occlusion
labels (`rendering`).
"""

from __future__ import annotations

import numpy as np

from .body import BODY_KEYPOINTS, FACE_KEYPOINTS

COLOR_SLOTS = ("top", "bottom", "skin", "shoes", "hair", "sleeve", "leg", "eye")
CAPSULES = {  # part: (start, end, radius, color slot, carried keypoints)
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
"""Rounded segments between two body points; radii in units of standing height times build."""
_HEAD_KEYPOINTS = (*FACE_KEYPOINTS, "head")
_OTHER_PARTS = {  # part: (color slot, carried keypoints)
    "torso": ("top", ("left_shoulder", "right_shoulder", "left_hip", "right_hip", "neck")),
    "head": ("skin", _HEAD_KEYPOINTS),
    "hair": ("hair", _HEAD_KEYPOINTS),
    "left_eye_dot": ("eye", _HEAD_KEYPOINTS),
    "right_eye_dot": ("eye", _HEAD_KEYPOINTS),
}
_SLOT_AND_CARRIED = {**{part: capsule[3:] for part, capsule in CAPSULES.items()}, **_OTHER_PARTS}
PARTS = tuple(_SLOT_AND_CARRIED)
"""Every part, capsules first; the P axis of polygons, depth keys and colors."""
PART_SLOTS = np.array([COLOR_SLOTS.index(slot) for slot, _ in _SLOT_AND_CARRIED.values()])
"""`[P]` index into `COLOR_SLOTS` of each part."""
CARRIES = np.array([
    [keypoint in carried for _, carried in _SLOT_AND_CARRIED.values()]
    for keypoint in BODY_KEYPOINTS
])
"""`[J, P]`: keypoint j (of `BODY_KEYPOINTS`) lies on part p."""
