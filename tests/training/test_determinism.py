"""Same seed, same machine, same results: the dataset folder's splits, the first 20 training losses and the
validation metrics are reproduced exactly, not within a tolerance. On one CPU thread every kernel reduces in
a fixed order, and the augmentation of each item is seeded by (seed, epoch, index) (`SeededSamples`), so
the second run is bit-identical even when it loads its data in a worker process."""

import json
import runpy
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import torch
from safetensors.torch import load_file
from tiny_training import assert_identical, make_trainer, training_logs

from semipose.data.synthetic import SyntheticConfig, prepare_synthetic_dataset

pytestmark = pytest.mark.slow  # every test here runs a job twice

MAIN_JOB = Path(__file__).resolve().parents[2] / "examples" / "run_semi_pose.py"
SMALL_SYNTHETIC = SyntheticConfig(
    image_size=64, people=(1, 2), height_range=(0.5, 0.95), clutter=0.3, skeleton="crowdpose",
    num_train=20, num_val=4, seed=5,
)


def _dataset_contents(folder: Path) -> dict:
    """Every file of the dataset folder and its `-source` sibling, with the folders' own location taken out."""
    contents = {}
    for root in (folder, Path(f"{folder}-source")):
        for path in sorted(root.rglob("*")):
            name = str(path.relative_to(folder.parent))
            if path.suffix == ".parquet":  # the `image` column holds absolute paths; `file_name` names the image
                contents[name] = pq.read_table(path).drop_columns(["image"]).to_pylist()
            elif path.suffix in (".json", ".md"):
                contents[name] = path.read_text().replace(str(folder.parent), "<root>")
            elif path.is_file():
                contents[name] = path.read_bytes()
    return contents


def test_dataset_preparation_is_reproducible(tmp_path):
    first = prepare_synthetic_dataset(tmp_path / "a" / "data", SMALL_SYNTHETIC, ratios=(10,), show_progress=False)
    second = prepare_synthetic_dataset(tmp_path / "b" / "data", SMALL_SYNTHETIC, ratios=(10,), show_progress=False)
    first_contents, second_contents = _dataset_contents(first), _dataset_contents(second)
    assert any(name.endswith(".png") for name in first_contents) and any("labeled" in name for name in first_contents)
    assert_identical(second_contents, first_contents)


def _train_and_evaluate(dataset_dir, output_dir, **arguments) -> dict:
    trainer = make_trainer(dataset_dir, output_dir, ssl_mode="semi", max_steps=20, burn_in_steps=10, **arguments)
    trainer.train()
    for network in (trainer.model, trainer.teacher):
        network.config.center_threshold = 0.0  # decode every candidate: 20 steps find no confident person yet
    metrics = trainer.evaluate()  # near 0 this early; the predictions it scored carry the evidence
    predictions = json.loads((output_dir / "predictions_step20.json").read_text())
    return {"logs": training_logs(trainer), "metrics": metrics, "predictions": predictions}


def test_same_seed_gives_the_same_losses_and_metrics(tiny_dataset_dir, tmp_path):
    first = _train_and_evaluate(tiny_dataset_dir, tmp_path / "first")
    second = _train_and_evaluate(tiny_dataset_dir, tmp_path / "second", dataloader_num_workers=1)
    assert [entry["step"] for entry in first["logs"]] == list(range(1, 21))
    assert "train/pseudo_loss" in first["logs"][-1]  # the semi-supervised terms are covered too
    assert len(first["predictions"]) >= 8  # people with keypoints and scores on every validation image
    assert_identical(second, first)
    different_seed = _train_and_evaluate(tiny_dataset_dir, tmp_path / "third", seed=1)
    assert different_seed["logs"][0]["loss"] != first["logs"][0]["loss"]  # the comparison can fail


def test_main_job_builds_the_same_network_from_the_same_seed(tmp_path, monkeypatch):
    """The main job seeds before it builds the model (the Trainer seeds only later, in its constructor)."""
    main_job = runpy.run_path(str(MAIN_JOB))["main"]  # the script users run, loaded as a file
    weights = []
    for run in ("first", "second"):
        monkeypatch.setattr(sys, "argv", [
            "run_semi_pose.py", "--output_dir", str(tmp_path / run), "--cache_dir", str(tmp_path / "cache"),
            "--synthetic_num_train", "20", "--synthetic_num_val", "4", "--dataset_config", "ratio_10",
            "--ssl_mode", "supervised", "--max_steps", "1", "--per_device_train_batch_size", "2",
            "--eval_strategy", "no", "--save_strategy", "no", "--report_to", "none",
            "--dataloader_num_workers", "0", "--neck_channels", "16", "--seed", "3",
        ])
        main_job()
        weights.append(load_file(tmp_path / run / "model.safetensors"))
    assert weights[0].keys() == weights[1].keys()
    for name, tensor in weights[0].items():
        assert torch.equal(tensor, weights[1][name]), name
