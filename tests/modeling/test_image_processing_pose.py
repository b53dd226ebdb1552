"""PoseImageProcessor: resize / pad / normalize, decoding dispatch, mapping back to original pixels."""

import re

import numpy as np
import pytest
import torch
from PIL import Image

from semipose.modeling import (
    AssociativeEmbeddingConfig,
    AssociativeEmbeddingOutput,
    CenterOffsetConfig,
    CenterOffsetOutput,
    DecodedPoses,
    PoseImageProcessor,
    check_decoding_settings,
)
from semipose.modeling.codec_center_offset import decode_center_offset, encode_center_offset_targets
from semipose.modeling.input_geometry import input_canvas_size


def test_resize_keeps_aspect_ratio_and_pads_to_the_divisor():
    processor = PoseImageProcessor(size=128)
    pixel_values = processor(torch.zeros(3, 100, 300, dtype=torch.uint8), return_tensors="pt")["pixel_values"]
    assert input_canvas_size((100, 300), 128) == (43, 128)
    assert pixel_values.shape == (1, 3, 64, 128)


def test_batch_pads_to_the_largest_image_and_normalizes():
    processor = PoseImageProcessor(size={"longest_edge": 64})
    images = [Image.new("RGB", (200, 100), (255, 255, 255)), np.full((90, 30, 3), 255, dtype=np.uint8)]
    pixel_values = processor(images, return_tensors="pt")["pixel_values"]
    assert pixel_values.shape == (2, 3, 64, 64)
    white = (1 - torch.tensor(processor.image_mean)) / torch.tensor(processor.image_std)
    torch.testing.assert_close(pixel_values[0, :, :32, :64], white.view(3, 1, 1).expand(3, 32, 64))
    assert pixel_values[0, :, 32:].abs().sum() == 0 and pixel_values[1, :, :, 21:].abs().sum() == 0


def test_post_process_maps_input_pixels_to_original_pixels():
    """200 x 400 image, longest edge 100: scale 1/4 exactly, so x = (x' + 0.5) * 4 - 0.5."""
    poses = DecodedPoses(
        keypoints=torch.tensor([[[[9.5, 4.5], [0.0, 0.0]]]]),
        keypoint_scores=torch.tensor([[[0.9, 0.8]]]),
        scores=torch.tensor([[0.85]]),
        mask=torch.tensor([[True]]),
    )
    people = PoseImageProcessor(size=100).post_process_pose_estimation(poses, target_sizes=[(200, 400)])
    assert people[0]["keypoints"].tolist() == [[[39.5, 19.5], [1.5, 1.5]]]
    assert people[0]["scores"].tolist() == pytest.approx([0.85])


def test_post_process_round_trips_through_an_uneven_resize():
    """One scale for both axes (128 / 300), even though the canvas height 43 is rounded up from 42.67."""
    original = torch.tensor([[[[13.0, 77.0], [299.0, 0.0]]]])
    processor = PoseImageProcessor(size=128)
    scale = 128 / 300
    poses = DecodedPoses(
        keypoints=(original + 0.5) * scale - 0.5, keypoint_scores=torch.ones(1, 1, 2), scores=torch.ones(1, 1),
        mask=torch.ones(1, 1, dtype=torch.bool),
    )
    people = processor.post_process_pose_estimation(poses, target_sizes=torch.tensor([[100, 300]]))
    torch.testing.assert_close(people[0]["keypoints"], original[0])


def test_raw_outputs_are_decoded_by_their_family():
    keypoints = torch.zeros(1, 1, 17, 3)
    keypoints[0, 0, :, 0], keypoints[0, 0, :, 1], keypoints[0, 0, :, 2] = 20.0, torch.arange(17.0) * 3 + 8, 2
    targets = encode_center_offset_targets(keypoints, (16, 16), stride=4, sigma=2.0)
    offsets, _ = targets.offset_maps()
    center_offset = CenterOffsetOutput(
        heatmaps=targets.heatmaps, center_heatmap=targets.center_heatmap, offsets=offsets
    )
    associative = AssociativeEmbeddingOutput(heatmaps=targets.heatmaps, tags=torch.zeros_like(targets.heatmaps))
    processor = PoseImageProcessor(size=64)
    for outputs in (center_offset, associative):
        people = processor.post_process_pose_estimation(outputs)
        assert len(people[0]["scores"]) == 1
        torch.testing.assert_close(people[0]["keypoints"][0], keypoints[0, 0, :, :2], atol=1e-3, rtol=0)
    expected = decode_center_offset(targets.heatmaps, targets.center_heatmap, offsets, stride=4, max_people=1)
    assert processor.decode(center_offset, max_people=1).scores.tolist() == expected.scores.tolist()


def test_bad_outputs_and_target_sizes_raise():
    processor = PoseImageProcessor()
    with pytest.raises(ValueError, match="expected an AssociativeEmbeddingOutput .* got CenterOffsetOutput"):
        processor.post_process_pose_estimation(CenterOffsetOutput(heatmaps=torch.zeros(1, 17, 8, 8)))
    nobody = {"keypoints": torch.zeros(0, 17, 2), "keypoint_scores": torch.zeros(0, 17), "scores": torch.zeros(0)}
    poses = DecodedPoses.from_list([nobody], 17)
    with pytest.raises(ValueError, match=r"target_sizes: expected 1 \(height, width\) pairs, got 2"):
        processor.post_process_pose_estimation(poses, target_sizes=[(8, 8), (8, 8)])
    with pytest.raises(ValueError, match="size: expected an int or"):
        PoseImageProcessor(size={"height": 8, "width": 8})


def test_decoding_settings_must_match_the_model_config():
    grouping = AssociativeEmbeddingConfig(skeleton="coco")
    check_decoding_settings(PoseImageProcessor(grouping_order=grouping.grouping_order), grouping)
    index_order = re.escape(f"grouping_order={list(range(17))} but the model config has {grouping.grouping_order}")
    with pytest.raises(ValueError, match=index_order):
        check_decoding_settings(PoseImageProcessor(), grouping)  # None: index order, not COCO's
    with pytest.raises(ValueError, match=r"output_stride=4 but the model config has 2"):
        check_decoding_settings(PoseImageProcessor(), CenterOffsetConfig(output_stride=2))
    check_decoding_settings(PoseImageProcessor(grouping_order=list(range(17))[::-1]), CenterOffsetConfig())  # unused
