"""The settings of a synthetic dataset and the renderer's version: together they name its cache
folder."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from ...skeletons import get_skeleton

GENERATOR_VERSION = 2
"""Bump when the renderer changes its output, so cached folders are regenerated."""
MAX_PEOPLE = 8


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
