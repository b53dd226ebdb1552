"""Draw a trained model's people on a few images, as one grid picture (the README's inference figure).

    python examples/draw_predictions.py --model outputs/run_semi_pose --output docs/images/inference_example.png
    python examples/draw_predictions.py --model outputs/run_semi_pose --images tests/fixtures/coco/*.jpg

Reads top to bottom: arguments, images (files, or the first validation images of the dataset
folder the model was trained on), model, predictions, picture. Limbs are colored by body side
(left orange, right blue, center green) and each person's score is written above it.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

from transformers import HfArgumentParser

from semipose.data.dataset_folder import load_pose_dataset
from semipose.inference import PoseEstimator, draw_predictions, open_image
from semipose.visualization import enlarge, make_grid


@dataclass
class DrawArguments:
    """What to draw and where."""

    model: str = field(metadata={"help": "Checkpoint folder (save_pretrained) or Hub model id."})
    output: str = field(default="docs/images/inference_example.png", metadata={"help": "PNG to write."})
    images: list[str] = field(
        default_factory=list, metadata={"help": "Image files; default: validation images of --dataset_dir."}
    )
    dataset_dir: str | None = field(
        default=None, metadata={"help": "Dataset folder; default: the one named in the model's final_metrics.json."}
    )
    dataset_config: str = field(default="full", metadata={"help": "Dataset config of the validation split."})
    num_images: int = field(default=8, metadata={"help": "How many validation images to draw."})
    columns: int = field(default=4, metadata={"help": "Images per row."})
    min_size: int = field(default=256, metadata={"help": "Smaller images are enlarged to this longer side."})
    flip_test: bool = field(default=False, metadata={"help": "Also run mirrored images and average."})
    keypoint_threshold: float = field(default=0.3, metadata={"help": "Draw keypoints scoring above this."})
    device: str | None = field(default=None, metadata={"help": "cpu, cuda, ... (default: cuda when available)."})


def validation_images(args: DrawArguments) -> list:
    """The first `num_images` validation images of the dataset folder the model was trained on."""
    folder = args.dataset_dir
    if folder is None:
        metrics_file = Path(args.model) / "final_metrics.json"
        if not metrics_file.is_file():
            raise ValueError(f"Pass --images or --dataset_dir ({metrics_file} names the dataset; it does not exist).")
        folder = json.loads(metrics_file.read_text())["dataset"]
    rows = load_pose_dataset(folder, args.dataset_config, "validation")
    return [rows[index]["image"] for index in range(min(args.num_images, len(rows)))]


def main() -> None:
    (args,) = HfArgumentParser(DrawArguments).parse_args_into_dataclasses()
    images = [open_image(path) for path in args.images] if args.images else validation_images(args)
    images = [enlarge(image.convert("RGB"), args.min_size) for image in images]

    estimator = PoseEstimator.from_pretrained(args.model, device=args.device, flip_test=args.flip_test)
    people = estimator.predict(images)
    drawn = draw_predictions(images, people, estimator.skeleton, threshold=args.keypoint_threshold)

    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    make_grid(drawn, columns=args.columns).save(output)
    found = sum(len(image_people["scores"]) for image_people in people)
    print(f"{len(images)} images, {found} people -> {output}")


if __name__ == "__main__":
    sys.exit(main())
