"""SIGKILL a tiny semi-supervised run while it writes a checkpoint and while it steps; resuming must pick the
newest complete checkpoint and end bit-identical to an uninterrupted run (student, teacher, optimizer,
scheduler, RNG, logged losses: same data position).

Each killed run is a real child process: this file run as a script trains until its kill point.
"""

import io
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from tiny_training import assert_identical, make_trainer, training_logs

from semipose.training.checkpoints import COMPLETE_MARKER, is_complete_checkpoint, latest_complete_checkpoint

pytestmark = pytest.mark.slow  # killed child processes and their resumed runs

# Checkpoints at steps 2, 4, 6 and only one kept: rotating before the newest is complete would leave none.
RUN = dict(ssl_mode="semi", max_steps=6, burn_in_steps=2, save_strategy="steps", save_steps=2, save_total_limit=1)


def _kill_self() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _install_kill_point(trainer, kill_point: str) -> None:
    """`torn-optimizer@N`: half of checkpoint-N/optimizer.pt written; `unmarked@N`: every file of checkpoint-N but
    its completion marker; `step@N`: inside the forward of optimizer step N."""
    name, step = kill_point.split("@")
    step = int(step)
    if name == "torn-optimizer":
        original_save = torch.save

        def torn_save(obj, path, *args, **kwargs):
            if str(path).endswith(os.path.join(f"checkpoint-{step}", "optimizer.pt")):
                buffer = io.BytesIO()
                original_save(obj, buffer)
                Path(path).write_bytes(buffer.getvalue()[: buffer.tell() // 2])
                _kill_self()
            return original_save(obj, path, *args, **kwargs)

        torch.save = torn_save
    elif name == "unmarked":
        import semipose.training.trainer as trainer_module

        original_mark = trainer_module.mark_checkpoint_complete

        def kill_before_marking(folder, record):
            if record["global_step"] == step:
                _kill_self()
            original_mark(folder, record)

        trainer_module.mark_checkpoint_complete = kill_before_marking
    elif name == "step":
        original_loss = trainer.compute_loss

        def kill_in_step(*args, **kwargs):
            if trainer.state.global_step == step - 1:
                _kill_self()
            return original_loss(*args, **kwargs)

        trainer.compute_loss = kill_in_step
    else:
        raise ValueError(f"Unknown kill point {kill_point!r}.")


def _train_until_killed(dataset_dir: str, output_dir: str, kill_point: str) -> None:
    """The child: resume like the main job would (newest complete checkpoint, if any) and train into the kill."""
    trainer = make_trainer(Path(dataset_dir), Path(output_dir), **RUN)
    _install_kill_point(trainer, kill_point)
    trainer.train(resume_from_checkpoint=True if latest_complete_checkpoint(output_dir) else None)
    sys.exit(f"Kill point {kill_point} was never reached.")


def _run_killed_child(dataset_dir, output_dir, kill_point: str) -> None:
    command = [sys.executable, __file__, str(dataset_dir), str(output_dir), kill_point]
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    finished = subprocess.run(command, capture_output=True, text=True, timeout=300, env=environment)
    assert finished.returncode == -signal.SIGKILL, (
        f"{kill_point}: exit {finished.returncode}\n{finished.stderr[-3000:]}"
    )


def _final_state(trainer) -> dict:
    """Everything a resumed run must reproduce, as tensors and numbers."""
    return {
        "student": trainer.model.state_dict(),
        "teacher": trainer.teacher.state_dict(),
        "optimizer": trainer.optimizer.state_dict()["state"],
        "scheduler": trainer.lr_scheduler.state_dict(),
        "rng": torch.get_rng_state(),
        "logs": training_logs(trainer),
    }


def test_killed_runs_resume_from_the_newest_complete_checkpoint_and_match_an_uninterrupted_run(
    tiny_dataset_dir, tmp_path
):
    run_dir = tmp_path / "run"
    _run_killed_child(tiny_dataset_dir, run_dir, "torn-optimizer@4")
    assert not is_complete_checkpoint(run_dir / "checkpoint-4")
    assert latest_complete_checkpoint(run_dir) == str(run_dir / "checkpoint-2")

    _run_killed_child(tiny_dataset_dir, run_dir, "unmarked@4")  # resumed from 2: the torn optimizer.pt was never read
    assert (run_dir / "checkpoint-4" / "teacher" / "model.safetensors").is_file()
    assert not (run_dir / "checkpoint-4" / COMPLETE_MARKER).exists()
    assert latest_complete_checkpoint(run_dir) == str(run_dir / "checkpoint-2")  # not rotated away

    _run_killed_child(tiny_dataset_dir, run_dir, "step@5")
    assert latest_complete_checkpoint(run_dir) == str(run_dir / "checkpoint-4")
    assert not (run_dir / "checkpoint-2").exists()  # rotated once checkpoint-4 was complete

    resumed = make_trainer(tiny_dataset_dir, run_dir, **RUN)
    resumed.train(resume_from_checkpoint=True)
    reference = make_trainer(tiny_dataset_dir, tmp_path / "reference", **RUN)
    reference.train()
    assert [entry["step"] for entry in _final_state(resumed)["logs"]] == [1, 2, 3, 4, 5, 6]
    assert_identical(_final_state(resumed), _final_state(reference))


if __name__ == "__main__":
    _train_until_killed(*sys.argv[1:])
