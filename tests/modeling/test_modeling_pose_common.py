"""Behaviour both families share (modeling_pose_common): forward, loss sum, gradients, slicing, flip test,
weight init, input validation. Run once per family."""

import pytest
import timm
import torch
from safetensors.torch import save_file

from semipose.modeling import (
    MODEL_FAMILIES,
    select_images,
)
from semipose.modeling.modeling_pose_common import PredictionConv, flip_maps

FAMILIES = MODEL_FAMILIES


@pytest.fixture(params=sorted(FAMILIES))
def family(request):
    return FAMILIES[request.param]


def tiny_model(family, **kwargs):
    config_class, model_class = family
    torch.manual_seed(0)
    return model_class(config_class(backbone="regnetx_002", neck_channels=16, **kwargs))


def two_people(batch: int = 2) -> torch.Tensor:
    """[batch, 3, 17, 3]: two labeled people in a 64 x 96 image, plus one padded row."""
    keypoints = torch.zeros(batch, 3, 17, 3)
    steps = torch.arange(17, dtype=torch.float32)
    keypoints[:, 0, :, 0], keypoints[:, 0, :, 1] = 5 + steps, 4 + 5 * steps
    keypoints[:, 1, :, 0], keypoints[:, 1, :, 1] = 50 + steps, 4 + 5 * steps
    keypoints[:, :2, :, 2] = 2
    return keypoints


def test_forward_without_keypoints_returns_only_maps(family):
    model = tiny_model(family)
    outputs = model(torch.randn(2, 3, 96, 64))
    assert outputs.loss is None
    assert outputs.heatmaps.shape == (2, 17, 24, 16)
    assert len(model(torch.randn(2, 3, 96, 64), return_dict=False)) == len(outputs)


def test_loss_is_the_weighted_sum_of_finite_positive_terms(family):
    model = tiny_model(family)
    outputs = model(torch.randn(2, 3, 96, 64), keypoints=two_people())
    terms = {name: getattr(outputs, name) for name in model.loss_weights()}
    assert all(torch.isfinite(value) and value > 0 for value in [outputs.loss, outputs.heatmap_loss])
    expected = sum(model.loss_weights()[name] * value for name, value in terms.items())
    torch.testing.assert_close(outputs.loss, expected)


def test_gradients_reach_backbone_and_neck(family):
    model = tiny_model(family)
    model(torch.randn(2, 3, 96, 64), keypoints=two_people()).loss.backward()
    assert model.backbone.body.stem.conv.weight.grad.abs().sum() > 0
    assert model.backbone.neck.laterals[0].weight.grad.abs().sum() > 0


def test_compute_loss_on_a_slice_matches_a_forward_on_those_images(family):
    model = tiny_model(family).eval()
    pixel_values, keypoints = torch.randn(3, 3, 96, 64), two_people(3)
    outputs = model(pixel_values)
    sliced = model.compute_loss(select_images(outputs, slice(1, 3)), keypoints[1:])
    direct = model(pixel_values[1:], keypoints=keypoints[1:])
    torch.testing.assert_close(sliced["loss"], direct.loss)


def test_flip_test_outputs_mirror_with_the_input(family):
    """Flip-test output U(f(x)) averaging makes the model exactly flip-equivariant: out(mirror x) = U(out(x))."""
    model = tiny_model(family).eval()
    pixel_values = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        outputs = model(pixel_values, flip_test=True)
        mirrored = model(pixel_values.flip(-1), flip_test=True)
    expected = model.unflip({name: mirrored[name] for name in outputs.keys()})
    for name in outputs.keys():
        torch.testing.assert_close(outputs[name], expected[name], atol=1e-5, rtol=1e-4)


def test_flip_maps_mirrors_and_swaps_channels():
    maps = torch.arange(2 * 3, dtype=torch.float32).view(1, 2, 1, 3)
    assert flip_maps(maps, [1, 0]).tolist() == [[[[5.0, 4.0, 3.0]], [[2.0, 1.0, 0.0]]]]


def test_init_keeps_timm_weights_and_uses_small_prediction_convs(family, tmp_path):
    reference = timm.create_model("regnetx_002")
    save_file(reference.state_dict(), tmp_path / "regnetx_002.safetensors")
    config_class, model_class = family
    config = config_class(backbone="regnetx_002", neck_channels=64, initializer_range=0.001)
    model = model_class(config, pretrained_backbone=str(tmp_path / "regnetx_002.safetensors"))
    assert torch.equal(model.backbone.body.stem.conv.weight, reference.stem.conv.weight)
    for conv in (module for module in model.modules() if isinstance(module, PredictionConv)):
        assert 0.0005 < conv.weight.std() < 0.002 and not conv.bias.any()


@pytest.mark.parametrize(
    ("shape", "message"),
    [
        ((3, 64, 64), r"expected shape \[B, 3, H, W\], got \[3, 64, 64\]"),
        ((1, 1, 64, 64), r"expected shape \[B, 3, H, W\], got \[1, 1, 64, 64\]"),
        ((1, 3, 64, 80), "expected H and W multiples of 32 .* got H=64, W=80"),
    ],
)
def test_bad_pixel_values_raise(family, shape, message):
    with pytest.raises(ValueError, match=message):
        tiny_model(family)(torch.zeros(shape))


def test_keypoints_with_another_keypoint_count_raise(family):
    with pytest.raises(ValueError, match=r"keypoints: expected shape \[1, M, 17, 3\], got \[1, 2, 14, 3\]"):
        tiny_model(family)(torch.zeros(1, 3, 64, 64), keypoints=torch.zeros(1, 2, 14, 3))
