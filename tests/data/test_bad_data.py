"""Bad data at training time: image files that went missing or corrupt after the dataset folder was written
(rows store paths) are skipped, counted across DataLoader workers and limited; odd but valid images (1x1,
10000x200, no people, a person entirely outside the frame) train normally; an unreadable validation image
stops evaluation with an error naming it."""

import json
import logging
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from semipose.data.collator import EvaluationCollator, PoseDataCollator
from semipose.data.dataset_folder import load_pose_dataset, prepare_dataset_folder
from semipose.data.semi_supervised import SemiSupervisedCollator, SemiSupervisedDataset
from semipose.data.transforms import AugmentationConfig, LabeledTransform, UnlabeledTransform
from semipose.data.unreadable import (
    UNREADABLE_KEY,
    SkipUnreadable,
    check_images_readable,
    decode_row_image,
    first_readable_images,
    lazy_images,
)
from semipose.modeling import CenterOffsetConfig, CenterOffsetForPoseEstimation, PoseImageProcessor
from semipose.modeling.pipeline_pose_estimation import UnreadableImageError
from semipose.training import SemiPoseTrainer, SemiPoseTrainingArguments
from semipose.training.data_health import TooManyUnreadableImagesError, UnreadableImageMonitor, num_training_images
from semipose.training.seeded_samples import SeededSamples

SIZE = 64
K = 17
MISSING, CORRUPT = 785, 196141  # real COCO fixture images, deleted / truncated after preparation
TINY, WIDE, EMPTY, OUTSIDE = 1, 2, 3, 4  # 1x1 image, 10000x200 image, no people, person outside the frame
ALL_IDS = [TINY, WIDE, EMPTY, OUTSIDE, 785, 40083, 196141, 197388]  # the validation split's row order


def _person(annotation_id: int, image_id: int, x: float, y: float) -> dict:
    """A person with all K keypoints labeled at (x, y)."""
    return {"id": annotation_id, "image_id": image_id, "category_id": 1, "iscrowd": 0,
            "keypoints": [x, y, 2] * K, "bbox": [0, 0, 1, 1], "area": 1.0}


@pytest.fixture(scope="module")
def broken_dataset(coco_fixture_dir, tmp_path_factory) -> Path:
    """The COCO fixture plus four odd images, prepared with image paths; then one file deleted, one truncated."""
    images = tmp_path_factory.mktemp("images")
    for path in coco_fixture_dir.glob("*.jpg"):
        shutil.copy(path, images / path.name)
    coco = json.loads((coco_fixture_dir / "test_coco.json").read_text())
    for image_id, size in [(TINY, (1, 1)), (WIDE, (10000, 200)), (EMPTY, (48, 32)), (OUTSIDE, (48, 32))]:
        Image.new("RGB", size, (200, 30, 90)).save(images / f"{image_id}.png")
        coco["images"].append({"id": image_id, "file_name": f"{image_id}.png", "width": size[0], "height": size[1]})
    coco["annotations"] += [_person(1, TINY, 0, 0), _person(2, WIDE, 4999.5, 99.5), _person(4, OUTSIDE, 200, -50)]
    annotations = images / "annotations.json"
    annotations.write_text(json.dumps(coco))
    folder = prepare_dataset_folder(annotations, images, annotations, images, images.parent / "dataset",
                                    ratios=(50,), show_progress=False)
    (images / f"{MISSING:012d}.jpg").unlink()
    corrupt = images / f"{CORRUPT:012d}.jpg"
    corrupt.write_bytes(corrupt.read_bytes()[:2000])
    return folder


def _split(folder: Path, split: str, config: str = "ratio_50"):
    return lazy_images(load_pose_dataset(folder, config, split, cache_dir=folder.parent / "hf_cache"))


def test_workers_serve_readable_images_and_report_the_skipped_ones_in_the_batch(broken_dataset):
    rows = _split(broken_dataset, "validation")
    assert rows["image_id"] == ALL_IDS
    dataset = SkipUnreadable(rows.with_transform(LabeledTransform(SIZE, AugmentationConfig.none(), skeleton="coco")))
    loader = DataLoader(dataset, batch_size=4, num_workers=2, collate_fn=PoseDataCollator())
    odd, real = list(loader)
    assert odd[UNREADABLE_KEY].tolist() == [] and real[UNREADABLE_KEY].tolist() == [MISSING, CORRUPT]
    assert odd["image_ids"].tolist() == [TINY, WIDE, EMPTY, OUTSIDE]
    assert real["image_ids"].tolist() == [40083, 40083, 197388, 197388]  # each bad row served by the next
    # the 1x1 image's center lands on the input center, the 10000x200 one's at x 31.5 and y 64 * 100 / 10000
    # - 0.5 (placed top-left, as the image processor does), every keypoint kept
    assert odd["keypoints"].shape == (4, 1, K, 3)
    assert torch.equal(odd["keypoints"][0], torch.tensor([31.5, 31.5, 2.0]).expand(1, K, 3))
    torch.testing.assert_close(odd["keypoints"][1], torch.tensor([31.5, 0.14, 2.0]).expand(1, K, 3))
    assert not odd["keypoints"][2:].any()  # no people (padding) / a person entirely outside: all zeros
    assert torch.isfinite(odd["pixel_values"]).all() and not odd["ignore_mask"].any()


def test_one_unreadable_image_is_named(broken_dataset):
    row = _split(broken_dataset, "validation")[ALL_IDS.index(CORRUPT)]
    expected = rf"^Image {CORRUPT}: image file .*{CORRUPT}\.jpg is not a readable image \(Truncated File Read\)\.$"
    with pytest.raises(UnreadableImageError, match=expected):
        decode_row_image(row)


def test_a_dataset_with_no_readable_image_fails_clearly(broken_dataset):
    rows = _split(broken_dataset, "validation").select([ALL_IDS.index(MISSING), ALL_IDS.index(CORRUPT)])
    dataset = SkipUnreadable(rows.with_transform(UnlabeledTransform(SIZE)))
    with pytest.raises(UnreadableImageError, match=r"None of the 2 images .* \(ids \[785, 196141\]"):
        dataset[0]


def test_logging_images_pass_over_unreadable_files(broken_dataset):
    images = first_readable_images(_split(broken_dataset, "validation").select(range(4, 8)), 2)
    assert [image.size for image in images] == [(500, 333), (640, 392)]  # 40083 and 197388


def test_evaluation_collator_places_odd_images_and_names_an_unreadable_one(broken_dataset):
    rows = _split(broken_dataset, "validation")
    collate = EvaluationCollator(PoseImageProcessor(size=SIZE, output_stride=4))
    batch = collate([rows[0], rows[1]])
    assert batch["target_sizes"].tolist() == [[1, 1], [200, 10000]]
    assert batch["pixel_values"].shape == (2, 3, SIZE, SIZE) and torch.isfinite(batch["pixel_values"]).all()
    expected = rf"^Validation split: Image {MISSING}: image file .*{MISSING:012d}\.jpg does not exist\. Evaluation "
    with pytest.raises(UnreadableImageError, match=expected):
        collate([rows[ALL_IDS.index(MISSING)]])


def _semi_trainer(folder: Path, output_dir: Path, **arguments) -> SemiPoseTrainer:
    """Semi-supervised trainer over the broken folder: 4 labeled + 4 unlabeled images, two of them unreadable."""
    torch.manual_seed(0)
    model = CenterOffsetForPoseEstimation(CenterOffsetConfig(backbone="regnetx_002", neck_channels=16, skeleton="coco"))
    labeled = _split(folder, "labeled").with_transform(LabeledTransform(SIZE, AugmentationConfig.light()))
    unlabeled = _split(folder, "unlabeled").with_transform(UnlabeledTransform(SIZE))
    fraction = arguments.pop("max_unreadable_fraction")
    args = SemiPoseTrainingArguments(
        output_dir=str(output_dir), ssl_mode="semi", max_steps=2, burn_in_steps=1, ramp_up_ratio=0.0,
        per_device_train_batch_size=2, learning_rate=1e-3, logging_steps=1, save_strategy="no", report_to="none",
        use_cpu=True, pseudo_person_threshold=0.0, pseudo_keypoint_threshold=0.0, **arguments,
    )
    return SemiPoseTrainer(
        model=model, args=args, train_dataset=SemiSupervisedDataset(SkipUnreadable(labeled), SkipUnreadable(unlabeled)),
        data_collator=SemiSupervisedCollator(PoseDataCollator(), PoseDataCollator()), max_unreadable_fraction=fraction,
    )


def test_training_skips_unreadable_images_and_logs_their_count_from_two_workers(broken_dataset, tmp_path, caplog):
    trainer = _semi_trainer(broken_dataset, tmp_path, dataloader_num_workers=2, max_unreadable_fraction=0.25)
    with caplog.at_level(logging.WARNING, logger="semipose.training.data_health"):
        trainer.train()
    assert trainer.state.global_step == 2 and trainer.unreadable_images.image_ids == {MISSING, CORRUPT}
    logged = [entry for entry in trainer.state.log_history if "train/unreadable_images" in entry]
    assert len(logged) == 2 and logged[-1]["train/unreadable_images"] == 2
    assert all(math.isfinite(entry["train/loss"]) for entry in logged)
    assert "unreadable so far (limit 2 = 0.25)" in caplog.text


def test_training_stops_when_more_than_the_allowed_fraction_is_unreadable(broken_dataset, tmp_path):
    trainer = _semi_trainer(broken_dataset, tmp_path, dataloader_num_workers=0, max_unreadable_fraction=0.2)
    expected = (r"2 of the 8 training images cannot be read \(ids \[785, 196141\]\), "
                r"more than max_unreadable_fraction=0.2 allows \(1\)")
    with pytest.raises(TooManyUnreadableImagesError, match=expected):
        trainer.train()


def test_monitor_counts_distinct_images_and_removes_the_key():
    monitor = UnreadableImageMonitor(num_images=100, max_unreadable_fraction=0.02)
    for ids in ([7], [7, 7], [], [9]):  # image 7 met again in later epochs counts once
        batch = {"pixel_values": torch.zeros(1), UNREADABLE_KEY: torch.tensor(ids, dtype=torch.int64)}
        monitor.observe(batch)
        assert UNREADABLE_KEY not in batch
    assert monitor.count == 2 and monitor.limit == 2
    with pytest.raises(TooManyUnreadableImagesError, match=r"3 of the 100 training images"):
        monitor.observe({UNREADABLE_KEY: torch.tensor([11])})
    with pytest.raises(ValueError, match=r"max_unreadable_fraction: expected a fraction in \[0, 1\], got 1.5"):
        UnreadableImageMonitor(10, 1.5)


def test_an_undecoded_row_gives_the_same_example_as_a_decoded_one(broken_dataset):
    transform = LabeledTransform(SIZE, AugmentationConfig.none(), skeleton="coco")
    lazy = _split(broken_dataset, "validation").select([ALL_IDS.index(40083)])
    decoded = load_pose_dataset(broken_dataset, "ratio_50", "validation", cache_dir=broken_dataset.parent / "hf_cache")
    decoded = decoded.select([ALL_IDS.index(40083)])
    first, second = lazy.with_transform(transform)[0], decoded.with_transform(transform)[0]
    assert all(torch.equal(first[key], second[key]) for key in ("pixel_values", "keypoints", "ignore_mask"))


def test_validation_images_are_checked_before_training(broken_dataset):
    rows = _split(broken_dataset, "validation")
    check_images_readable(rows.select([0, 1, 2, 3]), "validation")  # the odd but readable ones pass
    expected = (rf"^validation split: 2 of 8 images cannot be read; first 2: image {MISSING}: image file "
                rf".*{MISSING:012d}\.jpg does not exist\. image {CORRUPT}: image file .*{CORRUPT}\.jpg is not a "
                r"readable image \(Truncated File Read\)\.$")
    with pytest.raises(UnreadableImageError, match=expected):
        check_images_readable(rows, "validation")


def test_the_limit_counts_the_images_of_both_streams_through_wrappers():
    pairs = SemiSupervisedDataset(list(range(3)), list(range(10)), unlabeled_ratio=2)
    assert num_training_images(pairs) == 13 and num_training_images(SeededSamples(pairs, seed=0)) == 13
    assert num_training_images(list(range(4))) == 4 and num_training_images(None) == 0


def test_training_rows_convert_16_bit_and_transparent_images_as_inference_does(tmp_path):
    from semipose.data.unreadable import decode_row_image
    from semipose.modeling.pipeline_pose_estimation import open_image

    deep = tmp_path / "deep.png"
    Image.fromarray(np.array([[0, 100, 255, 1000, 30000, 65535]], dtype=np.uint16)).save(deep)
    clear = tmp_path / "clear.png"
    Image.new("RGBA", (2, 1), (10, 20, 30, 0)).save(clear)
    for path in (deep, clear):
        row = {"image": {"path": str(path), "bytes": None}, "image_id": 1}
        assert np.array_equal(np.asarray(decode_row_image(row)), np.asarray(open_image(path)))
    assert np.asarray(open_image(deep))[0, :, 0].tolist() == [0, 0, 1, 4, 117, 255]
