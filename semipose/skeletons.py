"""Keypoint skeletons as data: names, left/right mirror, OKS sigmas, limbs and grouping order.

A `Skeleton` comes from a COCO-format category (`Skeleton.from_coco_category`), a small json or yaml file
(`load_skeleton`, format in docs/skeleton-format.md) or one of the registered names `coco` and `crowdpose`
(`get_skeleton`), which keep exactly their published facts. Everything that needs keypoint names, the
horizontal-flip permutation, the OKS sigmas, the limbs to draw or the bottom-up grouping order reads it
from a `Skeleton`; the dataset folder's metadata and the model config each hold one (`to_dict`,
`config_fields`), so it travels from the label files to a saved checkpoint.

Coordinate convention (used by every module of semipose): keypoints are ``(x, y)`` in pixels of
the image or tensor they belong to, and integer coordinates are pixel *centers*: pixel ``(row i,
column j)`` covers ``[j - 0.5, j + 0.5) x [i - 0.5, i + 0.5)``. This is the COCO annotation
convention. A keypoint array is ``[..., K, 3]`` holding ``(x, y, visibility)``; visibility 0
means "not labeled, ignore", 1 "labeled but occluded", 2 "labeled and visible".

Example:

```python
>>> from semipose.skeletons import Skeleton, get_skeleton
>>> coco = get_skeleton("coco")
>>> coco.num_keypoints, coco.keypoint_names[coco.flip_index[1]]
(17, 'right_eye')
>>> mouse = Skeleton.from_dict({"name": "mouse", "keypoints": ["nose", "left_ear", "right_ear", "tail"],
...                             "limbs": [["nose", "left_ear"], ["nose", "right_ear"], ["nose", "tail"]]})
>>> mouse.flip_index, mouse.sigmas, mouse.grouping_order
((0, 2, 1, 3), (0.025, 0.025, 0.025, 0.025), (0, 1, 2, 3))

```
"""

from __future__ import annotations

import json
import logging
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .keypoint_sides import infer_flip_index, side_of

logger = logging.getLogger(__name__)

DEFAULT_SIGMA = 0.025
"""The OKS sigma of every keypoint of a skeleton that states none: SLEAP's evaluation default (`oks_stddev`).
A keypoint then scores OKS 0.5 at about 6% of the instance's scale (the square root of its area) from the
truth, the same for every keypoint: OKS AP measures localisation relative to the animal's size, with no
keypoint held to a looser standard than another."""
SKELETON_FILE_SUFFIXES = (".json", ".yaml", ".yml")
_FILE_KEYS = {"name", "keypoints", "limbs", "flip_pairs", "horizontal_flip", "sigmas", "grouping_order",
              "oks_area_from_bbox"}


@dataclass(frozen=True)
class Skeleton:
    """Static facts about one keypoint layout.

    Attributes:
        name: what the layout is called (`"coco"`, `"crowdpose"`, `"mouse"`, ...).
        keypoint_names: K distinct names.
        flip_index: K indices; channel `k` of a horizontally flipped image is channel `flip_index[k]`. None: the
            skeleton is never mirrored (no flip augmentation, no flip test), as for a side view whose sided
            names cannot be paired.
        sigmas: K positive per-keypoint OKS constants.
        limbs: pairs of keypoint indices drawn as bones.
        grouping_order: a permutation of the K indices: the order in which bottom-up decoding attaches
            keypoints to people, most reliable first.
        oks_area_from_bbox: CrowdPose computes the OKS scale from the box (`w * h * 0.53`)
            instead of the annotated segmentation area.
    """

    name: str
    keypoint_names: tuple[str, ...]
    flip_index: tuple[int, ...] | None
    sigmas: tuple[float, ...]
    limbs: tuple[tuple[int, int], ...]
    grouping_order: tuple[int, ...]
    oks_area_from_bbox: bool = False

    def __post_init__(self) -> None:
        _check_facts(self, f"Skeleton {self.name!r}")

    @property
    def num_keypoints(self) -> int:
        return len(self.keypoint_names)

    @property
    def can_flip(self) -> bool:
        """Whether a horizontally mirrored image has a known keypoint permutation."""
        return self.flip_index is not None

    def side(self, keypoint: int) -> str:
        """`"left"`, `"right"` or `"center"`: used to color limbs by body side."""
        side = side_of(self.keypoint_names[keypoint])
        return side if side in ("left", "right") else "center"

    def limb_side(self, limb: tuple[int, int]) -> str:
        sides = {self.side(limb[0]), self.side(limb[1])}
        return sides.pop() if len(sides) == 1 else "center"

    def to_dict(self) -> dict[str, Any]:
        """Every fact in the skeleton file format (names, not indices); `from_dict` reads it back equal."""
        names = self.keypoint_names
        pairs = [] if self.flip_index is None else [
            [names[k], names[m]] for k, m in enumerate(self.flip_index) if k < m
        ]
        return {
            "name": self.name,
            "keypoints": list(names),
            "limbs": [[names[a], names[b]] for a, b in self.limbs],
            "flip_pairs": pairs,
            "horizontal_flip": self.can_flip,
            "sigmas": list(self.sigmas),
            "grouping_order": [names[k] for k in self.grouping_order],
            "oks_area_from_bbox": self.oks_area_from_bbox,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "skeleton", default_name: str = "custom") -> Skeleton:
        """A skeleton from the file format (see docs/skeleton-format.md); ValueError names `source` and the field.

        Only `keypoints` is required. Left out: `limbs` none, `flip_pairs` inferred from the names (no flip at
        all where sided names cannot be paired), `sigmas` `DEFAULT_SIGMA` each (one number: that for each),
        `grouping_order` breadth-first over the limbs. A registered name (`coco`, `crowdpose`) must carry its
        registered facts.
        """
        if not isinstance(data, Mapping):
            raise ValueError(f"{source}: expected a mapping of skeleton fields, got {type(data).__name__}.")
        unknown = sorted(set(data) - _FILE_KEYS)
        if unknown:
            raise ValueError(f"{source}: unknown fields {unknown}; expected some of {sorted(_FILE_KEYS)}.")
        names = _keypoint_names(data.get("keypoints"), source)
        name = data.get("name", default_name)
        if not isinstance(name, str) or not name:
            raise ValueError(f"{source}: `name` must be a non-empty string, got {name!r}.")
        limbs = _index_pairs(data.get("limbs", []), names, source, "limbs")
        for flag in ("horizontal_flip", "oks_area_from_bbox"):
            if not isinstance(data.get(flag, False), bool):
                raise ValueError(f"{source}: `{flag}` must be true or false, got {data[flag]!r:.40}.")
        skeleton = cls(
            name=name,
            keypoint_names=names,
            flip_index=_flip_index(data, names, source),
            sigmas=_sigmas(data.get("sigmas"), len(names), source),
            limbs=limbs,
            grouping_order=_grouping_order(data.get("grouping_order"), names, limbs, source),
            oks_area_from_bbox=bool(data.get("oks_area_from_bbox", False)),
        )
        return _check_registered(skeleton, source)

    @classmethod
    def from_coco_category(cls, category: Mapping[str, Any], source: str = "category", **facts: Any) -> Skeleton:
        """The skeleton of a COCO-format category: its `keypoints` names and `skeleton` limbs (numbered from 1).

        A category whose names are those of a registered skeleton (COCO's `person`) gives that skeleton; other
        facts (`flip_pairs`, `sigmas`, ...) may be passed as keywords in the file format.
        """
        names = _keypoint_names(category.get("keypoints"), f"{source}: `keypoints`")
        for registered in SKELETONS.values():
            if names == registered.keypoint_names and not facts:
                return registered
        limbs = category.get("skeleton", [])
        if not isinstance(limbs, list) or not all(
            isinstance(limb, list) and len(limb) == 2 and all(isinstance(k, int) for k in limb) for limb in limbs
        ):
            raise ValueError(f"{source}: `skeleton` must be a list of [a, b] keypoint numbers, got {limbs!r:.80}.")
        for limb in limbs:
            if not all(1 <= k <= len(names) for k in limb):
                raise ValueError(
                    f"{source}: limb {limb} names a keypoint outside 1..{len(names)} (COCO numbers them from 1)."
                )
        data = {"name": category.get("name", "custom"), "keypoints": list(names),
                "limbs": [[names[a - 1], names[b - 1]] for a, b in limbs], **facts}
        return cls.from_dict(data, source)

    def coco_category(self, category_id: int = 1) -> dict[str, Any]:
        """The COCO `categories` entry of this skeleton (limbs numbered from 1); `from_coco_category` reads it
        back. People of a registered skeleton are called `person`, other instances by the skeleton's name."""
        name = "person" if self.name in SKELETONS else self.name
        return {
            "id": category_id, "name": name, "supercategory": name,
            "keypoints": list(self.keypoint_names),
            "skeleton": [[a + 1, b + 1] for a, b in self.limbs],
        }

    def config_fields(self) -> dict[str, Any]:
        """The model config's skeleton fields (`PoseConfig`): every fact, so a checkpoint carries its skeleton."""
        return {
            "skeleton": self.name,
            "num_keypoints": self.num_keypoints,
            "keypoint_names": list(self.keypoint_names),
            "flip_index": None if self.flip_index is None else list(self.flip_index),
            "sigmas": list(self.sigmas),
            "limbs": [list(limb) for limb in self.limbs],
            "grouping_order": list(self.grouping_order),
            "oks_area_from_bbox": self.oks_area_from_bbox,
        }

    @classmethod
    def from_config(cls, config: Any) -> Skeleton:
        """The skeleton a model config holds (`config_fields`); a config saved before configs held keypoint
        names (skeleton by name only) gives its registered skeleton."""
        if getattr(config, "keypoint_names", None) is None:
            return get_skeleton(config.skeleton)
        return cls(
            name=config.skeleton,
            keypoint_names=tuple(config.keypoint_names),
            flip_index=None if config.flip_index is None else tuple(config.flip_index),
            sigmas=tuple(config.sigmas),
            limbs=tuple(tuple(limb) for limb in config.limbs),
            grouping_order=tuple(config.grouping_order),
            oks_area_from_bbox=bool(config.oks_area_from_bbox),
        )


def _check_facts(skeleton: Skeleton, where: str) -> None:
    """ValueError unless the per-keypoint facts have K entries and the index lists are in range."""
    k = skeleton.num_keypoints
    if len(skeleton.sigmas) != k or not all(isinstance(s, (int, float)) and s > 0 for s in skeleton.sigmas):
        raise ValueError(f"{where}: sigmas must be {k} positive numbers, got {list(skeleton.sigmas)}.")
    if sorted(skeleton.grouping_order) != list(range(k)):
        raise ValueError(f"{where}: grouping_order must order each of the {k} keypoints once.")
    flip = skeleton.flip_index
    if flip is not None and (sorted(flip) != list(range(k)) or any(flip[flip[i]] != i for i in range(k))):
        raise ValueError(f"{where}: flip_index {list(flip)} is not a swap of pairs of the {k} keypoints.")
    if not all(0 <= a < k and 0 <= b < k for a, b in skeleton.limbs):
        raise ValueError(f"{where}: a limb names a keypoint outside 0..{k - 1}.")


def _keypoint_names(names: Any, source: str) -> tuple[str, ...]:
    if not isinstance(names, Sequence) or isinstance(names, str) or not names:
        raise ValueError(f"{source}: `keypoints` must be a non-empty list of names, got {names!r:.80}.")
    if not all(isinstance(name, str) and name for name in names):
        raise ValueError(f"{source}: every keypoint name must be a non-empty string, got {list(names)!r:.120}.")
    duplicates = sorted({name for name in names if list(names).count(name) > 1})
    if duplicates:
        raise ValueError(f"{source}: duplicate keypoint names {duplicates}; each keypoint needs its own name.")
    return tuple(names)


def _index(name: Any, names: tuple[str, ...], source: str, field: str) -> int:
    if name not in names:
        raise ValueError(f"{source}: `{field}` names {name!r}, which is not a keypoint; keypoints: {list(names)}.")
    return names.index(name)


def _index_pairs(pairs: Any, names: tuple[str, ...], source: str, field: str) -> tuple[tuple[int, int], ...]:
    if not isinstance(pairs, list):
        raise ValueError(f"{source}: `{field}` must be a list of [name, name] pairs, got {pairs!r:.80}.")
    result = []
    for pair in pairs:
        if not isinstance(pair, list) or len(pair) != 2:
            raise ValueError(f"{source}: `{field}` entry {pair!r:.80} is not a pair [name, name].")
        result.append((_index(pair[0], names, source, field), _index(pair[1], names, source, field)))
    return tuple(result)


def _flip_index(data: Mapping[str, Any], names: tuple[str, ...], source: str) -> tuple[int, ...] | None:
    """Explicit `flip_pairs` win (unpaired keypoints map to themselves); else pairs inferred from the names."""
    if data.get("horizontal_flip", True) is False:
        return None
    if "flip_pairs" not in data:
        flip, unpaired = infer_flip_index(names)
        if flip is None:
            logger.warning(
                "%s: sided keypoint names %s have no mirror among the names and no `flip_pairs` are given: "
                "this skeleton is never flipped (no flip augmentation, no flip test).", source, unpaired
            )
        return flip
    flip = list(range(len(names)))
    for a, b in _index_pairs(data["flip_pairs"], names, source, "flip_pairs"):
        if a == b or flip[a] != a or flip[b] != b:
            raise ValueError(
                f"{source}: `flip_pairs` must pair distinct keypoints, each at most once; "
                f"[{names[a]!r}, {names[b]!r}] breaks that."
            )
        flip[a], flip[b] = b, a
    return tuple(flip)


def _sigmas(sigmas: Any, num_keypoints: int, source: str) -> tuple[float, ...]:
    if sigmas is None:
        return (DEFAULT_SIGMA,) * num_keypoints
    if isinstance(sigmas, (int, float)) and not isinstance(sigmas, bool):
        sigmas = [sigmas] * num_keypoints
    if not isinstance(sigmas, list) or len(sigmas) != num_keypoints or not all(
        isinstance(s, (int, float)) and not isinstance(s, bool) and s > 0 for s in sigmas
    ):
        raise ValueError(
            f"{source}: `sigmas` must be one positive number or {num_keypoints} of them (one per keypoint), "
            f"got {sigmas!r:.120}."
        )
    return tuple(float(s) for s in sigmas)


def _grouping_order(
    order: Any, names: tuple[str, ...], limbs: tuple[tuple[int, int], ...], source: str
) -> tuple[int, ...]:
    """Given (names), or breadth-first over the limbs from the best-connected keypoint, so that each keypoint
    after the first joins a person through a limb already placed; keypoints no limb reaches come last."""
    if order is not None:
        if not isinstance(order, list) or sorted(order, key=str) != sorted(names, key=str):
            raise ValueError(f"{source}: `grouping_order` must list each keypoint name once, got {order!r:.120}.")
        return tuple(names.index(name) for name in order)
    neighbours: dict[int, list[int]] = {k: [] for k in range(len(names))}
    for a, b in limbs:
        neighbours[a].append(b)
        neighbours[b].append(a)
    visited: list[int] = []
    for root in sorted(range(len(names)), key=lambda k: (-len(neighbours[k]), k)):
        queue = deque([root] if root not in visited else [])
        while queue:
            k = queue.popleft()
            if k not in visited:
                visited.append(k)
                queue.extend(sorted(neighbours[k]))
    return tuple(visited)


def _check_registered(skeleton: Skeleton, source: str) -> Skeleton:
    """A skeleton under a registered name must be that registered skeleton."""
    registered = SKELETONS.get(skeleton.name)
    if registered is not None and skeleton != registered:
        raise ValueError(
            f"{source}: the name {skeleton.name!r} is semipose's registered skeleton, but these facts differ from "
            "it; give the skeleton another name."
        )
    return skeleton


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
    """Look up a registered skeleton by name; raises ValueError listing the known names."""
    if name not in SKELETONS:
        raise ValueError(
            f"Unknown skeleton {name!r}: expected one of {sorted(SKELETONS)} or a skeleton file "
            f"({', '.join(SKELETON_FILE_SUFFIXES)})."
        )
    return SKELETONS[name]


def load_skeleton(path: str | Path) -> Skeleton:
    """A skeleton from a json or yaml file (docs/skeleton-format.md); its name defaults to the file's stem."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Skeleton file {path} does not exist.")
    try:
        data = json.loads(path.read_text()) if path.suffix == ".json" else yaml.safe_load(path.read_text())
    except (json.JSONDecodeError, yaml.YAMLError, UnicodeDecodeError) as error:
        raise ValueError(f"{path}: not a readable {path.suffix[1:]} file ({error}).") from error
    return Skeleton.from_dict(data, str(path), default_name=path.stem)


def resolve_skeleton(skeleton: Skeleton | str | Path | Mapping[str, Any]) -> Skeleton:
    """A `Skeleton` from a skeleton, a registered name, a skeleton file's path or the file format's dict."""
    if isinstance(skeleton, Skeleton):
        return skeleton
    if isinstance(skeleton, Mapping):
        return Skeleton.from_dict(skeleton)
    if isinstance(skeleton, Path) or str(skeleton).endswith(SKELETON_FILE_SUFFIXES):
        return load_skeleton(skeleton)
    return get_skeleton(skeleton)
