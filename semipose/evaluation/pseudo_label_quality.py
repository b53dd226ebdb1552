"""How good are the teacher's pseudo labels? Precision and recall of its filtered people at OKS 0.5.

Unlabeled images have no ground truth (and the trainer never reads any), so the quality of the
pseudo labels is measured honestly on the validation split: the teacher's people there are filtered
exactly as on unlabeled images and matched to the ground truth by pycocotools' own OKS matching
(greedy by score, ignore flags respected) at OKS 0.5.

Example:

```python
>>> from semipose.data.coco_format import read_coco_keypoints
>>> from semipose.evaluation.ground_truth import ground_truth_from_rows
>>> rows = read_coco_keypoints("tests/fixtures/coco/test_coco.json", "tests/fixtures/coco", show_progress=False)
>>> ground_truth = ground_truth_from_rows(rows, "coco")
>>> people = [  # the ground truth itself, visibilities as keypoint scores, every person scored 1
...     (row["image_id"], np.reshape(row["keypoints"], (-1, 17, 3)), np.ones(len(row["keypoints"])))
...     for row in rows]
>>> quality = pseudo_label_quality(ground_truth, people, "coco", person_threshold=0.3, keypoint_threshold=0.3)
>>> quality["precision"], quality["recall"]
(1.0, 1.0)

```
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..modeling.codec_common import confident_people
from ..skeletons import resolve_skeleton
from .protocols import captured_pycocotools_output, keypoint_cocoeval, with_box_areas

OKS_THRESHOLD_INDEX = 0  # pycocotools' first OKS threshold is 0.5


def pseudo_label_quality(
    ground_truth: dict[str, Any],
    people: Sequence[tuple[int, Any, Any]],
    skeleton,
    person_threshold: float,
    keypoint_threshold: float,
) -> dict[str, float]:
    """Precision and recall at OKS 0.5 of the people that pass the pseudo-label filter.

    Args:
        ground_truth: COCO-format ground truth (`semipose.evaluation.ground_truth`).
        people: (image_id, keypoints [M, K, 3] with keypoint scores, person scores [M]) per image.
        skeleton: skeleton or name (for the OKS sigmas).
        person_threshold, keypoint_threshold: the pseudo-label filter (a person needs at least one
            keypoint at or above `keypoint_threshold`).
    """
    skeleton = resolve_skeleton(skeleton)
    category_id = ground_truth["categories"][0]["id"]
    results = _filtered_results(people, person_threshold, keypoint_threshold, category_id)
    if skeleton.oks_area_from_bbox:
        ground_truth = with_box_areas(ground_truth)
    with captured_pycocotools_output():
        cocoeval = keypoint_cocoeval(ground_truth, results, skeleton.sigmas)
        cocoeval.params.areaRng = [cocoeval.params.areaRng[0]]
        cocoeval.params.areaRngLbl = ["all"]
        cocoeval.evaluate()
    matched_people = kept_people = matched_truths = truths = 0
    for image in filter(None, cocoeval.evalImgs):
        kept = ~np.asarray(image["dtIgnore"][OKS_THRESHOLD_INDEX], dtype=bool)
        kept_people += int(kept.sum())
        matched_people += int((np.asarray(image["dtMatches"][OKS_THRESHOLD_INDEX])[kept] > 0).sum())
        counted = ~np.asarray(image["gtIgnore"], dtype=bool)
        truths += int(counted.sum())
        matched_truths += int((np.asarray(image["gtMatches"][OKS_THRESHOLD_INDEX])[counted] > 0).sum())
    return {
        "precision": matched_people / kept_people if kept_people else 0.0,
        "recall": matched_truths / truths if truths else 0.0,
        "people_per_image": len(results) / max(1, len(people)),
    }


def _filtered_results(
    people, person_threshold: float, keypoint_threshold: float, category_id: int
) -> list[dict[str, Any]]:
    results = []
    for image_id, keypoints, scores in people:
        keypoints, scores = np.asarray(keypoints, dtype=np.float64), np.asarray(scores, dtype=np.float64)
        kept = confident_people(scores, keypoints[..., 2], person_threshold, keypoint_threshold)
        results += [{"image_id": int(image_id), "category_id": category_id, "keypoints": person.reshape(-1).tolist(),
                     "score": float(score)} for person, score in zip(keypoints[kept], scores[kept])]
    return results
