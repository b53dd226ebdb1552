import json
import logging
import math

import pytest
import torch
from tiny_training import make_trainer
from transformers import TrainerCallback

from semipose.cli import build_parser
from semipose.cli import main as semipose_cli
from semipose.data.dataset_folder import load_pose_dataset
from semipose.data.unreadable import UNREADABLE_KEY
from semipose.inference import PoseEstimator
from semipose.modeling import MODEL_FAMILIES as FAMILIES
from semipose.modeling import (
    AssociativeEmbeddingConfig,
    AssociativeEmbeddingForPoseEstimation,
    PoseImageProcessor,
    to_coco_results,
)
from semipose.training import SemiPoseTrainer, SemiPoseTrainingArguments
from semipose.training.ema import build_teacher

NUM_VALIDATION_IMAGES = 8  # tests/training/conftest.py: TINY_SYNTHETIC.num_val


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
    assert metrics["eval_num_images"] == NUM_VALIDATION_IMAGES  # every validation image scored, once
    if ssl_mode != "supervised":
        assert {"eval_teacher_AP", "eval_pseudo_precision", "eval_pseudo_recall"} <= set(metrics)
        assert metrics["eval_teacher_num_images"] == NUM_VALIDATION_IMAGES


def _ground_truth_estimates(trainer, shift_x: float = 0.0):
    """What a perfect network would find: every validation person at its labeled keypoints, score 1
    (optionally shifted by `shift_x` pixels), as `SemiPoseTrainer._pose_estimates` returns them."""
    image_ids, estimates = [], []
    for row in trainer.eval_dataset.remove_columns("image"):
        keypoints = torch.tensor(row["keypoints"], dtype=torch.float32)
        keypoints = keypoints.reshape(-1, trainer.model.config.num_keypoints, 3)
        image_ids.append(row["image_id"])
        estimates.append({"keypoints": keypoints[..., :2] + torch.tensor([shift_x, 0.0]),
                          "keypoint_scores": (keypoints[..., 2] > 0).float(), "scores": torch.ones(keypoints.shape[0])})
    return image_ids, estimates


def test_evaluation_scores_perfect_people_at_ap_one_and_displaced_people_lower(tiny_dataset_dir, tmp_path, monkeypatch):
    trainer = make_trainer(tiny_dataset_dir, tmp_path, ssl_mode="semi")
    trainer.teacher = build_teacher(trainer.model)
    monkeypatch.setattr(trainer, "_pose_estimates", lambda model, dataset: _ground_truth_estimates(trainer))
    metrics = trainer.evaluate()
    assert metrics["eval_AP"] == metrics["eval_teacher_AP"] == 1.0
    assert metrics["eval_pseudo_precision"] == metrics["eval_pseudo_recall"] == 1.0

    monkeypatch.setattr(trainer, "_pose_estimates", lambda model, dataset: _ground_truth_estimates(trainer, 4.0))
    assert trainer.evaluate()["eval_AP"] < 1.0  # 4 px off on 64 px images


def test_semi_with_both_unsupervised_weights_at_zero_is_exactly_the_supervised_loss(tiny_dataset_dir, tmp_path):
    trainer = make_trainer(tiny_dataset_dir, tmp_path, ssl_mode="semi", burn_in_steps=0,
                           consistency_weight=0.0, pseudo_label_weight=0.0)
    trainer.teacher = build_teacher(trainer.model)
    trainer.teacher.config.center_threshold = 0.0  # a random-init teacher finds people only if every candidate counts
    batch = trainer.data_collator([trainer.train_dataset[index] for index in range(2)])
    batch.pop(UNREADABLE_KEY)
    student = trainer.model.eval()  # BatchNorm on running statistics: a labeled image's outputs ignore its batch mates
    supervised = student.compute_loss(
        student(pixel_values=batch["pixel_values"]), batch["keypoints"], batch["ignore_mask"]
    )

    semi = trainer.compute_loss(student, batch)
    terms = trainer._step_terms[-1]
    assert terms["unsupervised_weight_factor"] == 1.0  # past burn-in, no ramp: the unsupervised terms are on
    assert terms["consistency_loss"] > 0 and terms["pseudo_loss"] > 0 and terms["pseudo_people_per_image"] > 0
    assert torch.equal(semi, supervised["loss"])
    trainer.args.consistency_weight = 1.0
    assert not torch.equal(trainer.compute_loss(student, batch), supervised["loss"])  # the comparison can fail


def test_teacher_is_built_at_burn_in_end_and_follows_the_ema(tiny_dataset_dir, tmp_path):
    trainer = make_trainer(tiny_dataset_dir, tmp_path, ssl_mode="consistency", max_steps=3, burn_in_steps=3)
    trainer.train()
    student = trainer.model.state_dict()
    teacher = trainer.teacher.state_dict()
    assert all(torch.equal(student[name], teacher[name]) for name in student)  # copied at step 3, no EMA yet


def test_after_burn_in_each_step_moves_the_teacher_by_the_ema(tiny_dataset_dir, tmp_path):
    """teacher_n = d * teacher_(n-1) + (1 - d) * student_n for parameters and float buffers (BatchNorm statistics);
    integer buffers (num_batches_tracked) are the student's."""
    trainer = make_trainer(tiny_dataset_dir, tmp_path, ssl_mode="consistency", max_steps=5, burn_in_steps=3,
                           ema_decay=0.9)
    states = {}
    trainer.add_callback(_CaptureStatesAtStepEnd(trainer, states))  # after the teacher's callback: sees the update
    trainer.train()
    assert sorted(states) == [1, 2, 3, 4, 5] and states[2][1] is None
    student, teacher = states[3]
    assert all(torch.equal(student[name], teacher[name]) for name in student)  # born at step 3
    for step in (4, 5):
        student, teacher = states[step]
        previous_teacher = states[step - 1][1]
        for name, value in teacher.items():
            if value.is_floating_point():
                expected = 0.9 * previous_teacher[name] + 0.1 * student[name]
                torch.testing.assert_close(value, expected, rtol=1e-6, atol=1e-7, msg=f"step {step}: {name}")
            else:
                assert torch.equal(value, student[name]), f"step {step}: {name}"
        assert not torch.equal(teacher["backbone.body.stem.conv.weight"], student["backbone.body.stem.conv.weight"])


class _CaptureStatesAtStepEnd(TrainerCallback):
    def __init__(self, trainer, store):
        self.trainer, self.store = trainer, store

    def on_step_end(self, args, state, control, **kwargs):
        clone = lambda module: {name: value.clone() for name, value in module.state_dict().items()}  # noqa: E731
        teacher = None if self.trainer.teacher is None else clone(self.trainer.teacher)
        self.store[state.global_step] = (clone(self.trainer.model), teacher)


@pytest.mark.slow  # trains, saves, and trains again from the checkpoint
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


def test_latest_starts_fresh_then_saves_quietly_and_predictions_rotate(
    tiny_dataset_dir, tmp_path, capfd, caplog
):
    trainer = make_trainer(tiny_dataset_dir, tmp_path, max_steps=4, eval_strategy="steps", eval_steps=1,
                           save_strategy="steps", save_steps=2, save_total_limit=1)
    with pytest.raises(ValueError, match="resume_from_checkpoint=True: no complete checkpoint in"):
        trainer.resolve_checkpoint(True)  # True insists, as transformers does
    with caplog.at_level(logging.INFO, logger="semipose.training.trainer"):
        trainer.train(resume_from_checkpoint="latest")
    assert f"resume_from_checkpoint='latest': no complete checkpoint in {tmp_path} yet, starting fresh." in [
        record.getMessage() for record in caplog.records]
    assert trainer.state.global_step == 4
    assert "Writing model shards" not in capfd.readouterr().err  # transformers' bar, once per checkpoint
    assert [path.name for path in tmp_path.glob("checkpoint-*")] == ["checkpoint-4"]
    assert [path.name for path in tmp_path.glob("predictions_step*.json")] == ["predictions_step4.json"]
    assert trainer.resolve_checkpoint("latest") == str(tmp_path / "checkpoint-4")


def test_the_final_evaluation_reuses_the_training_loops_last_one(tiny_dataset_dir, tmp_path, monkeypatch):
    trainer = make_trainer(tiny_dataset_dir, tmp_path, ssl_mode="semi", eval_strategy="steps", eval_steps=4)
    calls = []
    evaluate_networks = trainer._evaluate_networks
    monkeypatch.setattr(trainer, "_evaluate_networks", lambda *args: calls.append(1) or evaluate_networks(*args))
    trainer.train()  # evaluates at step 4, its last
    in_training = [entry for entry in trainer.state.log_history if "eval_AP" in entry]
    final = trainer.evaluate()
    assert len(calls) == 1 and final == {key: in_training[0][key] for key in final}
    trainer.teacher = build_teacher(trainer.model)  # another teacher: evaluated afresh
    trainer.evaluate()
    assert len(calls) == 2


def test_a_run_reports_what_semipose_evaluate_scores_on_the_networks_it_saved(tiny_dataset_dir, tmp_path):
    """The main job's numerics in training (channels_last, bf16 autocast, one torch thread, its own evaluation batch
    size); `semipose evaluate --model` on the student and on the teacher of the checkpoint (`checkpoint-N/teacher`
    holds the image processor too; fresh fp32 contiguous networks, two threads, the CLI's batch size) finds the
    same people, to the bit, and the same metrics."""
    trainer = make_trainer(tiny_dataset_dir, tmp_path, max_steps=2, burn_in_steps=1, channels_last=True, bf16=True,
                           torch_threads="1", per_device_eval_batch_size=3, eval_strategy="steps", eval_steps=2,
                           save_strategy="steps", save_steps=2)
    with torch.no_grad():
        trainer.model.heatmap_head[-1].bias += 0.5  # centers above threshold: the barely trained nets find people
    trainer.train()
    reported = [entry for entry in trainer.state.log_history if "eval_AP" in entry][-1]
    saved = {"eval_": tmp_path / "checkpoint-2", "eval_teacher_": tmp_path / "checkpoint-2" / "teacher"}
    split = ["--dataset", str(tiny_dataset_dir), "--config", "ratio_10", "--cache-dir", str(tmp_path / "hf_cache"),
             "--device", "cpu"]
    evaluate = build_parser().parse_args(["evaluate", "--model", str(saved["eval_"]), *split])
    rows = load_pose_dataset(tiny_dataset_dir, "ratio_10", "validation", cache_dir=tmp_path / "hf_cache")
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        for prefix, folder in saved.items():
            output = tmp_path / f"{folder.name}.json"
            assert semipose_cli(["evaluate", "--model", str(folder), *split, "--output", str(output)]) == 0
            metrics = json.loads(output.read_text())["metrics"]
            assert metrics == {name: reported[prefix + name] for name in metrics}, folder
        estimator = PoseEstimator.from_pretrained(saved["eval_"], device="cpu", batch_size=evaluate.batch_size)
        people = to_coco_results(estimator.predict([image.convert("RGB") for image in rows["image"]]), rows["image_id"])
    finally:
        torch.set_num_threads(threads)
    assert (threads, evaluate.batch_size) == (1, 8)  # training's thread count and batch size were not the CLI's
    assert people == json.loads((tmp_path / "predictions_step2.json").read_text()) and len(people) > 0
