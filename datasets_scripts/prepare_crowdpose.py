"""Convert CrowdPose into a semipose dataset folder (configs ratio_1/5/10/full, `crowdIndex` kept).

Expects CROWDPOSE_ROOT/images/*.jpg and the CrowdPose json files (`crowdpose_train.json`,
`crowdpose_val.json`, `crowdpose_trainval.json`, `crowdpose_test.json`) in CROWDPOSE_ROOT/json/,
CROWDPOSE_ROOT/annotations/ or CROWDPOSE_ROOT itself. By default trainval is the training set
and test the validation set, as in the CrowdPose benchmark.

Example:

    python datasets_scripts/prepare_crowdpose.py --crowdpose-root data/crowdpose \
        --output data/crowdpose_semi

Then `datasets.load_dataset("data/crowdpose_semi", "ratio_10", split="labeled")`.
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

ANNOTATION_FOLDERS = ("json", "annotations", ".")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--crowdpose-root", type=Path, required=True,
                        help="folder with images/ and the crowdpose_*.json files")
    parser.add_argument("--train-annotations", default="crowdpose_trainval.json",
                        help="training json: a path, or a file name looked up under the root")
    parser.add_argument("--val-annotations", default="crowdpose_test.json",
                        help="validation json: a path, or a file name looked up under the root")
    parser.add_argument("--images", type=Path, default=Path("images"),
                        help="image folder (relative to the root unless absolute)")
    add_dataset_folder_arguments(parser)
    return parser.parse_args(argv)


def find_annotation_file(root: Path, name: str) -> Path:
    """`name` itself if it is an existing file, else the first `root/{json,annotations,.}/name`."""
    candidates = [Path(name)] + [root / folder / name for folder in ANNOTATION_FOLDERS]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"CrowdPose annotation file {name!r} not found; looked at {[str(c) for c in candidates]}."
    )


def main(argv: list[str] | None = None) -> Path:
    """Run the conversion; returns the written folder."""
    args = parse_args(argv)
    images = args.crowdpose_root / args.images
    folder = prepare_dataset_folder(
        find_annotation_file(args.crowdpose_root, args.train_annotations), images,
        find_annotation_file(args.crowdpose_root, args.val_annotations), images,
        skeleton="crowdpose", **dataset_folder_options(args),
    )
    print(f"Wrote {folder}")
    return folder


if __name__ == "__main__":
    with exit_on_bad_input():  # bad roots, annotation files and records: one line naming them, exit 2
        main()
