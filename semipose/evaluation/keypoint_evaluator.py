"""Accumulate multi-person keypoint predictions and score them with OKS AP (COCO or CrowdPose).

The skeleton picks the protocol: COCO-17 is scored with pycocotools' keypoint rules, CrowdPose-14
with the CrowdPose rules (`semipose.evaluation.protocols`). Predictions are kept per image as COCO
keypoint results, so evaluators of several processes merge by exchanging `results_json()` lists.

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
>>> evaluator.compute()["AP"]
1.0
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
from .protocols import COCO_STAT_NAMES, CROWDPOSE_STAT_NAMES, score_coco, score_crowdpose


def to_numpy(values: Any) -> np.ndarray:
    """A float64 numpy array from a list, numpy array or (any-device) torch tensor."""
    if hasattr(values, "detach"):
        values = values.detach().cpu().double().numpy()
    return np.asarray(values, dtype=np.float64)


class KeypointEvaluator:
    """OKS AP of multi-person keypoint predictions against one split's ground truth.

    Args:
        ground_truth: COCO-format ground truth as `semipose.evaluation.ground_truth` builds it
            (use `from_coco` or `from_rows` to build one).
        skeleton: the keypoint layout; `"crowdpose"` selects the CrowdPose rules.
    """

    def __init__(self, ground_truth: dict[str, Any], skeleton: Skeleton | str):
        self.skeleton = resolve_skeleton(skeleton)
        self.ground_truth = ground_truth
        self.category_id = ground_truth["categories"][0]["id"]
        self._image_ids = {image["id"] for image in ground_truth["images"]}
        self._results: dict[int, list[dict[str, Any]]] = {}

    @classmethod
    def from_coco(
        cls, ground_truth: Mapping[str, Any] | str | Path, skeleton: Skeleton | str | None = None
    ) -> KeypointEvaluator:
        """Evaluator on a COCO-format keypoint dict or json file; None infers the skeleton."""
        normalized, skeleton = load_coco_ground_truth(ground_truth, skeleton)
        return cls(normalized, skeleton)

    @classmethod
    def from_rows(
        cls, rows: Iterable[Mapping[str, Any]], skeleton: Skeleton | str
    ) -> KeypointEvaluator:
        """Evaluator on dataset rows (people + ignore regions), e.g. a validation `Dataset`."""
        return cls(ground_truth_from_rows(rows, skeleton), skeleton)

    @property
    def is_crowdpose(self) -> bool:
        return self.skeleton.name == "crowdpose"

    @property
    def stat_names(self) -> tuple[str, ...]:
        """The keys of `compute()`, in reporting order."""
        return CROWDPOSE_STAT_NAMES if self.is_crowdpose else COCO_STAT_NAMES

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

        An evaluator without predicted people warns and scores 0 wherever ground truth exists.
        """
        results = self.results_json()
        if not results:
            warnings.warn(
                "KeypointEvaluator.compute: no predicted people were added; AP is 0.", stacklevel=2
            )
        score = score_crowdpose if self.is_crowdpose else score_coco
        return score(self.ground_truth, results, self.skeleton.sigmas)

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
