"""COCO / CrowdPose keypoint OKS AP, pixel error and PCK as a Hugging Face `evaluate` metric.

A thin wrapper of `semipose.evaluation.KeypointEvaluator` (which needs `semipose` installed):
references are the COCO annotations of one image each, predictions the predicted people of the
same images. Config `"coco"` (default) scores with
pycocotools' COCO keypoint rules, `"crowdpose"` with the CrowdPose rules.
"""

from __future__ import annotations

import datasets
import evaluate

from semipose.evaluation import DEFAULT_PCK_THRESHOLD, KeypointEvaluator
from semipose.evaluation.ground_truth import PERSON_CATEGORY_ID
from semipose.skeletons import Skeleton, get_skeleton

_CITATION = """\
@inproceedings{lin2014microsoft,
  title={Microsoft COCO: Common Objects in Context},
  author={Lin, Tsung-Yi and Maire, Michael and Belongie, Serge and Hays, James and Perona, Pietro
          and Ramanan, Deva and Doll{\\'a}r, Piotr and Zitnick, C. Lawrence},
  booktitle={ECCV}, year={2014}
}
@inproceedings{li2019crowdpose,
  title={CrowdPose: Efficient Crowded Scenes Pose Estimation and a New Benchmark},
  author={Li, Jiefeng and Wang, Can and Zhu, Hao and Mao, Yihuan and Fang, Hao-Shu and Lu, Cewu},
  booktitle={CVPR}, year={2019}
}
"""

_DESCRIPTION = """\
Object keypoint similarity (OKS) average precision and recall of multi-person keypoint
predictions. Config "coco": pycocotools' keypoint evaluation with the 17 COCO sigmas (AP, AP50,
AP75, APM, APL, AR, AR50, AR75, ARM, ARL). Config "crowdpose": the CrowdPose rules (14 sigmas,
OKS scale from the box w * h * 0.53, people with no labeled keypoint ignored, maxDets 20) with
AP, AP50, AP75, AR, AR50, AR75 and AP(E)/AP(M)/AP(H) over images with crowd_index < 0.2,
in [0.2, 0.8), >= 0.8, equal to xtcocotools' `keypoints_crowd`.
Both configs add the pixel error of the labeled people matched one-to-one to predicted people by OKS
(optimal assignment per image, OKS > min_oks): pixel_rmse and pixel_median over the labeled keypoints
of matched people, in pixels; pck, the fraction of all labeled keypoints (missed people's included)
within pck_threshold x max(box w, h) of their label; matched_fraction; pck_pixels within a fixed distance
when asked for (definitions: semipose.evaluation.pixel_error).
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions: one dict per image:
        `image_id` (int), `keypoints` [M][K][3] (x, y, keypoint score in original image pixels),
        `scores` [M] (person scores). M may be 0.
    references: one dict per image, its ground truth annotations as in a COCO json:
        `image_id` (int), `keypoints` [N][K][3] (x, y, visibility), `bboxes` [N][4] (x, y, w, h),
        `areas` [N] (segmentation areas; "crowdpose" uses the box instead), `iscrowd` [N] (bool),
        `crowd_index` (float or None; "crowdpose" bins images by it for AP(E)/AP(M)/AP(H)).
        An annotation without labeled keypoints (all visibilities 0) or with `iscrowd` is an
        ignore region: predictions on it are neither true nor false positives.
    Every image of the references is scored; a prediction for an image missing from the
    references is an error.
    pck_threshold (float, default 0.05): PCK's distance as a fraction of max(box w, h).
    pck_pixels (float or None, default None): also PCK at this distance in pixels (`pck_pixels`).
    min_oks (float, default 0): a labeled person and a predicted person match only with OKS > min_oks.
Returns:
    dict of floats: AP, AP50, AP75, APM, APL, AR, AR50, AR75, ARM, ARL ("coco") or
    AP, AP50, AP75, AR, AR50, AR75, AP(E), AP(M), AP(H) ("crowdpose"), then pixel_rmse,
    pixel_median, pck, matched_fraction (and pck_pixels); -1 where undefined.
Examples:
    >>> metric = evaluate.load("metrics/coco_keypoints", "coco")
    >>> person = [[100.0 + 10 * k, 50.0 + 5 * k, 2.0] for k in range(17)]
    >>> results = metric.compute(
    ...     predictions=[{"image_id": 1, "keypoints": [person], "scores": [0.9]}],
    ...     references=[{"image_id": 1, "keypoints": [person], "bboxes": [[100, 50, 160, 80]],
    ...                  "areas": [8000.0], "iscrowd": [False], "crowd_index": None}],
    ... )
    >>> round(results["AP"], 6), results["APL"]  # no large person: APL undefined
    (1.0, -1.0)
"""

_CONFIG_SKELETONS = {"coco": "coco", "crowdpose": "crowdpose", "default": "coco"}


def _features(num_keypoints: int) -> datasets.Features:
    """Per-image predictions and references for a skeleton of `num_keypoints` keypoints."""
    floats = datasets.Value("float64")
    people = datasets.List(datasets.List(datasets.List(floats, length=3), length=num_keypoints))
    return datasets.Features({
        "predictions": {
            "image_id": datasets.Value("int64"), "keypoints": people,
            "scores": datasets.List(floats),
        },
        "references": {
            "image_id": datasets.Value("int64"), "keypoints": people,
            "bboxes": datasets.List(datasets.List(floats, length=4)),
            "areas": datasets.List(floats),
            "iscrowd": datasets.List(datasets.Value("bool")), "crowd_index": floats,
        },
    })


def _coco_ground_truth(references: list[dict], skeleton: Skeleton) -> dict:
    """The references as a COCO-format keypoint ground truth dict."""
    images, annotations = [], []
    for reference in references:
        image = {"id": reference["image_id"]}
        if reference["crowd_index"] is not None:
            image["crowdIndex"] = reference["crowd_index"]
        images.append(image)
        columns = (reference[name] for name in ("keypoints", "bboxes", "areas", "iscrowd"))
        for keypoints, bbox, area, iscrowd in zip(*columns, strict=True):
            annotations.append({
                "image_id": reference["image_id"], "category_id": PERSON_CATEGORY_ID,
                "keypoints": [value for keypoint in keypoints for value in keypoint],
                "bbox": bbox, "area": area, "iscrowd": int(iscrowd),
            })
    return {"images": images, "annotations": annotations, "categories": [skeleton.coco_category(PERSON_CATEGORY_ID)]}


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class CocoKeypoints(evaluate.Metric):
    """OKS AP/AR of multi-person keypoints under the COCO or CrowdPose rules."""

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=_features(self._skeleton().num_keypoints),
            reference_urls=[
                "https://cocodataset.org/#keypoints-eval", "https://github.com/jin-s13/xtcocoapi"
            ],
        )

    def _skeleton(self) -> Skeleton:
        if self.config_name not in _CONFIG_SKELETONS:
            raise ValueError(
                f"Unknown config {self.config_name!r}: expected one of {sorted(_CONFIG_SKELETONS)}."
            )
        return get_skeleton(_CONFIG_SKELETONS[self.config_name])

    def _compute(
        self, predictions: list[dict], references: list[dict], pck_threshold: float = DEFAULT_PCK_THRESHOLD,
        pck_pixels: float | None = None, min_oks: float = 0.0,
    ) -> dict[str, float]:
        skeleton = self._skeleton()
        evaluator = KeypointEvaluator.from_coco(
            _coco_ground_truth(references, skeleton), skeleton,
            pck_threshold=pck_threshold, pck_pixels=pck_pixels, min_oks=min_oks,
        )
        evaluator.add_batch(
            [prediction["image_id"] for prediction in predictions],
            [prediction["keypoints"] for prediction in predictions],
            [prediction["scores"] for prediction in predictions],
        )
        return evaluator.compute()
