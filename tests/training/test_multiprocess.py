"""The main job under DDP: two gloo processes on the CPU train, evaluate every image once, and save."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # two accelerate processes train the main job

REPO = Path(__file__).resolve().parents[2]


def test_two_process_cpu_run_trains_and_evaluates(tmp_path):
    command = [
        sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
        "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
        str(REPO / "examples" / "run_semi_pose.py"), "--use_cpu",
        "--output_dir", str(tmp_path / "run"), "--cache_dir", str(tmp_path / "cache"),
        "--synthetic_num_train", "40", "--synthetic_num_val", "9", "--dataset_config", "ratio_10",
        "--max_steps", "4", "--burn_in_steps", "2", "--per_device_train_batch_size", "2",
        "--per_device_eval_batch_size", "2", "--eval_strategy", "no", "--save_strategy", "no",
        "--report_to", "none", "--dataloader_num_workers", "0", "--neck_channels", "16",
    ]
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    finished = subprocess.run(command, capture_output=True, text=True, timeout=600, env=environment, cwd=tmp_path)
    assert finished.returncode == 0, finished.stderr[-3000:]
    summary = json.loads((tmp_path / "run" / "final_metrics.json").read_text())
    metrics = summary["metrics"]
    assert metrics["eval_num_images"] == 9  # 9 images over 2 ranks: none duplicated, none missing
    assert metrics["eval_teacher_num_images"] == 9
    assert (tmp_path / "run" / "model.safetensors").is_file()
    assert (tmp_path / "run" / "predictions.png").is_file()
