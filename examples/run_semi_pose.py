"""Semi-supervised training of a detector-free multi-person pose estimator: the main job of semipose.

    accelerate launch examples/run_semi_pose.py                       # built-in synthetic data, CPU is fine
    accelerate launch examples/run_semi_pose.py --dataset_dir data/coco_semi --dataset_config ratio_10 \
        --model_family associative_embedding --backbone hrnet_w32 --input_size 512 --bf16
    accelerate launch --multi_gpu --num_processes 2 examples/run_semi_pose.py --use_cpu

Reads top to bottom: arguments, data, model, trainer, train, evaluate, save (model, image processor,
model card, a picture of predictions), optionally push to the Hub. With no `--dataset_dir` it
generates the synthetic dataset once into a cache folder and trains on it.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from huggingface_hub import ModelCard
from transformers import HfArgumentParser, set_seed

from semipose.data.collator import PoseDataCollator
from semipose.data.dataset_folder import load_pose_dataset, read_dataset_metadata
from semipose.data.semi_supervised import SemiSupervisedCollator, SemiSupervisedDataset
from semipose.data.synthetic import SyntheticConfig, prepare_synthetic_dataset, synthetic_dataset_dir
from semipose.data.transforms import AugmentationConfig, LabeledTransform, UnlabeledTransform
from semipose.data.unreadable import SkipUnreadable, check_images_readable, first_readable_images, lazy_images
from semipose.model_card import write_model_card
from semipose.modeling import MODEL_FAMILIES, PoseImageProcessor
from semipose.training import SemiPoseTrainer, SemiPoseTrainingArguments
from semipose.training.data_health import DEFAULT_MAX_UNREADABLE_FRACTION
from semipose.training.image_logging import ImageLoggingCallback
from semipose.inference import save_prediction_grid

logger = logging.getLogger(__name__)

LABELED_AUGMENTATIONS = ("none", "light", "strong", "higherhrnet")

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
}


@dataclass
class ModelArguments:
    """Which network to train."""

    model_family: str = field(
        default="center_offset", metadata={"help": f"One of {sorted(MODEL_FAMILIES)}."}
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
    config_overrides: str | None = field(
        default=None,
        metadata={"help": "Config fields to override, e.g. 'offset_loss_weight=0.3,center_threshold=0.05'."},
    )


@dataclass
class DataArguments:
    """Where the images come from."""

    dataset_dir: str | None = field(
        default=None, metadata={"help": "A dataset folder from datasets_scripts/; default: built-in synthetic data."}
    )
    dataset_config: str = field(default="ratio_5", metadata={"help": "ratio_1 | ratio_5 | ratio_10 | full."})
    labeled_augmentation: str = field(
        default="light",
        metadata={"help": "Labeled views, see AugmentationConfig.", "choices": LABELED_AUGMENTATIONS},
    )
    synthetic_skeleton: str = field(default="crowdpose", metadata={"help": "coco | crowdpose."})
    synthetic_image_size: int = field(default=64, metadata={"help": "Side of the synthetic images."})
    synthetic_num_train: int = field(default=1000, metadata={"help": "Synthetic training images."})
    synthetic_num_val: int = field(default=300, metadata={"help": "Synthetic validation images."})
    synthetic_max_people: int = field(default=2, metadata={"help": "Most people per synthetic image."})
    synthetic_min_height: float = field(default=0.5, metadata={"help": "Smallest person, fraction of image."})
    synthetic_clutter: float = field(default=0.0, metadata={"help": "Background clutter in [0, 1]."})
    synthetic_max_yaw: float = field(
        default=60.0, metadata={"help": "Largest turn away from the camera (180: also seen from behind)."}
    )
    cache_dir: str = field(
        default=os.path.join(Path.home(), ".cache", "semipose"), metadata={"help": "Where synthetic data is cached."}
    )
    max_unreadable_fraction: float = field(
        default=DEFAULT_MAX_UNREADABLE_FRACTION,
        metadata={"help": "Unreadable training images are skipped (warned, counted in the logs) until more than "
                          "this fraction of them is unreadable, which stops the run."},
    )


def parse_arguments() -> tuple[ModelArguments, DataArguments, SemiPoseTrainingArguments]:
    parser = HfArgumentParser((ModelArguments, DataArguments, SemiPoseTrainingArguments))
    parser.set_defaults(**DEFAULT_TRAINING_ARGUMENTS)
    return parser.parse_args_into_dataclasses()


def dataset_folder(data_args: DataArguments, training_args: SemiPoseTrainingArguments) -> Path:
    """The dataset folder to train on; generates the synthetic one (once, on the main process) if none is given."""
    if data_args.dataset_dir is not None:
        return Path(data_args.dataset_dir)
    config = SyntheticConfig(
        image_size=data_args.synthetic_image_size,
        people=(1, data_args.synthetic_max_people),
        height_range=(data_args.synthetic_min_height, 0.95),
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


def build_model(model_args: ModelArguments, skeleton: str):
    if model_args.model_family not in MODEL_FAMILIES:
        raise ValueError(f"--model_family must be one of {sorted(MODEL_FAMILIES)}, got {model_args.model_family!r}.")
    config_class, model_class = MODEL_FAMILIES[model_args.model_family]
    config = config_class(
        backbone=model_args.backbone,
        neck_channels=model_args.neck_channels,
        output_stride=model_args.output_stride,
        heatmap_sigma=model_args.heatmap_sigma,
        skeleton=skeleton,
    )
    if model_args.config_overrides:
        config.update_from_string(model_args.config_overrides)
        config.check_skeleton_facts()
    pretrained = model_args.backbone_weights
    return model_class(config, pretrained_backbone=True if pretrained == "timm" else (pretrained or False))


def main() -> None:
    model_args, data_args, training_args = parse_arguments()
    logging.basicConfig(level=logging.INFO if training_args.should_log else logging.WARNING)

    # Data: labeled + unlabeled training streams and the validation rows. Images are decoded in the
    # transforms (lazy_images), so a file gone missing or corrupt is skipped (SkipUnreadable), not fatal.
    folder = dataset_folder(data_args, training_args)
    skeleton = read_dataset_metadata(folder)["skeleton"]
    labeled = lazy_images(load_pose_dataset(folder, data_args.dataset_config, "labeled"))
    validation = lazy_images(load_pose_dataset(folder, data_args.dataset_config, "validation"))
    check_images_readable(validation, "validation")  # evaluation needs all of them: fail now, not hours later
    augmentation = getattr(AugmentationConfig, data_args.labeled_augmentation)()
    labeled_transform = LabeledTransform(model_args.input_size, augmentation, skeleton=skeleton)
    labeled = SkipUnreadable(labeled.with_transform(labeled_transform))
    labeled_collator = PoseDataCollator()
    train_dataset, collator, logged_unlabeled_images = labeled, labeled_collator, []
    if training_args.uses_unlabeled_data:
        unlabeled = lazy_images(load_pose_dataset(folder, data_args.dataset_config, "unlabeled"))
        logged_unlabeled_images = first_readable_images(unlabeled, 8)
        unlabeled = SkipUnreadable(unlabeled.with_transform(UnlabeledTransform(model_args.input_size)))
        train_dataset = SemiSupervisedDataset(labeled, unlabeled, training_args.unlabeled_ratio)
        collator = SemiSupervisedCollator(labeled_collator, PoseDataCollator())

    # Model and image processor.
    set_seed(training_args.seed)  # the Trainer seeds too, but only after the network is initialized
    model = build_model(model_args, skeleton)
    image_processor = PoseImageProcessor(
        size=model_args.input_size, output_stride=model_args.output_stride, grouping_order=model.config.grouping_order
    )

    trainer = SemiPoseTrainer(
        model=model,
        args=training_args,
        train_dataset=train_dataset,
        eval_dataset=validation,
        data_collator=collator,
        processing_class=image_processor,
        skeleton=skeleton,
        max_unreadable_fraction=data_args.max_unreadable_fraction,
    )
    drawn_validation_images = first_readable_images(validation, 16)  # 8 logged while training, 16 drawn at the end
    trainer.add_callback(ImageLoggingCallback(trainer, logged_unlabeled_images, drawn_validation_images[:8]))
    trainer.train(resume_from_checkpoint=training_args.resume_from_checkpoint)

    # Evaluate, keep the better of student and teacher, save everything a user needs.
    metrics = trainer.evaluate()
    choice, final_model = trainer.select_final_model(metrics)
    summary = {"final_model": choice, "dataset": str(folder), "dataset_config": data_args.dataset_config,
               "ssl_mode": training_args.ssl_mode, "metrics": metrics}
    if trainer.is_world_process_zero():
        output_dir = Path(training_args.output_dir)
        final_model.save_pretrained(output_dir)
        image_processor.save_pretrained(output_dir)
        (output_dir / "final_metrics.json").write_text(json.dumps(summary, indent=2))
        card = write_model_card(output_dir, final_model.config, summary)
        drawn_rows = [{"image": image} for image in drawn_validation_images]
        save_prediction_grid(output_dir / "predictions.png", final_model, image_processor, drawn_rows, skeleton)
        logger.info("Saved the %s to %s: %s", choice, output_dir, json.dumps(metrics))
        if training_args.push_to_hub:
            push_final_model(training_args, final_model, image_processor, card, choice)


def push_final_model(training_args, final_model, image_processor, card: Path, choice: str) -> None:
    """Upload the chosen network (not necessarily the student the Trainer holds), its processor and card."""
    repo_id = training_args.hub_model_id or Path(training_args.output_dir).name
    message = f"semipose {training_args.ssl_mode} ({choice})"
    final_model.push_to_hub(repo_id, commit_message=message, token=training_args.hub_token,
                            private=training_args.hub_private_repo)
    image_processor.push_to_hub(repo_id, commit_message=message, token=training_args.hub_token)
    ModelCard.load(card).push_to_hub(repo_id, token=training_args.hub_token)

if __name__ == "__main__":
    sys.exit(main())
