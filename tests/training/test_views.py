import dataclasses
import math

import numpy as np
import PIL.Image
import pytest
import torch
from transformers import HfArgumentParser

from semipose.data import transforms
from semipose.data.pixel_augmentation import cutout, joint_cutout_centers, photometric_jitter
from semipose.data.transforms import AugmentationConfig, LabeledTransform, UnlabeledTransform, View, view_matrix
from semipose.training import SemiPoseTrainingArguments, views
from semipose.training.views import (
    StrongView,
    sample_strong_affine,
    transform_keypoints_by_theta,
    warp_by_theta,
    warped_frame_mask,
)

SIZE = 64
STRIDE = 4


def _gaussian_heatmap(x: float, y: float, size: int, sigma: float = 1.5) -> torch.Tensor:
    """A heatmap of `size` pixels whose peak sits at input pixel (x, y) for stride 4."""
    u, v = (x + 0.5) / STRIDE - 0.5, (y + 0.5) / STRIDE - 0.5
    ys, xs = torch.meshgrid(torch.arange(size).float(), torch.arange(size).float(), indexing="ij")
    return torch.exp(-((xs - u) ** 2 + (ys - v) ** 2) / (2 * sigma**2))


def _peak(heatmap: torch.Tensor) -> tuple[float, float]:
    """Sub-pixel peak of a Gaussian lying well inside the frame: its centroid."""
    ys, xs = torch.meshgrid(torch.arange(heatmap.shape[0]).float(), torch.arange(heatmap.shape[1]).float(),
                            indexing="ij")
    weight = heatmap
    return float((weight * xs).sum() / weight.sum()), float((weight * ys).sum() / weight.sum())


def test_identity_theta_changes_nothing():
    images = torch.rand(2, 3, SIZE, SIZE)
    theta = torch.eye(3).expand(2, 3, 3)
    torch.testing.assert_close(warp_by_theta(images, theta), images)
    keypoints = torch.tensor([[[[10.0, 20.0, 2.0]]]]).expand(2, 1, 1, 3)
    torch.testing.assert_close(transform_keypoints_by_theta(keypoints, theta, (SIZE, SIZE)), keypoints)


def test_pure_shift_moves_pixels_exactly():
    image = torch.zeros(1, 1, SIZE, SIZE)
    image[0, 0, 30, 20] = 1.0
    augmentation = AugmentationConfig(max_rotation=0, scale_range=(1, 1), max_translation=0)
    theta = sample_strong_affine(1, (SIZE, SIZE), augmentation)
    theta[:, 0, 2] += 2 * 5 / SIZE  # five pixels right, in normalized units
    warped = warp_by_theta(image, theta)
    assert warped[0, 0, 30, 25] == pytest.approx(1.0, abs=1e-4)
    moved = transform_keypoints_by_theta(torch.tensor([[[[20.0, 30.0, 2.0]]]]), theta, (SIZE, SIZE))
    assert moved[0, 0, 0, :2].tolist() == pytest.approx([25.0, 30.0], abs=1e-4)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_warped_heatmap_peak_lands_where_theta_moves_the_keypoint(seed):
    torch.manual_seed(seed)
    augmentation = AugmentationConfig(max_rotation=45, scale_range=(0.8, 1.2), max_translation=0.05)
    theta = sample_strong_affine(1, (SIZE, SIZE), augmentation)
    x, y = 30.0, 33.0  # near the center, so the warped Gaussian stays inside the frame
    heatmap = _gaussian_heatmap(x, y, SIZE // STRIDE, sigma=1.5)[None, None]
    warped = warp_by_theta(heatmap, theta)[0, 0]
    moved = transform_keypoints_by_theta(torch.tensor([[[[x, y, 2.0]]]]), theta, (SIZE, SIZE))[0, 0, 0]
    peak_u, peak_v = _peak(warped)
    expected_u, expected_v = (moved[0] + 0.5) / STRIDE - 0.5, (moved[1] + 0.5) / STRIDE - 0.5
    assert math.hypot(peak_u - expected_u, peak_v - expected_v) < 0.05  # heatmap pixels


def test_keypoints_leaving_the_frame_become_invisible():
    augmentation = AugmentationConfig(max_rotation=0, scale_range=(1, 1), max_translation=0)
    theta = sample_strong_affine(1, (SIZE, SIZE), augmentation)
    theta[:, 0, 2] += 2 * 10 / SIZE
    keypoints = torch.tensor([[[[60.0, 5.0, 2.0], [5.0, 5.0, 1.0]]]])
    moved = transform_keypoints_by_theta(keypoints, theta, (SIZE, SIZE))
    assert moved[0, 0, :, 2].tolist() == [0.0, 1.0]


def test_frame_mask_marks_pixels_from_inside_the_weak_image():
    augmentation = AugmentationConfig(max_rotation=0, scale_range=(0.5, 0.5), max_translation=0)
    theta = sample_strong_affine(1, (SIZE, SIZE), augmentation)
    mask = warped_frame_mask(theta, (SIZE, SIZE))[0]
    assert mask[SIZE // 2, SIZE // 2] and not mask[0, 0]
    assert mask.float().mean().item() == pytest.approx(0.25, abs=0.02)


def test_photometric_jitter_keeps_shape_and_zero_strength_is_identity():
    images = torch.randn(3, 3, 16, 16)
    assert photometric_jitter(images, 0.0) is images
    jittered = photometric_jitter(images, 0.4)
    assert jittered.shape == images.shape and torch.isfinite(jittered).all()


def test_cutout_fills_squares_around_centers_and_ignores_nan():
    images = torch.ones(2, 3, 16, 16)
    centers = torch.tensor([[[8.0, 8.0]], [[float("nan"), float("nan")]]])
    out = cutout(images, centers, side=4)
    assert out[0, :, 6:10, 6:10].abs().sum() == 0
    assert out[0].sum() == 3 * (256 - 16)
    assert torch.equal(out[1], images[1])


def test_joint_cutout_centers_only_on_visible_keypoints():
    keypoints = torch.tensor([[[[3.0, 4.0, 2.0], [5.0, 6.0, 0.0]]]])
    centers = joint_cutout_centers(keypoints, probability=1.0)
    assert centers[0, 0].tolist() == [3.0, 4.0]
    assert torch.isnan(centers[0, 1]).all()


@pytest.mark.parametrize("seed", [0, 1])
def test_pseudo_keypoints_land_on_the_pixels_their_dots_move_to(seed):
    """A dot marking a keypoint in the weak view and the keypoint moved by theta meet in the strong view."""
    torch.manual_seed(seed)
    weak = torch.zeros(1, 1, SIZE, SIZE)
    ys, xs = torch.meshgrid(torch.arange(SIZE).float(), torch.arange(SIZE).float(), indexing="ij")
    x, y = 27.0, 36.0
    weak[0, 0] = torch.exp(-((xs - x) ** 2 + (ys - y) ** 2) / (2 * 2.0**2))
    augmentation = AugmentationConfig(max_rotation=60, scale_range=(0.8, 1.2), max_translation=0.1)
    theta = sample_strong_affine(1, (SIZE, SIZE), augmentation)
    strong = warp_by_theta(weak, theta)[0, 0]
    moved = transform_keypoints_by_theta(torch.tensor([[[[x, y, 2.0]]]]), theta, (SIZE, SIZE))[0, 0, 0]
    assert math.hypot(*(torch.tensor(_peak(strong)) - moved[:2]).tolist()) < 0.1


def test_cutout_equals_the_per_pixel_definition_on_random_squares():
    """The difference-array painting hides exactly the pixels whose centers fall in a square."""
    torch.manual_seed(0)
    for _ in range(50):
        height, width = (int(v) for v in torch.randint(5, 40, (2,)))
        side = int(torch.randint(1, 12, ()))
        centers = torch.rand(3, 7, 2) * torch.tensor([width + 10.0, height + 10.0]) - 5
        centers[torch.rand(3, 7) < 0.3] = float("nan")
        ys, xs = torch.arange(height).view(1, 1, height, 1), torch.arange(width).view(1, 1, 1, width)
        cx, cy, half = centers[..., 0, None, None], centers[..., 1, None, None], side / 2
        covered = ((xs - cx >= -half) & (xs - cx < half) & (ys - cy >= -half) & (ys - cy < half)).any(1, True)
        images = torch.ones(3, 2, height, width)
        assert torch.equal(cutout(images, centers, side), images.masked_fill(covered, 0.0))


def test_labeled_and_unlabeled_strong_views_are_one_augmentation(monkeypatch):
    """Same image, same random draws -> same pixels through `LabeledTransform` and through `StrongView`.

    Geometry is drawn differently on the two sides (a pixel view matrix, a normalized theta), so both are
    pinned to the identity without drawing; the pixel stage then takes the same draws from torch's RNG.
    """
    augmentation = dataclasses.replace(AugmentationConfig.strong(), flip_probability=0.0,
                                       joint_cutout_probability=0.5)
    pixels = np.random.default_rng(0).integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
    keypoints = np.zeros((1, 17, 3), np.float32)
    keypoints[0, :, 0], keypoints[0, :, 1], keypoints[0, :, 2] = np.linspace(6.3, 57.3, 17), 30.7, 2.0
    row = {"image": [PIL.Image.fromarray(pixels)], "image_id": [1], "width": [SIZE], "height": [SIZE],
           "keypoints": [keypoints.tolist()], "ignore_rles": [[]]}
    weak = UnlabeledTransform(SIZE, AugmentationConfig.none())(row)["pixel_values"][0][None]
    monkeypatch.setattr(transforms, "sample_view", lambda config, image_size, size, generator: View(
        view_matrix(image_size, size), flipped=False))
    monkeypatch.setattr(views, "sample_strong_affine", lambda batch, size, config, device: torch.eye(3)[None])

    torch.manual_seed(0)
    labeled = LabeledTransform(SIZE, augmentation, skeleton="coco")(row)["pixel_values"][0]
    torch.manual_seed(0)
    strong = StrongView(augmentation)(weak, torch.zeros(1, 17, SIZE // STRIDE, SIZE // STRIDE),
                                      torch.from_numpy(keypoints)[None])
    torch.testing.assert_close(strong.pixel_values[0], labeled, rtol=0, atol=1e-4)  # theta = I resamples at 1e-5
    hidden = (labeled == 0).all(dim=0)
    assert hidden.sum() >= (SIZE // 4) ** 2  # the cutout square, and some joint squares
    assert not torch.allclose(labeled[:, ~hidden], weak[0][:, ~hidden], atol=1e-2)  # colors jittered
    torch.manual_seed(1)
    assert not torch.allclose(StrongView(augmentation)(weak, strong.teacher_heatmaps).pixel_values[0], labeled)


def test_strong_view_moves_teacher_heatmaps_pseudo_people_and_frame_by_one_theta():
    torch.manual_seed(0)
    augmentation = AugmentationConfig(max_rotation=30, scale_range=(0.8, 1.2), max_translation=0.1,
                                      flip_probability=0.0)
    weak, heatmaps = torch.rand(2, 3, SIZE, SIZE), torch.rand(2, 4, SIZE // STRIDE, SIZE // STRIDE)
    people = torch.tensor([[[20.0, 30.0, 2.0]]]).expand(2, 1, 1, 3)
    strong = StrongView(augmentation)(weak, heatmaps, people)
    torch.testing.assert_close(strong.teacher_heatmaps, warp_by_theta(heatmaps, strong.theta))
    torch.testing.assert_close(strong.pixel_values, warp_by_theta(weak, strong.theta))  # no jitter, no cutout
    torch.testing.assert_close(strong.keypoints, transform_keypoints_by_theta(people, strong.theta, (SIZE, SIZE)))
    assert torch.equal(strong.frame_mask, warped_frame_mask(strong.theta, (SIZE // STRIDE, SIZE // STRIDE)))
    assert not torch.allclose(strong.theta[0], strong.theta[1])  # one theta per image
    with pytest.raises(ValueError, match="expected flip_probability 0 .* got 0.5"):
        StrongView(AugmentationConfig.strong())


def test_strong_view_arguments_default_to_the_labeled_strong_view_and_parse_from_the_command_line(tmp_path):
    parser = HfArgumentParser(SemiPoseTrainingArguments)
    (args,) = parser.parse_args_into_dataclasses(["--output_dir", str(tmp_path), "--strong_max_rotation", "15"])
    expected = dataclasses.replace(AugmentationConfig.strong(), max_rotation=15.0, flip_probability=0.0)
    assert args.strong_augmentation == expected
    (args,) = parser.parse_args_into_dataclasses(["--output_dir", str(tmp_path)])
    assert dataclasses.replace(args.strong_augmentation, flip_probability=0.5) == AugmentationConfig.strong()
    expected_error = r"strong_\* / joint_cutout_\* arguments: .*color_jitter: expected in \[0, 1\), got 1.5"
    with pytest.raises(ValueError, match=expected_error):
        SemiPoseTrainingArguments(output_dir=str(tmp_path), strong_color_jitter=1.5)
