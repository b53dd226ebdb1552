"""The main job's recipe: its arguments, and the data, model, image processor and trainer they describe.

`examples/run_semi_pose.py` tells the story of one run (arguments, data, model, trainer, train,
evaluate, save) by calling these functions; the benchmarks and the training tests build their
trainers here too, so they time and test the pipeline users run. Images are decoded in the
transforms (`lazy_images`), so a training image gone missing or corrupt is skipped
(`SkipUnreadable`), not fatal; the validation images are all checked before training.

Illustration (not run: needs a prepared dataset folder, and trains):

```python
model_args, data_args = ModelArguments(), DataArguments(dataset_dir="data/coco_semi", dataset_config="ratio_10")
training_args = SemiPoseTrainingArguments(**DEFAULT_TRAINING_ARGUMENTS)
data = build_training_data(model_args, data_args, training_args)
model = build_model(model_args, data.skeleton, seed=training_args.seed)
trainer = build_trainer(model, build_image_processor(model_args, model.config), data, data_args, training_args)
trainer.train()
```
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import PIL.Image
from datasets import Dataset as HFDataset
from datasets import concatenate_datasets
from torch.utils.data import Dataset
from transformers import HfArgumentParser, PreTrainedConfig, PreTrainedModel, set_seed

from ..data.collator import PoseDataCollator
from ..data.dataset_folder import extra_unlabeled_dataset, load_pose_dataset, read_dataset_skeleton
from ..data.semi_supervised import SemiSupervisedCollator, SemiSupervisedDataset
from ..data.synthetic import SyntheticConfig, prepare_synthetic_dataset, synthetic_dataset_dir
from ..data.transforms import AugmentationConfig, LabeledTransform, UnlabeledTransform
from ..data.unreadable import SkipUnreadable, check_images_readable, first_readable_images, lazy_images
from ..data.video_frames import DEFAULT_VIDEO_EVERY, VideoSampling
from ..modeling import MODEL_FAMILIES, PoseImageProcessor
from ..skeletons import SKELETONS, Skeleton
from .arguments import SemiPoseTrainingArguments
from .data_health import DEFAULT_MAX_UNREADABLE_FRACTION
from .trainer import SemiPoseTrainer

logger = logging.getLogger(__name__)

LABELED_AUGMENTATIONS = ("none", "light", "strong", "higherhrnet")
LOGGED_UNLABELED_IMAGES = 8

DEFAULT_TRAINING_ARGUMENTS = {
    "output_dir": "outputs/run_semi_pose",
    "max_steps": 2500,
    "per_device_train_batch_size": 16,
    "per_device_eval_batch_size": 32,
    "learning_rate": 2e-3,
    "lr_scheduler_type": "cosine",
    "warmup_steps": 50,
    "weight_decay": 1e-4,
    "logging_steps": 50,
    "eval_strategy": "steps",
    "eval_steps": 500,
    "save_strategy": "steps",
    "save_steps": 500,
    "save_total_limit": 2,
    "report_to": "tensorboard",
    "dataloader_num_workers": 2,
    "burn_in_ratio": 0.4,
    "torch_threads": "auto",
    "precision": "auto",
    "channels_last": True,
}
"""The main job's defaults for `SemiPoseTrainingArguments` (command-line flags override them)."""


@dataclass
class ModelArguments:
    """Which network to train."""

    model_family: str = field(
        default="center_offset", metadata={"help": "The network's family.", "choices": sorted(MODEL_FAMILIES)}
    )
    backbone: str = field(default="regnetx_002", metadata={"help": "Any timm model name."})
    backbone_weights: str | None = field(
        default=None, metadata={"help": "'timm' for timm's pretrained weights (network), or a local weights file."}
    )
    neck_channels: int = field(default=64, metadata={"help": "Channels of the fused stride-4 feature map."})
    output_stride: int = field(default=4, metadata={"help": "4, or 2 for a HigherHRNet-style output."})
    input_size: int = field(default=64, metadata={"help": "Side of the square training input, in pixels."})
    heatmap_sigma: float = field(
        default=1.0,
        metadata={"help": "Gaussian target sigma in heatmap pixels: 1.0 suits 64-128 px inputs, 2.0 suits 512 px."},
    )
    max_individuals: int | None = field(
        default=None,
        metadata={"help": "Most animals or people in any image (1 for a single animal), as SLEAP and DeepLabCut ask: "
                          "the decoder keeps this many best-scored ones, for pseudo labels, evaluation and "
                          "prediction (the config's max_people); default: the config's (30)."},
    )
    config_overrides: str | None = field(
        default=None,
        metadata={"help": "Config fields to override, e.g. 'offset_loss_weight=0.3,center_threshold=0.05'."},
    )
    flip_test: bool | None = field(
        default=None,
        metadata={"help": "Evaluate and predict with the mirrored image too (the config's flip_test); default: on "
                          "for a --dataset_dir (real photos, the published protocol), off for the synthetic data."},
    )


@dataclass
class DataArguments:
    """Where the images come from."""

    dataset_dir: str | None = field(
        default=None, metadata={"help": "A dataset folder from datasets_scripts/; default: built-in synthetic data."}
    )
    dataset_config: str = field(default="ratio_5", metadata={"help": "ratio_1 | ratio_5 | ratio_10 | full."})
    extra_unlabeled: list[str] | None = field(
        default=None,
        metadata={"help": "Image folders, video files and folders of videos whose images (and sampled frames) join "
                          "the unlabeled split of this run, as the converters' --extra-unlabeled does; frames are "
                          "extracted once into --cache_dir.", "nargs": "+"},
    )
    video_every: int | None = field(
        default=None, metadata={"help": f"Take every N-th frame of each extra video (default {DEFAULT_VIDEO_EVERY})."}
    )
    video_frames: int | None = field(
        default=None, metadata={"help": "Take K frames of each extra video instead, one per even stride (seeded)."}
    )
    labeled_augmentation: str = field(
        default="light",
        metadata={"help": "Labeled views, see AugmentationConfig.", "choices": LABELED_AUGMENTATIONS},
    )
    synthetic_skeleton: str = field(
        default="crowdpose", metadata={"help": "Skeleton of the synthetic people.", "choices": sorted(SKELETONS)}
    )
    synthetic_image_size: int = field(default=64, metadata={"help": "Side of the synthetic images."})
    synthetic_num_train: int = field(default=1000, metadata={"help": "Synthetic training images."})
    synthetic_num_val: int = field(default=300, metadata={"help": "Synthetic validation images."})
    synthetic_min_people: int = field(default=1, metadata={"help": "Fewest people per synthetic image."})
    synthetic_max_people: int = field(default=2, metadata={"help": "Most people per synthetic image."})
    synthetic_min_height: float = field(default=0.5, metadata={"help": "Smallest person, fraction of image."})
    synthetic_max_height: float = field(default=0.95, metadata={"help": "Tallest person, fraction of image."})
    synthetic_clutter: float = field(default=0.0, metadata={"help": "Background clutter in [0, 1]."})
    synthetic_max_yaw: float = field(
        default=60.0, metadata={"help": "Largest turn away from the camera (180: also seen from behind)."}
    )
    cache_dir: str = field(
        default=os.path.join(Path.home(), ".cache", "semipose"), metadata={"help": "Where synthetic data is cached."}
    )
    datasets_cache_dir: str | None = field(
        default=None, metadata={"help": "The `datasets` cache for the loaded splits; default: the library's own."}
    )
    max_unreadable_fraction: float = field(
        default=DEFAULT_MAX_UNREADABLE_FRACTION,
        metadata={"help": "Unreadable training images are skipped (warned, counted in the logs) until more than "
                          "this fraction of them is unreadable, which stops the run."},
    )


@dataclass
class TrainingData:
    """What the main job reads from its dataset folder.

    Attributes:
        folder: the dataset folder.
        skeleton: its skeleton (from the folder's metadata).
        train_dataset: the labeled stream (supervised mode) or the labeled + unlabeled pairs.
        data_collator: collates `train_dataset` items into a batch.
        validation: the validation rows, images undecoded (every one checked readable).
        logged_unlabeled_images: the first readable unlabeled images, on which TensorBoard shows the
            teacher's pseudo labels (empty in supervised mode).
    """

    folder: Path
    skeleton: Skeleton
    train_dataset: Dataset
    data_collator: Callable
    validation: HFDataset
    logged_unlabeled_images: list[PIL.Image.Image]


def parse_arguments(
    argv: Sequence[str] | None = None,
) -> tuple[ModelArguments, DataArguments, SemiPoseTrainingArguments]:
    """The main job's three argument dataclasses from `argv` (default: the command line)."""
    parser = HfArgumentParser((ModelArguments, DataArguments, SemiPoseTrainingArguments))
    parser.set_defaults(**DEFAULT_TRAINING_ARGUMENTS)
    model_args, data_args, training_args = parser.parse_args_into_dataclasses(args=argv)
    if model_args.flip_test is None:
        model_args.flip_test = data_args.dataset_dir is not None
    return model_args, data_args, training_args


def resolve_dataset_folder(data_args: DataArguments, training_args: SemiPoseTrainingArguments) -> Path:
    """The dataset folder to train on; generates the synthetic one (once, on the main process) if none is given."""
    if data_args.dataset_dir is not None:
        return Path(data_args.dataset_dir)
    config = SyntheticConfig(
        image_size=data_args.synthetic_image_size,
        people=(data_args.synthetic_min_people, data_args.synthetic_max_people),
        height_range=(data_args.synthetic_min_height, data_args.synthetic_max_height),
        clutter=data_args.synthetic_clutter,
        max_yaw=data_args.synthetic_max_yaw,
        skeleton=data_args.synthetic_skeleton,
        num_train=data_args.synthetic_num_train,
        num_val=data_args.synthetic_num_val,
    )
    folder = synthetic_dataset_dir(data_args.cache_dir, config)
    with training_args.main_process_first(desc="synthetic dataset"):
        if not folder.is_dir():
            prepare_synthetic_dataset(folder, config)
    return folder


def build_training_data(
    model_args: ModelArguments, data_args: DataArguments, training_args: SemiPoseTrainingArguments
) -> TrainingData:
    """The training stream(s) with their transforms and collator, and the validation rows, checked readable."""
    folder = resolve_dataset_folder(data_args, training_args)
    skeleton = read_dataset_skeleton(folder)

    def split(name: str) -> HFDataset:
        rows = load_pose_dataset(folder, data_args.dataset_config, name, cache_dir=data_args.datasets_cache_dir)
        return lazy_images(rows)

    labeled, validation = split("labeled"), split("validation")
    if model_args.max_individuals is not None:
        for name, rows in (("labeled", labeled), ("validation", validation)):
            check_max_individuals(rows, model_args.max_individuals, f"{folder} ({name})")
    check_images_readable(validation, "validation")  # evaluation needs all of them: fail now, not hours later
    augmentation = getattr(AugmentationConfig, data_args.labeled_augmentation)()
    labeled_transform = LabeledTransform(model_args.input_size, augmentation, skeleton=skeleton)
    labeled = SkipUnreadable(labeled.with_transform(labeled_transform))
    labeled_collator = PoseDataCollator()
    if not training_args.uses_unlabeled_data:
        return TrainingData(folder, skeleton, labeled, labeled_collator, validation, [])
    unlabeled = split("unlabeled")
    if data_args.extra_unlabeled:
        extra = _extra_unlabeled(data_args, training_args, split("labeled"), unlabeled, validation, skeleton=skeleton)
        unlabeled = concatenate_datasets([unlabeled, extra])
    logged_unlabeled_images = first_readable_images(unlabeled, LOGGED_UNLABELED_IMAGES)
    unlabeled = SkipUnreadable(unlabeled.with_transform(UnlabeledTransform(model_args.input_size)))
    pairs = SemiSupervisedDataset(labeled, unlabeled, training_args.unlabeled_ratio)
    collator = SemiSupervisedCollator(labeled_collator, PoseDataCollator())
    return TrainingData(folder, skeleton, pairs, collator, validation, logged_unlabeled_images)


def _extra_unlabeled(data_args, training_args, *splits: HFDataset, skeleton: Skeleton) -> HFDataset:
    """The rows of `--extra_unlabeled`, ids after those of `splits`, frames extracted by the main process first."""
    sampling = VideoSampling(every=data_args.video_every, frames=data_args.video_frames, seed=training_args.seed)
    first_id = 1 + max((max(split["image_id"], default=0) for split in splits), default=0)
    with training_args.main_process_first(desc="extra unlabeled frames"):
        rows = extra_unlabeled_dataset(data_args.extra_unlabeled, sampling, data_args.cache_dir, first_id,
                                       skeleton.num_keypoints)
    logger.info("Extra unlabeled: %d images and video frames from %s.", len(rows), data_args.extra_unlabeled)
    return lazy_images(rows)


def check_max_individuals(rows: HFDataset, max_individuals: int, source: str) -> None:
    """ValueError naming the first image of `rows` with more labeled individuals than `max_individuals`."""
    for index, counts in enumerate(rows["num_keypoints"]):
        labeled = sum(1 for count in counts if count > 0)
        if labeled > max_individuals:
            row = rows.select_columns(["image_id", "file_name"])[index]
            raise ValueError(
                f"--max_individuals {max_individuals}: image {row['image_id']} ({row['file_name']}) of {source} has "
                f"{labeled} labeled individuals; expected at most {max_individuals}."
            )


def build_model(model_args: ModelArguments, skeleton: Skeleton, seed: int) -> PreTrainedModel:
    """A new network of `model_args.model_family` for `skeleton`, initialized from `seed`.

    Seeds every RNG first: the Trainer seeds too, but only in its constructor, after the network exists.
    """
    if model_args.model_family not in MODEL_FAMILIES:
        raise ValueError(f"--model_family must be one of {sorted(MODEL_FAMILIES)}, got {model_args.model_family!r}.")
    set_seed(seed)
    config_class, model_class = MODEL_FAMILIES[model_args.model_family]
    config = config_class(
        backbone=model_args.backbone,
        neck_channels=model_args.neck_channels,
        output_stride=model_args.output_stride,
        heatmap_sigma=model_args.heatmap_sigma,
        flip_test=bool(model_args.flip_test) and skeleton.can_flip,
        **skeleton.config_fields(),
    )
    if model_args.max_individuals is not None:
        if model_args.max_individuals < 1:
            raise ValueError(f"--max_individuals must be at least 1, got {model_args.max_individuals}.")
        config.max_people = model_args.max_individuals
    if model_args.flip_test and not skeleton.can_flip:
        logger.warning("Flip test off: the %r skeleton is never mirrored (see its flip_pairs).", skeleton.name)
    if model_args.config_overrides:
        try:
            config.update_from_string(model_args.config_overrides)
        except ValueError as error:
            raise ValueError(f"--config_overrides {model_args.config_overrides!r}: {error}.") from error
        config.check_skeleton_facts()
    pretrained = model_args.backbone_weights
    return model_class(config, pretrained_backbone=True if pretrained == "timm" else (pretrained or False))


def build_image_processor(model_args: ModelArguments, config: PreTrainedConfig) -> PoseImageProcessor:
    """The processor that places images as the training views do and decodes as the model's `config` does."""
    return PoseImageProcessor(
        size=model_args.input_size, output_stride=config.output_stride, grouping_order=config.grouping_order
    )


def build_trainer(
    model: PreTrainedModel,
    image_processor: PoseImageProcessor,
    data: TrainingData,
    data_args: DataArguments,
    training_args: SemiPoseTrainingArguments,
) -> SemiPoseTrainer:
    """The `SemiPoseTrainer` of `model` on `data`, evaluating on its validation rows with `image_processor`."""
    return SemiPoseTrainer(
        model=model,
        args=training_args,
        train_dataset=data.train_dataset,
        eval_dataset=data.validation,
        data_collator=data.data_collator,
        processing_class=image_processor,
        skeleton=data.skeleton,
        max_unreadable_fraction=data_args.max_unreadable_fraction,
    )
