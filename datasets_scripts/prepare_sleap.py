"""Convert a SLEAP .slp labels file into a semipose dataset folder (needs `pip install 'semipose[sleap]'`).

User-labeled instances only (predictions are dropped); the skeleton, limbs and left/right symmetries are the
file's. Frames of image-file videos are referenced in place; frames of video files or embedded in the .slp are
written as PNG files to OUTPUT-frames/ (--frames-dir), or to a temporary folder with --embed-images. 10% of the
labeled frames (seeded, recorded in the folder's metadata) are held out for validation. Decisions:
`semipose.data.sleap_format`.

Example:

    python datasets_scripts/prepare_sleap.py --slp labels.v001.slp --output data/mice_semi

Then `semipose.data.dataset_folder.load_pose_dataset("data/mice_semi", "full", "labeled")`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from semipose.cli import exit_on_bad_input
from semipose.data.dataset_folder import (
    add_dataset_folder_arguments,
    dataset_folder_options,
    prepare_dataset_folder,
)
from semipose.data.label_conversion import DEFAULT_VAL_FRACTION
from semipose.data.sleap_format import convert_slp, frames_folder


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slp", type=Path, required=True, metavar="FILE", help="SLEAP labels file (.slp)")
    parser.add_argument("--frames-dir", type=Path,
                        help="where frames of video files and embedded images are written as PNG "
                             "(default: OUTPUT-frames beside the output; unused with --embed-images)")
    parser.add_argument("--name", help="the skeleton's name (default: the SLEAP skeleton's)")
    parser.add_argument("--val-fraction", type=float, default=DEFAULT_VAL_FRACTION,
                        help=f"fraction of the labeled frames held out for validation, drawn with --seed "
                             f"(default {DEFAULT_VAL_FRACTION})")
    add_dataset_folder_arguments(parser)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> Path:
    """Run the conversion; returns the written folder."""
    args = parse_args(argv)
    frames_dir = args.frames_dir or args.output.with_name(f"{args.output.name}-frames")
    with frames_folder(frames_dir, temporary=args.embed_images, overwrite=args.overwrite) as frames:
        converted = convert_slp(args.slp, frames, name=args.name, val_fraction=args.val_fraction, seed=args.seed)
        folder = prepare_dataset_folder(
            converted.train, converted.image_root, converted.validation, converted.image_root,
            skeleton=converted.skeleton, sources=converted.sources, **dataset_folder_options(args),
        )
    print(f"Wrote {folder}")
    return folder


if __name__ == "__main__":
    with exit_on_bad_input():  # bad .slp files, videos and images: one line naming them, exit 2
        main()
