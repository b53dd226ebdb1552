"""Semi-supervised training of a detector-free multi-person pose estimator: the main job of semipose.

    accelerate launch examples/run_semi_pose.py                       # built-in synthetic data, CPU is fine
    accelerate launch examples/run_semi_pose.py --dataset_dir data/coco_semi --dataset_config ratio_10 \
        --model_family associative_embedding --backbone hrnet_w32 --input_size 512 --bf16
    accelerate launch --multi_gpu --num_processes 2 examples/run_semi_pose.py --use_cpu
    python examples/run_semi_pose.py --output_dir outputs/run --resume_from_checkpoint latest  # preemptible jobs

Reads top to bottom: arguments, data, model, trainer, train, evaluate, save (model, image processor,
model card, a picture of predictions), optionally push to the Hub. With no `--dataset_dir` it
generates the synthetic dataset once into a cache folder and trains on it. The arguments and how
each piece is built live in `semipose.training.recipe`, which the benchmarks and tests share.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

from huggingface_hub import ModelCard

from semipose.cli import exit_on_bad_input
from semipose.data.unreadable import first_readable_images
from semipose.inference import save_prediction_grid
from semipose.model_card import write_model_card
from semipose.training.image_logging import ImageLoggingCallback
from semipose.training.recipe import (
    build_image_processor,
    build_model,
    build_trainer,
    build_training_data,
    parse_arguments,
)

logger = logging.getLogger(__name__)


def main() -> None:
    with exit_on_bad_input():  # an option, dataset folder or checkpoint not as expected: one line naming it, exit 2
        model_args, data_args, training_args = parse_arguments()
        logging.basicConfig(level=logging.INFO if training_args.should_log else logging.WARNING)

        # Data: the labeled (+ unlabeled) training streams and the validation rows, from the dataset folder.
        data = build_training_data(model_args, data_args, training_args)

        # Model, initialized from the seed, and its image processor.
        model = build_model(model_args, data.skeleton, seed=training_args.seed)
        image_processor = build_image_processor(model_args, model.config)

        # Trainer, and the checkpoint to resume from ("latest": the newest complete one, if any).
        trainer = build_trainer(model, image_processor, data, data_args, training_args)
        checkpoint = trainer.resolve_checkpoint(training_args.resume_from_checkpoint)

    # Train, drawing fixed unlabeled and validation images to TensorBoard at every evaluation.
    drawn_validation_images = first_readable_images(data.validation, 16)  # 8 logged while training, 16 drawn at the end
    trainer.add_callback(ImageLoggingCallback(trainer, data.logged_unlabeled_images, drawn_validation_images[:8]))
    trainer.train(resume_from_checkpoint=checkpoint)

    # Evaluate student and teacher, save the network fixed in advance (--final_model), everything a user needs.
    metrics = trainer.evaluate()
    choice, final_model = trainer.select_final_model()
    summary = {"final_model": choice, "final_model_option": training_args.final_model,
               "dataset": str(data.folder), "dataset_config": data_args.dataset_config,
               "ssl_mode": training_args.ssl_mode, "metrics": metrics}
    if trainer.is_world_process_zero():
        output_dir = Path(training_args.output_dir)
        final_model.save_pretrained(output_dir)
        image_processor.save_pretrained(output_dir)
        (output_dir / "final_metrics.json").write_text(json.dumps(summary, indent=2))
        card = write_model_card(output_dir, final_model.config, summary)
        drawn_rows = [{"image": image} for image in drawn_validation_images]
        save_prediction_grid(output_dir / "predictions.png", final_model, image_processor, drawn_rows, data.skeleton)
        logger.info("Saved the %s to %s. At step %d: %s", choice, output_dir, metrics["eval_step"],
                    metrics_by_network(metrics))
        if training_args.push_to_hub:
            push_final_model(training_args, final_model, image_processor, card, choice)


def metrics_by_network(metrics: dict[str, float]) -> str:
    """The final metrics in one line that names each number's network: `eval_X` is the student's X,
    `eval_teacher_X` the teacher's and `eval_pseudo_X` that of the teacher's pseudo labels."""
    named = {"student": {}, "teacher": {}, "pseudo labels": {}}
    for name, value in metrics.items():
        if name.startswith("eval_teacher_"):
            named["teacher"][name.removeprefix("eval_teacher_")] = value
        elif name.startswith("eval_pseudo_"):
            named["pseudo labels"][name.removeprefix("eval_pseudo_")] = value
        elif name.startswith("eval_") and name != "eval_step":
            named["student"][name.removeprefix("eval_")] = value
    return "; ".join(f"{network} {json.dumps(values)}" for network, values in named.items() if values)


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
