"""TensorBoard image panels: student predictions at every evaluation, teacher pseudo labels once there is a teacher."""

import numpy as np
import pytest
import torch
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import IMAGES, EventAccumulator

from semipose.modeling import CenterOffsetConfig, CenterOffsetForPoseEstimation, PoseImageProcessor
from semipose.training import SemiPoseTrainer, SemiPoseTrainingArguments
from semipose.training.ema import build_teacher
from semipose.training.image_logging import STUDENT_TAG, TEACHER_TAG, ImageLoggingCallback


def _images(count: int, seed: int) -> list[Image.Image]:
    rng = np.random.default_rng(seed)
    return [Image.fromarray(rng.integers(0, 256, (64, 48, 3), dtype=np.uint8)) for _ in range(count)]


@pytest.fixture
def trainer(tmp_path):
    torch.manual_seed(0)
    model = CenterOffsetForPoseEstimation(CenterOffsetConfig(backbone="regnetx_002", neck_channels=16, skeleton="coco"))
    args = SemiPoseTrainingArguments(output_dir=str(tmp_path), report_to="none", use_cpu=True)
    return SemiPoseTrainer(model=model, args=args, processing_class=PoseImageProcessor(size=64, output_stride=4))


def test_each_evaluation_writes_student_panels_and_teacher_panels_once_the_teacher_exists(trainer, tmp_path):
    callback = ImageLoggingCallback(trainer, _images(3, seed=0), _images(2, seed=1), columns=2, min_size=128)
    trainer.add_callback(callback)
    trainer.callback_handler.on_evaluate(trainer.args, trainer.state, trainer.control, metrics={})  # burn-in
    trainer.teacher = build_teacher(trainer.model)
    trainer.state.global_step = 5
    trainer.callback_handler.on_evaluate(trainer.args, trainer.state, trainer.control, metrics={})
    callback.on_train_end(trainer.args, trainer.state, trainer.control)

    log_dir = tmp_path / "runs" / "images"  # no TensorBoard callback (report_to="none"): the fallback folder
    assert len(list(log_dir.glob("events.out.tfevents.*"))) == 1
    events = EventAccumulator(str(log_dir), size_guidance={IMAGES: 0}).Reload()
    assert sorted(events.Tags()["images"]) == sorted([STUDENT_TAG, TEACHER_TAG])
    student, teacher = events.Images(STUDENT_TAG), events.Images(TEACHER_TAG)
    assert [event.step for event in student] == [0, 5] and [event.step for event in teacher] == [5]
    # 48x64 images enlarged x2 to 96x128, two per row with 2 pixels between them
    assert (student[0].width, student[0].height) == (2 * 96 + 2, 128)
    assert (teacher[0].width, teacher[0].height) == (2 * 96 + 2, 2 * 128 + 2)


def test_panels_go_to_the_tensorboard_callbacks_run_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("TENSORBOARD_LOGGING_DIR", str(tmp_path / "scalars_run"))
    model = CenterOffsetForPoseEstimation(CenterOffsetConfig(backbone="regnetx_002", neck_channels=16, skeleton="coco"))
    args = SemiPoseTrainingArguments(output_dir=str(tmp_path), report_to="tensorboard", use_cpu=True)
    trainer = SemiPoseTrainer(model=model, args=args, processing_class=PoseImageProcessor(size=64, output_stride=4))
    callback = ImageLoggingCallback(trainer, [], _images(1, seed=2))
    callback.on_evaluate(trainer.args, trainer.state, trainer.control)
    callback.on_train_end(trainer.args, trainer.state, trainer.control)
    events = EventAccumulator(str(tmp_path / "scalars_run"), size_guidance={IMAGES: 0}).Reload()
    assert events.Tags()["images"] == [STUDENT_TAG]


def test_needs_images_to_draw(trainer):
    with pytest.raises(ValueError, match="needs unlabeled or validation images"):
        ImageLoggingCallback(trainer, [], [])
