"""Keypoint skeletons: the one place that knows COCO-17 and CrowdPose-14.

Everything that needs keypoint names, the horizontal-flip permutation, the OKS sigmas, the limbs
to draw or the order in which bottom-up decoding groups keypoints reads it from here.

Coordinate convention (used by every module of semipose): keypoints are ``(x, y)`` in pixels of
the image or tensor they belong to, and integer coordinates are pixel *centers*: pixel ``(row i,
column j)`` covers ``[j - 0.5, j + 0.5) x [i - 0.5, i + 0.5)``. This is the COCO annotation
convention. A keypoint array is ``[..., K, 3]`` holding ``(x, y, visibility)``; visibility 0
means "not labeled, ignore", 1 "labeled but occluded", 2 "labeled and visible".

Example:

```python
>>> from semipose.skeletons import get_skeleton
>>> coco = get_skeleton("coco")
>>> coco.num_keypoints, coco.keypoint_names[coco.flip_index[1]]
(17, 'right_eye')

```
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Skeleton:
    """Static facts about one keypoint layout.

    Attributes:
        name: registry name (`"coco"`, `"crowdpose"`).
        keypoint_names: K names; a `left_`/`right_` prefix marks the body side.
        flip_index: K indices; channel `k` of a horizontally flipped image is channel `flip_index[k]`.
        sigmas: K per-keypoint OKS constants.
        limbs: pairs of keypoint indices drawn as bones.
        grouping_order: the order in which bottom-up decoding attaches keypoints to people,
            most reliable first.
        oks_area_from_bbox: CrowdPose computes the OKS scale from the box (`w * h * 0.53`)
            instead of the annotated segmentation area.
    """

    name: str
    keypoint_names: tuple[str, ...]
    flip_index: tuple[int, ...]
    sigmas: tuple[float, ...]
    limbs: tuple[tuple[int, int], ...]
    grouping_order: tuple[int, ...]
    oks_area_from_bbox: bool = False

    @property
    def num_keypoints(self) -> int:
        return len(self.keypoint_names)

    def side(self, keypoint: int) -> str:
        """`"left"`, `"right"` or `"center"`: used to color limbs by body side."""
        name = self.keypoint_names[keypoint]
        for side in ("left", "right"):
            if name.startswith(side + "_"):
                return side
        return "center"

    def limb_side(self, limb: tuple[int, int]) -> str:
        sides = {self.side(limb[0]), self.side(limb[1])}
        return sides.pop() if len(sides) == 1 else "center"


COCO = Skeleton(
    name="coco",
    keypoint_names=(
        "nose", "left_eye", "right_eye", "left_ear", "right_ear",
        "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
        "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
    ),
    flip_index=(0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15),
    sigmas=(
        0.026, 0.025, 0.025, 0.035, 0.035, 0.079, 0.079, 0.072, 0.072,
        0.062, 0.062, 0.107, 0.107, 0.087, 0.087, 0.089, 0.089,
    ),
    limbs=(
        (15, 13), (13, 11), (16, 14), (14, 12), (11, 12), (5, 11), (6, 12), (5, 6), (5, 7),
        (6, 8), (7, 9), (8, 10), (1, 2), (0, 1), (0, 2), (1, 3), (2, 4), (3, 5), (4, 6),
    ),
    grouping_order=(0, 1, 2, 3, 4, 5, 6, 11, 12, 7, 8, 9, 10, 13, 14, 15, 16),
)

CROWDPOSE = Skeleton(
    name="crowdpose",
    keypoint_names=(
        "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
        "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
        "head", "neck",
    ),
    flip_index=(1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10, 12, 13),
    sigmas=(
        0.079, 0.079, 0.072, 0.072, 0.062, 0.062, 0.107, 0.107,
        0.087, 0.087, 0.089, 0.089, 0.079, 0.079,
    ),
    limbs=(
        (12, 13), (13, 0), (13, 1), (0, 2), (2, 4), (1, 3), (3, 5), (0, 6),
        (1, 7), (6, 7), (6, 8), (8, 10), (7, 9), (9, 11),
    ),
    grouping_order=(12, 13, 0, 1, 6, 7, 2, 3, 8, 9, 4, 5, 10, 11),
    oks_area_from_bbox=True,
)

SKELETONS: dict[str, Skeleton] = {skeleton.name: skeleton for skeleton in (COCO, CROWDPOSE)}


def get_skeleton(name: str) -> Skeleton:
    """Look up a skeleton by name; raises ValueError listing the known names."""
    if name not in SKELETONS:
        raise ValueError(f"Unknown skeleton {name!r}: expected one of {sorted(SKELETONS)}.")
    return SKELETONS[name]


def resolve_skeleton(skeleton: Skeleton | str) -> Skeleton:
    """A `Skeleton` from a skeleton or its registry name (see `get_skeleton`)."""
    return get_skeleton(skeleton) if isinstance(skeleton, str) else skeleton


def skeleton_for_num_keypoints(num_keypoints: int) -> Skeleton:
    """The registered skeleton with `num_keypoints` keypoints (17 -> COCO, 14 -> CrowdPose)."""
    matches = [s for s in SKELETONS.values() if s.num_keypoints == num_keypoints]
    if not matches:
        known = {s.name: s.num_keypoints for s in SKELETONS.values()}
        raise ValueError(f"No skeleton has {num_keypoints} keypoints; known: {known}.")
    return matches[0]
