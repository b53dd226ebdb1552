"""Render the synthetic multi-person dataset and write it as a semipose dataset folder.

Every field of `semipose.data.synthetic.SyntheticConfig` is an option (`--image-size`,
`--people`, `--height-range`, `--clutter`, `--skeleton`, ...). The output is a dataset folder that
`load_dataset` reads, with the PNGs and COCO-format json it refers to in `<output>-source/`. By
default it is a folder under `data/` named by a hash of the settings, so running the same command
twice renders once.

Example (CrowdPose skeleton, 2000 training images, a contact sheet for a look):

    python datasets_scripts/prepare_synthetic.py --skeleton crowdpose --num-train 2000 \
        --contact-sheet synthetic.png

Then `datasets.load_dataset("data/synthetic-crowdpose-128px-<hash>", "ratio_10", split="labeled")`.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import typing
from pathlib import Path

from semipose.cli import exit_on_bad_input
from semipose.data.synthetic import (
    SyntheticConfig,
    prepare_synthetic_dataset,
    render_contact_sheet,
    synthetic_dataset_dir,
)


def _field_help() -> dict[str, str]:
    """Help text per field, from the `Attributes:` section of the SyntheticConfig docstring."""
    help_text: dict[str, str] = {}
    names: list[str] = []
    for line in SyntheticConfig.__doc__.split("Attributes:")[1].splitlines():
        entry = re.match(r"\s{8}([\w, ]+): (.*)", line)
        if entry:
            names = [name.strip() for name in entry.group(1).split(",")]
            help_text.update({name: entry.group(2) for name in names})
        elif line.strip():
            help_text.update({name: f"{help_text[name]} {line.strip()}" for name in names})
    return help_text


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    hints = typing.get_type_hints(SyntheticConfig)
    help_text = _field_help()
    for field in dataclasses.fields(SyntheticConfig):
        hint = hints[field.name]
        is_pair = typing.get_origin(hint) is tuple
        parser.add_argument(
            f"--{field.name.replace('_', '-')}", default=field.default,
            type=typing.get_args(hint)[0] if is_pair else hint, nargs=2 if is_pair else None,
            metavar=("MIN", "MAX") if is_pair else None,
            help=f"{help_text[field.name]} (default: {field.default})",
        )
    parser.add_argument("--output", type=Path, default=None,
                        help="dataset folder to write (default: data/synthetic-<settings hash>)")
    parser.add_argument("--ratios", type=float, nargs="+", default=[1, 5, 10],
                        help="labeled percentages, one config ratio_R each")
    parser.add_argument("--embed-images", action="store_true",
                        help="store PNG bytes in the parquet files (portable) instead of paths")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an output folder rendered with other settings")
    parser.add_argument("--contact-sheet", type=Path, default=None, metavar="PATH",
                        help="also write a PNG grid of 16 training images with their skeletons")
    parser.add_argument("--contact-sheet-only", action="store_true",
                        help="write the contact sheet and skip the dataset")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    args = parser.parse_args(argv)
    if args.contact_sheet_only and args.contact_sheet is None:
        parser.error("--contact-sheet-only needs --contact-sheet PATH.")
    return args


def main(argv: list[str] | None = None) -> Path | None:
    """Run the generation; returns the dataset folder (None with --contact-sheet-only)."""
    args = parse_args(argv)
    config = SyntheticConfig(**{field.name: getattr(args, field.name)
                                for field in dataclasses.fields(SyntheticConfig)})
    ratios = tuple(int(r) if float(r).is_integer() else r for r in args.ratios)
    if args.contact_sheet is not None:
        args.contact_sheet.parent.mkdir(parents=True, exist_ok=True)
        render_contact_sheet(config).save(args.contact_sheet)
        print(f"Wrote {args.contact_sheet}")
    if args.contact_sheet_only:
        return None
    output = args.output or synthetic_dataset_dir("data", config, ratios=ratios)
    folder = prepare_synthetic_dataset(
        output, config, ratios=ratios, overwrite=args.overwrite,
        show_progress=not args.no_progress, embed_images=args.embed_images,
    )
    print(f"Wrote {folder}")
    return folder


if __name__ == "__main__":
    with exit_on_bad_input():  # settings out of range, an output folder in the way: one line, exit 2
        main()
