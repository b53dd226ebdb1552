"""Backbone + neck: timm feature levels, output grid of stride 4 / 2, local pretrained weights, bad names."""

import pytest
import timm
import torch
from safetensors.torch import save_file

from semipose.modeling.backbone import PoseBackbone, create_feature_extractor, default_out_indices

TINY = "regnetx_002"


def test_default_out_indices_skip_the_stride_2_level():
    assert default_out_indices("resnet18") == [1, 2, 3, 4]
    assert default_out_indices(TINY) == [1, 2, 3, 4]


@pytest.mark.parametrize("name", [TINY, "mobilenetv3_small_050"])
@pytest.mark.parametrize("output_stride", [4, 2])
def test_output_grid_is_input_over_stride(name, output_stride):
    backbone = PoseBackbone(name, neck_channels=16, output_stride=output_stride)
    features = backbone(torch.randn(2, 3, 64, 96))
    assert features.shape == (2, 16, 64 // output_stride, 96 // output_stride)
    assert backbone.size_divisor == 32


def test_neck_fuses_only_selected_levels():
    backbone = PoseBackbone(TINY, neck_channels=8, output_stride=4, out_indices=[2, 3])
    assert backbone.body.feature_info.reduction() == [8, 16]
    assert backbone.size_divisor == 16
    assert backbone(torch.randn(1, 3, 48, 32)).shape == (1, 8, 12, 8)


def test_local_pretrained_file_is_loaded(tmp_path):
    reference = timm.create_model(TINY)
    path = tmp_path / "weights.safetensors"
    save_file(reference.state_dict(), path)
    backbone = PoseBackbone(TINY, neck_channels=8, output_stride=4, pretrained=path)
    assert torch.equal(backbone.body.stem.conv.weight, reference.stem.conv.weight)
    assert torch.equal(backbone.body.s4.b1.conv3.conv.weight, reference.s4.b1.conv3.conv.weight)


def test_missing_weights_file_raises(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.safetensors"):
        create_feature_extractor(TINY, pretrained=tmp_path / "missing.safetensors")


def test_unknown_backbone_raises():
    with pytest.raises(ValueError, match="Unknown timm backbone 'resnet_nope'"):
        create_feature_extractor("resnet_nope")


def test_bad_output_stride_and_levels_raise():
    with pytest.raises(ValueError, match="output_stride must be one of"):
        PoseBackbone(TINY, neck_channels=8, output_stride=8)
    with pytest.raises(ValueError, match=r"stride >= 4.*strides \[2, 4\]"):
        PoseBackbone(TINY, neck_channels=8, output_stride=4, out_indices=[0, 1])
