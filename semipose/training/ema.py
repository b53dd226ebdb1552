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
>>> pairing = EmaPairing(teacher, student)  # what the trainer keeps, one per teacher
>>> pairing.update(decay=0.99)

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


class EmaPairing:
    """The teacher's tensors paired with the student's once, so each EMA step is two foreach calls.

    Walking both modules for their named tensors costs as much as the update itself (about 150
    modules, 300 tensors for the main job's network), so the trainer keeps one pairing per teacher.
    It holds the tensors themselves: a module whose parameters or buffers are replaced afterwards
    needs a new pairing (training, `load_state_dict` and same-device `to()` keep them).

    Args:
        teacher, student: modules of the same architecture.
    """

    def __init__(self, teacher: nn.Module, student: nn.Module):
        teacher_tensors, student_tensors = _state_tensors(teacher), _state_tensors(student)
        if teacher_tensors.keys() != student_tensors.keys():
            missing = sorted(teacher_tensors.keys() ^ student_tensors.keys())[:5]
            raise ValueError(f"Teacher and student differ in their parameters and buffers, e.g. {missing}.")
        floating = [name for name, tensor in teacher_tensors.items() if tensor.is_floating_point()]
        integer = [name for name, tensor in teacher_tensors.items() if not tensor.is_floating_point()]
        self.teacher = teacher
        self.floating = ([teacher_tensors[name] for name in floating], [student_tensors[name] for name in floating])
        self.integer = ([teacher_tensors[name] for name in integer], [student_tensors[name] for name in integer])

    @torch.no_grad()
    def update(self, decay: float) -> None:
        """One EMA step: every floating tensor moves `1 - decay` of the way toward the student's."""
        if not 0.0 <= decay <= 1.0:
            raise ValueError(f"EMA decay must be in [0, 1], got {decay}.")
        if self.floating[0]:
            torch._foreach_lerp_(*self.floating, 1.0 - decay)
        if self.integer[0]:
            torch._foreach_copy_(*self.integer)


def update_teacher(teacher: nn.Module, student: nn.Module, decay: float) -> None:
    """One EMA step of `teacher` toward `student` (see `EmaPairing` to repeat it cheaply)."""
    EmaPairing(teacher, student).update(decay)


def _state_tensors(module: nn.Module) -> dict[str, torch.Tensor]:
    tensors = dict(module.named_parameters())
    tensors.update(module.named_buffers())
    return tensors
