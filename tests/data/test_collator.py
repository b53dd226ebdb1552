"""PoseDataCollator: stacking, people padding with all-zero rows, labeled vs unlabeled batches."""

import pytest
import torch
from datasets import Dataset
from torch.utils.data import DataLoader

from semipose.data.coco_format import pose_features, read_coco_keypoints
from semipose.data.collator import PoseDataCollator, pad_people
from semipose.data.transforms import AugmentationConfig, LabeledTransform, UnlabeledTransform


def labeled_example(num_people: int, image_id: int, num_keypoints: int = 17, size: int = 8) -> dict:
    count = num_people * num_keypoints * 3
    keypoints = torch.arange(1, count + 1, dtype=torch.float32)
    keypoints = keypoints.reshape(num_people, num_keypoints, 3)
    return {
        "pixel_values": torch.full((3, size, size), float(image_id)),
        "keypoints": keypoints,
        "ignore_mask": torch.eye(size, dtype=torch.bool),
        "image_id": image_id,
    }


def test_people_are_padded_with_all_zero_rows():
    examples = [labeled_example(2, 1), labeled_example(0, 2), labeled_example(3, 3)]
    batch = PoseDataCollator()(examples)
    assert batch["keypoints"].shape == (3, 3, 17, 3)
    assert torch.equal(batch["keypoints"][0, :2], examples[0]["keypoints"])
    assert not batch["keypoints"][0, 2:].any() and not batch["keypoints"][1].any()
    assert torch.equal(batch["keypoints"][2], examples[2]["keypoints"])
    assert batch["pixel_values"].shape == (3, 3, 8, 8) and batch["pixel_values"][2, 0, 0, 0] == 3
    assert batch["ignore_mask"].dtype == torch.bool and batch["ignore_mask"].shape == (3, 8, 8)
    assert batch["image_ids"].dtype == torch.int64 and batch["image_ids"].tolist() == [1, 2, 3]


def test_batch_without_people_keeps_the_keypoint_dimension():
    examples = [labeled_example(0, image_id, num_keypoints=14) for image_id in (1, 2)]
    batch = PoseDataCollator()(examples)
    assert batch["keypoints"].shape == (2, 0, 14, 3)


def test_unlabeled_batch_has_only_pixels_and_ids():
    examples = [{"pixel_values": torch.zeros(3, 8, 8), "image_id": index} for index in (5, 6)]
    batch = PoseDataCollator()(examples)
    assert sorted(batch) == ["image_ids", "pixel_values"] and batch["image_ids"].tolist() == [5, 6]


def test_bad_batches_raise_clear_errors():
    collate = PoseDataCollator()
    unlabeled = {"pixel_values": torch.zeros(3, 8, 8), "image_id": 9}
    with pytest.raises(ValueError, match=r"rows \[9\] lack \[.keypoints., .ignore_mask.\]"):
        collate([labeled_example(1, 1), unlabeled])
    with pytest.raises(ValueError, match="one K per batch"):
        collate([labeled_example(1, 1, num_keypoints=17), labeled_example(1, 2, num_keypoints=14)])
    with pytest.raises(ValueError, match="expected every 'pixel_values' to have one shape"):
        collate([labeled_example(1, 1, size=8), labeled_example(1, 2, size=16)])
    with pytest.raises(ValueError, match="at least one row"):
        collate([])
    with pytest.raises(ValueError, match=r"expected keypoints \[M, K, 3\]"):
        pad_people([torch.zeros(2, 3)])


def test_fixture_through_datasets_and_dataloader(coco_fixture_dir):
    annotations = coco_fixture_dir / "test_coco.json"
    rows = read_coco_keypoints(annotations, coco_fixture_dir, show_progress=False)
    dataset = Dataset.from_list(rows, features=pose_features(17))
    generator = torch.Generator().manual_seed(0)
    transform = LabeledTransform(64, AugmentationConfig.strong(), generator=generator)
    labeled = dataset.with_transform(transform)
    unlabeled = dataset.with_transform(UnlabeledTransform(32))
    batch = next(iter(DataLoader(labeled, batch_size=4, collate_fn=PoseDataCollator())))
    assert batch["pixel_values"].shape == (4, 3, 64, 64)
    assert batch["keypoints"].shape == (4, 5, 17, 3)
    in_frame = [int(people.any(dim=(1, 2)).sum()) for people in batch["keypoints"]]
    assert all(0 < count <= len(row["keypoints"]) for count, row in zip(in_frame, rows))
    assert batch["image_ids"].tolist() == [785, 40083, 196141, 197388]
    assert batch["ignore_mask"].any(dim=(1, 2)).tolist() == [False, True, True, False]
    unlabeled_batch = next(iter(DataLoader(unlabeled, batch_size=2, collate_fn=PoseDataCollator())))
    assert unlabeled_batch["pixel_values"].shape == (2, 3, 32, 32)
    assert "keypoints" not in unlabeled_batch
