import math

import pytest
import torch
from transformers import TrainerCallback

from semipose.data.collator import PoseDataCollator
from semipose.data.dataset_folder import load_pose_dataset
from semipose.data.semi_supervised import SemiSupervisedCollator, SemiSupervisedDataset
from semipose.data.transforms import AugmentationConfig, LabeledTransform, UnlabeledTransform
from semipose.modeling import MODEL_FAMILIES as FAMILIES
from semipose.modeling import PoseImageProcessor
from semipose.training import SemiPoseTrainer, SemiPoseTrainingArguments

INPUT_SIZE = 64


def make_trainer(dataset_dir, output_dir, *, family="center_offset", ssl_mode="semi", seed=0, **arguments):
    config_class, model_class = FAMILIES[family]
    torch.manual_seed(seed)
    model = model_class(config_class(backbone="regnetx_002", neck_channels=16, skeleton="crowdpose"))
    labeled = load_pose_dataset(dataset_dir, "ratio_10", "labeled", cache_dir=output_dir / "hf_cache")
    labeled = labeled.with_transform(LabeledTransform(INPUT_SIZE, AugmentationConfig.light(), skeleton="crowdpose"))
    train_dataset, collator = labeled, PoseDataCollator()
    if ssl_mode != "supervised":
        unlabeled = load_pose_dataset(dataset_dir, "ratio_10", "unlabeled", cache_dir=output_dir / "hf_cache")
        train_dataset = SemiSupervisedDataset(labeled, unlabeled.with_transform(UnlabeledTransform(INPUT_SIZE)))
        collator = SemiSupervisedCollator(PoseDataCollator(), PoseDataCollator())
    defaults = dict(
        output_dir=str(output_dir), ssl_mode=ssl_mode, max_steps=4, burn_in_steps=2, ramp_up_ratio=0.0,
        per_device_train_batch_size=2, per_device_eval_batch_size=4, learning_rate=1e-3, logging_steps=1,
        save_strategy="no", report_to="none", seed=seed, use_cpu=True, dataloader_num_workers=0,
        pseudo_person_threshold=0.0, pseudo_keypoint_threshold=0.0,
    )
    args = SemiPoseTrainingArguments(**{**defaults, **arguments})
    return SemiPoseTrainer(
        model=model, args=args, train_dataset=train_dataset, data_collator=collator,
        eval_dataset=load_pose_dataset(dataset_dir, "ratio_10", "validation", cache_dir=output_dir / "hf_cache"),
        processing_class=PoseImageProcessor(size=INPUT_SIZE, output_stride=4, grouping_order=model.config.grouping_order),
    )


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


def test_non_finite_loss_skips_the_step_and_moves_nothing(tiny_dataset_dir, tmp_path, monkeypatch):
    trainer = make_trainer(tiny_dataset_dir, tmp_path, ssl_mode="supervised", max_steps=1)
    before = {name: value.detach().clone() for name, value in trainer.model.named_parameters()}
    original = trainer.compute_loss
    monkeypatch.setattr(trainer, "compute_loss", lambda *a, **k: original(*a, **k) * float("nan"))
    trainer.train()
    assert trainer.skipped_steps == 1
    after = dict(trainer.model.named_parameters())
    assert all(torch.equal(before[name], after[name]) for name in before)  # BN statistics may move


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
