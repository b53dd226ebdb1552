"""Render a short synthetic video, run a model on it, and save one annotated frame (the README's video figure).

    python examples/video_example.py --model outputs/run_semi_pose --output docs/images/video_frame_example.png

Reads top to bottom: arguments, the video (two synthetic people walking apart, 2 s at 12 frames/s, drawn by
the built-in generator in the model's skeleton), predictions with `semipose.video.write_video_predictions`
(`walk.json` and `walk_poses.mp4` next to the video), one frame of the annotated video as a PNG.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np
from transformers import HfArgumentParser

from semipose.data.synthetic import SyntheticConfig, render_scene, sample_figures
from semipose.inference import PoseEstimator
from semipose.video import VideoWriter, read_video_frames, write_video_predictions


@dataclass
class VideoExampleArguments:
    """What to run and where."""

    model: str = field(metadata={"help": "Checkpoint folder (save_pretrained) or Hub model id."})
    output: str = field(default="docs/images/video_frame_example.png", metadata={"help": "PNG to write."})
    work_dir: str = field(default="outputs/video_example", metadata={"help": "Where the videos and json go."})
    scene: int = field(default=13, metadata={"help": "Which synthetic scene (validation split) to animate."})
    frame: int = field(default=23, metadata={"help": "Frame of the annotated video to save."})
    threshold: float = field(default=0.2, metadata={"help": "People scoring below this are not drawn."})


NUM_FRAMES, FPS, SIZE = 24, 12, 256
STEP = np.array([[1.5, 0.0], [-1.5, 0.0]])
"""Pixels per frame each of the two people moves (apart)."""


def render_walk(path: Path, skeleton: str, scene: int) -> Path:
    """Two synthetic people moving apart over a still background, as an H.264 video."""
    config = SyntheticConfig(image_size=SIZE, people=(2, 2), height_range=(0.55, 0.8), clutter=0.0,
                             skeleton=skeleton, max_yaw=60, truncation=0.0)
    figures = sample_figures(np.random.default_rng([config.seed, 1, scene]), config)
    with VideoWriter(path, SIZE, SIZE, Fraction(FPS)) as writer:
        for index in range(NUM_FRAMES):
            moved = figures.shifted(STEP * (index - NUM_FRAMES // 2))
            writer.write(render_scene(np.random.default_rng(7), moved, config).image)  # same background each frame
    return path


def main() -> None:
    (args,) = HfArgumentParser(VideoExampleArguments).parse_args_into_dataclasses()
    work_dir = Path(args.work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    estimator = PoseEstimator.from_pretrained(args.model, threshold=args.threshold)
    video = render_walk(work_dir / "walk.mp4", estimator.model.config.skeleton, args.scene)
    summary = write_video_predictions(estimator, video, work_dir)
    frames = list(read_video_frames(summary["poses_video"]))
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    frames[args.frame].image.save(args.output)
    print(f"{summary['num_frames']} frames, {summary['num_people']} people -> {summary['json']}; "
          f"frame {args.frame} -> {args.output}")


if __name__ == "__main__":
    main()
