"""The `semipose` command line.

Subcommands:

- `semipose evaluate --predictions results.json --dataset FOLDER [--config full]
  [--split validation] [--output metrics.json]`: OKS AP of COCO keypoint results against a split
  of a dataset folder (COCO or CrowdPose rules, from the folder's skeleton); prints a table and
  writes JSON.

Example:

```bash
semipose evaluate --predictions val_results.json --dataset data/coco_semi --output metrics.json
```
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .data.dataset_folder import load_pose_dataset, read_dataset_metadata
from .evaluation import KeypointEvaluator


def build_parser() -> argparse.ArgumentParser:
    """The argument parser: one subparser per subcommand."""
    parser = argparse.ArgumentParser(
        prog="semipose", description="Semi-supervised multi-person pose estimation tools."
    )
    subcommands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_evaluate_parser(subcommands)
    return parser


def _add_evaluate_parser(subcommands: argparse._SubParsersAction) -> None:
    evaluate = subcommands.add_parser(
        "evaluate", help="OKS AP of keypoint predictions on a dataset folder split.",
        description="Score COCO keypoint results against a split of a semipose dataset folder "
        "(COCO rules for the coco skeleton, CrowdPose rules for crowdpose).",
    )
    source = evaluate.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--predictions", type=Path,
        help="COCO keypoint results json: a list of {image_id, keypoints [3K], score}.",
    )
    evaluate.add_argument(
        "--dataset", type=Path, required=True, help="Dataset folder (with semipose_dataset.json)."
    )
    evaluate.add_argument("--config", default="full", help="Dataset config (default: full).")
    evaluate.add_argument("--split", default="validation", help="Split (default: validation).")
    evaluate.add_argument("--output", type=Path, help="Write metrics and run details to this JSON.")
    evaluate.add_argument("--cache-dir", type=Path, help="`datasets` cache folder (default: HF's).")
    evaluate.set_defaults(handler=run_evaluate)


def run_evaluate(args: argparse.Namespace) -> dict[str, Any]:
    """Score the predictions on the dataset split; print a table; write `--output` if given."""
    skeleton = read_dataset_metadata(args.dataset)["skeleton"]
    rows = load_pose_dataset(args.dataset, args.config, args.split, cache_dir=args.cache_dir)
    evaluator = KeypointEvaluator.from_rows(rows, skeleton)
    evaluator.add_results(read_predictions(args.predictions))
    report = {
        "metrics": evaluator.compute(),
        "skeleton": skeleton, "dataset": str(args.dataset), "config": args.config,
        "split": args.split, "predictions": str(args.predictions),
        "num_images": len(evaluator.ground_truth["images"]),
        "num_predicted_people": len(evaluator.results_json()),
    }
    print(format_report(report))
    if args.output is not None:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(report, indent=2) + "\n")
    return report


def read_predictions(path: Path) -> list[dict[str, Any]]:
    """A COCO keypoint results list from a json file."""
    if not path.is_file():
        raise FileNotFoundError(f"Predictions file {path} does not exist.")
    try:
        results = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"Predictions file {path} is not valid json: {error}.") from error
    if not isinstance(results, list) or not all(isinstance(result, dict) for result in results):
        raise ValueError(
            f"Predictions file {path}: expected a list of COCO keypoint results "
            f"({{image_id, keypoints, score}}), got {type(results).__name__}."
        )
    return results


def format_report(report: dict[str, Any]) -> str:
    """A plain-text table of the metrics under a one-line summary of the run."""
    header = (
        f"{report['dataset']} {report['config']}/{report['split']} ({report['skeleton']}): "
        f"{report['num_images']} images, {report['num_predicted_people']} predicted people"
    )
    width = max(len(name) for name in report["metrics"])
    lines = [f"{name:<{width}}  {value:7.4f}" for name, value in report["metrics"].items()]
    return "\n".join([header, f"{'metric':<{width}}  {'value':>7}", *lines])


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `semipose` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        args.handler(args)
    except (ValueError, FileNotFoundError) as error:
        parser.exit(2, f"semipose {args.command}: error: {error}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
