"""Hand-computed checks of the shared codec pieces: coordinates, Gaussians, masks, peaks, refinement."""

import itertools
import math

import pytest
import torch

from semipose.modeling.codec_common import (
    DecodedPoses,
    downsample_ignore_mask,
    gather_at,
    heatmap_nms,
    heatmap_to_input,
    input_to_heatmap,
    labeled_heatmap_keypoints,
    max_filter,
    refine_peaks,
    render_gaussian_heatmaps,
    sample_heatmaps,
    topk_peaks,
)


def one_keypoint(x: float, y: float, v: float = 2.0) -> torch.Tensor:
    return torch.tensor([[[[x, y, v]]]])


def test_coordinate_mapping_uses_pixel_centers_and_round_trips():
    x = torch.tensor([-0.5, 1.5, 9.5, 10.0])
    assert input_to_heatmap(x, 4).tolist() == [-0.5, 0.0, 2.0, 2.125]
    assert heatmap_to_input(input_to_heatmap(x, 4), 4).tolist() == x.tolist()
    assert heatmap_to_input(torch.tensor([0.0, 1.0]), 2).tolist() == [0.5, 2.5]


def test_labeled_keypoints_are_those_with_visibility_inside_the_frame():
    keypoints = torch.tensor([[[[-0.5, 0.0, 2.0], [15.5, 0.0, 1.0], [15.4, 3.0, 1.0], [4.0, 4.0, 0.0]]]])
    coords, valid = labeled_heatmap_keypoints(keypoints, (4, 4), stride=4)
    assert valid.tolist() == [[[True, False, True, False]]]
    assert coords[0, 0, 0].tolist() == [-0.5, -0.375]
    assert coords[0, 0, 1].tolist() == [0.0, 0.0]


def test_gaussian_matches_closed_form_with_unit_peak():
    heatmaps = render_gaussian_heatmaps(one_keypoint(9.5, 5.5), (4, 4), stride=4, sigma=1.0)
    ys, xs = torch.meshgrid(torch.arange(4.0), torch.arange(4.0), indexing="ij")
    expected = torch.exp(-((xs - 2) ** 2 + (ys - 1) ** 2) / 2)
    assert heatmaps.shape == (1, 1, 4, 4)
    assert heatmaps[0, 0, 1, 2].item() == 1.0
    torch.testing.assert_close(heatmaps[0, 0], expected)


def test_gaussian_at_sub_pixel_position_and_cut_off_outside_three_sigma():
    heatmaps = render_gaussian_heatmaps(one_keypoint(2.25, 3.0), (8, 10), stride=1, sigma=1.0)
    row = heatmaps[0, 0, 3]
    assert row[2].item() == pytest.approx(math.exp(-(0.25**2) / 2))
    assert row[5].item() == pytest.approx(math.exp(-(2.75**2) / 2))
    assert row[6].item() == 0.0  # 4 pixels from the nearest pixel (2): outside the radius-3 window
    assert heatmaps[0, 0, 7].max().item() == 0.0


def test_gaussians_of_people_are_maxed_not_summed_and_keypoints_go_to_their_channel():
    keypoints = torch.tensor([[[[2.0, 2.0, 2.0], [0, 0, 0]], [[4.0, 2.0, 1.0], [6.0, 6.0, 2.0]]]])
    heatmaps = render_gaussian_heatmaps(keypoints, (8, 8), stride=1, sigma=1.0)
    assert heatmaps[0, 0, 2, 3].item() == pytest.approx(math.exp(-0.5))
    assert heatmaps[0, 0, 2, 2].item() == 1.0 and heatmaps[0, 0, 2, 4].item() == 1.0
    assert heatmaps[0, 1, 6, 6].item() == 1.0 and heatmaps[0, 1].sum() < heatmaps[0, 0].sum()


def test_unlabeled_and_out_of_frame_keypoints_are_not_rendered():
    keypoints = torch.tensor([[[[3.0, 3.0, 0.0]], [[-0.6, 3.0, 2.0]], [[3.0, 7.5, 2.0]]]])
    assert render_gaussian_heatmaps(keypoints, (8, 8), stride=1, sigma=2.0).abs().sum() == 0


def test_ignore_mask_is_pooled_per_stride_block_at_half_coverage():
    mask = torch.zeros(1, 8, 8, dtype=torch.bool)
    mask[0, :4, :4] = True  # full block (0, 0)
    mask[0, 4:6, 4:8] = True  # half of block (1, 1)
    mask[0, 0, 4:8] = True
    mask[0, 1, 4:7] = True  # 7 of 16 pixels of block (0, 1)
    assert downsample_ignore_mask(mask, (2, 2), stride=4).tolist() == [[[True, False], [False, True]]]
    assert downsample_ignore_mask(None, (2, 2), stride=4) is None


def test_ignore_mask_of_unpadded_input_and_bad_shape():
    mask = torch.ones(1, 7, 5, dtype=torch.bool)  # 8 x 8 input minus padding: the last block is 5/16 covered
    assert downsample_ignore_mask(mask, (2, 2), stride=4).tolist() == [[[True, False], [True, False]]]
    with pytest.raises(ValueError, match="ignore_mask"):
        downsample_ignore_mask(torch.ones(1, 12, 8, dtype=torch.bool), (2, 2), stride=4)


def test_heatmap_nms_keeps_local_maxima_and_one_of_tied_neighbours():
    heatmaps = torch.tensor(
        [[[[0.1, 0.9, 0.2, 0.0], [0.3, 0.5, 0.0, 0.0], [0.0, 0.0, 0.0, 0.7], [0.0, 0.4, 0.0, 0.7]]]]
    )
    expected = torch.tensor(
        [[[[0.0, 0.9, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0], [0.0, 0.4, 0.0, 0.7]]]]
    )
    torch.testing.assert_close(heatmap_nms(heatmaps, 3), expected)
    with pytest.raises(ValueError, match="odd"):
        heatmap_nms(heatmaps, 4)


@pytest.mark.parametrize("kernel", [3, 5])
def test_heatmap_nms_on_plateaus_keeps_the_last_maximum_of_each_window(kernel):
    maps = torch.randint(0, 3, (2, 9, 9), generator=torch.Generator().manual_seed(kernel)).float()  # many ties
    radius = kernel // 2

    def window(c, y, x):
        return [(c, v, u) for v in range(y - radius, y + radius + 1) for u in range(x - radius, x + radius + 1)
                if 0 <= v < 9 and 0 <= u < 9]

    def is_maximum(pixel):
        return all(maps[pixel] >= maps[other] for other in window(*pixel))

    expected = torch.zeros_like(maps)  # the rule, pixel by pixel: a maximum with no later maximum in its window
    for pixel in itertools.product(range(2), range(9), range(9)):
        if is_maximum(pixel) and not any(other > pixel and is_maximum(other) for other in window(*pixel)):
            expected[pixel] = maps[pixel]
    torch.testing.assert_close(heatmap_nms(maps.unsqueeze(0), kernel)[0], expected)


@pytest.mark.parametrize("kernel", [1, 3, 5, 7])
def test_max_filter_is_the_window_maximum_pixel_by_pixel(kernel):
    maps = torch.rand(2, 3, 6, 9, generator=torch.Generator().manual_seed(kernel))
    radius = kernel // 2
    expected = torch.empty_like(maps)
    for y, x in itertools.product(range(6), range(9)):
        window = maps[..., max(y - radius, 0) : y + radius + 1, max(x - radius, 0) : x + radius + 1]
        expected[..., y, x] = window.amax(dim=(-2, -1))
    assert torch.equal(max_filter(maps, kernel), expected)


def test_topk_peaks_are_sorted_and_capped_by_map_size():
    heatmaps = torch.zeros(1, 2, 3, 3)
    heatmaps[0, 0, 2, 1], heatmaps[0, 0, 0, 2], heatmaps[0, 1, 1, 1] = 0.75, 0.5, 0.25
    scores, xs, ys = topk_peaks(heatmaps, 2)
    assert scores[0, 0].tolist() == [0.75, 0.5] and xs[0, 0].tolist() == [1, 2] and ys[0, 0].tolist() == [2, 0]
    assert (xs[0, 1, 0].item(), ys[0, 1, 0].item()) == (1, 1)
    assert topk_peaks(heatmaps, 30)[0].shape == (1, 2, 9)


def test_gather_at_shared_and_per_channel_positions():
    maps = torch.arange(24.0).view(1, 2, 3, 4)
    shared = gather_at(maps, torch.tensor([[1, 3]]), torch.tensor([[2, 0]]))
    assert shared.tolist() == [[[9.0, 3.0], [21.0, 15.0]]]
    per_channel = gather_at(maps, torch.tensor([[[1], [0]]]), torch.tensor([[[2], [1]]]))
    assert per_channel.tolist() == [[[9.0], [16.0]]]


def test_sample_heatmaps_is_bilinear_per_keypoint_channel_with_border_values():
    ys, xs = torch.meshgrid(torch.arange(3.0), torch.arange(4.0), indexing="ij")
    heatmaps = torch.stack([4 * ys + xs, 100 + 4 * ys + xs]).unsqueeze(0)  # K = 2 linear maps
    coords = torch.tensor([[[[1.25, 0.5], [2.0, 1.0]], [[-1.0, 0.0], [3.0, 2.0]]]])  # [B=1, M=2, K=2, 2]
    values = sample_heatmaps(heatmaps, coords)
    torch.testing.assert_close(values, torch.tensor([[[3.25, 106.0], [0.0, 111.0]]]))


def test_refinement_recovers_sub_pixel_gaussian_center():
    keypoints = torch.tensor([[[[5.3, 6.8, 2.0], [2.6, 3.45, 2.0]]]])
    heatmaps = render_gaussian_heatmaps(keypoints, (12, 12), stride=1, sigma=2.0)
    scores, xs, ys = topk_peaks(heatmaps, 1)
    assert xs.flatten().tolist() == [5, 3] and ys.flatten().tolist() == [7, 3]
    torch.testing.assert_close(refine_peaks(heatmaps, xs, ys)[0, :, 0], torch.tensor([[5.3, 6.8], [2.6, 3.45]]))


def test_refinement_is_exact_for_a_tilted_gaussian():
    """The log of a Gaussian with correlated axes is quadratic: one Taylor step lands on its center,
    which needs the mixed derivative (dxy) with its sign."""
    ys, xs = torch.meshgrid(torch.arange(9.0), torch.arange(9.0), indexing="ij")
    dx, dy = xs - 4.3, ys - 3.8
    heatmaps = torch.exp(-(0.5 * dx**2 + 0.4 * dx * dy + 0.3 * dy**2)).view(1, 1, 9, 9)
    refined = refine_peaks(heatmaps, torch.tensor([[[4]]]), torch.tensor([[[4]]]))
    torch.testing.assert_close(refined[0, 0, 0], torch.tensor([4.3, 3.8]))


def test_refinement_falls_back_to_quarter_offset_and_keeps_border_peaks():
    heatmaps = torch.zeros(1, 1, 5, 5)
    heatmaps[0, 0, 2, 1:4] = torch.tensor([0.4, 1.0, 0.8])
    heatmaps[0, 0, 1, 2] = heatmaps[0, 0, 3, 2] = 1.0  # flat along y: no concave quadratic
    refined = refine_peaks(heatmaps, torch.tensor([[[2, 0]]]), torch.tensor([[[2, 2]]]))
    assert refined[0, 0].tolist() == [[2.25, 2.0], [0.0, 2.0]]


def test_decoded_poses_pad_and_unpad():
    people = [
        {"keypoints": torch.ones(2, 3, 2), "keypoint_scores": torch.ones(2, 3), "scores": torch.tensor([0.9, 0.4])},
        {"keypoints": torch.zeros(0, 3, 2), "keypoint_scores": torch.zeros(0, 3), "scores": torch.zeros(0)},
    ]
    poses = DecodedPoses.from_list(people, num_keypoints=3)
    assert poses.keypoints.shape == (2, 2, 3, 2) and poses.mask.tolist() == [[True, True], [False, False]]
    assert poses.keypoints[1].abs().sum() == 0 and poses.scores[1].tolist() == [0.0, 0.0]
    back = poses.to("cpu").to_list()
    assert back[0]["scores"].tolist() == pytest.approx([0.9, 0.4]) and back[1]["keypoints"].shape == (0, 3, 2)
    assert DecodedPoses.from_list(people[1:], num_keypoints=3).keypoints.shape == (1, 0, 3, 2)
