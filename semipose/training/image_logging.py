"""TensorBoard image panels at every evaluation: what the teacher would teach, and what the student predicts.

Two fixed sets of images are drawn each time `SemiPoseTrainer.evaluate` runs, so the panels of
successive steps are comparable with TensorBoard's step slider:

- `pseudo_labels/teacher_on_unlabeled`: the EMA teacher's people on unlabeled images, filtered as
  pseudo labels are (person score >= `pseudo_person_threshold`, keypoints drawn from
  `pseudo_keypoint_threshold`); logged once the teacher exists (after burn-in). The teacher sees
  the image processor's placement of each image, not the random weak view of training.
- `predictions/student_on_validation`: the student's people on validation images (keypoints
  above 0.3), as `semipose predict` draws them.

Images are enlarged to `min_size` first (nearest), so 64-pixel synthetic images stay readable.

Illustration (not run: needs a trainer and a dataset folder):

```python
trainer = SemiPoseTrainer(model=model, args=args, ...)
unlabeled_images = [row["image"] for row in load_pose_dataset(folder, "ratio_5", "unlabeled").select(range(8))]
validation_images = [row["image"] for row in validation.select(range(8))]
trainer.add_callback(ImageLoggingCallback(trainer, unlabeled_images, validation_images))
```
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import PIL.Image
from torch.utils.tensorboard import SummaryWriter
from transformers import TrainerCallback
from transformers.integrations import TensorBoardCallback

from ..inference import draw_predictions, keep_confident, predict_people, to_rgb
from ..visualization import enlarge, make_grid

TEACHER_TAG = "pseudo_labels/teacher_on_unlabeled"
STUDENT_TAG = "predictions/student_on_validation"
PREDICTION_KEYPOINT_THRESHOLD = 0.3


class ImageLoggingCallback(TrainerCallback):
    """On every evaluation (main process only), write the teacher and student image panels to TensorBoard.

    Args:
        trainer: the `SemiPoseTrainer` whose student (`trainer.model`), teacher (`trainer.teacher`),
            image processor (`trainer.processing_class`) and skeleton are drawn.
        unlabeled_images: PIL images the teacher's pseudo labels are drawn on.
        validation_images: PIL images the student's predictions are drawn on.
        columns: images per row of a panel.
        min_size: smaller images are enlarged until their longer side reaches it.
        log_dir: where the event file goes; by default the run folder of the Trainer's TensorBoard
            callback (so panels sit beside the scalars), else `$TENSORBOARD_LOGGING_DIR`, else
            `args.logging_dir` (transformers < 5), else `<output_dir>/runs/images`.
    """

    def __init__(
        self, trainer, unlabeled_images: Sequence[PIL.Image.Image], validation_images: Sequence[PIL.Image.Image],
        *, columns: int = 4, min_size: int = 256, log_dir: str | None = None,
    ):
        if not unlabeled_images and not validation_images:
            raise ValueError("ImageLoggingCallback needs unlabeled or validation images to draw, got neither.")
        self.trainer = trainer
        self.unlabeled_images = [enlarge(to_rgb(image), min_size) for image in unlabeled_images]
        self.validation_images = [enlarge(to_rgb(image), min_size) for image in validation_images]
        self.columns = columns
        self.log_dir = log_dir
        self.writer: SummaryWriter | None = None

    def on_evaluate(self, args, state, control, **kwargs):
        if not state.is_world_process_zero:
            return
        writer = self._writer(args)
        student = self.trainer.accelerator.unwrap_model(self.trainer.model)
        if self.validation_images:
            panel = self._panel(student, self.validation_images, 0.0, PREDICTION_KEYPOINT_THRESHOLD)
            writer.add_image(STUDENT_TAG, panel, state.global_step, dataformats="HWC")
        if self.unlabeled_images and self.trainer.teacher is not None:
            panel = self._panel(self.trainer.teacher, self.unlabeled_images,
                                args.pseudo_person_threshold, args.pseudo_keypoint_threshold)
            writer.add_image(TEACHER_TAG, panel, state.global_step, dataformats="HWC")
        writer.flush()

    def on_train_end(self, args, state, control, **kwargs):
        if self.writer is not None:
            self.writer.close()
            self.writer = None

    def _panel(
        self, model, images: list[PIL.Image.Image], person_threshold: float, keypoint_threshold: float
    ) -> np.ndarray:
        """`[H, W, 3]` uint8 grid of `images` with the confident people of `model` drawn."""
        people = predict_people(model, self.trainer.processing_class, images)
        people = [keep_confident({name: value.float().cpu() for name, value in found.items()}, person_threshold)
                  for found in people]
        drawn = draw_predictions(images, people, self.trainer.skeleton, threshold=keypoint_threshold)
        return np.asarray(make_grid(drawn, columns=self.columns))

    def _writer(self, args) -> SummaryWriter:
        if self.writer is None:
            self.writer = SummaryWriter(log_dir=self.log_dir or self._default_log_dir(args))
        return self.writer

    def _default_log_dir(self, args) -> str:
        for callback in self.trainer.callback_handler.callbacks:
            if isinstance(callback, TensorBoardCallback) and callback.logging_dir:
                return callback.logging_dir
        return (os.getenv("TENSORBOARD_LOGGING_DIR") or getattr(args, "logging_dir", None)
                or os.path.join(args.output_dir, "runs", "images"))
