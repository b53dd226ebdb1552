"""The `semipose` command line.

Subcommands:

- `semipose predict IMAGE_VIDEO_OR_FOLDER --model DIR_OR_HUB_ID --output OUT [--batch-size 8]
  [--flip-test | --no-flip-test] [--device cuda] [--threshold 0] [--keypoint-threshold 0.3]
  [--backend onnxruntime [--onnx FILE]] [--dataset FOLDER [--config full] [--split validation]]`:
  people in every readable image of the folder and its sub-folders; writes COCO keypoint results
  (`OUT/predictions.json`; image ids from the file names, or from the dataset split's rows with
  `--dataset`), the image list (`OUT/images.json`) and one PNG per image with the skeletons drawn
  (sub-folders kept); and in every video (`.mp4`, `.mov`, `.mkv`, ...): `OUT/<video>.json` (people
  per frame, with frame index and timestamp) and `OUT/<video>_poses.mp4` (skeletons drawn).
  Videos only: `--track [--max-age 10] [--min-oks 0.3]` gives each person a `track_id` followed from frame to
  frame (drawn one color per track), `--smooth [--smooth-min-cutoff 1.0] [--smooth-beta 0.05]` smooths each
  track's keypoints (One-Euro filter), `--format dlc-csv dlc-h5 slp` also writes the tracks as
  `OUT/<video>_tracks.csv` / `.h5` (DeepLabCut) and `OUT/<video>_tracks.slp` (SLEAP).
- `semipose evaluate (--predictions results.json | --model DIR_OR_HUB_ID) --dataset FOLDER
  [--config full] [--split validation] [--output metrics.json]`: OKS AP of COCO keypoint results,
  or of a model run on the split, against a split of a dataset folder (COCO or CrowdPose rules,
  from the folder's skeleton); prints a table and writes JSON.
- `semipose export --model DIR_OR_HUB_ID --output model.onnx [--opset N]`: the network as ONNX
  (dynamic batch and image size) for `--backend onnxruntime`.

Example:

```bash
semipose predict photos/ --model outputs/run_semi_pose --output poses/ --flip-test
semipose predict clip.mp4 --model outputs/run_semi_pose --output poses/
semipose predict clip.mp4 --model outputs/run_semi_pose --output poses/ --track --smooth --format dlc-csv slp
semipose predict data/synthetic-source/images/val --model outputs/run_semi_pose --output val_poses/ \
    --dataset data/synthetic
semipose export --model outputs/run_semi_pose --output outputs/run_semi_pose/model.onnx
semipose predict photos/ --model outputs/run_semi_pose --output poses/ --backend onnxruntime
semipose evaluate --predictions val_results.json --dataset data/coco_semi --output metrics.json
semipose evaluate --model outputs/run_semi_pose --dataset data/coco_semi --config ratio_10
```
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import __version__

if TYPE_CHECKING:
    from .inference import PoseEstimator
    from .skeletons import Skeleton

# The defaults of semipose.tracking, semipose.smoothing and semipose.pose_exports, repeated for the help so that
# `semipose --help` imports neither scipy nor pandas; tests/test_cli.py checks that they are the modules' values.
TRACKING_DEFAULTS = {"max_age": 10, "min_oks": 0.3}
"""`semipose.tracking.DEFAULT_MAX_AGE` and `DEFAULT_MIN_OKS`."""
SMOOTHING_DEFAULTS = {"min_cutoff": 1.0, "beta": 0.05}
"""`semipose.smoothing.DEFAULT_MIN_CUTOFF` and `DEFAULT_BETA`."""
EXPORT_FORMAT_NAMES = ("dlc-csv", "dlc-h5", "slp")
"""The keys of `semipose.pose_exports.EXPORT_FORMATS`."""

INPUT_ERRORS = (ValueError, FileNotFoundError, FileExistsError, ImportError)
"""What bad input raises (a file, record or argument not as expected, an optional extra not installed): the
message names what and where, so it is printed without a traceback."""


@contextmanager
def exit_on_bad_input(prog: str | None = None) -> Iterator[None]:
    """Print an `INPUT_ERRORS` raised inside as `PROG: error: MESSAGE` and exit with status 2, as argparse
    does for a bad option; other exceptions keep their traceback. `prog` defaults to the script's name.

    Illustration (not run: it exits the process):

    ```python
    with exit_on_bad_input("prepare_coco.py"):
        prepare_dataset_folder(...)  # FileNotFoundError -> "prepare_coco.py: error: ..." and exit 2
    ```
    """
    try:
        yield
    except INPUT_ERRORS as error:
        sys.stderr.write(f"{prog or Path(sys.argv[0]).name}: error: {error}\n")
        raise SystemExit(2) from None


def build_parser() -> argparse.ArgumentParser:
    """The argument parser: one subparser per subcommand. Importing the subcommands' heavy modules (torch,
    transformers, datasets) waits for their handlers, so `--help` and argument errors answer at once."""
    parser = argparse.ArgumentParser(
        prog="semipose", description="Semi-supervised multi-person pose estimation tools."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subcommands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_predict_parser(subcommands)
    _add_evaluate_parser(subcommands)
    _add_export_parser(subcommands)
    return parser


def _add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """How to run a model: batch size, flip test, device."""
    parser.add_argument("--batch-size", type=int, default=8,
                        help="Images read and prepared at a time (default: 8); each runs through the network alone.")
    parser.add_argument(
        "--flip-test", action=argparse.BooleanOptionalAction, default=None,
        help="Also run mirrored images and average (default: the model config's flip_test).",
    )
    parser.add_argument("--device", help="cpu, cuda, cuda:1, ... (default: cuda when available, else cpu).")


def _add_predict_parser(subcommands: argparse._SubParsersAction) -> None:
    predict = subcommands.add_parser(
        "predict", help="Find people in images and videos; write json results and drawn pictures or videos.",
        description="Run a semipose checkpoint on an image, a video, or every image and video of a folder and its "
        "sub-folders (hidden files and folders, and the --output folder, left out). "
        "Images: predictions.json (COCO keypoint results), images.json and one PNG per image with the people "
        "drawn; files that are not readable images are skipped with a warning. Videos (by suffix: .mp4, .mov, "
        ".mkv, ...): VIDEO.json (people per frame, with frame index and timestamp) and VIDEO_poses.mp4; with "
        "--track also a track_id per person, and with --format the tracks as VIDEO_tracks.csv / .h5 / .slp. "
        "A video that breaks off (truncated or corrupt) keeps every frame that decodes, with a warning; the run "
        "fails (exit 2) only when it can read nothing, and then leaves no output folder.",
    )
    predict.add_argument("images", type=Path, metavar="IMAGE_VIDEO_OR_DIR",
                         help="An image, a video, or a folder of images and videos (sub-folders searched).")
    predict.add_argument("--model", required=True, help="Checkpoint folder (save_pretrained) or Hub model id.")
    predict.add_argument("--output", type=Path, required=True, help="Folder for the json files and pictures.")
    _add_model_arguments(predict)
    predict.add_argument(
        "--threshold", type=float, default=0.0,
        help="Leave out people scoring below this (default: 0, every decoded person, as evaluation wants).",
    )
    predict.add_argument(
        "--keypoint-threshold", type=float, default=0.3,
        help="Draw keypoints scoring above this (default: 0.3); the json keeps all.",
    )
    predict.add_argument(
        "--backend", choices=("torch", "onnxruntime"), default="torch",
        help="Run the network with torch (default) or with ONNX Runtime on the CPU (see semipose export).",
    )
    predict.add_argument("--onnx", type=Path, help="ONNX file for --backend onnxruntime (default: MODEL/model.onnx).")
    _add_dataset_arguments(
        predict, required=False,
        help="Dataset folder whose split holds the images: they take its image ids, so `semipose evaluate "
        "--predictions` can score them (default: ids from the file names).",
    )
    _add_tracking_arguments(predict)
    predict.set_defaults(handler=run_predict)


def _add_tracking_arguments(parser: argparse.ArgumentParser) -> None:
    """--track and its options, --smooth and its parameters, --format: people followed through videos."""
    group = parser.add_argument_group(
        "videos: tracking, smoothing, exports",
        "People followed from frame to frame in each video. Tracking needs a video: with only images it is "
        "refused; in a folder of images and videos only the videos are tracked (photos are predicted one by one).",
    )
    group.add_argument("--track", action="store_true",
                       help="Give each person a track_id that follows it through the video (in VIDEO.json); draw "
                       "one color per track in VIDEO_poses.mp4.")
    group.add_argument("--max-age", type=int, metavar="FRAMES",
                       help="Frames in a row a track may go unmatched and still be matched again "
                       f"(default: {TRACKING_DEFAULTS['max_age']}).")
    group.add_argument("--min-oks", type=float, metavar="OKS",
                       help="Object keypoint similarity a person needs to a track's predicted pose to join it "
                       f"(default: {TRACKING_DEFAULTS['min_oks']}).")
    group.add_argument("--smooth", action="store_true",
                       help="Smooth each track's keypoints over time with a One-Euro filter before they are written "
                       "and drawn (needs --track).")
    group.add_argument("--smooth-min-cutoff", type=float, metavar="HZ",
                       help="One-Euro cutoff of a still keypoint: lower removes more jitter and lags more "
                       f"(default: {SMOOTHING_DEFAULTS['min_cutoff']}).")
    group.add_argument("--smooth-beta", type=float, metavar="BETA",
                       help="How fast the cutoff rises with a keypoint's speed in pixels per second: higher lags less "
                       f"on moving keypoints (default: {SMOOTHING_DEFAULTS['beta']}).")
    group.add_argument("--format", dest="formats", nargs="+", action="extend", choices=EXPORT_FORMAT_NAMES,
                       default=[], metavar="FORMAT",
                       help="Also write the tracks (needs --track) for movement, DeepLabCut and SLEAP: dlc-csv "
                       "(VIDEO_tracks.csv), dlc-h5 (VIDEO_tracks.h5, needs PyTables) and slp (VIDEO_tracks.slp, needs "
                       "sleap-io); one individual per track.")


def _add_dataset_arguments(parser: argparse.ArgumentParser, *, required: bool, help: str) -> None:
    """--dataset, --config, --split and --cache-dir: one split of a semipose dataset folder."""
    parser.add_argument("--dataset", type=Path, required=required, help=help)
    parser.add_argument("--config", default="full", help="Dataset config (default: full).")
    parser.add_argument("--split", default="validation", help="Split (default: validation).")
    parser.add_argument("--cache-dir", type=Path, help="`datasets` cache folder (default: HF's).")


def run_predict(args: argparse.Namespace) -> dict[str, Any]:
    """Predict every readable image and every video of `args.images`; print a one-line summary of each.

    A run that writes something ends normally, with a warning for what it could not read (a video that breaks
    off keeps its frames); one that can read nothing fails (exit 2) and leaves no output folder it made."""
    from .inference import PoseEstimator, find_image_files
    from .video import is_video_file, write_videos_predictions

    paths = find_image_files(args.images, exclude=args.output)
    videos = [path for path in paths if is_video_file(path)]
    images = [path for path in paths if not is_video_file(path)]
    tracking = video_tracking_options(args, has_videos=bool(videos))
    image_ids = None
    if args.dataset is not None and images:
        from .data.dataset_folder import dataset_image_ids

        image_ids = dataset_image_ids(args.dataset, args.config, args.split, images, cache_dir=args.cache_dir)
    estimator = PoseEstimator.from_pretrained(
        args.model, device=args.device, batch_size=args.batch_size, flip_test=args.flip_test,
        threshold=args.threshold, backend=args.backend, onnx_file=args.onnx,
    )
    with removed_if_left_empty(args.output):
        summary = predict_images(estimator, images, args, image_ids, has_videos=bool(videos)) if images else {}
        if videos:
            summary.update(write_videos_predictions(estimator, videos, args.output,
                                                    keypoint_threshold=args.keypoint_threshold, **tracking))
            print_video_summary(summary)
        if not summary.get("num_images") and not summary.get("videos"):
            reasons = [summary["images_error"]] if "images_error" in summary else []
            reasons += [failed["reason"] for failed in summary.get("failed", [])]
            raise ValueError(f"{args.images}: nothing could be read; expected at least one readable image or video. "
                             f"{' '.join(reasons)}")
    return summary


def predict_images(
    estimator: PoseEstimator, images: Sequence[Path], args: argparse.Namespace, image_ids: Sequence[int] | None, *,
    has_videos: bool,
) -> dict[str, Any]:
    """`write_predictions` on the images; print its summary. Beside videos, files of which none is a readable image
    (notes next to a clip) are reported and passed over (`images_error`), not an end to the run."""
    from .inference import write_predictions

    try:
        summary = write_predictions(estimator, images, args.output, keypoint_threshold=args.keypoint_threshold,
                                    image_ids=image_ids)
    except ValueError as error:
        if not has_videos:
            raise
        print(f"{len(images)} other file(s), no readable image among them: skipped ({error})")
        return {"images_error": str(error)}
    skipped = summary["num_skipped"]
    skipped = f"; skipped {skipped} unreadable file(s), see images.json" if skipped else ""
    untracked = " (not tracked: tracking follows people through videos only)" if args.track else ""
    print(f"{summary['num_images']} images, {summary['num_people']} people -> "
          f"{args.output / 'predictions.json'} and {summary['num_images']} pictures{skipped}{untracked}")
    return summary


@contextmanager
def removed_if_left_empty(folder: Path) -> Iterator[None]:
    """Remove `folder`, and the parents made with it, when the block fails and leaves them empty: a failed run
    leaves no empty output folder behind. Folders that were there before are kept."""
    made = [path for path in [folder, *folder.parents] if not path.exists()]  # deepest first
    try:
        yield
    except BaseException:
        for path in made:
            if path.is_dir() and not any(path.iterdir()):
                path.rmdir()
        raise


def video_tracking_options(args: argparse.Namespace, *, has_videos: bool) -> dict[str, Any]:
    """The tracking keywords of `write_videos_predictions` from the command line; ValueError (exit 2, before the
    model is loaded) for --track without a video and for options whose switch (--track, --smooth) is off."""
    tracker_options = {name: value for name, value in (("max_age", args.max_age), ("min_similarity", args.min_oks))
                       if value is not None}
    smoother_options = {name: value for name, value in (("min_cutoff", args.smooth_min_cutoff),
                                                         ("beta", args.smooth_beta)) if value is not None}
    needs = [(args.smooth, "--smooth", "--track"), (args.formats, "--format", "--track"),
             (tracker_options, "--max-age/--min-oks", "--track"),
             (smoother_options, "--smooth-min-cutoff/--smooth-beta", "--smooth")]
    for given, option, switch in needs:
        if given and not getattr(args, switch.lstrip("-")):
            raise ValueError(f"{option} needs {switch}.")
    if args.track and not has_videos:
        raise ValueError(f"--track: tracking follows people through the frames of a video, and {args.images} holds "
                         f"no video (suffixes .mp4, .mov, .mkv, ...); leave --track out for photos.")
    return {"track": args.track, "smooth": args.smooth, "export_formats": args.formats,
            "tracker_options": tracker_options or None, "smoother_options": smoother_options or None}


def print_video_summary(summary: dict[str, Any]) -> None:
    """One line per video written (one that breaks off is marked, its warning says where), one per video that
    failed."""
    for video in summary["videos"]:
        tracks = "" if video.get("num_tracks") is None else f", {video['num_tracks']} tracks"
        incomplete = " (incomplete, see the warning)" if video.get("error") else ""
        files = [video["json"], video["poses_video"], *video.get("exports", [])]
        print(f"{video['video']}: {video['num_frames']} frames{incomplete}, {video['num_people']} people{tracks} -> "
              f"{', '.join(files[:-1])} and {files[-1]}")
    for failed in summary["failed"]:
        print(f"failed: {failed['reason']}")


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
    source.add_argument(
        "--model", help="Checkpoint folder or Hub model id: run it on the split (see --batch-size, --flip-test).",
    )
    _add_dataset_arguments(evaluate, required=True, help="Dataset folder (with semipose_dataset.json).")
    evaluate.add_argument("--output", type=Path, help="Write metrics and run details to this JSON.")
    _add_model_arguments(evaluate)
    evaluate.set_defaults(handler=run_evaluate)


def run_evaluate(args: argparse.Namespace) -> dict[str, Any]:
    """Score the predictions (or the model's, run on the split) on the dataset split; print a table;
    write `--output` if given."""
    from .data.dataset_folder import load_pose_dataset, read_dataset_skeleton
    from .evaluation import KeypointEvaluator

    skeleton = read_dataset_skeleton(args.dataset)
    rows = load_pose_dataset(args.dataset, args.config, args.split, cache_dir=args.cache_dir)
    evaluator = KeypointEvaluator.from_rows(rows, skeleton)
    if args.model is not None:
        results, flip_test = predict_rows(args, rows, skeleton)
        evaluator.add_results(results)
        source = {"model": args.model, "flip_test": flip_test}
    else:
        add_predictions(evaluator, args)
        source = {"predictions": str(args.predictions)}
    report = {
        "metrics": evaluator.compute(),
        "pixel_error": evaluator.pixel_errors().to_dict(),
        "skeleton": skeleton.name, "dataset": str(args.dataset), "config": args.config,
        "split": args.split, **source,
        "num_images": len(evaluator.ground_truth["images"]),
        "num_predicted_people": len(evaluator.results_json()),
    }
    print(format_report(report))
    if args.output is not None:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(report, indent=2) + "\n")
    return report


def predict_rows(args: argparse.Namespace, rows, skeleton: Skeleton) -> tuple[list[dict[str, Any]], bool]:
    """COCO keypoint results of the `--model` checkpoint on the dataset rows, in batches, and whether it ran the
    flip test (`--flip-test`, else the model config's)."""
    from tqdm.auto import tqdm

    from .data.unreadable import lazy_images, stored_image_file
    from .inference import PoseEstimator, open_image
    from .modeling import to_coco_results

    estimator = PoseEstimator.from_pretrained(
        args.model, device=args.device, batch_size=args.batch_size, flip_test=args.flip_test
    )
    if estimator.skeleton.keypoint_names != skeleton.keypoint_names:
        raise ValueError(
            f"Model {args.model} predicts the {estimator.skeleton.name!r} skeleton "
            f"{list(estimator.skeleton.keypoint_names)}, the dataset {args.dataset} is labeled with the "
            f"{skeleton.name!r} skeleton {list(skeleton.keypoint_names)}."
        )
    results = []
    batches = lazy_images(rows).iter(batch_size=args.batch_size)
    for batch in tqdm(batches, total=-(-len(rows) // args.batch_size), desc="semipose evaluate", unit="batch"):
        people = estimator.predict([open_image(stored_image_file(image)) for image in batch["image"]])
        results += to_coco_results(people, batch["image_id"])
    return results, estimator.flip_test


def add_predictions(evaluator, args: argparse.Namespace) -> None:
    """Add the `--predictions` file to `evaluator`; ids it does not know get a hint on where they come from."""
    results = read_predictions(args.predictions)
    try:
        evaluator.add_results(results)
    except ValueError as error:
        known = {image["id"] for image in evaluator.ground_truth["images"]}
        if all(result.get("image_id") in known for result in results):
            raise
        raise ValueError(
            f"{error} If {args.predictions} was written by `semipose predict`, run it with `--dataset {args.dataset} "
            f"--config {args.config} --split {args.split}` so that its images take the split's ids."
        ) from error


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
    """A plain-text table of the metrics under a one-line summary of the run, then (with `pixel_error`) the
    pixel error and PCK per keypoint."""
    header = (
        f"{report['dataset']} {report['config']}/{report['split']} ({report['skeleton']}): "
        f"{report['num_images']} images, {report['num_predicted_people']} predicted people"
    )
    width = max(len(name) for name in report["metrics"])
    lines = [f"{name:<{width}}  {value:9.4f}" for name, value in report["metrics"].items()]
    table = [header, f"{'metric':<{width}}  {'value':>9}", *lines]
    if "pixel_error" in report:
        from .evaluation.pixel_error import format_per_keypoint_table

        table += ["", *format_per_keypoint_table(report["pixel_error"])]
    return "\n".join(table)


def _add_export_parser(subcommands: argparse._SubParsersAction) -> None:
    export = subcommands.add_parser(
        "export", help="Export a checkpoint's network to ONNX (for --backend onnxruntime).",
        description="Write the network of a semipose checkpoint (backbone, neck, heads) as an ONNX file with "
        "dynamic batch and image size; flip test and decoding stay in semipose's code. Checks the file against "
        "torch on two input sizes and prints the largest difference.",
    )
    export.add_argument("--model", required=True, help="Checkpoint folder (save_pretrained) or Hub model id.")
    export.add_argument("--output", type=Path, required=True, help="The .onnx file to write (e.g. DIR/model.onnx).")
    export.add_argument("--opset", type=int, help="ONNX opset version (default: the exporter's).")
    export.set_defaults(handler=run_export)


def run_export(args: argparse.Namespace) -> dict[str, Any]:
    """Export `args.model` to `args.output`; print the file and its largest difference to torch."""
    from .inference import load_checkpoint
    from .onnx_export import export_onnx, largest_difference_to_torch  # optional extra semipose[deploy]

    model, _ = load_checkpoint(args.model)
    path = export_onnx(model, args.output, opset_version=args.opset)
    difference = largest_difference_to_torch(model, path)
    print(f"{model.config.model_type} ({model.config.skeleton}, {model.config.num_keypoints} keypoints) -> {path} "
          f"({path.stat().st_size / 2**20:.1f} MiB); max |torch - onnxruntime| = {difference:.2e}")
    return {"onnx_file": str(path), "max_abs_difference": difference}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `semipose` console script; returns the exit status."""
    args = build_parser().parse_args(argv)
    with exit_on_bad_input(f"semipose {args.command}"):
        args.handler(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
