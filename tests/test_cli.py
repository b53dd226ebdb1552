"""`semipose evaluate`: predictions json (or a model) against a dataset folder split, table + JSON;
`semipose predict`: COCO results json and drawn pictures for a folder of real photos."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import semipose
from semipose.cli import build_parser, main
from semipose.data.dataset_folder import load_pose_dataset, prepare_dataset_folder
from semipose.evaluation import COCO_STAT_NAMES, PIXEL_STAT_NAMES, KeypointEvaluator
from semipose.inference import PoseEstimator, open_image
from semipose.modeling import CenterOffsetForPoseEstimation, PoseImageProcessor, to_coco_results
from semipose.training import SemiPoseTrainer, SemiPoseTrainingArguments

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def dataset_folder(tmp_path_factory, coco_fixture_dir):
    """A dataset folder whose validation split is the COCO fixture."""
    annotations = coco_fixture_dir / "test_coco.json"
    return prepare_dataset_folder(annotations, coco_fixture_dir, annotations, coco_fixture_dir,
                                  tmp_path_factory.mktemp("folder") / "coco", show_progress=False)


@pytest.fixture(scope="module")
def predictions(coco_fixture_dir) -> list[dict]:
    """The fixture's people shifted by 0 to 6 pixels, with decreasing scores."""
    annotations = json.loads((coco_fixture_dir / "test_coco.json").read_text())["annotations"]
    people = [ann for ann in annotations if ann["num_keypoints"] > 0]
    results = []
    for index, ann in enumerate(people):
        keypoints = np.asarray(ann["keypoints"], dtype=float).reshape(17, 3)
        keypoints[:, :2] += index % 7
        keypoints[:, 2] = 0.8
        results.append({"image_id": ann["image_id"], "category_id": 1,
                        "keypoints": keypoints.reshape(-1).tolist(), "score": 1 - index / 20})
    return results


def run(arguments: list, capsys) -> tuple[int, str, str]:
    try:
        status = main([str(argument) for argument in arguments])
    except SystemExit as exit_:
        status = exit_.code
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_evaluate_prints_a_table_and_writes_json(
    tmp_path, capsys, dataset_folder, predictions, coco_fixture_dir
):
    predictions_file = tmp_path / "predictions.json"
    predictions_file.write_text(json.dumps(predictions))
    output = tmp_path / "out" / "metrics.json"
    status, out, _ = run(["evaluate", "--predictions", predictions_file,
                          "--dataset", dataset_folder, "--output", output,
                          "--cache-dir", tmp_path / "cache"], capsys)
    assert status == 0
    expected = KeypointEvaluator.from_coco(coco_fixture_dir / "test_coco.json")
    expected.add_results(predictions)
    expected_stats = expected.compute()
    report = json.loads(output.read_text())
    assert report["metrics"] == pytest.approx(expected_stats, abs=1e-6)
    assert report["pixel_error"] == json.loads(json.dumps(expected.pixel_errors().to_dict()))
    assert 0 < report["metrics"]["AP"] < 1
    details = ("skeleton", "config", "split", "num_images", "num_predicted_people")
    assert [report[key] for key in details] == ["coco", "full", "validation", 4, 12]
    lines = out.splitlines()
    assert "full/validation (coco): 4 images, 12 predicted people" in lines[0]
    metric_names = [*COCO_STAT_NAMES, *PIXEL_STAT_NAMES]
    assert [line.split()[0] for line in lines[2:2 + len(metric_names)]] == metric_names
    assert lines[2].split()[1] == f"{report['metrics']['AP']:.4f}"
    per_keypoint = lines[2 + len(metric_names) + 1:]  # after a blank line
    assert per_keypoint[0].startswith("pixel error of the 12 of 12 labeled people matched by OKS > 0")
    assert per_keypoint[1].split() == ["keypoint", "count", "missed", "rmse", "px", "median", "px", "pck@0.05"]
    assert [line.split()[0] for line in per_keypoint[2:]] == list(report["pixel_error"]["per_keypoint"])


def test_evaluate_reports_bad_predictions_without_a_traceback(tmp_path, capsys, dataset_folder):
    predictions_file = tmp_path / "predictions.json"
    unknown_image = {"image_id": 4242, "keypoints": [0.0] * 51, "score": 1.0}
    predictions_file.write_text(json.dumps([unknown_image]))
    base = ["evaluate", "--dataset", dataset_folder, "--cache-dir", tmp_path / "cache"]
    status, _, err = run(base + ["--predictions", predictions_file], capsys)
    assert status == 2 and "semipose evaluate: error: Predictions for image ids [4242]" in err
    status, _, err = run(base + ["--predictions", tmp_path / "missing.json"], capsys)
    assert status == 2 and "missing.json does not exist" in err
    predictions_file.write_text(json.dumps({"image_id": 785}))
    status, _, err = run(base + ["--predictions", predictions_file], capsys)
    assert status == 2 and "expected a list of COCO keypoint results" in err
    status, _, err = run(
        ["evaluate", "--predictions", predictions_file, "--dataset", tmp_path], capsys
    )
    assert status == 2 and "not a semipose dataset folder" in err


def test_parser_has_subcommands_and_needs_a_prediction_source():
    parser = build_parser()
    args = parser.parse_args(["evaluate", "--predictions", "p.json", "--dataset", "d"])
    parsed = (args.command, args.config, args.split, args.output)
    assert parsed == ("evaluate", "full", "validation", None)
    with pytest.raises(SystemExit):
        parser.parse_args(["evaluate", "--dataset", "d"])
    with pytest.raises(SystemExit):
        parser.parse_args([])


# ------------------------------------------------------------------------------------ predict


@pytest.fixture(scope="module")
def photos_dir(tmp_path_factory, coco_fixture_dir):
    """The four real COCO photos alone in a folder."""
    folder = tmp_path_factory.mktemp("photos")
    for photo in coco_fixture_dir.glob("*.jpg"):
        shutil.copy(photo, folder)
    return folder


def test_predict_writes_coco_results_and_one_picture_per_photo(tmp_path, capsys, checkpoint, photos_dir):
    output = tmp_path / "out"
    status, out, _ = run(["predict", photos_dir, "--model", checkpoint, "--output", output, "--device", "cpu",
                          "--batch-size", 3, "--flip-test"], capsys)
    assert status == 0
    sizes = {int(photo.stem): Image.open(photo).size for photo in photos_dir.glob("*.jpg")}
    results = json.loads((output / "predictions.json").read_text())
    assert {result["image_id"] for result in results} == set(sizes)  # COCO ids from the file names
    for result in results:
        assert sorted(result) == ["category_id", "image_id", "keypoints", "score"] and result["category_id"] == 1
        assert isinstance(result["score"], float) and len(result["keypoints"]) == 3 * 17
        width, height = sizes[result["image_id"]]
        triples = np.asarray(result["keypoints"]).reshape(17, 3)
        assert (triples[:, :2] >= 0).all() and (triples[:, :2] <= [width - 1, height - 1]).all()
        assert ((triples[:, 2] > 0) & (triples[:, 2] <= 1)).all()
    listing = json.loads((output / "images.json").read_text())
    assert listing["skipped"] == []
    input_size = PoseEstimator.from_pretrained(checkpoint).input_size  # 64: the photos decode reduced by 2 or 4
    for entry in listing["images"]:
        assert (entry["width"], entry["height"]) == sizes[entry["id"]]  # the photo's own size
        network_saw = open_image(photos_dir / f"{entry['id']:012d}.jpg", input_size)
        assert network_saw.size < sizes[entry["id"]]  # decoded reduced for the network ...
        assert Image.open(output / entry["picture"]).size == sizes[entry["id"]]  # ... and drawn at the photo's size
    assert out.strip().endswith(f"4 images, {len(results)} people -> {output / 'predictions.json'} and 4 pictures")


def test_predict_skips_and_counts_unreadable_files_and_converts_odd_modes(
    tmp_path, capsys, caplog, checkpoint, photos_dir
):
    photo = next(photos_dir.glob("*.jpg"))
    shutil.copy(photo, tmp_path / "photo.jpg")
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "broken.jpg").write_bytes(photo.read_bytes()[:3000])
    Image.fromarray(np.arange(48 * 64, dtype=np.uint16).reshape(48, 64) * 20).save(tmp_path / "depth16.png")
    Image.new("RGBA", (40, 90), (10, 200, 10, 128)).save(tmp_path / "sticker.png")
    Image.new("L", (90, 40), 128).save(tmp_path / "gray.png")
    with caplog.at_level(logging.WARNING, logger="semipose.inference"):
        status, out, _ = run(["predict", tmp_path, "--model", checkpoint, "--output", tmp_path / "out"], capsys)
    assert status == 0
    assert "4 images" in out and "skipped 2 unreadable file(s), see images.json" in out
    assert sorted(record.getMessage().split(" is not")[0] for record in caplog.records) == [
        f"Skipping: image file {tmp_path / 'broken.jpg'}", f"Skipping: image file {tmp_path / 'notes.txt'}"]
    listing = json.loads((tmp_path / "out" / "images.json").read_text())
    skipped = [entry["file"] for entry in listing["skipped"]]
    assert skipped == [str(tmp_path / name) for name in ("broken.jpg", "notes.txt")]
    pictures = sorted(entry["picture"] for entry in listing["images"])
    assert pictures == ["depth16.png", "gray.png", "photo.png", "sticker.png"]
    assert Image.open(tmp_path / "out" / "sticker.png").size == (40, 90)


def test_predict_on_files_of_which_none_is_an_image_fails_and_leaves_no_output_folder(tmp_path, capsys, checkpoint):
    (tmp_path / "notes").mkdir()
    for name in ("a.txt", "b.csv"):
        (tmp_path / "notes" / name).write_text("not an image")
    status, _, err = run(["predict", tmp_path / "notes", "--model", checkpoint, "--output", tmp_path / "out"], capsys)
    assert status == 2 and "error: None of the 2 files is a readable image; first: image file" in err
    assert sorted(path.name for path in tmp_path.iterdir()) == ["notes"]  # no empty out/


def test_predict_reports_a_folder_that_is_not_a_checkpoint(tmp_path, capsys, photos_dir):
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "config.json").write_text(json.dumps({"model_type": "vit"}))
    status, _, err = run(["predict", photos_dir, "--model", tmp_path / "model", "--output", tmp_path / "out"], capsys)
    assert status == 2
    assert "semipose predict: error: " in err and "not a semipose checkpoint, config.json has model_type 'vit'" in err
    status, _, err = run(["predict", tmp_path / "nothing", "--model", tmp_path / "model", "--output", tmp_path], capsys)
    assert status == 2 and "nothing: no such image file or folder" in err


def test_evaluate_runs_a_model_on_the_split(tmp_path, capsys, dataset_folder, checkpoint):
    output = tmp_path / "metrics.json"
    status, out, _ = run(["evaluate", "--model", checkpoint, "--dataset", dataset_folder, "--output", output,
                          "--cache-dir", tmp_path / "cache", "--device", "cpu", "--batch-size", 3], capsys)
    assert status == 0
    report = json.loads(output.read_text())
    assert (report["model"], report["flip_test"], report["num_images"]) == (str(checkpoint), False, 4)
    assert report["num_predicted_people"] > 0 and list(report["metrics"]) == [*COCO_STAT_NAMES, *PIXEL_STAT_NAMES]
    assert report["pixel_error"]["labeled_instances"] == 12
    assert "predictions" not in report and "full/validation (coco): 4 images" in out


def test_parser_takes_predictions_or_a_model_not_both():
    parser = build_parser()
    args = parser.parse_args(["evaluate", "--model", "m", "--dataset", "d"])
    # flip test None: the model config's
    assert (args.model, args.predictions, args.batch_size, args.flip_test, args.device) == ("m", None, 8, None, None)
    with pytest.raises(SystemExit):
        parser.parse_args(["evaluate", "--model", "m", "--predictions", "p.json", "--dataset", "d"])
    args = parser.parse_args(["predict", "photos", "--model", "m", "--output", "out"])
    assert (args.threshold, args.keypoint_threshold, args.handler.__name__) == (0.0, 0.3, "run_predict")


def test_predict_refuses_tracking_it_cannot_do_before_loading_the_model(tmp_path, capsys, photos_dir):
    base = ["predict", photos_dir, "--model", tmp_path / "no-model", "--output", tmp_path / "out"]  # never loaded
    refusals = [
        (["--track"], f"--track: tracking follows people through the frames of a video, and {photos_dir} holds no "
                      f"video (suffixes .mp4, .mov, .mkv, ...); leave --track out for photos."),
        (["--smooth"], "--smooth needs --track."),
        (["--format", "dlc-csv"], "--format needs --track."),
        (["--max-age", "3"], "--max-age/--min-oks needs --track."),
        (["--track", "--smooth-beta", "0.1"], "--smooth-min-cutoff/--smooth-beta needs --smooth."),
    ]
    for options, message in refusals:
        status, _, err = run(base + options, capsys)
        assert status == 2 and err == f"semipose predict: error: {message}\n", options
    status, _, err = run(base + ["--track", "--format", "nwb"], capsys)
    assert status == 2 and "argument --format: invalid choice: 'nwb'" in err
    assert not (tmp_path / "out").exists()


def test_tracking_options_parse_with_the_modules_defaults_in_the_help(capsys):
    from semipose import cli, pose_exports, smoothing, tracking

    assert cli.TRACKING_DEFAULTS == {"max_age": tracking.DEFAULT_MAX_AGE, "min_oks": tracking.DEFAULT_MIN_OKS}
    assert cli.SMOOTHING_DEFAULTS == {"min_cutoff": smoothing.DEFAULT_MIN_CUTOFF, "beta": smoothing.DEFAULT_BETA}
    assert cli.EXPORT_FORMAT_NAMES == tuple(pose_exports.EXPORT_FORMATS)
    parser = build_parser()
    args = parser.parse_args(["predict", "clip.mp4", "--model", "m", "--output", "out"])
    assert (args.track, args.smooth, args.formats, args.max_age, args.min_oks, args.smooth_min_cutoff,
            args.smooth_beta) == (False, False, [], None, None, None, None)
    args = parser.parse_args(["predict", "clip.mp4", "--model", "m", "--output", "out", "--track", "--format", "slp",
                              "dlc-csv", "--format", "dlc-h5", "--max-age", "4", "--min-oks", "0.5"])
    assert (args.track, args.formats, args.max_age, args.min_oks) == (True, ["slp", "dlc-csv", "dlc-h5"], 4, 0.5)
    status, out, _ = run(["predict", "--help"], capsys)
    help_text = " ".join(out.split())
    for fragment in ("matched again (default: 10)", "to join it (default: 0.3)", "lags more (default: 1.0)",
                     "on moving keypoints (default: 0.05)", "Tracking needs a video: with only images it is refused; "
                     "in a folder of images and videos only the videos are tracked"):
        assert status == 0 and fragment in help_text


# ------------------------------------------------------------------- rough edges of the CLI


def test_predict_searches_sub_folders_and_never_reads_its_own_output(tmp_path, capsys, checkpoint, photos_dir):
    photos = sorted(photos_dir.glob("*.jpg"))
    for index, photo in enumerate(photos):
        target = tmp_path / ("trip" if index % 2 else "") / photo.name
        target.parent.mkdir(exist_ok=True)
        shutil.copy(photo, target)
    (tmp_path / ".thumbnails").mkdir()
    shutil.copy(photos[0], tmp_path / ".thumbnails" / photos[0].name)  # hidden folder: left out
    output = tmp_path / "poses"  # inside the searched folder
    for _ in range(2):
        status, out, _ = run(["predict", tmp_path, "--model", checkpoint, "--output", output], capsys)
        assert status == 0 and "4 images" in out  # the second run does not read the first one's pictures
    listing = json.loads((output / "images.json").read_text())
    assert sorted(entry["picture"] for entry in listing["images"]) == sorted(
        ("trip/" if index % 2 else "") + f"{photo.stem}.png" for index, photo in enumerate(photos))
    assert all((output / entry["picture"]).is_file() for entry in listing["images"])


@pytest.fixture(scope="module")
def renumbered_dataset(tmp_path_factory, coco_fixture_dir, photos_dir):
    """A dataset folder of the four photos whose image ids (100000785, ...) are not their file names, as in the
    synthetic datasets; (folder, {file name: id})."""
    coco = json.loads((coco_fixture_dir / "test_coco.json").read_text())
    ids = {image["id"]: 100_000_000 + image["id"] for image in coco["images"]}
    coco["images"] = [{**image, "id": ids[image["id"]]} for image in coco["images"]]
    coco["annotations"] = [{**ann, "image_id": ids[ann["image_id"]]} for ann in coco["annotations"]]
    annotations = tmp_path_factory.mktemp("renumbered") / "coco.json"
    annotations.write_text(json.dumps(coco))
    folder = prepare_dataset_folder(annotations, photos_dir, annotations, photos_dir,
                                    annotations.parent / "dataset", show_progress=False)
    return folder, {image["file_name"]: image["id"] for image in coco["images"]}


def test_predict_takes_image_ids_from_a_dataset_split_so_evaluate_scores_them(
    tmp_path, capsys, checkpoint, photos_dir, renumbered_dataset
):
    folder, expected_ids = renumbered_dataset
    copied = tmp_path / "copied" / "val"  # not the dataset's files: matched by file_name
    shutil.copytree(photos_dir, copied)
    cache = ["--cache-dir", tmp_path / "cache"]
    for images, output in ((photos_dir, tmp_path / "same_files"), (copied, tmp_path / "copies")):
        status, _, err = run(["predict", images, "--model", checkpoint, "--output", output,
                              "--dataset", folder, "--split", "validation", *cache], capsys)
        assert status == 0, err
        listing = json.loads((output / "images.json").read_text())
        assert {Path(entry["file_name"]).name: entry["id"] for entry in listing["images"]} == expected_ids
    status, out, _ = run(["evaluate", "--predictions", tmp_path / "copies" / "predictions.json",
                          "--dataset", folder, *cache], capsys)
    assert status == 0 and "4 images" in out

    status, _, err = run(["predict", photos_dir, "--model", checkpoint, "--output", tmp_path / "by_name"], capsys)
    assert status == 0
    status, _, err = run(["evaluate", "--predictions", tmp_path / "by_name" / "predictions.json",
                          "--dataset", folder, *cache], capsys)
    assert status == 2 and "Predictions for image ids" in err
    assert f"by `semipose predict`, run it with `--dataset {folder} --config full --split validation`" in err

    (copied / "notes.txt").write_text("not one of the split's images")
    status, _, err = run(["predict", copied, "--model", checkpoint, "--output", tmp_path / "mixed",
                          "--dataset", folder, *cache], capsys)
    assert status == 2
    assert f"1 of 5 files are not images of {folder} full/validation, e.g. {copied / 'notes.txt'}" in err
    assert "or leave out --dataset to number the images by file name" in err


def test_a_mistyped_model_folder_fails_at_once(tmp_path, capsys, photos_dir, checkpoint):
    typo = f"{checkpoint}x"
    status, _, err = run(["predict", photos_dir, "--model", typo, "--output", tmp_path], capsys)
    assert status == 2
    assert f"semipose predict: error: {typo}: no such checkpoint folder; did you mean {checkpoint}?" in err


def test_help_and_version_answer_without_importing_torch(tmp_path):
    """As the console script (a file named `semipose`), nothing heavy is imported before a subcommand runs."""
    script = tmp_path / "semipose"
    script.write_text(
        "import sys\nfrom semipose.cli import main\n"
        "try:\n    main()\nfinally:\n"
        "    heavy = ('torch', 'transformers', 'datasets')\n"
        "    print('imported:', sorted(name for name in heavy if name in sys.modules))\n"
    )
    environment = {**os.environ, "PYTHONPATH": str(REPO)}
    for argument, expected in (("--help", "usage: semipose [-h] [--version] COMMAND"),
                               ("--version", f"semipose {semipose.__version__}")):
        finished = subprocess.run([sys.executable, str(script), argument], capture_output=True, text=True,
                                  env=environment, timeout=120)
        assert finished.returncode == 0, finished.stderr
        assert expected in finished.stdout and "imported: []" in finished.stdout


@pytest.mark.parametrize("bf16", [False, True], ids=["fp32", "bf16 training"])
def test_trainer_evaluation_and_evaluate_model_score_the_same(tmp_path, capsys, dataset_folder, checkpoint, bf16):
    """One path (`estimate_people`): the same weights, flip test on in their config, give the same people and AP
    through `trainer.evaluate()` and `semipose evaluate --model` (same batch size, so the same padding). A bf16
    (autocast) training run evaluates in fp32 too, as the saved model runs: the people are the same to the bit."""
    model = CenterOffsetForPoseEstimation.from_pretrained(checkpoint)
    model.config.flip_test = True
    model.save_pretrained(tmp_path / "flip")
    PoseImageProcessor.from_pretrained(checkpoint).save_pretrained(tmp_path / "flip")
    args = SemiPoseTrainingArguments(output_dir=str(tmp_path / "run"), ssl_mode="supervised", use_cpu=True,
                                     per_device_eval_batch_size=3, report_to="none", bf16=bf16)
    rows = load_pose_dataset(dataset_folder, "full", "validation", cache_dir=tmp_path / "cache")
    trainer = SemiPoseTrainer(model=model, args=args, processing_class=PoseImageProcessor.from_pretrained(checkpoint),
                              eval_dataset=rows)
    metrics = trainer.evaluate()
    status, _, _ = run(["evaluate", "--model", tmp_path / "flip", "--dataset", dataset_folder, "--output",
                        tmp_path / "metrics.json", "--cache-dir", tmp_path / "cache", "--device", "cpu",
                        "--batch-size", "3"], capsys)
    report = json.loads((tmp_path / "metrics.json").read_text())
    assert status == 0 and report["flip_test"] is True
    trainer_results = json.loads((tmp_path / "run" / "predictions_step0.json").read_text())
    assert report["num_predicted_people"] == len(trainer_results) > 0
    estimator = PoseEstimator.from_pretrained(tmp_path / "flip", device="cpu", batch_size=3)
    people = estimator.predict([image.convert("RGB") for image in rows["image"]])
    assert to_coco_results(people, rows["image_id"]) == trainer_results  # clipped into the image alike
    assert {name: report["metrics"][name] for name in COCO_STAT_NAMES} == {
        name: metrics[f"eval_{name}"] for name in COCO_STAT_NAMES}
