"""`SemiPoseTrainingArguments`: the semi-supervised knobs on top of `transformers.TrainingArguments`.

Example:

```python
>>> args = SemiPoseTrainingArguments(output_dir="out", ssl_mode="semi", max_steps=1000, burn_in_steps=400)
>>> args.unsupervised_weight_factor(450)  # 0 until step 400, then 1 by step 500
0.5

```
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from transformers import TrainingArguments

from ..data.transforms import AugmentationConfig
from .hardware import PRECISIONS, resolve_precision, resolve_torch_threads

SSL_MODES = ("supervised", "consistency", "semi")
MODEL_SELECTIONS = ("auto", "student", "teacher")
STRONG = AugmentationConfig.strong()
"""The `strong_*` defaults: the labeled strong view's strengths, so both strong views are one augmentation."""


@dataclass
class SemiPoseTrainingArguments(TrainingArguments):
    """TrainingArguments plus the EMA teacher, the burn-in, the unsupervised loss weights and the strong view."""

    ssl_mode: str = field(
        default="semi",
        metadata={"help": "supervised (labeled only) | consistency (+ heatmap consistency) | semi (+ pseudo people).",
                  "choices": SSL_MODES},
    )
    ema_decay: float = field(default=0.995, metadata={"help": "Teacher EMA decay per optimizer step."})
    burn_in_steps: int = field(
        default=-1,
        metadata={"help": "Supervised steps before the teacher is copied from the student; -1: burn_in_ratio."},
    )
    burn_in_ratio: float = field(default=0.4, metadata={"help": "Burn-in as a fraction of max_steps."})
    ramp_up_ratio: float = field(
        default=0.1, metadata={"help": "Unsupervised weights grow linearly over this fraction of max_steps."}
    )
    consistency_weight: float = field(default=1.0, metadata={"help": "Weight of the heatmap-consistency loss."})
    pseudo_label_weight: float = field(default=1.0, metadata={"help": "Weight of the pseudo-people loss (semi)."})
    pseudo_person_threshold: float | None = field(
        default=None,
        metadata={"help": "Min teacher person score; default: the model config's (its family's score scale)."},
    )
    pseudo_person_quantile: float | None = field(
        default=None,
        metadata={"help": "Instead of the fixed person threshold: this quantile of each batch's decoded person scores "
                          "(0.5: the better half of the teacher's people are taught), whatever the scores' level."},
    )
    pseudo_keypoint_threshold: float = field(default=0.3, metadata={"help": "Min teacher keypoint score."})
    pseudo_ignore_threshold: float = field(
        default=0.1, metadata={"help": "Teacher heatmap values in [this, keypoint threshold) are not trained on."}
    )
    unlabeled_ratio: int = field(default=1, metadata={"help": "Unlabeled images per labeled image in a batch."})
    strong_max_rotation: float = field(
        default=STRONG.max_rotation, metadata={"help": "Strong view rotation (degrees)."}
    )
    strong_scale_min: float = field(default=STRONG.scale_range[0], metadata={"help": "Strong view minimum scale."})
    strong_scale_max: float = field(default=STRONG.scale_range[1], metadata={"help": "Strong view maximum scale."})
    strong_max_translation: float = field(
        default=STRONG.max_translation, metadata={"help": "Strong view shift (fraction of size)."}
    )
    strong_color_jitter: float = field(
        default=STRONG.color_jitter, metadata={"help": "Strong view color jitter strength, in [0, 1)."}
    )
    strong_cutout_holes: int = field(
        default=STRONG.cutout_holes, metadata={"help": "Random cutout squares per strong view."}
    )
    strong_cutout_size: float = field(
        default=STRONG.cutout_size, metadata={"help": "Cutout side (fraction of image side)."}
    )
    joint_cutout_probability: float = field(
        default=STRONG.joint_cutout_probability, metadata={"help": "Chance to hide each pseudo keypoint."}
    )
    joint_cutout_size: float = field(
        default=STRONG.joint_cutout_size, metadata={"help": "Joint cutout side (fraction of image side)."}
    )
    max_consecutive_nonfinite_steps: int = field(
        default=10,
        metadata={"help": "Stop (after saving the last good state) when this many optimizer steps in a row have a "
                          "non-finite loss or gradients; each is skipped. 0: never stop."},
    )
    final_model: str = field(
        default="auto",
        metadata={"help": "Saved model, fixed in advance, never chosen on the reported split: auto (the teacher when "
                          "one exists, the usual choice in semi-supervised detection; else the student) | student | "
                          "teacher."},
    )
    torch_threads: str | None = field(
        default=None,
        metadata={"help": "Torch threads of each process: 'auto' (the usable cores its loader's workers leave, shared "
                          "evenly by this machine's training processes, at least 1), a number, or unset (torch's own, "
                          "which follows OMP_NUM_THREADS: "
                          "`accelerate launch` sets that to 1 when it is unset)."},
    )
    precision: str = field(
        default="fp32",
        metadata={"help": "Numerics of the networks' forwards: fp32 | bf16 (the Trainer's --bf16) | auto (bf16 "
                          "autocast on a CPU that computes bf16 natively, AVX512-BF16 or AMX; else fp32); the "
                          "Trainer's own --bf16 / --fp16 win. Losses, optimizer, EMA and weights stay fp32.",
                  "choices": PRECISIONS},
    )
    channels_last: bool = field(
        default=False, metadata={"help": "Keep the student and teacher in channels_last memory format."}
    )
    remove_unused_columns: bool = field(
        default=False, metadata={"help": "Kept False: the pose transforms need every column."}
    )
    ddp_find_unused_parameters: bool | None = field(
        default=False,
        metadata={"help": "DDP's find_unused_parameters. False: every parameter of both families gets a gradient "
                          "at every step, so DDP need not walk the graph looking for unused ones."},
    )

    def __post_init__(self):
        self._resolve_precision()
        super().__post_init__()
        if self.torch_threads is not None:
            resolve_torch_threads(self.torch_threads)  # a bad value fails here, not at the Trainer
        if self.dataloader_pin_memory and (self.use_cpu or not torch.accelerator.is_available()):
            self.dataloader_pin_memory = False  # nothing to copy pinned memory to (torch warns for each loader)
        if self.ssl_mode not in SSL_MODES:
            raise ValueError(f"ssl_mode must be one of {SSL_MODES}, got {self.ssl_mode!r}.")
        if self.final_model not in MODEL_SELECTIONS:
            raise ValueError(f"final_model must be one of {MODEL_SELECTIONS}, got {self.final_model!r}.")
        if self.max_consecutive_nonfinite_steps < 0:
            raise ValueError(
                "max_consecutive_nonfinite_steps must be >= 0 (0: never stop), "
                f"got {self.max_consecutive_nonfinite_steps}."
            )
        if self.pseudo_person_quantile is not None and not 0 <= self.pseudo_person_quantile < 1:
            raise ValueError(f"pseudo_person_quantile must be in [0, 1), got {self.pseudo_person_quantile}.")
        if self.unlabeled_ratio < 1:
            raise ValueError(f"unlabeled_ratio must be >= 1, got {self.unlabeled_ratio}.")
        try:
            _ = self.strong_augmentation  # builds (and so validates) the AugmentationConfig
        except ValueError as error:  # scale_range is (strong_scale_min, strong_scale_max)
            raise ValueError(f"The strong_* / joint_cutout_* arguments: {error}") from error

    def _resolve_precision(self) -> None:
        """`precision` onto the Trainer's `bf16` flag (set before its own checks run); its --bf16 / --fp16 win."""
        if self.bf16 or self.fp16:
            mixed = "bf16" if self.bf16 else "fp16"
            self.resolved_precision, self.precision_reason = mixed, f"--{mixed}"
            return
        on_cpu = self.use_cpu or not torch.accelerator.is_available()
        self.resolved_precision, self.precision_reason = resolve_precision(self.precision, on_cpu)
        self.bf16 = self.resolved_precision == "bf16"
        self.use_cpu = self.use_cpu or (on_cpu and self.bf16)  # transformers' bf16 on a CPU asks for use_cpu

    @property
    def uses_unlabeled_data(self) -> bool:
        return self.ssl_mode != "supervised"

    @property
    def strong_augmentation(self) -> AugmentationConfig:
        """The strong view of unlabeled images (`StrongView`): the `strong_*` strengths, never flipped."""
        return AugmentationConfig(
            max_rotation=self.strong_max_rotation,
            scale_range=(self.strong_scale_min, self.strong_scale_max),
            max_translation=self.strong_max_translation,
            flip_probability=0.0,
            color_jitter=self.strong_color_jitter,
            cutout_holes=self.strong_cutout_holes,
            cutout_size=self.strong_cutout_size,
            joint_cutout_probability=self.joint_cutout_probability,
            joint_cutout_size=self.joint_cutout_size,
        )

    def resolved_burn_in_steps(self, max_steps: int) -> int:
        """Burn-in length in optimizer steps for a run of `max_steps`."""
        if self.burn_in_steps >= 0:
            return self.burn_in_steps
        return int(round(self.burn_in_ratio * max_steps))

    def unsupervised_weight_factor(self, step: int, max_steps: int | None = None) -> float:
        """0 during burn-in, then a linear ramp to 1 over `ramp_up_ratio * max_steps` steps."""
        max_steps = max_steps if max_steps is not None else self.max_steps
        burn_in = self.resolved_burn_in_steps(max_steps)
        if step < burn_in:
            return 0.0
        ramp = self.ramp_up_ratio * max_steps
        return 1.0 if ramp <= 0 else min(1.0, (step - burn_in) / ramp)
