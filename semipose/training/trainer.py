"""`SemiPoseTrainer`: one Trainer for both model families and all three modes.

One optimizer step of `semi` mode (docs/architecture.md follows it function by function):

```
teacher(weak unlabeled)                          no grad, under the accelerator's autocast
pseudo = filter(decode(teacher))                 instance-specific pseudo annotations, weak-view pixels
strong = strong_view(weak, teacher heatmaps, pseudo)
                                                 theta per image; cutout(jitter(warp(weak, theta)));
                                                 heatmaps, pseudo people and frame mask moved by theta
student(cat(labeled, strong))                    one forward, shared BatchNorm statistics
loss = sup + w(step) * (c * consistency + p * pseudo)
after the optimizer step: teacher <- EMA(teacher, student)
```

`consistency` mode drops the pseudo term, `supervised` mode uses the labeled stream only. The
teacher is copied from the student when the burn-in ends, is never wrapped by DDP, travels in
every checkpoint (``checkpoint-N/teacher``) and is restored, not rebuilt, on resume.

Faults lose nothing: a checkpoint counts only once complete (see `checkpoints.py`), and a resumed
run continues with the same student, teacher, optimizer, scheduler, RNG and data position as an
uninterrupted one (training items are augmented under their own seed, see `seeded_samples.py`). A
step with a non-finite loss moves nothing; `max_consecutive_nonfinite_steps` of them in a row
save the last good state and raise `NonFiniteTrainingError`.

Illustration (not run: trains a model):

```python
trainer = SemiPoseTrainer(model=model, args=args, train_dataset=pairs, eval_dataset=validation_rows,
                          data_collator=collator, processing_class=image_processor)
trainer.train()
trainer.evaluate()["eval_AP"]
```
"""

from __future__ import annotations

import copy
import json
import logging
import os
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from safetensors.torch import load_file
from torch.utils.data import DataLoader
from transformers import Trainer, TrainerCallback
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR
from transformers.utils import logging as transformers_logging

from ..data.collator import EvaluationCollator
from ..evaluation import KeypointEvaluator, ground_truth_from_rows
from ..evaluation.pseudo_label_quality import pseudo_label_quality
from ..evaluation.trainer_metrics import add_pose_estimates, people_from_pose_estimates, prefixed_metrics
from ..modeling import check_decoding_settings, select_images
from ..modeling.pipeline_pose_estimation import estimate_people
from ..skeletons import Skeleton, resolve_skeleton
from .arguments import SemiPoseTrainingArguments
from .checkpoints import (
    PREDICTIONS_FILE,
    begin_checkpoint,
    checkpoint_folders,
    is_complete_checkpoint,
    latest_complete_checkpoint,
    mark_checkpoint_complete,
    read_checkpoint_record,
    require_complete_checkpoint,
    rotate_complete_checkpoints,
    rotate_predictions,
)
from .consistency import heatmap_consistency_loss
from .data_health import UnreadableImagesMixin
from .ema import EmaPairing, build_teacher
from .hardware import resolve_torch_threads
from .pseudo_labels import batch_quantile_threshold, pack_people, pseudo_person_mask, uncertain_region_mask
from .seeded_samples import SeededSamples
from .views import StrongView

logger = logging.getLogger(__name__)

TEACHER_DIR = "teacher"


class NonFiniteTrainingError(RuntimeError):
    """Too many optimizer steps in a row had a non-finite loss or gradients (`max_consecutive_nonfinite_steps`)."""


class SemiPoseTrainer(UnreadableImagesMixin, Trainer):
    """Trainer with an EMA teacher, heatmap consistency and instance pseudo labels on unlabeled images.

    Args:
        args: `SemiPoseTrainingArguments`.
        train_dataset: `SemiSupervisedDataset` (consistency / semi) or a labeled dataset (supervised),
            collated into `pixel_values`, `keypoints`, `ignore_mask` (+ `unlabeled_pixel_values`).
        eval_dataset: validation rows (dataset-folder schema, with images); evaluated with
            `processing_class` (a `PoseImageProcessor` whose decoding settings match the model's config, see
            `check_decoding_settings`) and COCO or CrowdPose OKS AP.
        skeleton: the dataset's skeleton (or a registered name); defaults to the model's. Its keypoints must be
            the model's, in the same order.
        max_unreadable_fraction: stop once more training images than this fraction are unreadable
            (see `semipose.training.data_health`).
        Other arguments as for `transformers.Trainer`.
    """

    def __init__(self, *args, skeleton: Skeleton | str | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        if not isinstance(self.args, SemiPoseTrainingArguments):
            raise ValueError(f"SemiPoseTrainer needs SemiPoseTrainingArguments, got {type(self.args).__name__}.")
        model_skeleton = Skeleton.from_config(self.model.config)
        self.skeleton = model_skeleton if skeleton is None else resolve_skeleton(skeleton)
        if self.skeleton.keypoint_names != model_skeleton.keypoint_names:
            raise ValueError(
                f"The model predicts the {model_skeleton.name!r} skeleton's keypoints "
                f"{list(model_skeleton.keypoint_names)} but the dataset's skeleton {self.skeleton.name!r} has "
                f"{list(self.skeleton.keypoint_names)}: build the model with **skeleton.config_fields()."
            )
        if self.processing_class is not None:
            check_decoding_settings(self.processing_class, self.model.config)
        self._apply_hardware_settings()
        self.strong_view = StrongView(self.args.strong_augmentation)
        if self.args.pseudo_person_threshold is None:  # person scores differ in scale between the families
            self.args.pseudo_person_threshold = self.model.config.pseudo_person_threshold
        self.teacher: torch.nn.Module | None = None
        self.skipped_steps = 0
        self._consecutive_skipped_steps = 0
        self._step_was_skipped = False
        self._buffer_snapshot: tuple[list[torch.Tensor], list[torch.Tensor]] | None = None  # (live, saved)
        self._gradient_norm: torch.Tensor | float | None = None
        self._ema: EmaPairing | None = None
        self._last_evaluation: tuple[tuple, dict[str, float]] | None = None  # (what and when, metrics)
        self._step_terms: list[dict[str, torch.Tensor]] = []
        self._loss_sums: dict[str, torch.Tensor] = {}
        self._loss_counts: dict[str, int] = defaultdict(int)
        self._evaluation_dataset = None
        self._evaluation_loader_prepared: DataLoader | None = None
        self.add_callback(_TeacherCallback(self))

    def _apply_hardware_settings(self) -> None:
        """Torch threads and memory format as the arguments ask (see `semipose.training.hardware`), logged."""
        args = self.args
        if args.torch_threads is not None:
            torch.set_num_threads(resolve_torch_threads(args.torch_threads, args.dataloader_num_workers))
        if args.channels_last:
            self.model.to(memory_format=torch.channels_last)
        threads = f"{torch.get_num_threads()} ({args.torch_threads or 'torch default'})"
        logger.info("Torch threads %s, precision %s (%s), channels_last %s.", threads, args.resolved_precision,
                    args.precision_reason, "on" if args.channels_last else "off")

    # ----------------------------------------------------------------------------------- loss

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        student = self.accelerator.unwrap_model(model)
        factor = self.args.unsupervised_weight_factor(self.state.global_step, self.state.max_steps)
        unlabeled = inputs.get("unlabeled_pixel_values")
        if self.args.uses_unlabeled_data and self.teacher is not None and unlabeled is not None and factor > 0:
            loss, terms, outputs = self._semi_supervised_loss(model, student, inputs, factor)
        else:
            outputs = model(pixel_values=inputs["pixel_values"])
            terms = student.compute_loss(outputs, inputs["keypoints"], inputs.get("ignore_mask"))
            loss = terms["loss"]
        self._record(terms)
        return (loss, outputs) if return_outputs else loss

    def _semi_supervised_loss(self, model, student, inputs, factor: float):
        num_labeled = inputs["pixel_values"].shape[0]
        weak = inputs["unlabeled_pixel_values"]
        with torch.no_grad(), self.accelerator.autocast():
            teacher_outputs = self.teacher(pixel_values=weak)
        pseudo = self._pseudo_keypoints(teacher_outputs) if self.args.ssl_mode == "semi" else None
        strong = self.strong_view(weak, teacher_outputs.heatmaps, pseudo)
        pixel_values = torch.cat([inputs["pixel_values"], strong.pixel_values.to(inputs["pixel_values"].dtype)])
        outputs = model(pixel_values=pixel_values)
        labeled_outputs = select_images(outputs, slice(0, num_labeled))
        unlabeled_outputs = select_images(outputs, slice(num_labeled, None))
        terms = student.compute_loss(labeled_outputs, inputs["keypoints"], inputs.get("ignore_mask"))
        terms["consistency_loss"] = heatmap_consistency_loss(
            unlabeled_outputs.heatmaps, strong.teacher_heatmaps, strong.frame_mask
        )
        loss = terms["loss"] + factor * self.args.consistency_weight * terms["consistency_loss"]
        if strong.keypoints is not None:
            ignore = uncertain_region_mask(
                strong.teacher_heatmaps, tuple(weak.shape[-2:]),
                self.args.pseudo_ignore_threshold, self.args.pseudo_keypoint_threshold,
            )
            pseudo_terms = student.compute_loss(unlabeled_outputs, strong.keypoints, ignore)
            terms.update({f"pseudo_{name}": value for name, value in pseudo_terms.items()})
            terms["pseudo_people_per_image"] = (strong.keypoints[..., 2] > 0).any(dim=-1).sum() / weak.shape[0]
            loss = loss + factor * self.args.pseudo_label_weight * pseudo_terms["loss"]
        terms["unsupervised_weight_factor"] = torch.tensor(factor)
        return loss, terms, outputs

    @torch.no_grad()
    def _pseudo_keypoints(self, teacher_outputs) -> torch.Tensor:
        """Teacher people on the weak view -> confident keypoints [B, M, K, 3] in weak-view pixels. Logs the
        threshold used, the mean score of all decoded people and of the kept ones."""
        decoded = self.teacher.decode(teacher_outputs)
        threshold = self._pseudo_person_threshold(decoded)
        keypoint_threshold = self.args.pseudo_keypoint_threshold
        kept = pseudo_person_mask(decoded, threshold, keypoint_threshold)
        terms = {"pseudo_person_threshold": torch.as_tensor(threshold, dtype=torch.float32)}
        if decoded.mask.any():
            terms["pseudo_decoded_person_score"] = decoded.scores[decoded.mask].mean()
        if kept.any():
            terms["pseudo_mean_person_score"] = decoded.scores[kept].mean()
        self._record(terms)
        return pack_people(decoded, kept, keypoint_threshold)  # the mask above, not computed again

    def _pseudo_person_threshold(self, decoded) -> float | torch.Tensor:
        """The fixed threshold, or with `pseudo_person_quantile` that quantile of the batch's person scores."""
        if self.args.pseudo_person_quantile is None:
            return self.args.pseudo_person_threshold
        return batch_quantile_threshold(decoded, self.args.pseudo_person_quantile)

    def _record(self, terms: dict[str, torch.Tensor]) -> None:
        """Held until the optimizer step is known to be finite (a skipped step's terms are dropped)."""
        self._step_terms.append({name: value.detach().float() for name, value in terms.items()})

    def _commit_step_terms(self, keep: bool) -> None:
        """Running sums stay on the device (no sync per step); `log` reads them."""
        for terms in self._step_terms if keep else ():
            for name, value in terms.items():
                self._loss_sums[name] = self._loss_sums.get(name, 0.0) + value
                self._loss_counts[name] += 1
        self._step_terms.clear()

    def log(self, logs: dict[str, float], *args, **kwargs) -> None:
        """Adds the mean of every loss term since the last training log, and the skipped-step count."""
        if "loss" in logs and self._loss_counts:
            for name, total in self._loss_sums.items():
                logs[f"train/{name}"] = float(total) / self._loss_counts[name]
            logs["train/skipped_steps"] = self.skipped_steps
            self._loss_sums.clear()
            self._loss_counts.clear()
        super().log(logs, *args, **kwargs)

    # -------------------------------------------------------------------------------- teacher

    def _maybe_build_teacher(self) -> None:
        if not self.args.uses_unlabeled_data or self.teacher is not None:
            return
        if self.state.global_step >= self.args.resolved_burn_in_steps(self.state.max_steps):
            self.teacher = build_teacher(self.accelerator.unwrap_model(self.model))
            logger.info("Burn-in over at step %d: teacher copied from the student.", self.state.global_step)

    def _after_optimizer_step(self) -> None:
        self._last_evaluation = None  # the networks may have moved
        skipped, self._step_was_skipped = self._step_was_skipped, False
        self._commit_step_terms(keep=not skipped)
        if skipped:
            return
        if self.teacher is not None:
            if self._ema is None or self._ema.teacher is not self.teacher:  # built, restored or replaced
                self._ema = EmaPairing(self.teacher, self.accelerator.unwrap_model(self.model))
            self._ema.update(self.args.ema_decay)
        self._maybe_build_teacher()

    # ------------------------------------------------------------------------- numerical faults

    def _snapshot_buffers(self) -> None:
        """At the start of an optimizer step: the student's buffers (BatchNorm statistics), to undo a bad step;
        one foreach copy into tensors kept from the first step (the buffers are updated in place)."""
        if self._buffer_snapshot is None:
            live = [buffer.detach() for buffer in self.accelerator.unwrap_model(self.model).buffers()]
            self._buffer_snapshot = (live, [buffer.clone() for buffer in live])
        elif self._buffer_snapshot[0]:
            torch._foreach_copy_(self._buffer_snapshot[1], self._buffer_snapshot[0])

    def _get_grad_norm(self, model, grad_norm=None):
        """transformers' gradient norm of the step, kept for the non-finite guard (which need not compute it again)."""
        self._gradient_norm = super()._get_grad_norm(model, grad_norm=grad_norm)
        return self._gradient_norm

    def _skip_non_finite_step(self) -> None:
        """Before the optimizer step: a step with non-finite gradients moves nothing (weights, BatchNorm
        statistics, optimizer, teacher); `max_consecutive_nonfinite_steps` of them in a row stop the run."""
        norm, self._gradient_norm = self._gradient_norm, None
        if norm is None:  # not from the Trainer's loop
            norm = torch.nn.utils.get_total_norm([p.grad for p in self.model.parameters() if p.grad is not None])
        if torch.isfinite(torch.as_tensor(norm)):
            self._consecutive_skipped_steps = 0
            return
        self.model.zero_grad(set_to_none=True)
        live, saved = self._buffer_snapshot
        if live:
            torch._foreach_copy_(live, saved)
        self.skipped_steps += 1
        self._consecutive_skipped_steps += 1
        self._step_was_skipped = True
        step = self.state.global_step + 1
        logger.warning("Step %d: non-finite loss or gradients, step skipped (%d so far, %d in a row).",
                       step, self.skipped_steps, self._consecutive_skipped_steps)
        limit = self.args.max_consecutive_nonfinite_steps
        if limit and self._consecutive_skipped_steps >= limit:
            self._stop_after_non_finite_steps(step)

    def _stop_after_non_finite_steps(self, step: int) -> None:
        """Save the last good state (nothing moved since) and raise `NonFiniteTrainingError`."""
        first_bad = step - self._consecutive_skipped_steps + 1
        self._save_checkpoint(self.model, trial=None)
        folder = os.path.join(self.args.output_dir, f"{PREFIX_CHECKPOINT_DIR}-{self.state.global_step}")
        raise NonFiniteTrainingError(
            f"Training stopped at step {step}: the loss or gradients were not finite in steps {first_bad} to {step} "
            f"({self._consecutive_skipped_steps} in a row, max_consecutive_nonfinite_steps="
            f"{self.args.max_consecutive_nonfinite_steps}). Student, teacher and optimizer have not moved since step "
            f"{first_bad - 1}, the last good one; they are saved in {folder} (with the scheduler and data position). "
            f"Check the data and the learning rate, then resume from it."
        )

    # ---------------------------------------------------------------------------- checkpoints

    def train(self, resume_from_checkpoint: str | bool | None = None, *args, **kwargs):
        """`Trainer.train` that resumes only from complete checkpoints (see `resolve_checkpoint`)."""
        result = super().train(self.resolve_checkpoint(resume_from_checkpoint), *args, **kwargs)
        if self.args.load_best_model_at_end:
            self._last_evaluation = None  # the best checkpoint's weights replaced the evaluated ones
        return result

    def resolve_checkpoint(self, resume_from_checkpoint: str | bool | None) -> str | None:
        """The checkpoint folder to resume from, or None to start fresh.

        "latest" takes the newest complete checkpoint in `output_dir` and starts fresh (with a log line) when
        there is none yet, so a preemptible job can pass it from its first start on; True does the same but
        raises when there is none, as transformers does. A folder left half-written by a crash is never
        picked (see `latest_complete_checkpoint`); a path must be a complete checkpoint.
        """
        if resume_from_checkpoint is None or resume_from_checkpoint is False:
            return None
        if resume_from_checkpoint is True or resume_from_checkpoint == "latest":
            latest = latest_complete_checkpoint(self.args.output_dir)
            if latest is not None:
                logger.info("Resuming from %s, the newest complete checkpoint.", latest)
            elif resume_from_checkpoint == "latest":
                logger.info("resume_from_checkpoint='latest': no complete checkpoint in %s yet, starting fresh.",
                            self.args.output_dir)
            else:
                found = [folder.name for _, folder in checkpoint_folders(self.args.output_dir)]
                raise ValueError(
                    f"resume_from_checkpoint=True: no complete checkpoint in {self.args.output_dir} (incomplete "
                    f"ones: {found or 'none'}); pass 'latest' to start fresh when there is none."
                )
            return latest
        require_complete_checkpoint(resume_from_checkpoint)
        return str(resume_from_checkpoint)

    def _save_checkpoint(self, model, trial) -> None:
        """transformers' checkpoint plus the teacher, marked complete last; older ones rotate out only then."""
        run_dir = self._get_output_dir(trial=trial)
        folder = os.path.join(run_dir, f"{PREFIX_CHECKPOINT_DIR}-{self.state.global_step}")
        if self.args.should_save:
            begin_checkpoint(folder)
        self.accelerator.wait_for_everyone()
        limit = self.args.save_total_limit
        self.args.save_total_limit = None  # transformers would rotate before the new checkpoint is complete
        try:
            with _no_transformers_progress_bars():
                super()._save_checkpoint(model, trial)
                if self.teacher is not None and self.args.should_save:
                    self._save_teacher(os.path.join(folder, TEACHER_DIR))
        finally:
            self.args.save_total_limit = limit
        self.accelerator.wait_for_everyone()  # every rank's RNG state is on disk
        if self.args.should_save:
            record = {"global_step": self.state.global_step, "skipped_steps": self.skipped_steps}
            mark_checkpoint_complete(folder, record)
            rotate_complete_checkpoints(run_dir, limit, keep=(folder, self.state.best_model_checkpoint))
            rotate_predictions(self.args.output_dir)

    def _save_teacher(self, folder: str) -> None:
        """The teacher as a model folder of its own, with the image processor as beside the student, so that
        `semipose evaluate --model checkpoint-N/teacher` and `from_pretrained` take it."""
        self.teacher.save_pretrained(folder)
        if self.processing_class is not None:
            self.processing_class.save_pretrained(folder)

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model=None) -> None:
        super()._load_from_checkpoint(resume_from_checkpoint, model)
        weights = os.path.join(resume_from_checkpoint, TEACHER_DIR, "model.safetensors")
        if os.path.isfile(weights):
            self.teacher = build_teacher(model if model is not None else self.model)
            self.teacher.load_state_dict(load_file(weights))
            logger.info("Teacher restored from %s.", weights)
        if is_complete_checkpoint(resume_from_checkpoint):
            self.skipped_steps = read_checkpoint_record(resume_from_checkpoint).get("skipped_steps", 0)

    # ---------------------------------------------------------------------------------- data

    def get_train_dataloader(self) -> DataLoader:
        """The Trainer's loader over `SeededSamples`: augmentation independent of workers, ranks and resumes."""
        if self.train_dataset is None:
            raise ValueError("SemiPoseTrainer: training requires a train_dataset.")
        return self._get_dataloader(
            dataset=SeededSamples(self.train_dataset, self.args.seed),
            description="Training",
            batch_size=self._train_batch_size,
            sampler_fn=self._get_train_sampler,
            is_training=True,
        )

    def _run_epoch(self, *args, epoch, train_dataloader, **kwargs):
        if isinstance(getattr(train_dataloader, "dataset", None), SeededSamples):
            train_dataloader.dataset.set_epoch(epoch)
        return super()._run_epoch(*args, epoch=epoch, train_dataloader=train_dataloader, **kwargs)

    # ----------------------------------------------------------------------------- evaluation

    def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix: str = "eval") -> dict[str, float]:
        """OKS AP of the student and (once it exists) the teacher, plus the precision and recall of the
        teacher's filtered people (the pseudo labels) against validation ground truth at OKS 0.5.

        A call after training, at the step of the training loop's last evaluation, on the same rows and
        teacher (the main job's final evaluation) logs that evaluation's metrics again instead of
        predicting everything twice.
        """
        dataset = eval_dataset if eval_dataset is not None else self.eval_dataset
        if dataset is None:
            raise ValueError("evaluate() needs an eval_dataset of validation rows.")
        occasion = (dataset, self.teacher, metric_key_prefix, self.state.global_step)
        if self._last_evaluation is not None and _same_occasion(self._last_evaluation[0], occasion):
            metrics = dict(self._last_evaluation[1])
        else:
            metrics = self._evaluate_networks(dataset, metric_key_prefix)
            self._last_evaluation = (occasion, dict(metrics)) if self.is_in_train else None
        self.log(metrics)
        self.control = self.callback_handler.on_evaluate(self.args, self.state, self.control, metrics)
        return metrics

    def _evaluate_networks(self, dataset, metric_key_prefix: str) -> dict[str, float]:
        """Predict `dataset` with the student and the teacher and score both (the work `evaluate` may reuse)."""
        ground_truth = ground_truth_from_rows(dataset.remove_columns("image"), self.skeleton)
        student_estimates = self._pose_estimates(self.accelerator.unwrap_model(self.model), dataset)
        metrics = self._score(student_estimates, ground_truth, write_predictions=self.args.should_save)
        if self.teacher is not None:
            teacher_estimates = self._pose_estimates(self.teacher, dataset)
            teacher_metrics = self._score(teacher_estimates, ground_truth, write_predictions=False)
            metrics.update({f"teacher_{name}": value for name, value in teacher_metrics.items()})
            quality = pseudo_label_quality(
                ground_truth, people_from_pose_estimates(*teacher_estimates), self.skeleton,
                person_threshold=self.args.pseudo_person_threshold,
                keypoint_threshold=self.args.pseudo_keypoint_threshold,
            )
            metrics.update({f"pseudo_{name}": value for name, value in quality.items()})
        metrics = prefixed_metrics(metrics, metric_key_prefix)
        metrics[f"{metric_key_prefix}_step"] = self.state.global_step
        return metrics

    def _score(self, estimates, ground_truth, write_predictions: bool) -> dict[str, float]:
        """OKS stats of one network's pose estimates (and how many images they cover)."""
        image_ids, pose_estimates = estimates
        evaluator = KeypointEvaluator(ground_truth, self.skeleton)
        add_pose_estimates(evaluator, image_ids, pose_estimates)
        stats = {**evaluator.compute(), "num_images": len(image_ids)}
        if write_predictions:
            self._write_predictions(evaluator)
        return stats

    @torch.no_grad()
    def _pose_estimates(self, model, dataset) -> tuple[list[int], list[dict[str, torch.Tensor]]]:
        """Image ids and their people from `estimate_people` (the path `PoseEstimator` runs: flip test per the model
        config, original pixels clipped into the image, on the CPU), all ranks.

        The network is scored as saved (`network_as_saved`): in fp32 and the default memory format, as
        `from_pretrained` loads it everywhere else, so `eval_AP` is the AP users get (under autocast, a memorised
        model scored 0.395 here and 0.358 through `semipose evaluate --model`)."""
        loader = self._evaluation_loader(dataset)
        network = network_as_saved(model)
        found = []
        for batch in loader:
            sizes = batch["target_sizes"].tolist()
            results = estimate_people(network, self.processing_class, batch["pixel_values"], sizes)
            batch_found = list(zip(batch["image_ids"].tolist(), results))
            # per batch, so the padding that evens out the last batch across ranks is dropped
            found.extend(self.accelerator.gather_for_metrics(batch_found, use_gather_object=True))
        return [image_id for image_id, _ in found], [people for _, people in found]

    def _evaluation_loader(self, dataset) -> DataLoader:
        """The prepared (sharded) loader of `dataset`, built once: accelerate keeps every loader it prepares."""
        if self._evaluation_dataset is not dataset:
            loader = DataLoader(
                dataset,
                batch_size=self.args.per_device_eval_batch_size,
                collate_fn=EvaluationCollator(self.processing_class),
                num_workers=self.args.dataloader_num_workers,
            )
            self._evaluation_dataset = dataset
            self._evaluation_loader_prepared = self.accelerator.prepare(loader)
        return self._evaluation_loader_prepared

    def _write_predictions(self, evaluator) -> None:
        path = os.path.join(self.args.output_dir, PREDICTIONS_FILE.format(step=self.state.global_step))
        os.makedirs(self.args.output_dir, exist_ok=True)
        with open(path, "w") as handle:
            json.dump(evaluator.results_json(), handle)
        rotate_predictions(self.args.output_dir)

    # ---------------------------------------------------------------------------- final model

    def select_final_model(self) -> tuple[str, torch.nn.Module]:
        """The network to save, by `args.final_model`, fixed in advance: "auto" is the teacher when one exists (the
        usual choice in semi-supervised detection), else the student. Never chosen by AP on the split it is scored
        on; `evaluate` reports both networks."""
        student = self.accelerator.unwrap_model(self.model)
        choice = self.args.final_model
        if choice == "auto":
            choice = "student" if self.teacher is None else "teacher"
        if choice == "teacher" and self.teacher is None:
            raise ValueError("final_model='teacher' but no teacher exists (supervised mode, or burn-in not over).")
        return choice, (self.teacher if choice == "teacher" else student)


def network_as_saved(model: torch.nn.Module) -> torch.nn.Module:
    """A copy of `model` in eval mode that computes, to the last bit, what its saved weights compute once loaded.

    Two things the trainer gives a network are not saved with it, and both change its outputs, at least in the
    last bits, which the decoder's peak snapping and person ranking carry into the AP: the channels_last memory
    format (`--channels_last`: the convolutions run other kernels), and accelerate's autocast wrapper around a
    mixed-precision run's `forward` (bf16), an instance attribute that `unwrap_model` keeps and a deep copy such
    as the teacher inherits.

    Example:

    ```python
    >>> network = torch.nn.Conv2d(3, 4, 3).to(memory_format=torch.channels_last)
    >>> network_as_saved(network).weight.is_contiguous(), network.weight.is_contiguous()
    (True, False)

    ```
    """
    network = copy.deepcopy(model)
    for wrapper in ("forward", "_original_forward"):  # the class's own forward, as after from_pretrained
        network.__dict__.pop(wrapper, None)
    return network.to(memory_format=torch.contiguous_format).eval()


@contextmanager
def _no_transformers_progress_bars() -> Iterator[None]:
    """transformers' own bars ("Writing model shards") off: one per checkpoint puts escape codes in log files."""
    previous_hook = transformers_logging.set_tqdm_hook(
        lambda factory, args, kwargs: factory(*args, **{**kwargs, "disable": True})
    )
    try:
        yield
    finally:
        transformers_logging.set_tqdm_hook(previous_hook)


def _same_occasion(first: tuple, second: tuple) -> bool:
    """Two (dataset, teacher, prefix, step) evaluations of the same objects (by identity) at the same step."""
    return first[0] is second[0] and first[1] is second[1] and first[2:] == second[2:]


class _TeacherCallback(TrainerCallback):
    """Hooks the teacher into the Trainer's loop: build after burn-in, EMA after every optimizer step; and
    the non-finite guard: snapshot the buffers when a step begins, skip the step before the optimizer runs."""

    def __init__(self, trainer: SemiPoseTrainer):
        self.trainer = trainer

    def on_train_begin(self, args, state, control, **kwargs):
        self.trainer._maybe_build_teacher()

    def on_step_begin(self, args, state, control, **kwargs):
        self.trainer._snapshot_buffers()

    def on_pre_optimizer_step(self, args, state, control, **kwargs):
        self.trainer._skip_non_finite_step()

    def on_step_end(self, args, state, control, **kwargs):
        self.trainer._after_optimizer_step()
