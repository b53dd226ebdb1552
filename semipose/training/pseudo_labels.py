"""Instance-specific pseudo annotations: whole people decoded from the teacher, filtered, moved to the strong view.

The teacher's decoded people (from the model family's own decoder) become ordinary
``keypoints [B, M, K, 3]`` so the student's own loss (heatmaps + tags, or heatmaps + center +
offsets) trains on them exactly as on ground truth. A person is kept when its score reaches
``person_threshold``; within a kept person, a keypoint is labeled (visibility 2) when its score
reaches ``keypoint_threshold`` and left unlabeled (visibility 0) otherwise. Where the teacher sees
something but is unsure (heatmap between ``ignore_threshold`` and ``keypoint_threshold``), the loss
is masked rather than told "nothing here".

Example:

```python
>>> from semipose.modeling.codec_common import DecodedPoses
>>> decoded = DecodedPoses.from_list([  # one image, two people of K = 2 keypoints
...     {"keypoints": torch.ones(2, 2, 2), "keypoint_scores": torch.tensor([[0.9, 0.1], [0.9, 0.9]]),
...      "scores": torch.tensor([0.8, 0.2])}], num_keypoints=2)
>>> labels = select_confident_people(decoded, person_threshold=0.3, keypoint_threshold=0.3)
>>> labels.shape  # [B, M', K, 3], M' = most people kept in one image
torch.Size([1, 1, 2, 3])
>>> labels[0, 0].tolist()  # (x, y, visibility): the unsure keypoint is left unlabeled
[[1.0, 1.0, 2.0], [0.0, 0.0, 0.0]]

```
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..modeling.codec_common import confident_people


def pseudo_person_mask(decoded, person_threshold: float | torch.Tensor, keypoint_threshold: float) -> torch.Tensor:
    """Bool [B, M]: the one pseudo-person predicate, a decoded person whose score reaches `person_threshold` (a
    number or 0-d tensor) with at least one keypoint at or above `keypoint_threshold`."""
    return decoded.mask & confident_people(decoded.scores, decoded.keypoint_scores, person_threshold,
                                           keypoint_threshold)


def batch_quantile_threshold(decoded, quantile: float) -> torch.Tensor:
    """The `quantile` of the batch's decoded person scores (0-d tensor; 0 when nobody was decoded): a threshold on
    the teacher's own score scale, so the best `1 - quantile` of its people are taught whatever its scores' level.

    Example: scores 0.1, 0.2, 0.3, 0.4 at quantile 0.5 give 0.25 (linear interpolation, `torch.quantile`).
    """
    scores = decoded.scores[decoded.mask].float()
    return torch.quantile(scores, quantile) if scores.numel() else scores.new_zeros(())


def select_confident_people(
    decoded, person_threshold: float | torch.Tensor, keypoint_threshold: float
) -> torch.Tensor:
    """Keypoints [B, M', K, 3] of the people of `decoded` (a `DecodedPoses`) that `pseudo_person_mask` keeps,
    packed to the front.

    Args:
        decoded: `keypoints [B, M, K, 2]`, `keypoint_scores [B, M, K]`, `scores [B, M]`, `mask [B, M]`.
        person_threshold: minimum person score.
        keypoint_threshold: minimum keypoint score for a keypoint to be labeled.
    """
    return pack_people(decoded, pseudo_person_mask(decoded, person_threshold, keypoint_threshold), keypoint_threshold)


def pack_people(decoded, keep: torch.Tensor, keypoint_threshold: float) -> torch.Tensor:
    """Keypoints [B, M', K, 3] of the people `keep [B, M]` marks, packed to the front; a kept person's keypoint is
    labeled (visibility 2) when it scores >= `keypoint_threshold`, else left unlabeled."""
    labeled = decoded.keypoint_scores >= keypoint_threshold
    visibility = (labeled & keep.unsqueeze(-1)).to(decoded.keypoints.dtype) * 2.0
    keypoints = torch.cat([decoded.keypoints * (visibility.unsqueeze(-1) > 0), visibility.unsqueeze(-1)], dim=-1)
    order = torch.argsort(keep.to(torch.int8), dim=1, descending=True, stable=True)
    keypoints = torch.gather(keypoints, 1, order[..., None, None].expand_as(keypoints))
    max_people = int(keep.sum(dim=1).max().item()) if keep.numel() else 0
    return keypoints[:, :max_people]


def uncertain_region_mask(
    warped_teacher_heatmaps: torch.Tensor,
    input_size: tuple[int, int],
    ignore_threshold: float,
    keypoint_threshold: float,
) -> torch.Tensor:
    """Bool [B, H, W] at input resolution: where the teacher's heatmap peak is ambiguous.

    Args:
        warped_teacher_heatmaps: [B, K, h, w] teacher heatmaps already moved into the strong view.
        input_size: (H, W) of the student's input.
    """
    strongest = warped_teacher_heatmaps.amax(dim=1, keepdim=True).float()
    uncertain = (strongest >= ignore_threshold) & (strongest < keypoint_threshold)
    return F.interpolate(uncertain.float(), size=input_size, mode="nearest")[:, 0] > 0.5
