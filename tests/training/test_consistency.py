import pytest
import torch

from semipose.training.consistency import heatmap_consistency_loss
from semipose.training.views import warp_by_theta, warped_frame_mask


def test_zero_when_student_equals_teacher_under_identity_theta():
    heatmaps = torch.rand(2, 17, 16, 16)
    theta = torch.eye(3).expand(2, 3, 3)
    target = warp_by_theta(heatmaps, theta)
    loss = heatmap_consistency_loss(heatmaps, target, warped_frame_mask(theta, (16, 16)))
    assert loss.item() == pytest.approx(0.0, abs=1e-10)


def test_mean_over_pixels_inside_the_frame_only():
    student = torch.zeros(1, 2, 4, 4)
    target = torch.ones(1, 2, 4, 4)
    frame = torch.zeros(1, 4, 4, dtype=torch.bool)
    frame[0, :2] = True
    assert heatmap_consistency_loss(student, target, frame).item() == pytest.approx(1.0)
    student[0, :, 2:] = 5.0  # outside the frame: does not count
    assert heatmap_consistency_loss(student, target, frame).item() == pytest.approx(1.0)


def test_gradient_reaches_student_not_teacher():
    student = torch.zeros(1, 1, 4, 4, requires_grad=True)
    target = torch.ones(1, 1, 4, 4, requires_grad=True)
    heatmap_consistency_loss(student, target, torch.ones(1, 4, 4, dtype=torch.bool)).backward()
    assert student.grad is not None and target.grad is None


def test_shape_mismatch_is_a_clear_error():
    with pytest.raises(ValueError, match="student"):
        heatmap_consistency_loss(
            torch.zeros(1, 2, 4, 4), torch.zeros(1, 3, 4, 4), torch.ones(1, 4, 4, dtype=torch.bool)
        )
