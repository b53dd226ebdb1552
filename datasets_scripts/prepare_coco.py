"""Convert COCO-format keypoint annotations into a semipose dataset folder (configs ratio_1/5/10/full).

Two routes. `--coco-root` is COCO's person keypoints, with the registered `coco` skeleton, in the COCO 2017
layout:

    COCO_ROOT/annotations/person_keypoints_train2017.json
    COCO_ROOT/annotations/person_keypoints_val2017.json
    COCO_ROOT/train2017/*.jpg
    COCO_ROOT/val2017/*.jpg

The general route takes any COCO-format keypoint files (AP-10K, MacaquePose, your own labels) as four paths,
`--train-json`, `--train-images`, `--val-json` and `--val-images`. The skeleton is the file's category's: its
`keypoints` names and `skeleton` limbs, mirror pairs read off the names (`left_eye` <-> `right_eye`), and every
OKS sigma `semipose.skeletons.DEFAULT_SIGMA`. `--skeleton` gives it instead, as a registered name (`coco`,
`crowdpose`) or a json/yaml skeleton file (docs/skeleton-format.md); its names must be the file's. A file
with several categories must name one keypoint layout in all of them (AP-10K's 54 species share one), or
be narrowed to one category with `--category`.

Examples:

    # COCO people, with COCO unlabeled2017 as extra unlabeled images
    python datasets_scripts/prepare_coco.py --coco-root data/coco --output data/coco_semi \
        --extra-unlabeled data/coco/unlabeled2017

    # AP-10K, all 54 species (split 1); add `--category "antelope"` to keep one species
    python datasets_scripts/prepare_coco.py --output data/ap10k_semi \
        --train-json data/ap10k/annotations/ap10k-train-split1.json --train-images data/ap10k/data \
        --val-json data/ap10k/annotations/ap10k-val-split1.json --val-images data/ap10k/data

    # your own labels, with a skeleton file that states the sigmas and mirror pairs
    python datasets_scripts/prepare_coco.py --output data/mice_semi --skeleton mouse.yaml \
        --train-json labels/train.json --train-images frames/ --val-json labels/val.json --val-images frames/

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
    read_dataset_skeleton,
)

COCO_LICENSE = "cc-by-4.0"
"""The COCO annotations' license (cocodataset.org terms of use; the images keep their Flickr terms)."""
FILE_ROUTE = ("train_json", "train_images", "val_json", "val_images")
"""The general route's options (`--train-json`, ...): all four, or `--coco-root` instead."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--coco-root", type=Path,
                        help="COCO people: folder with annotations/, train2017/ and val2017/ (skeleton coco, "
                             f"--license {COCO_LICENSE} unless given)")
    parser.add_argument("--train-json", type=Path, help="any COCO-format keypoint file: the training labels")
    parser.add_argument("--train-images", type=Path, help="folder the training file's file_names are relative to")
    parser.add_argument("--val-json", type=Path, help="the validation labels (COCO format)")
    parser.add_argument("--val-images", type=Path, help="folder the validation file's file_names are relative to")
    parser.add_argument("--category", help="keep only this category (by name), e.g. one AP-10K species")
    parser.add_argument("--skeleton", metavar="NAME_OR_FILE",
                        help="registered skeleton name or json/yaml skeleton file (default: the file's category's)")
    add_dataset_folder_arguments(parser)
    args = parser.parse_args(argv)
    _check_route(parser, args)
    return args


def _check_route(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Exactly one route: `--coco-root` alone, or all four files' options (argparse error, exit 2, otherwise)."""
    given = [f"--{name.replace('_', '-')}" for name in FILE_ROUTE if getattr(args, name) is not None]
    missing = [f"--{name.replace('_', '-')}" for name in FILE_ROUTE if getattr(args, name) is None]
    if args.coco_root is not None and given:
        parser.error(f"--coco-root and {' '.join(given)} are two routes; pass --coco-root alone or the four "
                     "files' options")
    if args.coco_root is not None and (args.category or args.skeleton):
        parser.error("--coco-root is COCO's people with the registered 'coco' skeleton; --category and "
                     "--skeleton belong to the --train-json/--train-images/--val-json/--val-images route")
    if args.coco_root is None and missing:
        parser.error(f"pass --coco-root, or all of --train-json --train-images --val-json --val-images "
                     f"(missing: {' '.join(missing)})")


def _inputs(args: argparse.Namespace) -> tuple[Path, Path, Path, Path, str | None, str | None]:
    """(train json, train images, val json, val images, skeleton, license) of the route taken."""
    if args.coco_root is not None:
        annotations = args.coco_root / "annotations"
        return (annotations / "person_keypoints_train2017.json", args.coco_root / "train2017",
                annotations / "person_keypoints_val2017.json", args.coco_root / "val2017",
                "coco", args.license or COCO_LICENSE)
    return args.train_json, args.train_images, args.val_json, args.val_images, args.skeleton, args.license


def main(argv: list[str] | None = None) -> Path:
    """Run the conversion; prints and returns the written folder."""
    args = parse_args(argv)
    train_json, train_images, val_json, val_images, skeleton, license = _inputs(args)
    folder = prepare_dataset_folder(
        train_json, train_images, val_json, val_images,
        skeleton=skeleton, category=args.category, **{**dataset_folder_options(args), "license": license},
    )
    written = read_dataset_skeleton(folder)
    mirrored = "mirrored" if written.can_flip else "never mirrored (no flip augmentation, no flip test)"
    print(f"Wrote {folder}: skeleton {written.name!r}, {written.num_keypoints} keypoints, {mirrored}")
    return folder


if __name__ == "__main__":
    with exit_on_bad_input():  # bad roots, annotation files, categories and records: one line naming them, exit 2
        main()
