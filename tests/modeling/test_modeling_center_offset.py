"""Center + offset model: its maps, flipping offsets back, loss wiring, decoding with the config's settings."""

import pytest
import torch

from semipose.modeling import CenterOffsetConfig, CenterOffsetForPoseEstimation, CenterOffsetOutput
from semipose.modeling.codec_center_offset import encode_center_offset_targets
from semipose.modeling.modeling_center_offset import unflip_offsets
from semipose.modeling.modeling_pose_common import flip_maps
from semipose.skeletons import get_skeleton

CROWDPOSE_FLIP = list(get_skeleton("crowdpose").flip_index)


def tiny_model(**kwargs) -> CenterOffsetForPoseEstimation:
    torch.manual_seed(0)
    return CenterOffsetForPoseEstimation(CenterOffsetConfig(backbone="regnetx_002", neck_channels=16, **kwargs))


def two_people() -> torch.Tensor:
    """[1, 2, 14, 3] CrowdPose keypoints of two people side by side in a 64 x 128 image (integer pixels)."""
    steps = torch.arange(14, dtype=torch.float32)
    keypoints = torch.zeros(1, 2, 14, 3)
    for person, left in enumerate((10.0, 70.0)):
        keypoints[0, person] = torch.stack([left + 3 * steps, 6 + 4 * steps, torch.full_like(steps, 2)], dim=-1)
    return keypoints


def mirror(keypoints: torch.Tensor, width: int) -> torch.Tensor:
    """Keypoints of the horizontally flipped image: x -> W - 1 - x, left/right labels swapped."""
    mirrored = keypoints[:, :, CROWDPOSE_FLIP].clone()
    mirrored[..., 0] = width - 1 - mirrored[..., 0]
    return mirrored


def ideal_outputs(keypoints: torch.Tensor, stride: int) -> CenterOffsetOutput:
    targets = encode_center_offset_targets(keypoints, (64 // stride, 128 // stride), stride=stride, sigma=2.0)
    offsets, _ = targets.offset_maps()
    return CenterOffsetOutput(heatmaps=targets.heatmaps, center_heatmap=targets.center_heatmap, offsets=offsets)


@pytest.mark.parametrize("output_stride", [4, 2])
def test_maps_shapes(output_stride):
    outputs = tiny_model(output_stride=output_stride)(torch.randn(2, 3, 64, 128))
    size = (64 // output_stride, 128 // output_stride)
    assert outputs.heatmaps.shape == (2, 17, *size)
    assert outputs.center_heatmap.shape == (2, 1, *size)
    assert outputs.offsets.shape == (2, 34, *size)


def test_unflip_offsets_maps_mirrored_targets_onto_the_original():
    """Targets encoded from the mirrored people, flipped back, are the targets of the original people."""
    original, mirrored = ideal_outputs(two_people(), 4), ideal_outputs(mirror(two_people(), 128), 4)
    torch.testing.assert_close(unflip_offsets(mirrored.offsets, CROWDPOSE_FLIP), original.offsets)
    torch.testing.assert_close(flip_maps(mirrored.heatmaps, CROWDPOSE_FLIP), original.heatmaps)


def test_unflip_offsets_negates_dx_only():
    offsets = torch.tensor([1.0, 2.0, 3.0, 4.0]).view(1, 4, 1, 1)
    assert unflip_offsets(offsets, [1, 0]).flatten().tolist() == [-3.0, 4.0, -1.0, 2.0]


def test_loss_terms_and_ignore_mask_reach_the_codec():
    model = tiny_model(skeleton="crowdpose")
    pixel_values, keypoints = torch.randn(1, 3, 64, 128), two_people()
    outputs = model(pixel_values, keypoints=keypoints)
    assert list(outputs.keys())[:4] == ["loss", "heatmap_loss", "center_loss", "offset_loss"]
    assert outputs.offset_loss > 0
    ignored = model(pixel_values, keypoints=keypoints, ignore_mask=torch.ones(1, 64, 128, dtype=torch.bool))
    assert ignored.loss == 0


@pytest.mark.parametrize("output_stride", [4, 2])
def test_decode_recovers_both_people_from_ideal_maps(output_stride):
    model = tiny_model(skeleton="crowdpose", output_stride=output_stride)
    keypoints = two_people()
    poses = model.decode(ideal_outputs(keypoints, output_stride))
    assert poses.mask.sum() == 2
    people = poses.keypoints[0][poses.mask[0]]
    torch.testing.assert_close(people[people[:, 0, 0].argsort()], keypoints[0, :, :, :2], atol=1e-3, rtol=0)


def test_decode_uses_config_thresholds():
    model = tiny_model(skeleton="crowdpose", center_threshold=1.5)
    assert model.decode(ideal_outputs(two_people(), 4)).mask.sum() == 0
