"""Auto classes and checkpoints: save_pretrained files, identical outputs after loading through every Auto
class, a keypoint-count mismatch, and trust_remote_code loading where semipose cannot be imported."""

import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch
from transformers import AutoConfig, AutoImageProcessor, AutoModel, AutoModelForPoseEstimation

from semipose.modeling import (
    MODEL_FAMILIES,
    CenterOffsetConfig,
    CenterOffsetForPoseEstimation,
    PoseImageProcessor,
)

FAMILIES = MODEL_FAMILIES
IMAGE = torch.randint(0, 256, (3, 90, 120), dtype=torch.uint8)

# Starts a script for a fresh interpreter: semipose is made unimportable before anything else is imported.
HIDE_SEMIPOSE = textwrap.dedent(
    """
    import sys

    class HideSemipose:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] == "semipose":
                raise ModuleNotFoundError(f"No module named {name!r} (hidden by the test)")

    sys.meta_path.insert(0, HideSemipose())
    try:
        import semipose  # noqa: F401
        raise SystemExit("semipose is importable")
    except ModuleNotFoundError:
        pass
    """
)
HIDDEN_SEMIPOSE_SCRIPT = HIDE_SEMIPOSE + textwrap.dedent(
    """
    import torch
    from transformers import AutoImageProcessor, AutoModelForPoseEstimation

    image, results = torch.load(sys.argv[1]), {}
    for folder in sys.argv[3:]:
        model = AutoModelForPoseEstimation.from_pretrained(folder, trust_remote_code=True).eval()
        processor = AutoImageProcessor.from_pretrained(folder, trust_remote_code=True)
        with torch.no_grad():
            outputs = model(**processor(image, return_tensors="pt"), flip_test=True)
        people = processor.post_process_pose_estimation(model.decode(outputs), target_sizes=[image.shape[-2:]])
        results[folder] = {"module": type(model).__module__, "outputs": outputs.to_tuple(), "people": people}
    torch.save(results, sys.argv[2])
    """
)


def save_checkpoint(folder, family: str) -> tuple[torch.nn.Module, PoseImageProcessor]:
    config_class, model_class = FAMILIES[family]
    torch.manual_seed(0)
    model = model_class(config_class(backbone="regnetx_002", neck_channels=16, skeleton="crowdpose")).eval()
    processor = PoseImageProcessor(size=64, output_stride=model.config.output_stride)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return model, processor


def run(model, processor) -> tuple[torch.Tensor, ...]:
    with torch.no_grad():
        return model(**processor(IMAGE, return_tensors="pt"), flip_test=True).to_tuple()


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_save_pretrained_writes_weights_configs_and_code(tmp_path, family):
    save_checkpoint(tmp_path, family)
    files = set(os.listdir(tmp_path))
    assert {"model.safetensors", "config.json", "preprocessor_config.json", "image_processing_pose.py"} <= files
    assert {f"modeling_{family}.py", f"configuration_{family}.py", "modeling_pose_common.py", "backbone.py"} <= files
    auto_map = json.loads((tmp_path / "config.json").read_text())["auto_map"]
    assert set(auto_map) == {"AutoConfig", "AutoModel", "AutoModelForPoseEstimation"}


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_auto_classes_load_identical_models(tmp_path, family):
    model, processor = save_checkpoint(tmp_path, family)
    assert type(AutoConfig.from_pretrained(tmp_path)) is FAMILIES[family][0]
    loaded_processor = AutoImageProcessor.from_pretrained(tmp_path)
    assert type(loaded_processor) is PoseImageProcessor and loaded_processor.to_dict() == processor.to_dict()
    expected = run(model, processor)
    for auto_class in (AutoModel, AutoModelForPoseEstimation):
        loaded = auto_class.from_pretrained(tmp_path).eval()
        assert type(loaded) is FAMILIES[family][1]
        assert all(torch.equal(a, b) for a, b in zip(run(loaded, loaded_processor), expected, strict=True))


def test_checkpoint_with_another_keypoint_count_raises(tmp_path):
    save_checkpoint(tmp_path, "center_offset")
    coco = CenterOffsetConfig(backbone="regnetx_002", neck_channels=16, skeleton="coco")
    with pytest.raises(ValueError, match="has num_keypoints=14, the config expects 17"):
        CenterOffsetForPoseEstimation.from_pretrained(tmp_path, config=coco)
    with pytest.raises(ValueError, match="Skeleton 'coco' has 17 keypoints, got num_keypoints=14"):
        CenterOffsetForPoseEstimation.from_pretrained(tmp_path, skeleton="coco")


@pytest.mark.slow  # a fresh interpreter without semipose loads the checkpoint
def test_trust_remote_code_loads_without_semipose(tmp_path):
    folders = {family: tmp_path / family for family in sorted(FAMILIES)}
    expected = {family: run(*save_checkpoint(folder, family)) for family, folder in folders.items()}
    torch.save(IMAGE, tmp_path / "image.pt")
    environment = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf_home"), "PYTHONPATH": ""}
    arguments = [tmp_path / "image.pt", tmp_path / "results.pt", *folders.values()]
    process = subprocess.run(
        [sys.executable, "-c", HIDDEN_SEMIPOSE_SCRIPT, *arguments],
        cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=300,
    )
    assert process.returncode == 0, process.stderr[-3000:]
    results = torch.load(tmp_path / "results.pt")
    for family, folder in folders.items():
        result = results[str(folder)]
        assert result["module"].startswith("transformers_modules.")
        assert all(torch.equal(a, b) for a, b in zip(result["outputs"], expected[family], strict=True))
        assert result["people"][0]["keypoints"].shape[1:] == (14, 2)
