"""A saved model folder (weights, image processor, model card) loads back without warnings and its card says
what the model is and how it was trained."""

import logging
import warnings

import pytest
import torch
from huggingface_hub import ModelCard
from transformers import AutoImageProcessor, AutoModelForPoseEstimation
from transformers.utils import logging as transformers_logging

from semipose.model_card import write_model_card
from semipose.modeling import (
    AssociativeEmbeddingConfig,
    AssociativeEmbeddingForPoseEstimation,
    CenterOffsetConfig,
    CenterOffsetForPoseEstimation,
    PoseImageProcessor,
)

FAMILIES = {
    "associative_embedding": (AssociativeEmbeddingConfig, AssociativeEmbeddingForPoseEstimation, "embedding tags"),
    "center_offset": (CenterOffsetConfig, CenterOffsetForPoseEstimation, "person-center heatmap"),
}
SUMMARY = {
    "final_model": "teacher", "dataset": "data/crowdpose_semi", "dataset_config": "ratio_10", "ssl_mode": "semi",
    "metrics": {"eval_AP": 0.41234, "eval_AP50": 0.7, "eval_teacher_AP": 0.43, "eval_step": 1200},
}


@pytest.fixture
def transformers_warnings(caplog):
    """Records of transformers' own loggers (they do not propagate to the root logger by default)."""
    transformers_logging.enable_propagation()
    try:
        with caplog.at_level(logging.WARNING):
            yield caplog
    finally:
        transformers_logging.disable_propagation()


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_saved_model_folder_loads_back_silently_with_a_complete_card(tmp_path, family, transformers_warnings):
    config_class, model_class, family_words = FAMILIES[family]
    torch.manual_seed(0)
    model = model_class(config_class(backbone="regnetx_002", neck_channels=16, skeleton="crowdpose"))
    model.save_pretrained(tmp_path)
    PoseImageProcessor(size=64, output_stride=4).save_pretrained(tmp_path)
    write_model_card(tmp_path, model.config, SUMMARY)

    transformers_warnings.clear()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loaded = AutoModelForPoseEstimation.from_pretrained(tmp_path)
        AutoImageProcessor.from_pretrained(tmp_path)
        card = ModelCard.load(tmp_path / "README.md")
    assert [str(warning.message) for warning in caught] == []
    assert [record.getMessage() for record in transformers_warnings.records if record.levelno >= logging.WARNING] == []
    assert type(loaded) is model_class
    assert all(torch.equal(value, loaded.state_dict()[name]) for name, value in model.state_dict().items())

    assert card.data.library_name == "semipose" and {"pose-estimation", model.config.model_type} <= set(card.data.tags)
    text = card.text
    assert "**Model family**: " in text and family_words in text
    assert "**Backbone**: timm `regnetx_002`, output stride 4" in text
    assert "**Skeleton**: crowdpose (14 keypoints: left_shoulder, right_shoulder," in text
    assert "**Training data**: data/crowdpose_semi, config `ratio_10`" in text and "labeled percentage" in text
    assert "**Semi-supervised mode**: semi; saved network: teacher" in text
    assert "| AP | 0.4123 | 0.4300 |" in text and "| AP50 | 0.7000 | - |" in text  # student, teacher: never a max
    assert "not chosen by these numbers" in text
    assert "## Intended use and limits" in text


@pytest.mark.parametrize(("final_model", "saved_ap"), [("teacher", 0.43), ("student", 0.41234)])
def test_card_metadata_names_the_dataset_and_indexes_the_saved_networks_ap(tmp_path, final_model, saved_ap):
    dataset = tmp_path / "machine" / "specific" / "coco_semi"
    dataset.mkdir(parents=True)
    metrics = {**SUMMARY["metrics"], "eval_APM": -1.0, "epoch": 3.0, "eval_num_images": 9, "eval_runtime": 1.5}
    summary = {**SUMMARY, "dataset": str(dataset), "final_model": final_model, "metrics": metrics}
    write_model_card(tmp_path, CenterOffsetConfig(backbone="regnetx_002", skeleton="coco"), summary)
    card = ModelCard.load(tmp_path / "README.md")

    assert (card.data.datasets, card.data.pipeline_tag) == (["coco_semi"], "keypoint-detection")
    assert str(tmp_path) not in card.content and "**Training data**: coco_semi, config `ratio_10`" in card.text
    results = {result.metric_type: result for result in card.data.eval_results}
    assert sorted(results) == ["AP"] + (["AP50"] if final_model == "student" else [])  # APM -1: undefined
    assert results["AP"].metric_value == saved_ap and results["AP"].metric_name == "OKS AP"
    assert (results["AP"].dataset_type, results["AP"].dataset_config, results["AP"].dataset_split) == (
        "coco_semi", "ratio_10", "validation")
    assert card.data.model_name == "Center Offset pose estimator (coco)"
    table = [line for line in card.text.splitlines() if line.startswith("| ")][1:]
    assert table == ["| AP | 0.4123 | 0.4300 |", "| AP50 | 0.7000 | - |", "| APM | -1.0000 | - |"]
    assert 'pipeline("pose-estimation", model="PATH_OR_HUB_ID")' in card.text
    assert 'pipeline(model="PATH_OR_HUB_ID", trust_remote_code=True)' in card.text
