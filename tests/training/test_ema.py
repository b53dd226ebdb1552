import pytest
import torch
from torch import nn

from semipose.training.ema import EmaPairing, build_teacher, update_teacher


def _student() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))


def test_teacher_is_a_frozen_eval_copy():
    student = _student()
    teacher = build_teacher(student)
    assert not teacher.training
    assert all(not p.requires_grad for p in teacher.parameters())
    assert all(torch.equal(a, b) for a, b in zip(teacher.state_dict().values(), student.state_dict().values()))
    student[0].weight.data.add_(1.0)
    assert not torch.equal(teacher[0].weight, student[0].weight)


def test_update_equals_the_ema_formula_for_parameters_and_buffers():
    student = _student()
    teacher = build_teacher(student)
    before = {name: tensor.clone() for name, tensor in teacher.state_dict().items()}
    with torch.no_grad():
        for tensor in student.state_dict().values():
            tensor.add_(torch.randn_like(tensor.float()).to(tensor.dtype) if tensor.is_floating_point() else 7)
    update_teacher(teacher, student, decay=0.9)
    after, target = teacher.state_dict(), student.state_dict()
    for name in before:
        if before[name].is_floating_point():
            torch.testing.assert_close(after[name], 0.9 * before[name] + 0.1 * target[name])
        else:
            assert torch.equal(after[name], target[name]), name  # num_batches_tracked is copied


def test_decay_out_of_range_is_rejected():
    student = _student()
    with pytest.raises(ValueError, match="decay"):
        update_teacher(build_teacher(student), student, decay=1.5)


def test_a_kept_pairing_follows_the_student_as_fresh_updates_do():
    student = _student()
    kept, fresh = build_teacher(student), build_teacher(student)
    pairing = EmaPairing(kept, student)
    for _ in range(3):
        with torch.no_grad():
            student[0].weight.add_(1.0)
            student[1].num_batches_tracked.add_(2)
        pairing.update(decay=0.5)
        update_teacher(fresh, student, decay=0.5)
    assert all(torch.equal(a, b) for a, b in zip(kept.state_dict().values(), fresh.state_dict().values()))
    assert kept[1].num_batches_tracked.item() == 6


def test_a_teacher_of_another_architecture_is_refused():
    with pytest.raises(ValueError, match="differ in their parameters and buffers"):
        EmaPairing(nn.Sequential(nn.Conv2d(3, 4, 3)), _student())
