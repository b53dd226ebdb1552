"""One geometry: on the real (non-square) COCO photos, the identity training view and the image processor give
the same input pixels, and the processor's post-processing maps the training keypoints back exactly."""

import numpy as np
import PIL.Image
import pytest
import torch
from datasets import Dataset

from semipose.data.coco_format import pose_features, read_coco_keypoints
from semipose.data.transforms import AugmentationConfig, LabeledTransform, UnlabeledTransform
from semipose.modeling import PoseImageProcessor
from semipose.modeling.input_geometry import box_reduce, input_canvas_size, placement_matrix


@pytest.fixture(scope="module")
def coco_rows(coco_fixture_dir):
    rows = read_coco_keypoints(coco_fixture_dir / "test_coco.json", coco_fixture_dir, show_progress=False)
    return Dataset.from_list(rows, features=pose_features(17))


@pytest.mark.parametrize("size", [256, 200])
def test_identity_training_view_and_processor_give_the_same_pixels(coco_rows, size):
    """S = 256: the processor's input is the training canvas's top-left part, bit for bit, and the rest of the
    training canvas is padding (0). S = 200 is no multiple of 32: the processor pads past S (to 224), with 0."""
    training = coco_rows.with_transform(LabeledTransform(size, AugmentationConfig.none()))[:]["pixel_values"]
    unlabeled = coco_rows.with_transform(UnlabeledTransform(size, AugmentationConfig.none()))[:]["pixel_values"]
    processor = PoseImageProcessor(size=size)
    for row, view, weak in zip(coco_rows, training, unlabeled):
        processed = processor(row["image"], return_tensors="pt")["pixel_values"][0]
        height, width = input_canvas_size((row["height"], row["width"]), size)
        common_height, common_width = min(size, processed.shape[1]), min(size, processed.shape[2])
        assert (height, width) != (size, size)  # every fixture photo is non-square
        assert torch.equal(view[:, :common_height, :common_width], processed[:, :common_height, :common_width])
        assert torch.equal(weak, view)
        assert view[:, height:].abs().sum() == 0 and view[:, :, width:].abs().sum() == 0
        assert processed[:, height:].abs().sum() == 0 and processed[:, :, width:].abs().sum() == 0
        assert processed.shape[1] % 32 == 0 and processed.shape[2] % 32 == 0


def test_training_keypoints_map_back_to_the_annotations(coco_rows):
    processor = PoseImageProcessor(size=256)
    output = coco_rows.with_transform(LabeledTransform(256, AugmentationConfig.none()))[:]
    for row, keypoints in zip(coco_rows, output["keypoints"]):
        original = torch.tensor(row["keypoints"])
        labeled = original[..., 2] > 0
        restored = processor._to_original_pixels(keypoints[..., :2].double(), row["height"], row["width"])
        torch.testing.assert_close(restored[labeled], original[..., :2][labeled].double(), atol=1e-4, rtol=0)


def test_placement_is_top_left_with_one_scale():
    """640 x 427 into 256: scale 0.4 on both axes, pixel centers (x + 0.5) * 0.4 - 0.5, height 170.8 -> 171 rows."""
    matrix = placement_matrix((427, 640), 256)
    corners = matrix @ torch.tensor([[-0.5, 639.5], [-0.5, 426.5], [1.0, 1.0]], dtype=torch.float64)
    torch.testing.assert_close(corners[:2], torch.tensor([[-0.5, 255.5], [-0.5, 170.3]], dtype=torch.float64))
    assert input_canvas_size((427, 640), 256) == (171, 256)


@pytest.mark.parametrize("factor", [2, 3, 4, 5, 7])
def test_box_reduce_is_pils_reduce(coco_fixture_dir, factor):
    image = PIL.Image.open(coco_fixture_dir / "000000000785.jpg").convert("RGB")
    pixels = torch.from_numpy(np.array(image)).permute(2, 0, 1)
    zoom = torch.diag(torch.tensor([1 / factor, 1 / factor, 1.0], dtype=torch.float64))
    reduced, _ = box_reduce(pixels, zoom)
    box = (0, 0, image.width // factor * factor, image.height // factor * factor)
    expected = torch.from_numpy(np.array(image.reduce(factor, box))).permute(2, 0, 1)
    assert torch.equal(reduced, expected)
