"""Checkpoints saved with a skeleton name alone (before configs held keypoint names) load and give the same outputs."""

import json
from pathlib import Path

import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from semipose.inference import PoseEstimator
from semipose.skeletons import Skeleton, get_skeleton

LEGACY = Path(__file__).parents[1] / "fixtures" / "legacy_checkpoints"
PHOTO = Path(__file__).parents[1] / "fixtures" / "coco" / "000000000785.jpg"
SKELETONS = {"associative_embedding": "crowdpose", "center_offset": "coco"}


@pytest.mark.parametrize("family", sorted(SKELETONS))
def test_legacy_checkpoint_loads_with_its_registered_skeleton_and_the_same_outputs(family):
    folder = LEGACY / family
    expected_outputs = load_file(folder / "expected_outputs.safetensors")
    expected_people = json.loads((folder / "expected_people.json").read_text())
    estimator = PoseEstimator.from_pretrained(folder, device="cpu")
    config = estimator.model.config
    assert Skeleton.from_config(config) == get_skeleton(SKELETONS[family])
    assert config.keypoint_names == list(get_skeleton(SKELETONS[family]).keypoint_names)
    pixel_values = torch.linspace(-1, 1, 3 * 64 * 64).reshape(1, 3, 64, 64)
    with torch.no_grad():
        outputs = estimator.model(pixel_values=pixel_values, flip_test=True).to_tuple()
    assert len(outputs) == len(expected_outputs)
    for index, got in enumerate(outputs):
        torch.testing.assert_close(got, expected_outputs[f"output_{index}"], rtol=0, atol=0)
    people = estimator(Image.open(PHOTO).convert("RGB"))
    assert len(people) == len(expected_people) > 0
    for got, saved in zip(people, expected_people):
        assert (got["score"], got["keypoints"].tolist(), got["keypoint_scores"].tolist()) == (
            saved["score"], saved["keypoints"], saved["keypoint_scores"])
