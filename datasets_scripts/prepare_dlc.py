"""Convert DeepLabCut / Lightning Pose labeled-frame CSV files into a semipose dataset folder.

The images stay in the project folder (the folder the CSV's image paths are relative to); 10% of the labeled
images (seeded, recorded in the folder's metadata) are held out for validation unless --val-files lists them.
Layout, defaults and decisions: `semipose.data.dlc_format`.

Example (Lightning Pose's mirror-mouse example: 90 labeled frames, 17 body parts):

    python datasets_scripts/prepare_dlc.py --csv mirror-mouse/CollectedData.csv --output data/mirror_mouse_semi

A DeepLabCut project (one CSV per video folder; limbs and name from its config):

    python datasets_scripts/prepare_dlc.py --csv project/labeled-data/*/CollectedData_*.csv \
        --dlc-config project/config.yaml --output data/project_semi

Then `semipose.data.dataset_folder.load_pose_dataset("data/mirror_mouse_semi", "full", "labeled")`.
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
from semipose.data.dlc_format import convert_dlc
from semipose.data.label_conversion import DEFAULT_VAL_FRACTION


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", type=Path, nargs="+", required=True, metavar="FILE",
                        help="labeled-frame CSV files (one per video folder, say); their body parts must agree")
    parser.add_argument("--project-dir", type=Path,
                        help="folder the CSV's image paths are relative to (default: the CSV's folder or the "
                             "first of its parents that holds the first row's image)")
    layout = parser.add_mutually_exclusive_group()
    layout.add_argument("--skeleton", type=Path, metavar="FILE",
                        help="skeleton file (json/yaml) whose keypoints are exactly the CSV's body parts")
    layout.add_argument("--dlc-config", type=Path, metavar="FILE",
                        help="DeepLabCut config.yaml: its skeleton pairs become the limbs, its Task the name")
    parser.add_argument("--name", help="the skeleton's name (default: the config's Task, else the project folder's)")
    validation = parser.add_mutually_exclusive_group()
    validation.add_argument("--val-fraction", type=float, default=DEFAULT_VAL_FRACTION,
                            help="fraction of the labeled images held out for validation, drawn with --seed "
                                 f"(default {DEFAULT_VAL_FRACTION})")
    validation.add_argument("--val-files", nargs="+", metavar="PATH",
                            help="the validation images, by their paths as the CSV writes them (three index columns "
                                 "joined by '/')")
    add_dataset_folder_arguments(parser)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> Path:
    """Run the conversion; returns the written folder."""
    args = parse_args(argv)
    converted = convert_dlc(
        args.csv, project_dir=args.project_dir, skeleton=args.skeleton, dlc_config=args.dlc_config, name=args.name,
        val_fraction=args.val_fraction, seed=args.seed, val_files=args.val_files,
    )
    folder = prepare_dataset_folder(
        converted.train, converted.image_root, converted.validation, converted.image_root,
        skeleton=converted.skeleton, sources=converted.sources, **dataset_folder_options(args),
    )
    print(f"Wrote {folder}")
    return folder


if __name__ == "__main__":
    with exit_on_bad_input():  # bad CSV files, images and skeletons: one line naming them, exit 2
        main()
