import numpy as np
import pytest

from semipose.evaluation.ground_truth import load_coco_ground_truth
from semipose.evaluation.pseudo_label_quality import pseudo_label_quality


@pytest.fixture()
def ground_truth(coco_fixture_dir):
    truth, _ = load_coco_ground_truth(coco_fixture_dir / "test_coco.json", "coco")
    return truth


def _people_from_truth(truth, score=0.9):
    """Every labeled person as a prediction with keypoint score 1 where labeled."""
    people = {}
    for ann in truth["annotations"]:
        if ann["num_keypoints"] == 0:
            continue
        keypoints = np.asarray(ann["keypoints"], dtype=np.float64).reshape(17, 3)
        keypoints[:, 2] = (keypoints[:, 2] > 0).astype(float)
        people.setdefault(ann["image_id"], []).append(keypoints)
    return [(image_id, np.stack(found), np.full(len(found), score)) for image_id, found in people.items()]


def test_ground_truth_as_pseudo_labels_is_perfect(ground_truth):
    people = _people_from_truth(ground_truth)
    quality = pseudo_label_quality(ground_truth, people, "coco", person_threshold=0.5, keypoint_threshold=0.5)
    assert quality["precision"] == 1.0 and quality["recall"] == 1.0
    assert quality["people_per_image"] == pytest.approx(12 / 4)


def test_filtered_people_lower_recall_and_false_people_lower_precision(ground_truth):
    people = _people_from_truth(ground_truth)
    image_id, keypoints, scores = people[0]
    scores = scores.copy()
    scores[0] = 0.1  # below the person threshold: dropped, one missed person
    far_away = keypoints[:1].copy()
    far_away[..., :2] += 10000  # a person where there is none
    people[0] = (image_id, np.concatenate([keypoints, far_away]), np.concatenate([scores, [0.95]]))
    quality = pseudo_label_quality(ground_truth, people, "coco", person_threshold=0.5, keypoint_threshold=0.5)
    assert quality["recall"] == pytest.approx(11 / 12)
    assert quality["precision"] == pytest.approx(11 / 12)


def test_no_pseudo_people_gives_zero(ground_truth):
    quality = pseudo_label_quality(ground_truth, [], "coco", person_threshold=0.5, keypoint_threshold=0.5)
    assert quality == {"precision": 0.0, "recall": 0.0, "people_per_image": 0.0}
