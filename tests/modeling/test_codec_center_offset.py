"""Center + offset codec: hand-computed targets and losses, ideal-output round trip on real COCO, pose NMS."""

import math

import ideal_crowds
import pytest
import torch
import torch.nn.functional as F
from coco_round_trip import HEATMAP_SIZE, SIGMA, STRIDE, round_trip_ap

from semipose.modeling.codec_center_offset import (
    _pose_nms,
    _snap_to_peaks,
    center_offset_loss,
    decode_center_offset,
    encode_center_offset_targets,
)
from semipose.modeling.codec_common import heatmap_nms, refine_peaks, sample_heatmaps, topk_peaks
from semipose.modeling.pipeline_pose_estimation import keep_confident

# One person, K = 3, stride 1 on a 16 x 16 map: center (6, 5) = mean of the labeled keypoints.
PERSON = torch.tensor([[[[4.0, 4.0, 2.0], [8.0, 6.0, 1.0], [0.0, 0.0, 0.0]]]])
TWO_PEOPLE = torch.tensor(
    [[[[2.0, 2.0, 2.0], [6.0, 2.0, 2.0], [4.0, 6.0, 2.0]], [[10.0, 9.0, 2.0], [14.0, 9.0, 2.0], [12.0, 13.5, 2.0]]]]
)


def encode(keypoints: torch.Tensor, size=(16, 16), stride=1, **options):
    return encode_center_offset_targets(keypoints, size, stride=stride, sigma=1.0, **options)


def ideal_outputs(targets) -> list[torch.Tensor]:
    """Heatmaps, center heatmap and dense offsets equal to the targets."""
    return [targets.heatmaps, targets.center_heatmap, targets.offset_maps()[0]]


def loss(outputs, keypoints, ignore_mask=None, stride=1):
    return center_offset_loss(*outputs, keypoints, ignore_mask, stride=stride, sigma=1.0)


def test_targets_point_from_pixels_near_the_center_to_labeled_keypoints():
    targets = encode(PERSON)
    assert targets.center_heatmap[0, 0, 5, 6].item() == 1.0
    offset_maps, weight_maps = targets.offset_maps()
    offsets = offset_maps[0].view(3, 2, 16, 16)
    assert offsets[:2, :, 5, 6].tolist() == [[-2.0, -1.0], [2.0, 1.0]]
    assert offsets[:2, :, 5, 7].tolist() == [[-3.0, -1.0], [1.0, 1.0]]
    weights = weight_maps[0].view(3, 2, 16, 16)
    assert weights[0, 0, 5, 6].item() == pytest.approx(1 / math.sqrt(4 * 2))
    assert weights[2].abs().sum() == 0 and offsets[2].abs().sum() == 0  # unlabeled keypoint
    assert weights[0, 0, 5, 10].item() > 0 and weights[0, 0, 5, 11].item() == 0  # radius 4
    assert weights[0, 0].count_nonzero().item() == 49  # pixels within distance 4 of (6, 5)


def test_each_pixel_follows_its_nearest_center():
    targets = encode(TWO_PEOPLE, offset_radius=20.0)
    offsets = targets.offset_maps()[0][0].view(3, 2, 16, 16)
    # centers (4, 3.33) and (12, 10.5)
    torch.testing.assert_close(offsets[:, :, 3, 4], TWO_PEOPLE[0, 0, :, :2] - torch.tensor([4.0, 3.0]))
    torch.testing.assert_close(offsets[:, :, 10, 12], TWO_PEOPLE[0, 1, :, :2] - torch.tensor([12.0, 10.0]))
    assert targets.center_heatmap[0, 0, 3, 4].item() == pytest.approx(math.exp(-1 / 18))
    assert targets.center_heatmap[0, 0, 10, 12].item() == targets.center_heatmap[0, 0, 11, 12].item()


def test_ideal_output_has_zero_losses():
    targets = encode(TWO_PEOPLE)
    assert [value.item() for value in loss(ideal_outputs(targets), TWO_PEOPLE).values()] == [0.0, 0.0, 0.0]


def test_background_is_down_weighted_and_offsets_use_smooth_l1_with_inverse_size():
    targets = encode(PERSON)
    outputs = [tensor + 1 for tensor in ideal_outputs(targets)]
    losses = loss(outputs, PERSON)
    positive = (targets.heatmaps > 0).float().mean().item()
    assert losses["heatmap_loss"].item() == pytest.approx(positive + 0.1 * (1 - positive))
    center_positive = (targets.center_heatmap > 0).float().mean().item()
    assert losses["center_loss"].item() == pytest.approx(center_positive + 0.1 * (1 - center_positive))
    assert losses["offset_loss"].item() == pytest.approx((1 - 1 / 18) / math.sqrt(8))


def test_ignore_mask_removes_exactly_what_it_covers():
    keypoints = PERSON * torch.tensor([4.0, 4.0, 1.0])
    targets = encode(keypoints, size=(16, 16), stride=4)
    outputs = [tensor + 1 for tensor in ideal_outputs(targets)]
    everything = torch.ones(1, 64, 64, dtype=torch.bool)
    assert [value.item() for value in loss(outputs, keypoints, everything, stride=4).values()] == [0.0, 0.0, 0.0]
    top = torch.zeros(1, 64, 64, dtype=torch.bool)
    top[:, :24] = True  # heatmap rows 0-5: half of the supervised offsets
    perturbed = [tensor.clone() for tensor in ideal_outputs(targets)]
    for tensor in perturbed:
        tensor[:, :, :6] += 1
    assert [value.item() for value in loss(perturbed, keypoints, top, stride=4).values()] == [0.0, 0.0, 0.0]
    assert all(value.item() > 0 for value in loss(perturbed, keypoints, None, stride=4).values())


@pytest.mark.parametrize("num_people", [0, 2])
def test_no_people_gives_finite_losses_and_gradients(num_people):
    outputs = [torch.rand(2, c, 8, 8, requires_grad=True) for c in (3, 1, 6)]
    losses = loss(outputs, torch.zeros(2, num_people, 3, 3))
    assert losses["offset_loss"].item() == 0.0
    sum(losses.values()).backward()
    assert all(torch.isfinite(tensor.grad).all() for tensor in outputs)
    assert losses["heatmap_loss"].item() == pytest.approx(0.1 * (outputs[0] ** 2).mean().item())


def test_gradients_reach_every_output():
    outputs = [torch.rand(1, c, 16, 16, requires_grad=True) for c in (3, 1, 6)]
    sum(loss(outputs, TWO_PEOPLE).values()).backward()
    assert all(tensor.grad.abs().sum() > 0 and torch.isfinite(tensor.grad).all() for tensor in outputs)


def test_bad_shapes_raise_value_error():
    with pytest.raises(ValueError, match="offsets"):
        loss([torch.zeros(1, 3, 8, 8), torch.zeros(1, 1, 8, 8), torch.zeros(1, 3, 8, 8)], PERSON)
    with pytest.raises(ValueError, match="center_heatmap"):
        decode_center_offset(torch.zeros(1, 3, 8, 8), torch.zeros(1, 2, 8, 8), torch.zeros(1, 6, 8, 8), stride=4)


def decode_ideal(keypoints: torch.Tensor, **options):
    targets = encode_center_offset_targets(keypoints, HEATMAP_SIZE, stride=STRIDE, sigma=SIGMA)
    return decode_center_offset(*ideal_outputs(targets), stride=STRIDE, **options)


@pytest.mark.parametrize("refine", [True, False])
def test_round_trip_on_real_coco_fixture_scores_full_ap(coco_fixture_dir, refine):
    assert round_trip_ap(coco_fixture_dir, lambda keypoints: decode_ideal(keypoints, refine=refine)) == 1.0


@pytest.mark.parametrize("refine", [True, False])
@pytest.mark.parametrize(("num_people", "seeds"), [(1, range(4)), (10, range(20)), (30, range(4))])
def test_ideal_crowds_decode_to_exactly_their_people(coco_fixture_dir, num_people, seeds, refine):
    for seed in seeds:
        keypoints = ideal_crowds.ideal_crowd(coco_fixture_dir, num_people, seed)
        targets = encode_center_offset_targets(
            keypoints, ideal_crowds.HEATMAP_SIZE, stride=ideal_crowds.STRIDE, sigma=ideal_crowds.SIGMA
        )
        poses = decode_center_offset(*ideal_outputs(targets), stride=ideal_crowds.STRIDE, refine=refine)
        ideal_crowds.assert_decoded_exactly(poses, keypoints)


def snap_over_whole_map(heatmaps, keypoints, nms_kernel=5, radius=2.0):
    """Reference: every NMS peak of the whole map, refined; each keypoint takes the nearest uphill one in reach."""
    peak_scores, xs, ys = topk_peaks(heatmap_nms(heatmaps, nms_kernel), heatmaps[0, 0].numel())
    peaks = refine_peaks(heatmaps, xs, ys)  # [B, K, P, 2]
    here = sample_heatmaps(heatmaps, keypoints).transpose(1, 2).unsqueeze(-1)  # [B, K, N, 1]
    distance = (keypoints.transpose(1, 2).unsqueeze(3) - peaks.unsqueeze(2)).norm(dim=-1)  # [B, K, N, P]
    usable = (distance <= radius) & (peak_scores.unsqueeze(2) >= here) & (peak_scores.unsqueeze(2) > 0)
    nearest = distance.masked_fill(~usable, float("inf")).argmin(dim=-1)
    snapped = peaks.gather(2, nearest.unsqueeze(-1).expand(-1, -1, -1, 2)).transpose(1, 2)
    return torch.where(usable.any(dim=-1).transpose(1, 2).unsqueeze(-1), snapped, keypoints)


@pytest.mark.parametrize("num_people", [2, 12])  # 2: NMS on windows around the keypoints; 12: on the whole map
@pytest.mark.parametrize("nms_kernel", [3, 5])
def test_snapping_finds_the_peaks_nms_finds_on_the_whole_map(num_people, nms_kernel):
    generator = torch.Generator().manual_seed(num_people * nms_kernel)
    heatmaps = F.avg_pool2d(torch.rand(2, 17, 32, 32, generator=generator), 3, 1, 1)  # many peaks, some on borders
    keypoints = torch.rand(2, num_people, 17, 2, generator=generator) * 36 - 2
    expected = snap_over_whole_map(heatmaps, keypoints, nms_kernel)
    assert (expected != keypoints).any()
    torch.testing.assert_close(_snap_to_peaks(heatmaps, keypoints, nms_kernel, 2.0), expected)


def test_decode_reads_offsets_at_centers_and_scores_people():
    targets = encode(TWO_PEOPLE)
    targets.center_heatmap[0, 0, 10:] *= 0.5  # second person's center scores 0.5 (it is at y = 10.5: a tie)
    poses = decode_center_offset(*ideal_outputs(targets), stride=2)
    assert poses.mask.tolist()[0][:3] == [True, True, False]
    torch.testing.assert_close(poses.keypoints[0, :2], (TWO_PEOPLE[0, :, :, :2] + 0.5) * 2 - 0.5, atol=1e-4, rtol=0)
    center_scores = torch.tensor([targets.center_heatmap[0, 0, 3, 4], targets.center_heatmap[0, 0, 11, 12]])
    expected = center_scores * poses.keypoint_scores[0, :2].mean(dim=1)
    torch.testing.assert_close(poses.scores[0, :2], expected)
    assert poses.keypoint_scores[0, 1, 2].item() == pytest.approx(math.exp(-0.125))


def test_center_threshold_drops_weak_centers():
    targets = encode(PERSON)
    heatmaps, center_heatmap, offsets = ideal_outputs(targets)
    poses = decode_center_offset(heatmaps, center_heatmap * 0.09, offsets, stride=1)
    assert not poses.mask.any() and poses.scores.abs().sum() == 0


def test_pose_nms_drops_a_duplicate_of_a_better_person():
    targets = encode(PERSON)
    center = torch.zeros_like(targets.center_heatmap)
    center[0, 0, 5, 6], center[0, 0, 2, 6] = 1.0, 0.9  # same person found from two centers, 3 px apart
    offsets = targets.offset_maps()[0]
    offsets[..., 2, 6] = offsets[..., 5, 6] + torch.tensor([0.0, 3.0]).repeat(3)
    options = {"stride": 1, "refine": False, "nms_kernel": 3}
    assert decode_center_offset(targets.heatmaps, center, offsets, **options).mask.sum().item() == 1
    assert decode_center_offset(targets.heatmaps, center, offsets, pose_nms_threshold=1.01, **options).mask.sum() == 2


def test_pose_nms_is_greedy_nms_person_by_person():
    generator = torch.Generator().manual_seed(3)
    centers = torch.randint(0, 4, (3, 20, 1, 2), generator=generator).float() * 6  # people pile up on 16 spots
    keypoints = centers + torch.rand(3, 20, 5, 2, generator=generator) * 4
    scores = torch.rand(3, 20, generator=generator)
    candidates = torch.rand(3, 20, generator=generator) > 0.2
    keep = _pose_nms(keypoints, scores, candidates, threshold=0.5, distance=0.3)
    for image in range(3):  # the rule: best first, kept unless within reach of an already kept person
        kept = []
        for person in scores[image].argsort(descending=True).tolist():
            reach = [0.3 * (keypoints[image, other].amax(0) - keypoints[image, other].amin(0)).norm().clamp_min(1)
                     for other in kept]
            close = [((keypoints[image, other] - keypoints[image, person]).norm(dim=-1) < radius).float().mean() >= 0.5
                     for other, radius in zip(kept, reach)]
            if candidates[image, person] and not any(close):
                kept.append(person)
        assert sorted(kept) == keep[image].nonzero().flatten().tolist()
    assert 3 < keep.sum() < candidates.sum()  # some suppressed, some kept
    # a chain: the best suppresses the second, which then cannot suppress the third
    chain = torch.tensor([[[[x, 0.0], [x, 10.0]] for x in (0.0, 2.0, 4.0)]])  # reach 3 px, neighbours 2 px apart
    kept = _pose_nms(chain, torch.tensor([[0.9, 0.8, 0.7]]), torch.ones(1, 3, dtype=torch.bool), 0.5, 0.3)
    assert kept.tolist() == [[True, False, True]]


def test_refinement_snaps_regressed_keypoints_to_nearby_heatmap_peaks():
    targets = encode(TWO_PEOPLE)
    shifted = targets.offset_maps()[0] + 1.5 * (torch.arange(6) % 2 == 0).view(1, 6, 1, 1)  # x off by 1.5 px
    truth = TWO_PEOPLE[0, :, :, :2]
    snapped = decode_center_offset(targets.heatmaps, targets.center_heatmap, shifted, stride=1)
    torch.testing.assert_close(snapped.keypoints[0, :2].sort(dim=0).values, truth, atol=1e-4, rtol=0)
    plain = decode_center_offset(targets.heatmaps, targets.center_heatmap, shifted, stride=1, refine_radius=1.0)
    assert (plain.keypoints[0, :2, :, 0].sort(dim=0).values - truth[..., 0]).tolist() == [[1.5] * 3] * 2


def test_batched_decode_matches_per_image_decode():
    keypoints = torch.cat([TWO_PEOPLE, torch.zeros_like(TWO_PEOPLE)])  # image 1 has nobody
    batched = decode_center_offset(*ideal_outputs(encode(keypoints)), stride=1)
    single = decode_center_offset(*ideal_outputs(encode(TWO_PEOPLE)), stride=1)
    assert batched.mask[1].sum() == 0 and batched.mask[0].sum() == 2
    torch.testing.assert_close(batched.keypoints[:1], single.keypoints)
    torch.testing.assert_close(batched.scores[:1], single.scores)


def test_an_image_decodes_to_the_same_bits_alone_and_beside_a_busier_image():
    """torch's mean picks its summation order by shape and strides: beside an image with more centers above the
    threshold (so more candidate rows), a person's score came out one bit off before `ordered_mean`."""
    generator = torch.Generator().manual_seed(17)
    heatmaps = torch.rand(2, 14, 16, 16, generator=generator)
    center_heatmap = torch.rand(2, 1, 16, 16, generator=generator) * torch.tensor([0.12, 1.0]).view(2, 1, 1, 1)
    offsets = torch.randn(2, 28, 16, 16, generator=generator)
    batched = decode_center_offset(heatmaps, center_heatmap, offsets, stride=4).to_list()
    for image, people in enumerate(batched):
        maps = (heatmaps[image : image + 1], center_heatmap[image : image + 1], offsets[image : image + 1])
        alone = decode_center_offset(*maps, stride=4).to_list()[0]
        assert {name: torch.equal(value, alone[name]) for name, value in people.items()} == dict.fromkeys(people, True)
    assert [len(people["scores"]) for people in batched] == [7, 8]


def test_a_person_on_negative_heatmap_values_scores_zero_and_passes_the_zero_threshold():
    heatmaps, center_heatmap, offsets = ideal_outputs(encode(PERSON))
    poses = decode_center_offset(heatmaps - 2.0, center_heatmap, offsets, stride=1)
    assert poses.keypoint_scores[0, 0].max() < 0 and poses.scores[0].tolist()[:1] == [0.0]
    assert keep_confident(poses.to_list()[0], threshold=0.0)["scores"].tolist() == [0.0]  # `semipose evaluate` keeps it


def test_empty_batch_slice_gives_zero_losses_and_no_people():
    outputs = [torch.zeros(0, c, 8, 8) for c in (3, 1, 6)]
    assert [value.item() for value in loss(outputs, torch.zeros(0, 2, 3, 3)).values()] == [0.0, 0.0, 0.0]
    assert not decode_center_offset(*outputs, stride=1).mask.any()
