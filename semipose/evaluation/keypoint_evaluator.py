"""Accumulate multi-person keypoint predictions and score them with OKS AP (COCO or CrowdPose) and pixel error.

The skeleton picks the protocol: COCO-17 is scored with pycocotools' keypoint rules, CrowdPose-14
with the CrowdPose rules (`semipose.evaluation.protocols`). Beside OKS AP, `compute()` reports the
pixel error and PCK of the labeled people matched one-to-one to predictions by OKS, and `per_keypoint()`
breaks them down by keypoint (definitions in `semipose.evaluation.pixel_error`). Predictions are kept per
image as COCO keypoint results, so evaluators of several processes merge by exchanging `results_json()` lists.

Shapes: M people in an image, K keypoints of the skeleton.

Example:

```python
>>> import numpy as np
>>> from semipose.evaluation import KeypointEvaluator
>>> evaluator = KeypointEvaluator.from_coco("tests/fixtures/coco/test_coco.json")
>>> people = [ann for ann in evaluator.ground_truth["annotations"] if ann["num_keypoints"]]
>>> evaluator.add_results(
...     {"image_id": ann["image_id"], "keypoints": ann["keypoints"], "score": 1.0} for ann in people
... )
>>> stats = evaluator.compute()
>>> stats["AP"], stats["pixel_rmse"], stats["pck"], stats["matched_fraction"]
(1.0, 0.0, 1.0, 1.0)
>>> evaluator.per_keypoint()["nose"]
{'count': 11, 'missed': 0, 'rmse': 0.0, 'median': 0.0, 'pck': 1.0}
>>> evaluator.reset()
>>> evaluator.add(785, keypoints=np.zeros((1, 17, 3)), scores=np.ones(1))
>>> evaluator.compute()["AP"]
0.0

```
"""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..skeletons import Skeleton, resolve_skeleton
from .ground_truth import ground_truth_from_rows, load_coco_ground_truth
from .pixel_error import (
    DEFAULT_PCK_THRESHOLD,
    PCK_PIXELS_STAT_NAME,
    PIXEL_STAT_NAMES,
    PixelErrors,
    check_pixel_options,
    pixel_errors,
)
from .protocols import COCO_STAT_NAMES, CROWDPOSE_STAT_NAMES, score_coco, score_crowdpose


def to_numpy(values: Any) -> np.ndarray:
    """A float64 numpy array from a list, numpy array or (any-device) torch tensor."""
    if hasattr(values, "detach"):
        values = values.detach().cpu().double().numpy()
    return np.asarray(values, dtype=np.float64)


class KeypointEvaluator:
    """OKS AP, pixel error and PCK of multi-person keypoint predictions against one split's ground truth.

    Args:
        ground_truth: COCO-format ground truth as `semipose.evaluation.ground_truth` builds it
            (use `from_coco` or `from_rows` to build one).
        skeleton: the keypoint layout; `"crowdpose"` selects the CrowdPose rules.
        pck_threshold: PCK counts a keypoint within `pck_threshold` x max(box w, box h) of its label
            as correct.
        pck_pixels: also report PCK at this fixed distance in pixels (`pck_pixels`); None: not reported.
        min_oks: a labeled person and a prediction match for the pixel error only with OKS > `min_oks`.
    """

    def __init__(
        self,
        ground_truth: dict[str, Any],
        skeleton: Skeleton | str,
        *,
        pck_threshold: float = DEFAULT_PCK_THRESHOLD,
        pck_pixels: float | None = None,
        min_oks: float = 0.0,
    ):
        check_pixel_options(pck_threshold, pck_pixels, min_oks)
        self.pck_threshold, self.pck_pixels, self.min_oks = pck_threshold, pck_pixels, min_oks
        self.skeleton = resolve_skeleton(skeleton)
        self.ground_truth = ground_truth
        self.category_id = ground_truth["categories"][0]["id"]
        self._image_ids = {image["id"] for image in ground_truth["images"]}
        self._results: dict[int, list[dict[str, Any]]] = {}

    @classmethod
    def from_coco(
        cls, ground_truth: Mapping[str, Any] | str | Path, skeleton: Skeleton | str | None = None, **options: Any
    ) -> KeypointEvaluator:
        """Evaluator on a COCO-format keypoint dict or json file; None infers the skeleton. `options`: the
        constructor's keyword options (`pck_threshold`, `pck_pixels`, `min_oks`)."""
        normalized, skeleton = load_coco_ground_truth(ground_truth, skeleton)
        return cls(normalized, skeleton, **options)

    @classmethod
    def from_rows(
        cls, rows: Iterable[Mapping[str, Any]], skeleton: Skeleton | str, **options: Any
    ) -> KeypointEvaluator:
        """Evaluator on dataset rows (people + ignore regions), e.g. a validation `Dataset`. `options`: the
        constructor's keyword options (`pck_threshold`, `pck_pixels`, `min_oks`)."""
        return cls(ground_truth_from_rows(rows, skeleton), skeleton, **options)

    @property
    def is_crowdpose(self) -> bool:
        return self.skeleton.name == "crowdpose"

    @property
    def stat_names(self) -> tuple[str, ...]:
        """The keys of `compute()`, in reporting order: the OKS stats, then the pixel stats."""
        oks_names = CROWDPOSE_STAT_NAMES if self.is_crowdpose else COCO_STAT_NAMES
        pixel_names = PIXEL_STAT_NAMES + ((PCK_PIXELS_STAT_NAME,) if self.pck_pixels is not None else ())
        return oks_names + pixel_names

    @property
    def image_ids(self) -> list[int]:
        """Images that received predictions (possibly zero people), in the order added."""
        return list(self._results)

    def add(self, image_id: int, keypoints: Any, scores: Any) -> None:
        """Record the predicted people of one image.

        Args:
            image_id: an image of the ground truth; each image is added once.
            keypoints: `[M, K, 3]` (x, y, keypoint score) in original image pixels.
            scores: `[M]` person scores.
        """
        self.add_batch([image_id], [keypoints], [scores])

    def add_batch(
        self, image_ids: Sequence[int], keypoints: Sequence[Any], scores: Sequence[Any]
    ) -> None:
        """`add` for B images at once (all or none): B image ids, `[M_i, K, 3]` keypoints and
        `[M_i]` scores (lists, numpy arrays or torch tensors)."""
        if not len(image_ids) == len(keypoints) == len(scores):
            raise ValueError(
                f"add_batch needs one entry per image: got {len(image_ids)} image ids, "
                f"{len(keypoints)} keypoint arrays and {len(scores)} score arrays."
            )
        image_ids = [int(image_id) for image_id in image_ids]
        self._check_new_images(image_ids)
        checked = {
            image_id: self._image_results(image_id, to_numpy(image_keypoints), to_numpy(image_scores))
            for image_id, image_keypoints, image_scores in zip(image_ids, keypoints, scores)
        }
        self._results.update(checked)

    def add_results(self, results: Iterable[Mapping[str, Any]]) -> None:
        """Record COCO keypoint results (`image_id`, `keypoints` [3K], `score`), e.g. a json file.

        Results are grouped by image; every image must be new to this evaluator.
        """
        grouped: dict[int, list[tuple[int, Mapping[str, Any]]]] = {}
        for index, result in enumerate(results):
            if "image_id" not in result:
                raise ValueError(f"Result {index} has no 'image_id' (keys: {sorted(result)}).")
            grouped.setdefault(int(result["image_id"]), []).append((index, result))
        self._check_new_images(list(grouped))
        checked = {image_id: self._results_of_image(image_id, indexed)
                   for image_id, indexed in grouped.items()}
        self._results.update(checked)

    def merge(self, *others: KeypointEvaluator) -> None:
        """Take over other evaluators' predictions (e.g. other processes'); each image once."""
        self._check_new_images([image_id for other in others for image_id in other.image_ids])
        for other in others:
            self.add_results(other.results_json())

    def reset(self) -> None:
        """Forget all predictions (the ground truth stays)."""
        self._results.clear()

    def results_json(self) -> list[dict[str, Any]]:
        """All predictions as a COCO keypoint results list (json-serializable)."""
        return [result for results in self._results.values() for result in results]

    def compute(self) -> dict[str, float]:
        """The stats of `stat_names` over all ground truth images; -1 where undefined (pycocotools).

        OKS AP/AR, then `pixel_rmse`, `pixel_median` (pixels), `pck`, `matched_fraction` (and `pck_pixels`)
        of `pixel_errors()`. An evaluator without predicted people warns and scores 0 wherever ground
        truth exists (every labeled person missed).
        """
        results = self.results_json()
        if not results:
            warnings.warn(
                "KeypointEvaluator.compute: no predicted people were added; AP is 0.", stacklevel=2
            )
        score = score_crowdpose if self.is_crowdpose else score_coco
        stats = score(self.ground_truth, results, self.skeleton.sigmas)
        return {**stats, **self.pixel_errors().summary()}

    def pixel_errors(self) -> PixelErrors:
        """The labeled people of every ground truth image matched to predictions by OKS, their keypoints'
        pixel errors and the missed people (`semipose.evaluation.pixel_error` defines it all)."""
        return pixel_errors(
            self.ground_truth, self.results_json(), self.skeleton,
            pck_threshold=self.pck_threshold, pck_pixels=self.pck_pixels, min_oks=self.min_oks,
        )

    def per_keypoint(self) -> dict[str, dict[str, float]]:
        """By keypoint name: `count` (keypoints measured), `missed` (labeled keypoints of missed people),
        `rmse`, `median` (pixels), `pck` (and `pck_pixels`); -1 where undefined."""
        return self.pixel_errors().per_keypoint()

    def _check_new_images(self, image_ids: list[int]) -> None:
        unknown = [image_id for image_id in image_ids if image_id not in self._image_ids]
        if unknown:
            raise ValueError(
                f"Predictions for image ids {unknown[:10]} that are not in the ground truth "
                f"({len(self._image_ids)} images, e.g. {sorted(self._image_ids)[:5]})."
            )
        counts = Counter(image_ids)
        repeated = [i for i, count in counts.items() if i in self._results or count > 1]
        if repeated:
            raise ValueError(
                f"Predictions for image ids {repeated[:10]} were already added; add each image "
                f"once (drop duplicates that distributed padding creates, e.g. with "
                f"gather_for_metrics)."
            )

    def _results_of_image(
        self, image_id: int, indexed: list[tuple[int, Mapping[str, Any]]]
    ) -> list[dict[str, Any]]:
        """Check the COCO results of one image (with their positions in the input list)."""
        expected = 3 * self.skeleton.num_keypoints
        for index, result in indexed:
            where = f"Result {index} (image id {image_id})"
            if "keypoints" not in result or "score" not in result:
                raise ValueError(
                    f"{where}: expected keys 'keypoints' and 'score', got {sorted(result)}."
                )
            if len(result["keypoints"]) != expected:
                raise ValueError(
                    f"{where}: {len(result['keypoints'])} keypoint numbers, expected {expected} "
                    f"(x, y, score for the {self.skeleton.name!r} skeleton)."
                )
        keypoints = np.asarray([result["keypoints"] for _, result in indexed], dtype=np.float64)
        scores = np.asarray([result["score"] for _, result in indexed], dtype=np.float64)
        return self._image_results(image_id, keypoints.reshape(len(indexed), -1, 3), scores)

    def _image_results(
        self, image_id: int, keypoints: np.ndarray, scores: np.ndarray
    ) -> list[dict[str, Any]]:
        """Check one image's predictions and turn them into COCO results."""
        num_keypoints = self.skeleton.num_keypoints
        if keypoints.size == 0 and scores.size == 0:
            return []
        if keypoints.ndim != 3 or keypoints.shape[1:] != (num_keypoints, 3):
            raise ValueError(
                f"Image id {image_id}: keypoints have shape {list(keypoints.shape)}, expected "
                f"[M, {num_keypoints}, 3] (x, y, score) for the {self.skeleton.name!r} skeleton."
            )
        if scores.shape != (len(keypoints),):
            raise ValueError(
                f"Image id {image_id}: scores have shape {list(scores.shape)}, expected "
                f"[{len(keypoints)}] (one per predicted person)."
            )
        bad = ~(np.isfinite(keypoints).all(axis=(1, 2)) & np.isfinite(scores))
        if bad.any():
            raise ValueError(
                f"Image id {image_id}: predicted people {np.flatnonzero(bad).tolist()} have NaN or "
                f"infinite keypoints or scores."
            )
        return [
            {"image_id": image_id, "category_id": self.category_id,
             "keypoints": person.reshape(-1).tolist(), "score": float(score)}
            for person, score in zip(keypoints, scores)
        ]
