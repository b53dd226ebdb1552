"""The EMA teacher: a frozen copy of the student whose weights trail the student's.

The teacher is built from the student at the end of the supervised burn-in (a teacher copied
from a random student only teaches noise; docs/architecture.md shows where in the step) and then follows
``teacher = decay * teacher + (1 - decay) * student`` after every optimizer step, buffers
included (BatchNorm running statistics are averaged the same way; integer buffers such as
``num_batches_tracked`` are copied).

Example:

```python
>>> import torch
>>> student = torch.nn.Linear(2, 2)
>>> teacher = build_teacher(student)
>>> update_teacher(teacher, student, decay=0.99)

```
"""

from __future__ import annotations

import copy

import torch
from torch import nn


def build_teacher(student: nn.Module) -> nn.Module:
    """A deep copy of `student` in eval mode with gradients off; it is never wrapped by DDP."""
    teacher = copy.deepcopy(student)
    teacher.eval()
    teacher.requires_grad_(False)
    return teacher


@torch.no_grad()
def update_teacher(teacher: nn.Module, student: nn.Module, decay: float) -> None:
    """One EMA step: every floating tensor moves `1 - decay` of the way toward the student."""
    if not 0.0 <= decay <= 1.0:
        raise ValueError(f"EMA decay must be in [0, 1], got {decay}.")
    teacher_tensors = _state_tensors(teacher)
    student_tensors = _state_tensors(student)
    if teacher_tensors.keys() != student_tensors.keys():
        missing = sorted(teacher_tensors.keys() ^ student_tensors.keys())[:5]
        raise ValueError(f"Teacher and student differ in their parameters and buffers, e.g. {missing}.")
    floating = [name for name, tensor in teacher_tensors.items() if tensor.is_floating_point()]
    integer = [name for name in teacher_tensors if name not in set(floating)]
    if floating:
        torch._foreach_lerp_(
            [teacher_tensors[name] for name in floating],
            [student_tensors[name].to(teacher_tensors[name].dtype) for name in floating],
            1.0 - decay,
        )
    for name in integer:
        teacher_tensors[name].copy_(student_tensors[name])


def _state_tensors(module: nn.Module) -> dict[str, torch.Tensor]:
    tensors = dict(module.named_parameters())
    tensors.update(module.named_buffers())
    return tensors
