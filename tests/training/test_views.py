import math

import pytest
import torch

from semipose.data.transforms import cutout, joint_cutout_centers
from semipose.training.views import (
    StrongAugmentation,
    photometric_jitter,
    sample_strong_affine,
    transform_keypoints,
    warp_images,
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
    torch.testing.assert_close(warp_images(images, theta), images)
    keypoints = torch.tensor([[[[10.0, 20.0, 2.0]]]]).expand(2, 1, 1, 3)
    torch.testing.assert_close(transform_keypoints(keypoints, theta, (SIZE, SIZE)), keypoints)


def test_pure_shift_moves_pixels_exactly():
    image = torch.zeros(1, 1, SIZE, SIZE)
    image[0, 0, 30, 20] = 1.0
    augmentation = StrongAugmentation(max_rotation=0, scale_range=(1, 1), max_translation=0)
    theta = sample_strong_affine(1, (SIZE, SIZE), augmentation)
    theta[:, 0, 2] += 2 * 5 / SIZE  # five pixels right, in normalized units
    warped = warp_images(image, theta)
    assert warped[0, 0, 30, 25] == pytest.approx(1.0, abs=1e-4)
    moved = transform_keypoints(torch.tensor([[[[20.0, 30.0, 2.0]]]]), theta, (SIZE, SIZE))
    assert moved[0, 0, 0, :2].tolist() == pytest.approx([25.0, 30.0], abs=1e-4)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_warped_heatmap_peak_lands_where_theta_moves_the_keypoint(seed):
    torch.manual_seed(seed)
    augmentation = StrongAugmentation(max_rotation=45, scale_range=(0.8, 1.2), max_translation=0.05)
    theta = sample_strong_affine(1, (SIZE, SIZE), augmentation)
    x, y = 30.0, 33.0  # near the center, so the warped Gaussian stays inside the frame
    heatmap = _gaussian_heatmap(x, y, SIZE // STRIDE, sigma=1.5)[None, None]
    warped = warp_images(heatmap, theta)[0, 0]
    moved = transform_keypoints(torch.tensor([[[[x, y, 2.0]]]]), theta, (SIZE, SIZE))[0, 0, 0]
    peak_u, peak_v = _peak(warped)
    expected_u, expected_v = (moved[0] + 0.5) / STRIDE - 0.5, (moved[1] + 0.5) / STRIDE - 0.5
    assert math.hypot(peak_u - expected_u, peak_v - expected_v) < 0.05  # heatmap pixels


def test_keypoints_leaving_the_frame_become_invisible():
    augmentation = StrongAugmentation(max_rotation=0, scale_range=(1, 1), max_translation=0)
    theta = sample_strong_affine(1, (SIZE, SIZE), augmentation)
    theta[:, 0, 2] += 2 * 10 / SIZE
    keypoints = torch.tensor([[[[60.0, 5.0, 2.0], [5.0, 5.0, 1.0]]]])
    moved = transform_keypoints(keypoints, theta, (SIZE, SIZE))
    assert moved[0, 0, :, 2].tolist() == [0.0, 1.0]


def test_frame_mask_marks_pixels_from_inside_the_weak_image():
    augmentation = StrongAugmentation(max_rotation=0, scale_range=(0.5, 0.5), max_translation=0)
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
    theta = sample_strong_affine(1, (SIZE, SIZE), StrongAugmentation(max_rotation=60, scale_range=(0.8, 1.2)))
    strong = warp_images(weak, theta)[0, 0]
    moved = transform_keypoints(torch.tensor([[[[x, y, 2.0]]]]), theta, (SIZE, SIZE))[0, 0, 0]
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
