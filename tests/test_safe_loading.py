"""Nothing from a checkpoint or a dataset is unpickled: the source uses no unsafe loader, models are saved and
loaded as safetensors, and the pickled files a transformers checkpoint holds (rng_state.pth, optimizer.pt,
scheduler.pt) are read with `weights_only=True`, which refuses a payload instead of running it."""

import ast
import os
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForPoseEstimation

from semipose.inference import PoseEstimator, load_checkpoint
from semipose.modeling import CenterOffsetConfig, CenterOffsetForPoseEstimation, PoseImageProcessor
from semipose.training import SemiPoseTrainer, SemiPoseTrainingArguments

REPO = Path(__file__).resolve().parents[1]
SOURCE_FOLDERS = ("semipose", "examples", "datasets_scripts", "benchmarks")
PICKLE_MODULES = {"pickle", "_pickle", "cPickle", "dill", "cloudpickle", "joblib", "marshal", "shelve"}
UNSAFE_KEYWORDS = {  # keyword=value pairs that turn a loader unsafe
    ("weights_only", False), ("allow_pickle", True), ("trust_remote_code", True), ("use_safetensors", False),
    ("safe_serialization", False),
}


def _unsafe_uses(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, what) for each unsafe import, call or keyword in a module's syntax tree."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else [alias.name for alias in node.names]
            found += [(node.lineno, f"import {name}") for name in names if name.split(".")[0] in PICKLE_MODULES]
        if not isinstance(node, ast.Call):
            continue
        keywords = {keyword.arg: getattr(keyword.value, "value", None) for keyword in node.keywords}
        found += [(node.lineno, f"{name}={value}") for name, value in keywords.items()
                  if (name, value) in UNSAFE_KEYWORDS]
        callee = ast.unparse(node.func)
        if callee == "torch.load" and keywords.get("weights_only") is not True:
            found.append((node.lineno, "torch.load without weights_only=True"))
        if callee.endswith("read_pickle"):
            found.append((node.lineno, callee))
    return found


def test_source_never_unpickles():
    files = [path for folder in SOURCE_FOLDERS for path in sorted((REPO / folder).rglob("*.py"))]
    assert len(files) > 30  # the scan sees the package
    unsafe = [f"{path.relative_to(REPO)}:{line}: {what}" for path in files
              for line, what in _unsafe_uses(ast.parse(path.read_text(), filename=str(path)))]
    assert unsafe == []


def test_the_scan_catches_each_unsafe_form():
    source = """
import pickle
from dill import loads
torch.load(path)
torch.load(path, weights_only=False)
numpy.load(path, allow_pickle=True)
AutoModel.from_pretrained(name, trust_remote_code=True)
pandas.read_pickle(path)
torch.load(path, weights_only=True)
"""
    assert [line for line, _ in _unsafe_uses(ast.parse(source))] == [2, 3, 4, 5, 5, 6, 7, 8]


class _Payload:
    """Unpickling this runs `os.mkdir(marker)`: the proof that a loader executed a pickle."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return os.mkdir, (self.marker,)


def _poison(path: Path, marker: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state": _Payload(marker)}, path)
    return path


def _tiny_model() -> CenterOffsetForPoseEstimation:
    return CenterOffsetForPoseEstimation(CenterOffsetConfig(backbone="regnetx_002", neck_channels=16, skeleton="coco"))


def test_the_payload_runs_when_loaded_unsafely(tmp_path):
    """Control: the poisoned files below are live, so refusing them is what keeps the marker absent."""
    marker = tmp_path / "executed"
    torch.load(_poison(tmp_path / "rng_state.pth", marker), weights_only=False)
    assert marker.is_dir()


def test_models_are_saved_and_loaded_as_safetensors_only(tmp_path):
    _tiny_model().save_pretrained(tmp_path)
    PoseImageProcessor(size=64).save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").is_file() and not list(tmp_path.glob("*.bin"))
    assert type(load_checkpoint(tmp_path)[0]).__name__ == "CenterOffsetForPoseEstimation"
    (tmp_path / "model.safetensors").unlink()
    marker = tmp_path / "executed"
    _poison(tmp_path / "pytorch_model.bin", marker)
    with pytest.raises(ValueError, match="pytorch_model.bin is a pickle and is not loaded"):
        PoseEstimator.from_pretrained(tmp_path, device="cpu")
    with pytest.raises(Exception, match="Weights only load failed"):  # transformers itself: weights_only=True
        AutoModelForPoseEstimation.from_pretrained(tmp_path)
    assert not marker.exists()


def test_resuming_refuses_pickled_payloads_in_the_checkpoint(tmp_path):
    args = SemiPoseTrainingArguments(output_dir=str(tmp_path / "run"), use_cpu=True, report_to="none", max_steps=2)
    trainer = SemiPoseTrainer(model=_tiny_model(), args=args, skeleton="coco")
    trainer.create_optimizer_and_scheduler(num_training_steps=2)
    checkpoint, marker = tmp_path / "checkpoint-1", tmp_path / "executed"
    for name in ("rng_state.pth", "optimizer.pt", "scheduler.pt"):
        _poison(checkpoint / name, marker)
    with pytest.raises(Exception, match="Weights only load failed"):
        trainer._load_rng_state(str(checkpoint))
    with pytest.raises(Exception, match="Weights only load failed"):
        trainer._load_optimizer_and_scheduler(str(checkpoint))
    assert not marker.exists()
