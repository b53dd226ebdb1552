"""Associative-embedding model: its maps, its loss wiring, decoding with the config's settings."""

import pytest
import torch

from semipose.modeling import (
    AssociativeEmbeddingConfig,
    AssociativeEmbeddingForPoseEstimation,
    AssociativeEmbeddingOutput,
)
from semipose.modeling.codec_associative_embedding import encode_associative_embedding_targets


def tiny_model(**kwargs) -> AssociativeEmbeddingForPoseEstimation:
    torch.manual_seed(0)
    config = AssociativeEmbeddingConfig(backbone="regnetx_002", neck_channels=16, **kwargs)
    return AssociativeEmbeddingForPoseEstimation(config)


def two_people() -> torch.Tensor:
    """[1, 2, 14, 3] CrowdPose keypoints: one person in the left half of a 64 x 128 image, one in the right."""
    steps = torch.arange(14, dtype=torch.float32)
    keypoints = torch.zeros(1, 2, 14, 3)
    for person, left in enumerate((8.0, 72.0)):
        keypoints[0, person] = torch.stack([left + 3 * steps, 6 + 4 * steps, torch.full_like(steps, 2)], dim=-1)
    return keypoints


def ideal_outputs(keypoints: torch.Tensor, stride: int, height: int = 64, width: int = 128):
    """Target heatmaps; tags 0 on the left half and 3 on the right (the person's id, spaced beyond tag_threshold)."""
    size = (height // stride, width // stride)
    heatmaps = encode_associative_embedding_targets(keypoints, size, stride=stride, sigma=2.0).heatmaps
    tags = torch.zeros_like(heatmaps)
    tags[..., size[1] // 2 :] = 3.0
    return AssociativeEmbeddingOutput(heatmaps=heatmaps, tags=tags)


@pytest.mark.parametrize("output_stride", [4, 2])
def test_maps_have_k_heatmaps_and_k_tags(output_stride):
    outputs = tiny_model(output_stride=output_stride)(torch.randn(2, 3, 64, 128))
    size = (64 // output_stride, 128 // output_stride)
    assert outputs.heatmaps.shape == outputs.tags.shape == (2, 17, *size)
    assert list(outputs.keys()) == ["heatmaps", "tags"]


def test_loss_terms_and_ignore_mask_reach_the_codec():
    model = tiny_model(skeleton="crowdpose")
    pixel_values, keypoints = torch.randn(1, 3, 64, 128), two_people()
    outputs = model(pixel_values, keypoints=keypoints)
    assert list(outputs.keys())[:4] == ["loss", "heatmap_loss", "tag_pull_loss", "tag_push_loss"]
    ignore_everything = torch.ones(1, 64, 128, dtype=torch.bool)
    assert model(pixel_values, keypoints=keypoints, ignore_mask=ignore_everything).heatmap_loss == 0


@pytest.mark.parametrize("output_stride", [4, 2])
def test_decode_recovers_both_people_from_ideal_maps(output_stride):
    model = tiny_model(skeleton="crowdpose", output_stride=output_stride)
    keypoints = two_people()
    poses = model.decode(ideal_outputs(keypoints, output_stride))
    assert poses.mask.tolist() == [[True, True]]
    decoded = poses.keypoints[0][poses.keypoints[0, :, 0, 0].argsort()]
    torch.testing.assert_close(decoded, keypoints[0, :, :, :2], atol=1e-3, rtol=0)


def test_decode_uses_config_thresholds():
    model = tiny_model(skeleton="crowdpose", detection_threshold=1.5)
    assert model.decode(ideal_outputs(two_people(), 4)).mask.sum() == 0
