"""Center + offset codec (single-stage, DEKR-style): targets, loss and decoder.

The network predicts K keypoint heatmaps, one person-center heatmap and 2K offset maps: at a pixel p
near a person's center, channels (2k, 2k + 1) hold `keypoint_k - p` as (dx, dy) in heatmap pixels.

The person center is the mean of the person's labeled, in-frame keypoints (not the box center, which
unlabeled limbs would move). Offsets are supervised within `offset_radius` heatmap pixels of a center,
each pixel by its nearest center, each labeled keypoint weighted by `1 / sqrt(person area)`, the area
being that of the box around the person's labeled keypoints in heatmap pixels (at least 1).

Shapes as in `codec_common`: B images, M people, K keypoints, N candidates, (h, w) heatmap pixels.

Example:

```python
>>> import torch
>>> keypoints = torch.tensor([[[[10.0, 12.0, 2.0], [30.0, 20.0, 2.0]]]])  # one person, K = 2
>>> targets = encode_center_offset_targets(keypoints, (16, 16), stride=4, sigma=2.0)
>>> ideal = (targets.heatmaps, targets.center_heatmap, targets.offset_maps()[0])  # a perfect network
>>> losses = center_offset_loss(*ideal, keypoints, None, stride=4, sigma=2.0)
>>> [round(value.item(), 6) for value in losses.values()]
[0.0, 0.0, 0.0]
>>> poses = decode_center_offset(*ideal, stride=4)
>>> poses.keypoints[0, 0].round().tolist()
[[10.0, 12.0], [30.0, 20.0]]

```
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .codec_common import (
    DecodedPoses,
    check_keypoints,
    check_maps,
    downsample_ignore_mask,
    gather_at,
    heatmap_nms,
    heatmap_to_input,
    labeled_heatmap_keypoints,
    mean_or_zero,
    ordered_mean,
    peak_offsets,
    render_gaussian_heatmaps,
    running_max,
    sample_heatmaps,
    topk_peaks,
    windows_around,
)


@dataclass
class CenterOffsetTargets:
    """Training targets of the center + offset family.

    Offset targets are sparse: S samples per image, one per (person, pixel of a window around its
    center), most of them supervising nothing. `offset_maps()` gives the dense maps.

    Attributes:
        heatmaps (`torch.Tensor` of shape `(B, K, h, w)`): Gaussian keypoint heatmaps.
        center_heatmap (`torch.Tensor` of shape `(B, 1, h, w)`): Gaussian person-center heatmap.
        offset_pixels (`torch.Tensor` of shape `(B, S)`, long): flat pixel `y * w + x` of each sample,
            `h * w` for samples that supervise nothing.
        offsets (`torch.Tensor` of shape `(B, S, K, 2)`): keypoint minus pixel, (dx, dy) in heatmap pixels.
        offset_weights (`torch.Tensor` of shape `(B, S, K)`): `1 / sqrt(area)` where supervised, else 0.
    """

    heatmaps: torch.Tensor
    center_heatmap: torch.Tensor
    offset_pixels: torch.Tensor
    offsets: torch.Tensor
    offset_weights: torch.Tensor

    def offset_maps(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Dense offsets and weights, both `[B, 2K, h, w]` with channels (2k, 2k + 1) = (dx, dy), 0 where
        unsupervised: the ideal offset output of the network."""
        batch, num_keypoints, height, width = self.heatmaps.shape
        index = self.offset_pixels.unsqueeze(1).expand(-1, 2 * num_keypoints, -1)
        weights = self.offset_weights.unsqueeze(-1).expand_as(self.offsets)
        maps = []
        for values in (self.offsets, weights):
            dense = values.new_zeros(batch, 2 * num_keypoints, height * width + 1)
            dense.scatter_(2, index, values.flatten(2).transpose(1, 2))
            maps.append(dense[..., :-1].reshape(batch, 2 * num_keypoints, height, width))
        return maps[0], maps[1]


def encode_center_offset_targets(
    keypoints: torch.Tensor,
    heatmap_size: tuple[int, int],
    *,
    stride: int,
    sigma: float,
    center_sigma: float | None = None,
    offset_radius: float = 4.0,
) -> CenterOffsetTargets:
    """Heatmaps, center heatmap and offset samples from raw keypoints, batched on their device.

    Args:
        keypoints (`torch.Tensor` of shape `(B, M, K, 3)`): (x, y, v) in input pixels, zero rows = padding.
        heatmap_size: (h, w).
        stride: input pixels per heatmap pixel.
        sigma: keypoint Gaussian standard deviation in heatmap pixels.
        center_sigma: center Gaussian standard deviation (default `sigma`).
        offset_radius: offsets are supervised at pixels this close (heatmap pixels) to a center.
    """
    if keypoints.shape[1] == 0:  # one padding row keeps the nearest-center search well defined
        keypoints = keypoints.new_zeros(keypoints.shape[0], 1, *keypoints.shape[2:])
    coords, valid = labeled_heatmap_keypoints(keypoints, heatmap_size, stride)
    counts = valid.sum(dim=2, keepdim=True)
    centers = coords.sum(dim=2) / counts.clamp_min(1)  # [B, M, 2]
    center_keypoints = torch.cat([heatmap_to_input(centers, stride), (counts > 0).float()], dim=-1)
    offset_pixels, offsets, offset_weights = _offset_samples(coords, valid, centers, heatmap_size, offset_radius)
    return CenterOffsetTargets(
        heatmaps=render_gaussian_heatmaps(keypoints, heatmap_size, stride=stride, sigma=sigma),
        center_heatmap=render_gaussian_heatmaps(
            center_keypoints.unsqueeze(2), heatmap_size, stride=stride, sigma=center_sigma or sigma
        ),
        offset_pixels=offset_pixels,
        offsets=offsets,
        offset_weights=offset_weights,
    )


def _offset_samples(
    coords: torch.Tensor, valid: torch.Tensor, centers: torch.Tensor, heatmap_size: tuple[int, int], radius: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Offset samples: every pixel within `radius` of a center, owned by its nearest center, points to
    that person's labeled keypoints.

    Args:
        coords (`torch.Tensor` of shape `(B, M, K, 2)`), valid (`(B, M, K)`): keypoints in heatmap coordinates.
        centers (`torch.Tensor` of shape `(B, M, 2)`).

    Returns:
        pixels `[B, S]`, offsets `[B, S, K, 2]`, weights `[B, S, K]` as in `CenterOffsetTargets`, S = M x window.
    """
    height, width = heatmap_size
    reach = math.ceil(radius + 0.5)
    steps = torch.arange(-reach, reach + 1, device=coords.device)
    window = torch.stack(torch.meshgrid(steps, steps, indexing="xy"), dim=-1).view(-1, 2)
    pixels = torch.floor(centers + 0.5).long().unsqueeze(2) + window  # [B, M, W, 2]
    distance = (pixels - centers.unsqueeze(2)).square().sum(dim=-1)
    inside = ((pixels >= 0) & (pixels < torch.tensor([width, height], device=coords.device))).all(dim=-1)
    near = (distance <= radius**2) & inside & valid.any(dim=2, keepdim=True)
    flat = torch.where(near, pixels[..., 1] * width + pixels[..., 0], height * width)
    owned = near & _owned_by_nearest_center(flat, distance, height * width)
    weights = (owned.unsqueeze(-1) & valid.unsqueeze(2)) / _person_size(coords, valid)[..., None, None]
    offsets = (coords.unsqueeze(2) - pixels.unsqueeze(3)) * (weights > 0).unsqueeze(-1)  # [B, M, W, K, 2]
    pixel_index = torch.where(owned, flat, height * width)
    return pixel_index.flatten(1), offsets.flatten(1, 2), weights.flatten(1, 2)


def _owned_by_nearest_center(flat: torch.Tensor, distance: torch.Tensor, num_pixels: int) -> torch.Tensor:
    """Whether each (person, window pixel) sample is the pixel's nearest center (lowest person index on ties).

    Args:
        flat (`torch.Tensor` of shape `(B, M, W)`): flat pixel per sample, `num_pixels` for none.
        distance (`torch.Tensor` of shape `(B, M, W)`): squared pixel-center distance.
    """
    batch, people, _ = flat.shape
    index, distance = flat.flatten(1), distance.flatten(1).float()
    best = distance.new_full((batch, num_pixels + 1), float("inf")).scatter_reduce(1, index, distance, "amin")
    closest = distance == best.gather(1, index)
    person = torch.arange(people, device=flat.device).repeat_interleave(flat.shape[2]).expand_as(index)
    first = index.new_full((batch, num_pixels + 1), people)
    first = first.scatter_reduce(1, index, torch.where(closest, person, people), "amin")
    return (closest & (person == first.gather(1, index))).view_as(flat)


def _person_size(coords: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """`sqrt` of the area of the box around each person's valid keypoints, at least 1; shape `[B, M]`."""
    mask = valid.unsqueeze(-1)
    highest = coords.masked_fill(~mask, float("-inf")).amax(dim=2)
    extent = highest - coords.masked_fill(~mask, float("inf")).amin(dim=2)
    area = extent.nan_to_num(0.0, posinf=0.0, neginf=0.0).clamp_min(0).prod(dim=-1)
    return area.clamp_min(1).sqrt()


def center_offset_loss(
    heatmaps: torch.Tensor,
    center_heatmap: torch.Tensor,
    offsets: torch.Tensor,
    keypoints: torch.Tensor,
    ignore_mask: torch.Tensor | None,
    *,
    stride: int,
    sigma: float,
    background_weight: float = 0.1,
    center_sigma: float | None = None,
    offset_radius: float = 4.0,
    smooth_l1_beta: float = 1.0 / 9.0,
) -> dict[str, torch.Tensor]:
    """Heatmap and center MSE with background down-weighting plus the weighted smooth-L1 offset loss.

    - `heatmap_loss`, `center_loss`: squared error times 1 where the target is positive and
      `background_weight` elsewhere, averaged over all pixels; ignored pixels contribute 0.
    - `offset_loss`: smooth-L1 times `1 / sqrt(person area)`, summed over supervised (pixel, keypoint,
      axis) entries outside the ignore mask and divided by their count (0 without any).

    Args:
        heatmaps (`torch.Tensor` of shape `(B, K, h, w)`): predicted keypoint heatmaps.
        center_heatmap (`torch.Tensor` of shape `(B, 1, h, w)`): predicted center heatmap.
        offsets (`torch.Tensor` of shape `(B, 2K, h, w)`): predicted offsets in heatmap pixels.
        keypoints (`torch.Tensor` of shape `(B, M, K, 3)`): ground truth (x, y, v) in input pixels.
        ignore_mask (`torch.Tensor` of shape `(B, H, W)`, bool, or None): input pixels not to train on.
        stride: input pixels per heatmap pixel.
        sigma: keypoint Gaussian standard deviation in heatmap pixels.
    """
    num_keypoints = heatmaps.shape[1]
    check_maps(heatmaps, center_heatmap=(center_heatmap, 1), offsets=(offsets, 2 * num_keypoints))
    check_keypoints(keypoints, heatmaps.shape[0], num_keypoints)
    heatmap_size = tuple(heatmaps.shape[-2:])
    targets = encode_center_offset_targets(
        keypoints, heatmap_size, stride=stride, sigma=sigma, center_sigma=center_sigma, offset_radius=offset_radius
    )
    ignored = downsample_ignore_mask(ignore_mask, heatmap_size, stride)
    keep = torch.ones_like(center_heatmap) if ignored is None else (~ignored).unsqueeze(1).to(center_heatmap.dtype)
    return {
        "heatmap_loss": _weighted_mse(heatmaps, targets.heatmaps, keep, background_weight),
        "center_loss": _weighted_mse(center_heatmap, targets.center_heatmap, keep, background_weight),
        "offset_loss": _offset_loss(offsets, targets, keep, smooth_l1_beta),
    }


def _offset_loss(
    offsets: torch.Tensor, targets: CenterOffsetTargets, keep: torch.Tensor, beta: float
) -> torch.Tensor:
    """Weighted smooth-L1 between predicted offsets read at the target samples and the targets.

    Args:
        offsets (`torch.Tensor` of shape `(B, 2K, h, w)`): predicted offsets.
        keep (`torch.Tensor` of shape `(B, 1, h, w)`): 0 on ignored pixels.
    """
    batch, channels = offsets.shape[:2]
    index = targets.offset_pixels
    predicted = F.pad(offsets.flatten(2), (0, 1)).gather(2, index.unsqueeze(1).expand(-1, channels, -1))
    predicted = predicted.view(batch, channels // 2, 2, index.shape[1]).permute(0, 3, 1, 2)  # [B, S, K, 2]
    weights = targets.offset_weights * F.pad(keep.flatten(1), (0, 1)).gather(1, index).unsqueeze(-1)
    error = F.smooth_l1_loss(predicted, targets.offsets.to(predicted.dtype), reduction="none", beta=beta)
    return (error * weights.unsqueeze(-1)).sum() / (2 * (weights > 0).sum()).clamp_min(1)


def _weighted_mse(
    prediction: torch.Tensor, target: torch.Tensor, keep: torch.Tensor, background_weight: float
) -> torch.Tensor:
    """Mean squared error with weight 1 on positive targets, `background_weight` elsewhere, 0 where not kept."""
    weight = torch.where(target > 0, 1.0, background_weight) * keep
    return mean_or_zero((prediction - target) ** 2 * weight)


def decode_center_offset(
    heatmaps: torch.Tensor,
    center_heatmap: torch.Tensor,
    offsets: torch.Tensor,
    *,
    stride: int,
    max_people: int = 30,
    nms_kernel: int = 5,
    center_threshold: float = 0.1,
    pose_nms_threshold: float = 0.5,
    pose_nms_distance: float = 0.05,
    refine: bool = True,
    refine_radius: float = 2.0,
) -> DecodedPoses:
    """People from center + offset outputs, fully batched on the device.

    Steps: center NMS and the `max_people` best centers above `center_threshold`; keypoints = center
    pixel + offsets read there; with `refine`, each keypoint snaps to the nearest sub-pixel-refined
    peak of its heatmap within `refine_radius` heatmap pixels whose value is at least the heatmap
    value at the regressed position (CenterNet-style, so regression finds the person and the heatmap
    places the joint; searched in a window around each keypoint, `_snap_to_peaks`; on the main job's
    validation it raises AP from .096 to .188, `benchmarks/results/diagnose_pseudo_people.md`); keypoint
    scores = bilinear heatmap values at the final positions; person score = center score * mean
    keypoint score, at least 0 (a regression network's heatmaps dip below 0, and a negative score would
    fall under the person threshold 0 that keeps every decoded person); pose NMS drops a person when at
    least `pose_nms_threshold` of its keypoints lie within `pose_nms_distance` times the diagonal of the
    keypoint box of a better-scored kept person from that person's (DEKR's rule: 0.05 and more than 8 of
    17). People with equal scores keep their center ranking.

    Args:
        heatmaps (`torch.Tensor` of shape `(B, K, h, w)`).
        center_heatmap (`torch.Tensor` of shape `(B, 1, h, w)`).
        offsets (`torch.Tensor` of shape `(B, 2K, h, w)`): (dx, dy) per keypoint in heatmap pixels.
        stride: input pixels per heatmap pixel.

    Returns:
        `DecodedPoses` with keypoints in input pixels, people sorted by score.
    """
    num_keypoints = heatmaps.shape[1]
    check_maps(heatmaps, center_heatmap=(center_heatmap, 1), offsets=(offsets, 2 * num_keypoints))
    heatmaps, center_heatmap, offsets = (t.detach().float() for t in (heatmaps, center_heatmap, offsets))
    center_scores, xs, ys = (t[:, 0] for t in topk_peaks(heatmap_nms(center_heatmap, nms_kernel), max_people))
    batch, num_centers = center_scores.shape
    confident = int((center_scores > center_threshold).any(dim=0).sum())  # the best come first: the rest is dropped
    center_scores, xs, ys = center_scores[:, :confident], xs[:, :confident], ys[:, :confident]
    displacement = gather_at(offsets, xs, ys).view(batch, num_keypoints, 2, confident).permute(0, 3, 1, 2)
    keypoints = torch.stack([xs, ys], dim=-1).unsqueeze(2).float() + displacement  # [B, N, K, 2]
    if refine:
        keypoints = _snap_to_peaks(heatmaps, keypoints, nms_kernel, refine_radius)
    keypoint_scores = sample_heatmaps(heatmaps, keypoints)
    scores = center_scores * ordered_mean(keypoint_scores, dim=2).clamp_min(0)
    keep = _pose_nms(keypoints, scores, center_scores > center_threshold, pose_nms_threshold, pose_nms_distance)
    order = scores.masked_fill(~keep, -1.0).argsort(dim=1, descending=True, stable=True)
    mask = _ranked(keep, order, num_centers)
    return DecodedPoses(
        keypoints=heatmap_to_input(_ranked(keypoints, order, num_centers), stride) * mask[..., None, None],
        keypoint_scores=_ranked(keypoint_scores, order, num_centers) * mask.unsqueeze(-1),
        scores=_ranked(scores, order, num_centers) * mask,
        mask=mask,
    )


def _ranked(tensor: torch.Tensor, order: torch.Tensor, count: int) -> torch.Tensor:
    """Dim 1 (people) of a `[B, N, ...]` tensor reordered by `order` `[B, N]` and zero-padded to `count`."""
    index = order.view(*order.shape, *[1] * (tensor.ndim - 2))
    ranked = tensor.gather(1, index.expand_as(tensor))
    return torch.cat([ranked, ranked.new_zeros(ranked.shape[0], count - ranked.shape[1], *ranked.shape[2:])], dim=1)


def _snap_to_peaks(heatmaps: torch.Tensor, keypoints: torch.Tensor, nms_kernel: int, radius: float) -> torch.Tensor:
    """Move each regressed keypoint to the nearest uphill refined heatmap peak within `radius`, if any.

    A peak is a pixel at the maximum of its `nms_kernel` neighbourhood (pixels tied for it all count)
    with a positive value at least the heatmap value at the regressed position; its refined position
    (`codec_common.peak_offsets`, as `refine_peaks` places it) must lie within `radius`. Only a window
    around each keypoint is searched, and only its peaks that can end within reach are refined (a
    refinement moves at most half a pixel per axis): the cost grows with the people, not the map.

    Args:
        heatmaps (`torch.Tensor` of shape `(B, K, h, w)`).
        keypoints (`torch.Tensor` of shape `(B, N, K, 2)`): regressed positions in heatmap coordinates.

    Returns:
        `torch.Tensor` of shape `(B, N, K, 2)`.
    """
    reach, margin = math.ceil(radius + 1), max(nms_kernel // 2, 1)
    side, steps = 2 * reach + 1, torch.arange(-reach, reach + 1, device=heatmaps.device)
    nearest = torch.floor(keypoints + 0.5).long()  # [B, N, K, 2]
    values, inside = windows_around(heatmaps.float(), nearest, reach + margin)  # [B, N, K, P, P], P = side + 2 margin

    def central(tensor: torch.Tensor, skip: int = margin) -> torch.Tensor:  # the side x side pixels a peak may sit on
        return tensor[..., skip : skip + side, skip : skip + side]

    # each central pixel's nms_kernel neighbourhood lies in the window; pixels beyond the map do not count
    outside_map = torch.where(inside, values, float("-inf"))
    crest = central(running_max(running_max(outside_map, 4, nms_kernel), 3, nms_kernel), margin - nms_kernel // 2)

    here = sample_heatmaps(heatmaps, keypoints)[..., None, None]
    to_x = nearest[..., 0, None, None] + steps - keypoints[..., 0, None, None]  # window pixel - keypoint
    to_y = nearest[..., 1, None, None] + steps[:, None] - keypoints[..., 1, None, None]
    in_reach = to_x**2 + to_y**2 <= (radius + 0.75) ** 2  # a refined peak ends within 0.71 px of its pixel
    peak = central(inside) & (central(values) == crest) & (central(values) >= here) & (central(values) > 0)
    owner, row, column = (peak & in_reach).flatten(0, 2).nonzero(as_tuple=True)  # candidates, in window order
    size, around = values.shape[-1], torch.arange(-1, 2, device=heatmaps.device)
    in_window = (owner * size + row + margin)[:, None, None] * size + column[:, None, None] + margin  # [C, 1, 1]
    neighbourhoods = values.reshape(-1)[in_window + around[:, None] * size + around]  # [C, 3, 3]
    count = keypoints.shape[:3].numel()
    flat_keypoints = keypoints.reshape(count, 2)
    pixels = nearest.reshape(count, 2)[owner] + torch.stack([column, row], dim=-1) - reach  # [C, 2]
    height, width = heatmaps.shape[-2:]
    interior = (pixels > 0) & (pixels < torch.tensor([width - 1, height - 1], device=heatmaps.device))
    refined = pixels + peak_offsets(neighbourhoods) * interior
    distance = (refined - flat_keypoints[owner]).norm(dim=-1)
    usable = distance <= radius
    best = distance.new_full((count,), float("inf")).scatter_reduce(0, owner[usable], distance[usable], "amin")
    nearest_peak = usable & (distance == best[owner])
    order = torch.arange(len(owner), device=owner.device)  # ties go to the first in window order
    first = torch.full_like(best, len(owner), dtype=torch.long).scatter_reduce(
        0, owner[nearest_peak], order[nearest_peak], "amin"
    )
    snapped = flat_keypoints.clone()
    found = first < len(owner)
    snapped[found] = refined[first[found]]
    return snapped.view_as(keypoints)


def _pose_nms(
    keypoints: torch.Tensor, scores: torch.Tensor, candidates: torch.Tensor, threshold: float, distance: float
) -> torch.Tensor:
    """Greedy pose NMS over the candidates of each image (batched over images and people, a few rounds).

    Args:
        keypoints (`torch.Tensor` of shape `(B, N, K, 2)`), scores (`(B, N)`), candidates (`(B, N)`, bool).

    Returns:
        bool `torch.Tensor` of shape `(B, N)`: kept people.
    """
    diagonal = (keypoints.amax(dim=2) - keypoints.amin(dim=2)).norm(dim=-1)
    radius = distance * diagonal.clamp_min(1)  # [B, N]
    joint_distance = (keypoints.unsqueeze(2) - keypoints.unsqueeze(1)).norm(dim=-1)  # [B, N, N, K]
    close = (joint_distance < radius[:, :, None, None]).float().mean(dim=-1) >= threshold
    order = scores.masked_fill(~candidates, -1.0).argsort(dim=1, descending=True, stable=True)
    close = close.gather(1, order.unsqueeze(-1).expand_as(close)).gather(2, order.unsqueeze(1).expand_as(close))
    ranked_candidates = candidates.gather(1, order)
    num_people = ranked_candidates.shape[1]
    later = torch.ones(num_people, num_people, dtype=torch.bool, device=scores.device).triu(diagonal=1)
    suppresses = close & later  # [B, i, j]: i ranks above j and is close to it
    # Greedy NMS is the one solution of keep_j = candidate_j and no kept i above j close to it (a triangular
    # system); iterating it from the candidates fixes one more rank each round, and stops at that solution
    # after as many rounds as the longest chain of suppressions (a few), not one round per person.
    keep = ranked_candidates
    for _ in range(num_people):
        updated = ranked_candidates & ~(suppresses & keep.unsqueeze(-1)).any(dim=1)
        if torch.equal(updated, keep):
            break
        keep = updated
    return torch.zeros_like(keep).scatter(1, order, keep)
