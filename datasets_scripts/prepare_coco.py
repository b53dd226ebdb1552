"""Convert COCO person keypoints into a semipose dataset folder (configs ratio_1/5/10/full).

Expects the COCO 2017 layout:

    COCO_ROOT/annotations/person_keypoints_train2017.json
    COCO_ROOT/annotations/person_keypoints_val2017.json
    COCO_ROOT/train2017/*.jpg
    COCO_ROOT/val2017/*.jpg

Example (COCO unlabeled2017 as extra unlabeled images):

    python datasets_scripts/prepare_coco.py --coco-root data/coco --output data/coco_semi \
        --extra-unlabeled data/coco/unlabeled2017

Then `datasets.load_dataset("data/coco_semi", "ratio_10", split="labeled")`.
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

COCO_LICENSE = "cc-by-4.0"
"""The COCO annotations' license (cocodataset.org terms of use; the images keep their Flickr terms)."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--coco-root", type=Path, required=True,
                        help="folder with annotations/, train2017/ and val2017/")
    add_dataset_folder_arguments(parser, license=COCO_LICENSE)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> Path:
    """Run the conversion; returns the written folder."""
    args = parse_args(argv)
    annotations = args.coco_root / "annotations"
    folder = prepare_dataset_folder(
        annotations / "person_keypoints_train2017.json", args.coco_root / "train2017",
        annotations / "person_keypoints_val2017.json", args.coco_root / "val2017",
        skeleton="coco", **dataset_folder_options(args),
    )
    print(f"Wrote {folder}")
    return folder


if __name__ == "__main__":
    with exit_on_bad_input():  # bad roots, annotation files and records: one line naming them, exit 2
        main()
