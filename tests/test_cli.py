"""`semipose evaluate`: predictions json against a dataset folder split, table + JSON."""

from __future__ import annotations

import json

import numpy as np
import pytest

from semipose.cli import build_parser, main
from semipose.data.dataset_folder import prepare_dataset_folder
from semipose.evaluation import COCO_STAT_NAMES, KeypointEvaluator


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
    assert 0 < report["metrics"]["AP"] < 1
    details = ("skeleton", "config", "split", "num_images", "num_predicted_people")
    assert [report[key] for key in details] == ["coco", "full", "validation", 4, 12]
    lines = out.splitlines()
    assert "full/validation (coco): 4 images, 12 predicted people" in lines[0]
    assert [line.split()[0] for line in lines[2:]] == list(COCO_STAT_NAMES)
    assert lines[2].split()[1] == f"{report['metrics']['AP']:.4f}"


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
