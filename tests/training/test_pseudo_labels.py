import pytest
import torch
from tiny_training import make_trainer

from semipose.modeling.codec_common import DecodedPoses
from semipose.training.pseudo_labels import (
    batch_quantile_threshold,
    pseudo_person_mask,
    select_confident_people,
    uncertain_region_mask,
)


def _decoded() -> DecodedPoses:
    """Two images, three decoded slots each: person scores and keypoint scores chosen by hand."""
    keypoints = torch.arange(2 * 3 * 2 * 2, dtype=torch.float32).view(2, 3, 2, 2) + 1
    keypoint_scores = torch.tensor([
        [[0.9, 0.1], [0.8, 0.7], [0.9, 0.9]],
        [[0.2, 0.1], [0.6, 0.6], [0.0, 0.0]],
    ])
    scores = torch.tensor([[0.5, 0.2, 0.9], [0.9, 0.8, 0.0]])
    mask = torch.tensor([[True, True, True], [True, True, False]])
    return DecodedPoses(keypoints, keypoint_scores, scores, mask)


def test_keeps_confident_people_and_labels_only_confident_keypoints():
    decoded = _decoded()
    labels = select_confident_people(decoded, person_threshold=0.3, keypoint_threshold=0.3)
    # image 0 keeps slots 0 and 2 (slot 1 scores 0.2); image 1 keeps slot 1 (slot 0 has no confident keypoint)
    assert labels.shape == (2, 2, 2, 3)
    assert labels[0, 0].tolist() == [[1.0, 2.0, 2.0], [0.0, 0.0, 0.0]]
    assert labels[0, 1].tolist() == [[9.0, 10.0, 2.0], [11.0, 12.0, 2.0]]
    assert labels[1, 0].tolist() == [[17.0, 18.0, 2.0], [19.0, 20.0, 2.0]]
    assert labels[1, 1].abs().sum() == 0  # padding


def test_no_confident_person_gives_zero_people():
    labels = select_confident_people(_decoded(), person_threshold=0.95, keypoint_threshold=0.3)
    assert labels.shape == (2, 0, 2, 3)


def test_the_batch_quantile_threshold_keeps_the_better_part_of_the_teachers_people():
    decoded = _decoded()  # decoded scores 0.5, 0.2, 0.9 | 0.9, 0.8 (the fifth slot is padding)
    threshold = batch_quantile_threshold(decoded, 0.5)
    assert threshold.item() == pytest.approx(0.8)  # the median of the five decoded scores
    assert pseudo_person_mask(decoded, threshold, 0.3).tolist() == [[False, False, True], [False, True, False]]
    assert batch_quantile_threshold(decoded, 0.25).item() == pytest.approx(0.5)  # 0.2 0.5 0.8 0.9 0.9: linear
    nobody = DecodedPoses(decoded.keypoints, decoded.keypoint_scores, decoded.scores, torch.zeros(2, 3, dtype=bool))
    assert batch_quantile_threshold(nobody, 0.5).item() == 0.0


def test_uncertain_region_is_between_the_thresholds_at_input_resolution():
    heatmaps = torch.zeros(1, 2, 4, 4)
    heatmaps[0, 0, 0, 0] = 0.2   # uncertain
    heatmaps[0, 1, 1, 1] = 0.9   # confident
    heatmaps[0, 1, 2, 2] = 0.05  # background
    mask = uncertain_region_mask(heatmaps, (16, 16), ignore_threshold=0.1, keypoint_threshold=0.3)
    assert mask.shape == (1, 16, 16)
    assert mask[0, :4, :4].all() and mask.sum() == 16


@pytest.mark.parametrize(
    ("family", "given", "expected"),
    [("associative_embedding", None, 0.3), ("center_offset", None, 0.2), ("associative_embedding", 0.55, 0.55)],
)
def test_person_threshold_is_the_familys_unless_given(tiny_dataset_dir, tmp_path, family, given, expected):
    trainer = make_trainer(tiny_dataset_dir, tmp_path, family=family, pseudo_person_threshold=given)
    assert trainer.args.pseudo_person_threshold == expected


def test_a_semi_step_logs_the_threshold_and_the_scores_of_decoded_and_kept_people(tiny_dataset_dir, tmp_path):
    trainer = make_trainer(tiny_dataset_dir, tmp_path, pseudo_person_quantile=0.5, pseudo_keypoint_threshold=0.3)
    trainer.teacher = trainer.model
    decoded = _decoded()
    trainer.teacher.decode = lambda outputs: decoded
    labels = trainer._pseudo_keypoints(None)
    assert labels.shape == (2, 1, 2, 3)  # one person per image reaches the median 0.8 with a confident keypoint
    terms = trainer._step_terms[-1]
    assert terms["pseudo_person_threshold"].item() == pytest.approx(0.8)
    assert terms["pseudo_decoded_person_score"].item() == pytest.approx(0.66)  # (0.5 + 0.2 + 0.9 + 0.9 + 0.8) / 5
    assert terms["pseudo_mean_person_score"].item() == pytest.approx(0.85)  # 0.9 and 0.8
