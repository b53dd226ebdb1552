"""Instance-agnostic consistency: the student's strong-view heatmaps should match the teacher's, moved by theta."""

from __future__ import annotations

import torch


def heatmap_consistency_loss(
    student_heatmaps: torch.Tensor, target_heatmaps: torch.Tensor, frame_mask: torch.Tensor
) -> torch.Tensor:
    """Mean squared error over the pixels that the strong view took from inside the weak frame.

    Args:
        student_heatmaps: [B, K, h, w] student output on the strong view.
        target_heatmaps: [B, K, h, w] teacher heatmaps warped into the strong view (no gradient).
        frame_mask: [B, h, w] bool, True where the strong pixel comes from inside the weak image.

    Returns:
        A scalar; 0 when no pixel is inside the frame.
    """
    if student_heatmaps.shape != target_heatmaps.shape:
        raise ValueError(f"Heatmap shapes differ: student {tuple(student_heatmaps.shape)}, "
                         f"teacher {tuple(target_heatmaps.shape)}.")
    weight = frame_mask.unsqueeze(1).to(student_heatmaps.dtype)
    squared = (student_heatmaps.float() - target_heatmaps.detach().float()) ** 2 * weight
    denominator = weight.sum() * student_heatmaps.shape[1]
    return squared.sum() / denominator.clamp(min=1.0)
