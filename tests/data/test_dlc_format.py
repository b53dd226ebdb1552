"""Tests of the DeepLabCut / Lightning Pose CSV converter: the real mirror-mouse labels, both header layouts, both
index layouts, several files at once and each bad input (the error names the file and the line)."""

import importlib.util
import json
import logging
import runpy
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from semipose.data.dataset_folder import load_pose_dataset, read_dataset_metadata, read_dataset_skeleton
from semipose.data.dlc_format import convert_dlc, read_dlc_csv

REPO = Path(__file__).resolve().parents[2]
MIRROR_MOUSE = REPO / ".." / "shared" / "fixtures" / "mirror-mouse"
MIRROR_MOUSE_PARTS = [
    "paw1LH_top", "paw2LF_top", "paw3RF_top", "paw4RH_top", "tailBase_top", "tailMid_top", "nose_top", "obs_top",
    "paw1LH_bot", "paw2LF_bot", "paw3RF_bot", "paw4RH_bot", "tailBase_bot", "tailMid_bot", "nose_bot",
    "obsHigh_bot", "obsLow_bot",
]
IMG01 = [  # CollectedData.csv line 4 (labeled-data/img01.png); None: an empty cell pair
    (77.25, 36.25), (253.5, 101.900392541708), (198.75, 97.75), (182.25, 63.75), None, None, (390.75, 24.25),
    (59.75, 71.25), (83.75, 270.25), (250.75, 250.75), (205.25, 301.25), (192.75, 365.75), (84.75, 329.75),
    (46.25, 332.75), (381.25, 281.75), (74.25, 184.25), (74.75, 386.25),
]
SEED_0_VALIDATION = [f"labeled-data/img{n}.png" for n in ("06", "14", "21", "28", "51", "56", "68", "74", "82")]


def _script(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "datasets_scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(not MIRROR_MOUSE.is_dir(), reason="the shared mirror-mouse fixture is not beside the repository")
def test_mirror_mouse_converts_to_a_loadable_folder(tmp_path):
    folder = _script("prepare_dlc").main([
        "--csv", str(MIRROR_MOUSE / "CollectedData.csv"), "--output", str(tmp_path / "out"), "--val-fraction", "0.1",
        "--seed", "0", "--no-progress"])
    metadata = read_dataset_metadata(folder)
    assert {split: metadata["configs"]["full"][split] for split in ("labeled", "validation")} == \
        {"labeled": 81, "validation": 9}
    assert metadata["sources"]["train_annotations"] == str((MIRROR_MOUSE / "CollectedData.csv").resolve())
    assert metadata["sources"]["validation"].startswith("9 of 90 labeled images")
    skeleton = read_dataset_skeleton(folder)
    assert (skeleton.name, list(skeleton.keypoint_names), skeleton.flip_index) == ("mirror-mouse", MIRROR_MOUSE_PARTS,
                                                                                 None)
    validation = load_pose_dataset(folder, "full", "validation", cache_dir=tmp_path / "cache")
    assert validation["file_name"] == SEED_0_VALIDATION
    labeled = load_pose_dataset(folder, "full", "labeled", cache_dir=tmp_path / "cache")
    assert len(labeled) == 81
    row = labeled[labeled["file_name"].index("labeled-data/img01.png")]  # rows come by labeled subset, then by id
    assert (row["image_id"], row["width"], row["height"]) == (1, 396, 406)
    expected = [[0.0, 0.0, 0.0] if xy is None else [*xy, 2.0] for xy in IMG01]
    assert np.array_equal(np.array(row["keypoints"][0]), np.array(expected, dtype=np.float32))


@pytest.mark.skipif(not MIRROR_MOUSE.is_dir(), reason="the shared mirror-mouse fixture is not beside the repository")
def test_mirror_mouse_keypoints_equal_the_csv_numbers_exactly():
    converted = convert_dlc([MIRROR_MOUSE / "CollectedData.csv"], val_fraction=0.1, seed=0)
    assert converted.image_root == MIRROR_MOUSE.resolve()
    first = converted.train["annotations"][0]
    assert converted.train["images"][0]["file_name"] == "labeled-data/img01.png" and first["image_id"] == 1
    assert first["keypoints"] == [value for xy in IMG01 for value in ([0.0, 0.0, 0.0] if xy is None else [*xy, 2.0])]
    assert first["num_keypoints"] == 15
    assert sorted(image["file_name"] for image in converted.validation["images"]) == SEED_0_VALIDATION


def _png(path: Path, size=(40, 30)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (10, 20, 30)).save(path)


def _project(root: Path, lines: list[str], name="CollectedData.csv", images=("labeled-data/v1/a.png",
                                                                            "labeled-data/v1/b.png")) -> Path:
    for image in images:
        _png(root / image)
    file = root / "labeled-data" / "v1" / name
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_text("\n".join(lines) + "\n")
    return file


SINGLE = [
    "scorer,me,me,me,me",
    "bodyparts,nose,nose,tail,tail",
    "coords,x,y,x,y",
    "labeled-data/v1/a.png,1.5,2,10,12",
    "labeled-data/v1/b.png,3,4,,",
]


def test_single_animal_csv_with_one_index_column(tmp_path):
    table = read_dlc_csv(_project(tmp_path, SINGLE))
    assert (table.bodyparts, table.individuals, table.images, table.lines) == (
        ("nose", "tail"), ("",), ("labeled-data/v1/a.png", "labeled-data/v1/b.png"), (4, 5))
    assert np.array_equal(table.xy, [[[[1.5, 2], [10, 12]]], [[[3, 4], [np.nan, np.nan]]]], equal_nan=True)


def test_multi_animal_csv_with_three_index_columns_drops_the_single_individual(tmp_path, caplog):
    lines = [
        "scorer,,,me,me,me,me,me,me,me,me,me,me",
        "individuals,,,m1,m1,m1,m1,m2,m2,m2,m2,single,single",
        "bodyparts,,,nose,nose,tail,tail,nose,nose,tail,tail,corner,corner",
        "coords,,,x,y,x,y,x,y,x,y,x,y",
        "labeled-data,v1,a.png,1,2,3,4,5,6,7,8,0,0",
        "labeled-data,v1,b.png,1,2,3,4,,,,,0,0",
    ]
    with caplog.at_level(logging.WARNING):
        converted = convert_dlc([_project(tmp_path, lines)], val_files=["labeled-data/v1/b.png"])
    assert "dropping the unique body parts ['corner'] of the individual 'single'" in caplog.text
    assert converted.image_root == tmp_path.resolve()  # the first of the CSV's folder and its parents with the image
    assert converted.train["images"] == [{"id": 1, "file_name": "labeled-data/v1/a.png", "width": 40, "height": 30}]
    assert [a["keypoints"] for a in converted.train["annotations"]] == [[1.0, 2.0, 2.0, 3.0, 4.0, 2.0],
                                                                       [5.0, 6.0, 2.0, 7.0, 8.0, 2.0]]
    assert len(converted.validation["annotations"]) == 1  # m2 has no labeled keypoint in b.png: not an instance
    assert converted.skeleton.keypoint_names == ("nose", "tail")


def test_two_csv_files_at_once_in_any_body_part_order(tmp_path):
    first = _project(tmp_path, SINGLE)
    second = _project(tmp_path, [
        "scorer,me,me,me,me", "bodyparts,tail,tail,nose,nose", "coords,x,y,x,y", "labeled-data/v2/c.png,7,8,5,6",
    ], images=["labeled-data/v2/c.png"], name="../v2/CollectedData.csv")
    converted = convert_dlc([first, second], project_dir=tmp_path, val_files=["labeled-data/v2/c.png"])
    assert converted.validation["images"][0]["id"] == 3
    assert converted.validation["annotations"][0]["keypoints"] == [5.0, 6.0, 2.0, 7.0, 8.0, 2.0]  # nose, tail
    assert converted.sources["train_annotations"] == f"{first.resolve()}, {second.resolve()}"


def test_csv_files_with_different_body_parts_are_refused_naming_both(tmp_path):
    first = _project(tmp_path, SINGLE)
    second = _project(tmp_path, ["scorer,me,me", "bodyparts,ear,ear", "coords,x,y", "labeled-data/v2/c.png,1,2"],
                      images=["labeled-data/v2/c.png"], name="../v2/CollectedData.csv")
    with pytest.raises(ValueError, match=rf"{first} and {second} label different body parts: \['ear', 'nose', "
                                         r"'tail'\] are in one only"):
        convert_dlc([first, second])


def test_the_same_image_in_two_files_is_refused(tmp_path):
    first = _project(tmp_path, SINGLE)
    second = _project(tmp_path, SINGLE, name="CollectedData_copy.csv")
    with pytest.raises(ValueError, match=rf"{second} line 4: labels the image 'labeled-data/v1/a.png' that {first} "
                                         "line 4 labels too"):
        convert_dlc([first, second])


@pytest.mark.parametrize(("line", "replacement", "message"), [
    (1, "bodyparts,me,me,me,me", r"line 1: header row starts with 'bodyparts', expected 'scorer'"),
    (2, "animals,nose,nose,tail,tail", r"line 2: header row starts with 'animals', expected 'bodyparts' or "
                                       r"'individuals'"),
    (3, "coords,x,y,x", r"line 3: header row has 4 cells, expected 5 \(as the scorer row, line 1\)"),
    (3, "coords,x,y,x,z", r"line 3, column 5: coord 'z' of body part 'tail'; expected a named body part with coords "
                          r"\['x', 'y', 'likelihood'\]"),
    (3, "coords,x,likelihood,x,y", r"line 3: body part 'nose' has coords \['likelihood', 'x'\], expected both x "
                                   r"and y"),
    (3, "coords,x,x,y,y", r"line 3, column 3: a second 'x' of body part 'nose'"),
    (3, "coords,y,y,y,y", r"line 3: the coords row has no 'x' after the index column\(s\)"),
    (4, "labeled-data/v1/a.png,1.5,two,10,12", r"line 4: body part 'nose': y is 'two', expected a finite number"),
    (4, "labeled-data/v1/a.png,1.5,inf,10,12", r"line 4: body part 'nose': y is 'inf', expected a finite number"),
    (5, "labeled-data/v1/b.png,3,4,,", None),
    (5, "labeled-data/v1/b.png,3,4,7", r"line 5: 4 cells, expected 5 as the header"),
    (5, "labeled-data/v1/b.png,3,4,,8", r"line 5: body part 'tail' has one of x and y but not the other"),
])
def test_bad_csv_input_names_the_file_and_line(tmp_path, line, replacement, message):
    lines = list(SINGLE)
    lines[line - 1] = replacement
    file = _project(tmp_path, lines)
    if message is None:
        assert read_dlc_csv(file).lines == (4, 5)
        return
    with pytest.raises(ValueError, match=f"{file} {message}"):
        read_dlc_csv(file)


def test_a_csv_without_rows_or_with_too_few_header_rows(tmp_path):
    file = _project(tmp_path, SINGLE[:3])
    with pytest.raises(ValueError, match=f"{file}: no labeled rows after the 3 header rows"):
        read_dlc_csv(file)
    file.write_text("scorer,me,me\nindividuals,m1,m1\n")
    with pytest.raises(ValueError, match=rf"{file}: ends after 2 rows; expected the header rows \['scorer', "
                                         r"'individuals', 'bodyparts', 'coords'\]"):
        read_dlc_csv(file)


def test_a_missing_image_names_the_csv_row(tmp_path):
    file = _project(tmp_path, [*SINGLE, "labeled-data/v1/gone.png,1,2,3,4"])
    with pytest.raises(FileNotFoundError, match=rf"{file} line 6: image file .*labeled-data/v1/gone.png does not"):
        convert_dlc([file])
    other = tmp_path / "other"
    other.mkdir()
    with pytest.raises(FileNotFoundError, match=rf"{file} line 4: image file {other}/labeled-data/v1/a.png does"):
        convert_dlc([file], project_dir=other)


def test_no_project_folder_holds_the_first_image(tmp_path):
    file = _project(tmp_path, SINGLE, images=[])
    with pytest.raises(FileNotFoundError, match=rf"{file} line 4: its image labeled-data/v1/a.png is under neither "
                                                r"the CSV's folder .*--project-dir"):
        convert_dlc([file])


def test_a_skeleton_file_must_name_exactly_the_body_parts(tmp_path):
    file = _project(tmp_path, SINGLE)
    skeleton_file = tmp_path / "mouse.json"
    skeleton_file.write_text(json.dumps({"keypoints": ["tail", "nose"], "limbs": [["tail", "nose"]]}))
    converted = convert_dlc([file], skeleton=skeleton_file, val_files=["labeled-data/v1/b.png"])
    assert (converted.skeleton.name, converted.skeleton.keypoint_names) == ("mouse", ("tail", "nose"))
    assert converted.train["annotations"][0]["keypoints"][:3] == [10.0, 12.0, 2.0]  # the tail first, as the file
    skeleton_file.write_text(json.dumps({"keypoints": ["nose", "ear"]}))
    with pytest.raises(ValueError, match=r"the skeleton 'mouse' does not name the body parts of .*CollectedData.csv: "
                                         r"missing \['tail'\], extra \['ear'\]"):
        convert_dlc([file], skeleton=skeleton_file)


def test_a_dlc_config_gives_the_limbs_and_the_name(tmp_path, caplog):
    file = _project(tmp_path, SINGLE)
    config = tmp_path / "config.yaml"
    config.write_text("Task: reaching\nbodyparts:\n- nose\n- tail\nskeleton:\n- [nose, tail]\n- [nose, arena]\n")
    with caplog.at_level(logging.WARNING):
        converted = convert_dlc([file], dlc_config=config)
    assert (converted.skeleton.name, converted.skeleton.limbs) == ("reaching", ((0, 1),))
    assert "dropping the skeleton pairs [['nose', 'arena']]" in caplog.text
    config.write_text("multianimalproject: true\nbodyparts: MULTI!\nmultianimalbodyparts: [nose]\n")
    with pytest.raises(ValueError, match=r"config.yaml \(`multianimalbodyparts`\) does not name the body parts of the "
                                         r"CSV files: missing \['tail'\], extra \[\]"):
        convert_dlc([file], dlc_config=config)


def test_cli_reports_bad_input_in_one_line_exits_2_and_writes_nothing(tmp_path, monkeypatch, capsys):
    lines = list(SINGLE)
    lines[3] = "labeled-data/v1/a.png,1.5,two,10,12"
    file = _project(tmp_path, lines)
    path = REPO / "datasets_scripts" / "prepare_dlc.py"
    monkeypatch.setattr("sys.argv", [str(path), "--csv", str(file), "--output", str(tmp_path / "out")])
    with pytest.raises(SystemExit) as exit_:
        runpy.run_path(str(path), run_name="__main__")
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "Traceback" not in err
    assert err == f"prepare_dlc.py: error: {file} line 4: body part 'nose': y is 'two', expected a finite number " \
                  "(or an empty cell: unlabeled).\n"
    assert not (tmp_path / "out").exists()
