"""A step whose loss is not finite moves nothing: student weights, BatchNorm statistics, optimizer state, teacher,
logged loss terms. `max_consecutive_nonfinite_steps` such steps in a row stop the run with a clear error and a
complete checkpoint of the last good state. The fault is real bad data: NaN pixels in chosen steps, which also
poison the BatchNorm statistics of that forward pass."""

import copy
import logging
import math

import pytest
import torch
from safetensors.torch import load_file
from tiny_training import assert_identical, make_trainer, training_logs
from transformers import TrainerCallback

from semipose.training import NonFiniteTrainingError
from semipose.training.checkpoints import is_complete_checkpoint


def _poison_pixels(trainer, monkeypatch, bad_steps: set[int]) -> None:
    """NaN labeled pixels in the optimizer steps `bad_steps` (1-based), as a corrupt image would give."""
    original = trainer.training_step

    def training_step(model, inputs, *args, **kwargs):
        if trainer.state.global_step + 1 in bad_steps:
            inputs["pixel_values"] = torch.full_like(inputs["pixel_values"], float("nan"))
        return original(model, inputs, *args, **kwargs)

    monkeypatch.setattr(trainer, "training_step", training_step)


class _StateAfterEachStep(TrainerCallback):
    """Copies of student (parameters and buffers), teacher and optimizer state after every optimizer step."""

    def __init__(self, trainer):
        self.trainer, self.states = trainer, {}

    def on_step_end(self, args, state, control, **kwargs):
        teacher = self.trainer.teacher
        self.states[state.global_step] = copy.deepcopy({
            "student": self.trainer.model.state_dict(),
            "teacher": teacher.state_dict() if teacher is not None else None,
            "optimizer": self.trainer.optimizer.state_dict()["state"],
        })


def _run_with_bad_steps(tiny_dataset_dir, tmp_path, monkeypatch, bad_steps, **arguments):
    trainer = make_trainer(tiny_dataset_dir, tmp_path, ssl_mode="semi", burn_in_steps=2, **arguments)
    _poison_pixels(trainer, monkeypatch, bad_steps)
    states = _StateAfterEachStep(trainer)
    trainer.add_callback(states)
    return trainer, states.states


def test_a_non_finite_step_is_skipped_with_a_warning_and_moves_nothing(tiny_dataset_dir, tmp_path, monkeypatch, caplog):
    trainer, states = _run_with_bad_steps(tiny_dataset_dir, tmp_path, monkeypatch, {3}, max_steps=4)
    with caplog.at_level(logging.WARNING, logger="semipose.training.trainer"):
        trainer.train()
    assert "Step 3: non-finite loss or gradients, step skipped" in caplog.text
    assert trainer.skipped_steps == 1
    assert_identical(states[3], states[2])  # BatchNorm statistics of the NaN forward pass were put back
    moved = [name for name, value in states[4]["student"].items() if not torch.equal(value, states[3]["student"][name])]
    assert moved  # and the next, finite step trains again
    for entry in training_logs(trainer):
        terms = {name: value for name, value in entry.items() if name.startswith("train/")}
        assert all(math.isfinite(value) for value in terms.values()), entry
    skipped = [entry["train/skipped_steps"] for entry in training_logs(trainer) if "train/skipped_steps" in entry]
    assert skipped == [0, 0, 1]


def test_consecutive_non_finite_steps_stop_with_the_last_good_state_saved(tiny_dataset_dir, tmp_path, monkeypatch):
    trainer, states = _run_with_bad_steps(
        tiny_dataset_dir, tmp_path, monkeypatch, set(range(3, 11)), max_steps=10, max_consecutive_nonfinite_steps=3
    )
    with pytest.raises(NonFiniteTrainingError, match=r"stopped at step 5: .* steps 3 to 5 .* since step 2") as error:
        trainer.train()
    checkpoint = tmp_path / "checkpoint-4"  # 4 steps done (2 of them skipped) when step 5 failed
    assert str(checkpoint) in str(error.value)
    assert is_complete_checkpoint(checkpoint)
    last_good = states[2]
    assert_identical(load_file(checkpoint / "model.safetensors"), last_good["student"])
    assert_identical(load_file(checkpoint / "teacher" / "model.safetensors"), last_good["teacher"])
    assert_identical(torch.load(checkpoint / "optimizer.pt", weights_only=True)["state"], last_good["optimizer"])
