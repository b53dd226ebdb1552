"""Associative-embedding codec (Newell et al. 2017, HigherHRNet): targets, loss and grouping decoder.

The network predicts K keypoint heatmaps and K tag maps (tag dimension 1). Training pulls the tags
of one person's keypoints toward their mean and pushes the means of different people apart;
decoding finds heatmap peaks and joins them into people by tag, one keypoint type at a time.

Shapes as in `codec_common`: B images, M people, K keypoints, N candidates, (h, w) heatmap pixels.
Tags are read at the keypoint's nearest heatmap pixel.

Example:

```python
>>> import torch
>>> keypoints = torch.tensor([[[[10.0, 12.0, 2.0], [30.0, 12.0, 2.0]]]])  # one person, K = 2
>>> targets = encode_associative_embedding_targets(keypoints, (16, 16), stride=4, sigma=2.0)
>>> tags = torch.zeros(1, 2, 16, 16)
>>> losses = associative_embedding_loss(targets.heatmaps, tags, keypoints, None, stride=4, sigma=2.0)
>>> round(losses["heatmap_loss"].item(), 6), losses["tag_pull_loss"].item()
(0.0, 0.0)
>>> poses = decode_associative_embedding(targets.heatmaps, tags, stride=4, grouping_order=[0, 1])
>>> poses.keypoints[0, 0].round().tolist()
[[10.0, 12.0], [30.0, 12.0]]

```
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

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
    refine_peaks,
    render_gaussian_heatmaps,
    topk_peaks,
)


@dataclass
class AssociativeEmbeddingTargets:
    """Training targets of the associative-embedding family.

    Attributes:
        heatmaps (`torch.Tensor` of shape `(B, K, h, w)`): Gaussian keypoint heatmaps.
        pixel_index (`torch.Tensor` of shape `(B, M, K)`, long): flat heatmap pixel `y * w + x` of each
            keypoint, where its tag is read (0 where not valid).
        valid (`torch.Tensor` of shape `(B, M, K)`, bool): labeled and inside the heatmap.
    """

    heatmaps: torch.Tensor
    pixel_index: torch.Tensor
    valid: torch.Tensor


def encode_associative_embedding_targets(
    keypoints: torch.Tensor, heatmap_size: tuple[int, int], *, stride: int, sigma: float
) -> AssociativeEmbeddingTargets:
    """Heatmaps and tag-readout pixels from raw keypoints, batched on their device.

    Args:
        keypoints (`torch.Tensor` of shape `(B, M, K, 3)`): (x, y, v) in input pixels, zero rows = padding.
        heatmap_size: (h, w).
        stride: input pixels per heatmap pixel.
        sigma: Gaussian standard deviation in heatmap pixels.
    """
    coords, valid = labeled_heatmap_keypoints(keypoints, heatmap_size, stride)
    nearest = torch.floor(coords + 0.5).long()
    pixel_index = (nearest[..., 1] * heatmap_size[1] + nearest[..., 0]) * valid
    heatmaps = render_gaussian_heatmaps(keypoints, heatmap_size, stride=stride, sigma=sigma)
    return AssociativeEmbeddingTargets(heatmaps=heatmaps, pixel_index=pixel_index, valid=valid)


def associative_embedding_loss(
    heatmaps: torch.Tensor,
    tags: torch.Tensor,
    keypoints: torch.Tensor,
    ignore_mask: torch.Tensor | None,
    *,
    stride: int,
    sigma: float,
) -> dict[str, torch.Tensor]:
    """Heatmap MSE plus the associative-embedding pull/push tag losses, each a scalar averaged over the batch.

    - `heatmap_loss`: squared error averaged over all heatmap pixels, ignored pixels contributing 0.
    - `tag_pull_loss`: per person, the mean squared distance of its keypoint tags to their mean; averaged
      over the people of an image.
    - `tag_push_loss`: `exp(-(mean_i - mean_j)^2 / 2)` averaged over the pairs of different people of an
      image (0 with fewer than two people).

    Args:
        heatmaps (`torch.Tensor` of shape `(B, K, h, w)`): predicted heatmaps.
        tags (`torch.Tensor` of shape `(B, K, h, w)`): predicted tags.
        keypoints (`torch.Tensor` of shape `(B, M, K, 3)`): ground truth (x, y, v) in input pixels.
        ignore_mask (`torch.Tensor` of shape `(B, H, W)`, bool, or None): input pixels not to train on.
        stride: input pixels per heatmap pixel.
        sigma: target Gaussian standard deviation in heatmap pixels.
    """
    check_maps(heatmaps, tags=(tags, heatmaps.shape[1]))
    check_keypoints(keypoints, heatmaps.shape[0], heatmaps.shape[1])
    heatmap_size = tuple(heatmaps.shape[-2:])
    targets = encode_associative_embedding_targets(keypoints, heatmap_size, stride=stride, sigma=sigma)
    squared_error = (heatmaps - targets.heatmaps) ** 2
    ignored = downsample_ignore_mask(ignore_mask, heatmap_size, stride)
    if ignored is not None:
        squared_error = squared_error * ~ignored.unsqueeze(1)
    pull, push = _tag_losses(tags, targets.pixel_index, targets.valid)
    return {"heatmap_loss": mean_or_zero(squared_error), "tag_pull_loss": pull, "tag_push_loss": push}


def _tag_losses(
    tags: torch.Tensor, pixel_index: torch.Tensor, valid: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pull and push losses (batch means) from tags read at each valid keypoint.

    Args:
        tags (`torch.Tensor` of shape `(B, K, h, w)`).
        pixel_index, valid (`torch.Tensor` of shape `(B, M, K)`).
    """
    picked = tags.flatten(2).gather(2, pixel_index.transpose(1, 2)).transpose(1, 2)  # [B, M, K]
    weight = valid.to(picked.dtype)
    counts = weight.sum(dim=2)
    present = counts > 0
    means = (picked * weight).sum(dim=2) / counts.clamp_min(1)
    person_pull = ((picked - means.unsqueeze(2)) ** 2 * weight).sum(dim=2) / counts.clamp_min(1)
    num_people = present.sum(dim=1)
    pull = person_pull.sum(dim=1) / num_people.clamp_min(1)
    others = ~torch.eye(present.shape[1], dtype=torch.bool, device=tags.device)
    pairs = present.unsqueeze(2) & present.unsqueeze(1) & others
    similarity = torch.exp(-((means.unsqueeze(2) - means.unsqueeze(1)) ** 2) / 2) * pairs
    push = similarity.sum(dim=(1, 2)) / (num_people * (num_people - 1)).clamp_min(1)
    return mean_or_zero(pull), mean_or_zero(push)


def decode_associative_embedding(
    heatmaps: torch.Tensor,
    tags: torch.Tensor,
    *,
    stride: int,
    grouping_order: Sequence[int],
    max_people: int = 30,
    nms_kernel: int = 5,
    detection_threshold: float = 0.1,
    tag_threshold: float = 1.0,
    refine: bool = True,
    fill_missing: bool = True,
) -> DecodedPoses:
    """People from associative-embedding outputs: peaks, tag grouping, refinement, missing-keypoint filling.

    Steps: heatmap NMS and the `max_people` best peaks per keypoint type (batched on the device);
    per image on the CPU, peaks above `detection_threshold` are attached to people one keypoint type
    at a time in `grouping_order` by `scipy.optimize.linear_sum_assignment` on the HigherHRNet cost
    `round(|tag - person mean tag|) * 100 - peak score`, a peak joining a person only when their tag
    distance is below `tag_threshold` and otherwise starting a new person; optional sub-pixel refinement
    (`codec_common.refine_peaks`); optionally, each missing keypoint k of a person is placed at the
    argmax of `heatmap_k - round(|tag_k - person mean tag|)` with the heatmap value there as its score.
    Person score = mean of its K grouped keypoint scores, 0 for missing ones, fixed before filling
    (as in HigherHRNet): a fragment of a person, completed by filling from that person's own peaks,
    would otherwise score as high as the person itself and be taught as a second one. The `max_people`
    best-scored people are kept.
    Non-finite tags are clipped to +-1e6 so a diverging network cannot break the assignment.

    Args:
        heatmaps (`torch.Tensor` of shape `(B, K, h, w)`).
        tags (`torch.Tensor` of shape `(B, K, h, w)`).
        stride: input pixels per heatmap pixel.
        grouping_order: the K keypoint indices, most reliable first (`Skeleton.grouping_order`).

    Returns:
        `DecodedPoses` with keypoints in input pixels, people sorted by score.
    """
    check_maps(heatmaps, tags=(tags, heatmaps.shape[1]))
    num_keypoints = heatmaps.shape[1]
    if sorted(grouping_order) != list(range(num_keypoints)):
        raise ValueError(
            f"grouping_order: expected a permutation of range({num_keypoints}), got {list(grouping_order)}."
        )
    heatmaps, tags = heatmaps.detach().float(), tags.detach().float()
    peak_scores, xs, ys = topk_peaks(heatmap_nms(heatmaps, nms_kernel), max_people)
    peak_tags = gather_at(tags, xs, ys)
    coords = refine_peaks(heatmaps, xs, ys) if refine else torch.stack([xs, ys], dim=-1).float()
    scores_np = peak_scores.cpu().numpy()
    tags_np = np.nan_to_num(peak_tags.cpu().numpy(), nan=0.0, posinf=1e6, neginf=-1e6).clip(-1e6, 1e6)
    groups = [
        _group_by_tags(scores_np[b], tags_np[b], grouping_order, detection_threshold, tag_threshold)
        for b in range(heatmaps.shape[0])
    ]
    people = [_collect_people(group, coords[b], peak_scores[b], peak_tags[b]) for b, group in enumerate(groups)]
    people = [_rank(person, max_people) for person in people]
    if fill_missing:
        people = [_fill_missing(person, heatmaps[b], tags[b], refine) for b, person in enumerate(people)]
    people = [{**person, "keypoints": heatmap_to_input(person["keypoints"], stride)} for person in people]
    return DecodedPoses.from_list(people, num_keypoints, device=heatmaps.device)


def _group_by_tags(
    scores: np.ndarray,
    tags: np.ndarray,
    grouping_order: Sequence[int],
    detection_threshold: float,
    tag_threshold: float,
) -> np.ndarray:
    """Assign one image's peaks to people; returns `[P, K]` peak indices, -1 where a person lacks a keypoint.

    Args:
        scores, tags (`np.ndarray` of shape `(K, N)`): peak scores and tags per keypoint type.
    """
    num_keypoints = scores.shape[0]
    members = np.full((0, num_keypoints), -1, dtype=np.int64)
    tag_sums, counts = np.zeros(0), np.zeros(0)
    for k in grouping_order:
        candidates = np.flatnonzero(scores[k] > detection_threshold)
        matched_rows, matched_people = np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        if len(candidates) and len(counts):
            distance = np.abs(tags[k, candidates, None] - (tag_sums / counts)[None, :])
            matched_rows, matched_people = _assign(distance, scores[k, candidates], tag_threshold)
        members[matched_people, k] = candidates[matched_rows]
        tag_sums[matched_people] += tags[k, candidates[matched_rows]]
        counts[matched_people] += 1
        newcomers = np.delete(candidates, matched_rows)
        new_members = np.full((len(newcomers), num_keypoints), -1, dtype=np.int64)
        new_members[:, k] = newcomers
        members = np.concatenate([members, new_members])
        tag_sums = np.concatenate([tag_sums, tags[k, newcomers]])
        counts = np.concatenate([counts, np.ones(len(newcomers))])
    return members


def _assign(distance: np.ndarray, scores: np.ndarray, tag_threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Match candidates to people on the HigherHRNet cost `round(distance) * 100 - score`; returns
    (candidate rows, people) of the matches.

    A pair at `tag_threshold` or farther cannot match, and every candidate may instead start a new
    person (one extra column each) at a cost above any allowed match: without that option a square
    assignment forces each candidate onto some person, and equal-cost solutions shift matches along
    a chain of people, splitting them into fragments.

    Args:
        distance (`np.ndarray` of shape `(C, P)`): tag distance of each candidate to each person's mean tag.
        scores (`np.ndarray` of shape `(C,)`): peak scores.
    """
    new_person_cost = 100.0 * (np.round(tag_threshold) + 1)
    cost = np.where(distance < tag_threshold, np.round(distance) * 100 - scores[:, None], np.inf)
    cost = np.concatenate([cost, np.full((len(scores), len(scores)), new_person_cost)], axis=1)
    rows, cols = linear_sum_assignment(cost)
    joins = cols < distance.shape[1]
    return rows[joins], cols[joins]


def _collect_people(
    members: np.ndarray, coords: torch.Tensor, peak_scores: torch.Tensor, peak_tags: torch.Tensor
) -> dict[str, torch.Tensor]:
    """Gather one image's grouped peaks into person tensors.

    Args:
        members (`np.ndarray` of shape `(P, K)`): peak index per person and keypoint, -1 = missing.
        coords (`torch.Tensor` of shape `(K, N, 2)`), peak_scores, peak_tags (`(K, N)`): the image's peaks.

    Returns:
        dict with `keypoints [P, K, 2]` (heatmap coordinates), `keypoint_scores [P, K]` (0 = missing),
        `tags [P]` (mean tag of the person's peaks).
    """
    index = torch.as_tensor(members, device=coords.device).T  # [K, P]
    found = index >= 0
    safe = index.clamp_min(0)
    keypoints = coords.gather(1, safe.unsqueeze(-1).expand(-1, -1, 2)) * found.unsqueeze(-1)
    keypoint_scores = peak_scores.gather(1, safe) * found
    tag_sum = (peak_tags.gather(1, safe) * found).sum(dim=0)
    return {
        "keypoints": keypoints.transpose(0, 1),
        "keypoint_scores": keypoint_scores.T,
        "tags": tag_sum / found.sum(dim=0).clamp_min(1),
    }


def _fill_missing(
    person: dict[str, torch.Tensor], heatmaps: torch.Tensor, tags: torch.Tensor, refine: bool
) -> dict[str, torch.Tensor]:
    """Place each missing keypoint of each person at its best heatmap pixel among tags close to the person's.

    Only the missing (person, keypoint) pairs are scored, one `[h, w]` map each.

    Args:
        person: as returned by `_collect_people`.
        heatmaps, tags (`torch.Tensor` of shape `(K, h, w)`): one image's outputs.
    """
    people, keypoint_types = (person["keypoint_scores"] == 0).nonzero(as_tuple=True)
    if len(people) == 0:
        return person
    maps = heatmaps[keypoint_types]  # [Q, h, w]
    tag_penalty = torch.round((tags[keypoint_types] - person["tags"][people, None, None]).abs())
    best = (maps - tag_penalty).flatten(1).argmax(dim=1).view(1, -1, 1)
    xs, ys = best % maps.shape[-1], best // maps.shape[-1]
    coords = refine_peaks(maps.unsqueeze(0), xs, ys) if refine else torch.stack([xs, ys], dim=-1).float()
    keypoints, keypoint_scores = person["keypoints"].clone(), person["keypoint_scores"].clone()
    keypoints[people, keypoint_types] = coords.view(-1, 2)
    keypoint_scores[people, keypoint_types] = gather_at(maps.unsqueeze(0), xs, ys).flatten()
    return {**person, "keypoints": keypoints, "keypoint_scores": keypoint_scores}


def _rank(person: dict[str, torch.Tensor], max_people: int) -> dict[str, torch.Tensor]:
    """Score each grouped person (mean of its K keypoint scores, 0 where missing), sort best first, keep
    `max_people`."""
    scores = person["keypoint_scores"].mean(dim=1)
    order = scores.argsort(descending=True)[:max_people]
    return {**{name: value[order] for name, value in person.items()}, "scores": scores[order]}

