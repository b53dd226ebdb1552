import math

import pytest
import torch
from transformers import TrainerCallback

from semipose.modeling import MODEL_FAMILIES as FAMILIES
from semipose.modeling import AssociativeEmbeddingConfig, AssociativeEmbeddingForPoseEstimation, PoseImageProcessor
from semipose.training import SemiPoseTrainer, SemiPoseTrainingArguments
from tiny_training import make_trainer


def _logged(trainer, name):
    return [entry[name] for entry in trainer.state.log_history if name in entry]


@pytest.mark.parametrize("family", sorted(FAMILIES))
@pytest.mark.parametrize("ssl_mode", ["supervised", "consistency", "semi"])
def test_tiny_run_logs_finite_terms_for_every_mode(tiny_dataset_dir, tmp_path, family, ssl_mode):
    trainer = make_trainer(tiny_dataset_dir, tmp_path, family=family, ssl_mode=ssl_mode)
    trainer.train()
    assert trainer.state.global_step == 4
    expected = ["train/loss", "train/heatmap_loss"]
    if ssl_mode != "supervised":
        expected.append("train/consistency_loss")
    if ssl_mode == "semi":
        expected += ["train/pseudo_loss", "train/pseudo_heatmap_loss", "train/pseudo_people_per_image"]
    for name in expected:
        values = _logged(trainer, name)
        assert values and all(math.isfinite(value) for value in values), name
    assert (trainer.teacher is None) == (ssl_mode == "supervised")
    metrics = trainer.evaluate()
    assert 0.0 <= metrics["eval_AP"] <= 1.0 or metrics["eval_AP"] == -1
    if ssl_mode != "supervised":
        assert {"eval_teacher_AP", "eval_pseudo_precision", "eval_pseudo_recall"} <= set(metrics)


def test_teacher_is_built_at_burn_in_end_and_follows_the_ema(tiny_dataset_dir, tmp_path):
    trainer = make_trainer(tiny_dataset_dir, tmp_path, ssl_mode="consistency", max_steps=3, burn_in_steps=3)
    trainer.train()
    student = trainer.model.state_dict()
    teacher = trainer.teacher.state_dict()
    assert all(torch.equal(student[name], teacher[name]) for name in student)  # copied at step 3, no EMA yet


def test_resume_restores_teacher_and_step(tiny_dataset_dir, tmp_path):
    first = make_trainer(tiny_dataset_dir, tmp_path, max_steps=4, save_strategy="steps", save_steps=4)
    first.train()
    saved_teacher = {name: value.clone() for name, value in first.teacher.state_dict().items()}
    assert (tmp_path / "checkpoint-4" / "teacher" / "model.safetensors").is_file()

    second = make_trainer(tiny_dataset_dir, tmp_path, max_steps=5, save_strategy="no", seed=1)
    restored = {}
    second.add_callback(_CaptureTeacherAtStart(second, restored))
    second.train(resume_from_checkpoint=str(tmp_path / "checkpoint-4"))
    assert second.state.global_step == 5
    assert all(torch.equal(restored[name], saved_teacher[name]) for name in saved_teacher)


class _CaptureTeacherAtStart(TrainerCallback):
    def __init__(self, trainer, store):
        self.trainer, self.store = trainer, store

    def on_train_begin(self, args, state, control, **kwargs):
        self.store.update({name: value.clone() for name, value in self.trainer.teacher.state_dict().items()})


def test_trainer_refuses_a_processor_that_decodes_otherwise_than_the_model(tmp_path):
    model = AssociativeEmbeddingForPoseEstimation(
        AssociativeEmbeddingConfig(backbone="regnetx_002", neck_channels=16, skeleton="crowdpose")
    )
    args = SemiPoseTrainingArguments(output_dir=str(tmp_path), report_to="none", use_cpu=True)
    with pytest.raises(ValueError, match=r"grouping_order=\[0, 1, 2, .*\] but the model config has \[12, 13, 0, 1,"):
        SemiPoseTrainer(model=model, args=args, processing_class=PoseImageProcessor(size=64))
