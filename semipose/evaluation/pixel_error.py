"""Per-keypoint pixel error and PCK of people matched by OKS: the numbers animal-pose users read beside OKS AP.

OKS AP says how often people are found; these say how far off the found keypoints are, in the original
image's pixels, per keypoint. Definitions, as implemented:

- **labeled instance**: a ground truth annotation with `iscrowd` 0 and at least one keypoint with
  visibility v > 0. Crowd regions and annotations without labeled keypoints (ignore regions) take no part.
- **matching**, per image: the OKS of every (labeled instance, predicted person) pair, as pycocotools
  computes it (the skeleton's sigmas, the annotation's `area`; the box `w * h * 0.53` for a skeleton with
  `oks_area_from_bbox`, as the CrowdPose rules), then the one-to-one assignment with the largest total
  OKS among pairs with OKS > `min_oks` (default 0: any overlap), by `scipy.optimize.linear_sum_assignment`.
  Person and keypoint scores play no part: every predicted person is a candidate and every predicted
  keypoint has a position, so a keypoint's score does not gate its error.
- **missed instance**: a labeled instance left unmatched (reported as `matched_fraction` and counts).
- **error** of a labeled keypoint (v > 0) of a matched instance: the Euclidean distance between the
  prediction and the label, in pixels. Keypoints of missed instances have no error: they are left out of
  RMSE and median.
- **pixel_rmse** = sqrt(mean(error^2)), **pixel_median** = median(error), pooled over all such keypoints
  (per keypoint: over that keypoint's).
- **pck**: correct / labeled, where a keypoint is correct when error <= `pck_threshold` x the instance's box
  size `max(box w, box h)` (mmpose `PCKAccuracy`'s bbox normalisation; mmpose counts strictly below the
  threshold, here the boundary is correct), and labeled counts the labeled keypoints of all labeled
  instances, missed ones included (never correct). Default threshold 0.05.
- **pck_pixels** (only when `pck_pixels` is given): the same with a fixed distance, error <= `pck_pixels`.
- A value without anything to average (no matched keypoint, no labeled instance) is -1, as pycocotools
  reports an undefined AP.

Shapes: N labeled instances and M predicted people in an image, K keypoints, P measured keypoints.

Example:

```python
>>> from semipose.evaluation.pixel_error import pixel_errors
>>> from semipose.skeletons import Skeleton
>>> skeleton = Skeleton.from_dict({"name": "pair", "keypoints": ["head", "tail"]})
>>> ground_truth = {"images": [{"id": 1}], "categories": [skeleton.coco_category()], "annotations": [
...     {"image_id": 1, "keypoints": [10, 10, 2, 50, 10, 2], "bbox": [0, 0, 100, 40], "area": 4000, "iscrowd": 0}]}
>>> results = [{"image_id": 1, "keypoints": [13, 14, 0.9, 50, 10, 0.1], "score": 0.8}]
>>> errors = pixel_errors(ground_truth, results, skeleton)
>>> errors.summary()  # errors 5 and 0 px; both within 0.05 x 100 px
{'pixel_rmse': 3.5355339059327378, 'pixel_median': 2.5, 'pck': 1.0, 'matched_fraction': 1.0}
>>> errors.per_keypoint()["head"]
{'count': 1, 'missed': 0, 'rmse': 5.0, 'median': 5.0, 'pck': 1.0}

```
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
from scipy.optimize import linear_sum_assignment

from ..skeletons import Skeleton, resolve_skeleton
from .protocols import with_box_areas

PIXEL_STAT_NAMES = ("pixel_rmse", "pixel_median", "pck", "matched_fraction")
"""The pixel stats `KeypointEvaluator.compute()` adds to the OKS stats (`pck_pixels` follows when asked for)."""
PCK_PIXELS_STAT_NAME = "pck_pixels"
DEFAULT_PCK_THRESHOLD = 0.05
UNDEFINED = -1.0


def check_pixel_options(pck_threshold: float, pck_pixels: float | None, min_oks: float) -> None:
    """Refuse thresholds that make no sense (negative, NaN; `min_oks` 1 or more matches nothing)."""
    if not pck_threshold >= 0:
        raise ValueError(f"pck_threshold must be >= 0 (a fraction of the box size), got {pck_threshold}.")
    if pck_pixels is not None and not pck_pixels >= 0:
        raise ValueError(f"pck_pixels must be >= 0 (a distance in pixels) or None, got {pck_pixels}.")
    if not 0 <= min_oks < 1:
        raise ValueError(f"min_oks must be in [0, 1) (a match needs OKS > min_oks), got {min_oks}.")


def object_keypoint_similarity(
    truth_keypoints: np.ndarray, areas: np.ndarray, predicted_keypoints: np.ndarray, sigmas: Sequence[float]
) -> np.ndarray:
    """OKS of every (labeled instance, predicted person) pair, as pycocotools' `computeOks` for labeled people.

    Args:
        truth_keypoints: `[N, K, 3]` (x, y, visibility); each instance has a keypoint with visibility > 0.
        areas: `[N]` OKS scales (segmentation areas, or the CrowdPose box scale).
        predicted_keypoints: `[M, K, 2 or 3]` (x, y, ...) in the same pixels.
        sigmas: K per-keypoint OKS constants.

    Returns:
        `[N, M]` OKS in [0, 1].
    """
    squared = ((predicted_keypoints[None, :, :, :2] - truth_keypoints[:, None, :, :2]) ** 2).sum(axis=-1)
    labeled = np.broadcast_to(truth_keypoints[:, None, :, 2] > 0, squared.shape)
    return oks_from_squared_distances(squared, areas + np.spacing(1), sigmas, labeled)


def oks_from_squared_distances(
    squared: np.ndarray, areas: np.ndarray, sigmas: Sequence[float], counted: np.ndarray
) -> np.ndarray:
    """The COCO formula, `mean_k exp(-d_k^2 / (2 s^2 (2 sigma_k)^2))` over the counted keypoints of each pair: the one
    OKS of evaluation and of tracking, which differ only in the scale `s^2` and in which keypoints count.

    Args:
        squared: `[A, B, K]` squared keypoint distances of each (a, b) pair.
        areas: `[A]` the scale `s^2` of each `a`.
        sigmas: K per-keypoint OKS constants.
        counted: `[A, B, K]` bool, the keypoints the mean runs over.

    Returns:
        `[A, B]` OKS in [0, 1]; 0 for a pair with no counted keypoint.
    """
    spread = 2 * areas[:, None, None] * (2 * np.asarray(sigmas, dtype=np.float64)) ** 2
    similarity = np.where(counted, np.exp(-squared / spread), 0.0).sum(axis=-1)
    return similarity / np.maximum(counted.sum(axis=-1), 1)


def match_people(oks: np.ndarray, min_oks: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """The one-to-one (instance, prediction) pairs of largest total OKS among pairs with OKS > `min_oks`.

    Args:
        oks: `[N, M]` OKS of labeled instances and predicted people.

    Returns:
        Matched instance indices and their prediction indices, both `[n]`, n <= min(N, M).
    """
    allowed = np.where(oks > min_oks, oks, 0.0)
    instances, predictions = linear_sum_assignment(allowed, maximize=True)
    kept = allowed[instances, predictions] > 0
    return instances[kept], predictions[kept]


@dataclass(frozen=True, eq=False)
class PixelErrors:
    """The measured keypoints of matched instances and what was missed; `summary` and `per_keypoint` read them.

    Attributes:
        keypoint_names: K names.
        keypoint_index: `[P]` which keypoint each measurement is.
        errors: `[P]` distance between prediction and label, in original image pixels.
        box_sizes: `[P]` max(box w, box h) of the measured keypoint's instance (the PCK scale).
        missed_keypoints: `[K]` labeled keypoints of missed instances.
        labeled_instances, matched_instances: counts over all images.
        pck_threshold, pck_pixels, min_oks: the thresholds these were measured with.
    """

    keypoint_names: tuple[str, ...]
    keypoint_index: np.ndarray
    errors: np.ndarray
    box_sizes: np.ndarray
    missed_keypoints: np.ndarray
    labeled_instances: int
    matched_instances: int
    pck_threshold: float = DEFAULT_PCK_THRESHOLD
    pck_pixels: float | None = None
    min_oks: float = 0.0

    def summary(self) -> dict[str, float]:
        """The flat overall stats, `PIXEL_STAT_NAMES` (then `pck_pixels` if asked for); -1 where undefined."""
        stats = self._stats(self.errors, self.box_sizes, int(self.missed_keypoints.sum()))
        matched = self.matched_instances / self.labeled_instances if self.labeled_instances else UNDEFINED
        summary = {"pixel_rmse": stats["rmse"], "pixel_median": stats["median"], "pck": stats["pck"],
                   "matched_fraction": matched}
        if self.pck_pixels is not None:
            summary[PCK_PIXELS_STAT_NAME] = stats["pck_pixels"]
        return summary

    def per_keypoint(self) -> dict[str, dict[str, float]]:
        """By keypoint name: `count` (measured keypoints), `missed` (labeled keypoints of missed instances),
        `rmse`, `median`, `pck` (and `pck_pixels` if asked for); -1 where undefined."""
        return {
            name: self._stats(self.errors[self.keypoint_index == k], self.box_sizes[self.keypoint_index == k],
                              int(self.missed_keypoints[k]))
            for k, name in enumerate(self.keypoint_names)
        }

    def to_dict(self) -> dict[str, Any]:
        """Thresholds, instance counts and the per-keypoint breakdown, json-serializable."""
        return {
            "pck_threshold": self.pck_threshold, "pck_pixels": self.pck_pixels, "min_oks": self.min_oks,
            "labeled_instances": self.labeled_instances, "matched_instances": self.matched_instances,
            "missed_instances": self.labeled_instances - self.matched_instances,
            "per_keypoint": self.per_keypoint(),
        }

    def _stats(self, errors: np.ndarray, box_sizes: np.ndarray, missed: int) -> dict[str, float]:
        """count, missed, rmse, median, pck (, pck_pixels) of one set of measurements."""
        labeled = len(errors) + missed
        stats = {"count": len(errors), "missed": missed,
                 "rmse": float(np.sqrt(np.mean(errors**2))) if len(errors) else UNDEFINED,
                 "median": float(np.median(errors)) if len(errors) else UNDEFINED,
                 "pck": _fraction(errors <= self.pck_threshold * box_sizes, labeled)}
        if self.pck_pixels is not None:
            stats["pck_pixels"] = _fraction(errors <= self.pck_pixels, labeled)
        return stats


def _fraction(correct: np.ndarray, labeled: int) -> float:
    return float(np.count_nonzero(correct) / labeled) if labeled else UNDEFINED


class _LabeledPeople(NamedTuple):
    """The labeled instances of one image: keypoints `[N, K, 3]`, OKS areas `[N]`, box sizes `[N]`."""

    keypoints: np.ndarray
    areas: np.ndarray
    box_sizes: np.ndarray


class _ImageMatch(NamedTuple):
    """One image's measurements: keypoint indices, errors and box sizes `[P_i]`, missed keypoints `[K]`."""

    keypoint_index: np.ndarray
    errors: np.ndarray
    box_sizes: np.ndarray
    missed_keypoints: np.ndarray
    labeled_instances: int
    matched_instances: int


def pixel_errors(
    ground_truth: Mapping[str, Any],
    results: Iterable[Mapping[str, Any]],
    skeleton: Skeleton | str,
    *,
    pck_threshold: float = DEFAULT_PCK_THRESHOLD,
    pck_pixels: float | None = None,
    min_oks: float = 0.0,
) -> PixelErrors:
    """Match predictions to the labeled instances of every image by OKS and measure the matched keypoints.

    Args:
        ground_truth: COCO-format ground truth (`semipose.evaluation.ground_truth`); images without
            predictions count all their labeled instances as missed.
        results: COCO keypoint results (`image_id`, `keypoints` [3K] as x, y, score in original pixels).
        skeleton: the keypoint layout (sigmas, names, OKS area rule).
        pck_threshold: PCK counts an error <= `pck_threshold` x max(box w, box h) as correct.
        pck_pixels: also PCK at this fixed distance in pixels; None: not computed.
        min_oks: a match needs OKS > `min_oks`.
    """
    skeleton = resolve_skeleton(skeleton)
    check_pixel_options(pck_threshold, pck_pixels, min_oks)
    if skeleton.oks_area_from_bbox:
        ground_truth = with_box_areas(dict(ground_truth))
    people = _labeled_people(ground_truth["annotations"], skeleton.num_keypoints)
    predicted = _predicted_people(results, skeleton.num_keypoints)
    no_prediction = np.zeros((0, skeleton.num_keypoints, 3))
    matches = [
        _match_image(truth, predicted.get(image_id, no_prediction), skeleton.sigmas, min_oks)
        for image_id, truth in people.items()
    ]
    return PixelErrors(
        keypoint_names=skeleton.keypoint_names,
        keypoint_index=np.concatenate([[], *(match.keypoint_index for match in matches)]).astype(np.int64),
        errors=np.concatenate([[], *(match.errors for match in matches)]),
        box_sizes=np.concatenate([[], *(match.box_sizes for match in matches)]),
        missed_keypoints=sum((match.missed_keypoints for match in matches), np.zeros(skeleton.num_keypoints, int)),
        labeled_instances=sum(match.labeled_instances for match in matches),
        matched_instances=sum(match.matched_instances for match in matches),
        pck_threshold=pck_threshold, pck_pixels=pck_pixels, min_oks=min_oks,
    )


def _labeled_people(annotations: Iterable[Mapping[str, Any]], num_keypoints: int) -> dict[int, _LabeledPeople]:
    """The labeled instances (not crowd, a keypoint with v > 0) by image id."""
    grouped: dict[int, list[Mapping[str, Any]]] = {}
    for ann in annotations:
        keypoints = np.asarray(ann["keypoints"], dtype=np.float64).reshape(num_keypoints, 3)
        if not ann.get("iscrowd", 0) and (keypoints[:, 2] > 0).any():
            grouped.setdefault(int(ann["image_id"]), []).append(ann)
    return {
        image_id: _LabeledPeople(
            keypoints=np.asarray([ann["keypoints"] for ann in anns], dtype=np.float64).reshape(-1, num_keypoints, 3),
            areas=np.asarray([ann["area"] for ann in anns], dtype=np.float64),
            box_sizes=np.asarray([max(ann["bbox"][2], ann["bbox"][3]) for ann in anns], dtype=np.float64),
        )
        for image_id, anns in grouped.items()
    }


def _predicted_people(results: Iterable[Mapping[str, Any]], num_keypoints: int) -> dict[int, np.ndarray]:
    """Predicted keypoints `[M, K, 3]` by image id."""
    grouped: dict[int, list[Sequence[float]]] = {}
    for result in results:
        grouped.setdefault(int(result["image_id"]), []).append(result["keypoints"])
    return {
        image_id: np.asarray(people, dtype=np.float64).reshape(-1, num_keypoints, 3)
        for image_id, people in grouped.items()
    }


def _match_image(
    truth: _LabeledPeople, predicted: np.ndarray, sigmas: Sequence[float], min_oks: float
) -> _ImageMatch:
    """Match one image's predictions to its labeled instances and measure the labeled keypoints of the matched."""
    oks = object_keypoint_similarity(truth.keypoints, truth.areas, predicted, sigmas)
    instances, predictions = match_people(oks, min_oks)
    labeled = truth.keypoints[..., 2] > 0
    distances = np.linalg.norm(predicted[predictions, :, :2] - truth.keypoints[instances, :, :2], axis=-1)
    measured = labeled[instances]
    instance_of, keypoint_of = np.nonzero(measured)
    missed = np.ones(len(labeled), dtype=bool)
    missed[instances] = False
    return _ImageMatch(
        keypoint_index=keypoint_of,
        errors=distances[measured],
        box_sizes=truth.box_sizes[instances][instance_of],
        missed_keypoints=labeled[missed].sum(axis=0),
        labeled_instances=len(labeled),
        matched_instances=len(instances),
    )


def format_per_keypoint_table(details: Mapping[str, Any]) -> list[str]:
    """Lines of a plain-text per-keypoint table of `PixelErrors.to_dict()`, under a line saying how people were
    matched (what `semipose evaluate` prints)."""
    pck_names = {"pck": f"pck@{details['pck_threshold']:g}"}
    if details["pck_pixels"] is not None:
        pck_names["pck_pixels"] = f"pck@{details['pck_pixels']:g}px"
    columns = {"count": "count", "missed": "missed", "rmse": "rmse px", "median": "median px", **pck_names}
    breakdown = details["per_keypoint"]
    width = max(len("keypoint"), *(len(name) for name in breakdown))
    lines = [
        f"pixel error of the {details['matched_instances']} of {details['labeled_instances']} labeled people "
        f"matched by OKS > {details['min_oks']:g}; {pck_names['pck']}: within {details['pck_threshold']:g} x "
        f"max(box w, h); per keypoint:",
        f"{'keypoint':<{width}}" + "".join(f"  {title:>9}" for title in columns.values()),
    ]
    for name, stats in breakdown.items():
        cells = (f"{stats[key]:9d}" if isinstance(stats[key], int) else f"{stats[key]:9.4f}" for key in columns)
        lines.append(f"{name:<{width}}" + "".join(f"  {cell}" for cell in cells))
    return lines
