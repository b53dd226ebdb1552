"""Tests of datasets_scripts/prepare_coco.py on real animal files: AP-10K (54 species, one layout) and MacaquePose."""

import importlib.util
import json
import runpy
import subprocess
import sys
from pathlib import Path

import pytest
from huggingface_hub import DatasetCard

from semipose.data.dataset_folder import read_dataset_metadata, read_dataset_skeleton
from semipose.skeletons import DEFAULT_SIGMA, get_skeleton

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "datasets_scripts" / "prepare_coco.py"
ANIMALS = (REPO / ".." / "shared" / "fixtures" / "animals").resolve()
AP10K = ANIMALS / "ap10k"
MACAQUE = ANIMALS / "macaque"
AP10K_NAMES = [
    "left_eye", "right_eye", "nose", "neck", "root_of_tail",
    "left_shoulder", "left_elbow", "left_front_paw", "right_shoulder", "right_elbow", "right_front_paw",
    "left_hip", "left_knee", "left_back_paw", "right_hip", "right_knee", "right_back_paw",
]
AP10K_FLIP_INDEX = (1, 0, 2, 3, 4, 8, 9, 10, 5, 6, 7, 14, 15, 16, 11, 12, 13)
AP10K_IMAGES = {"antelope": 4, "jaguar": 37516}  # the fixture's two annotated animals: species -> image id


def _prepare_coco():
    spec = importlib.util.spec_from_file_location("prepare_coco", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _files(folder: Path, json_name: str) -> list[str]:
    """The general route with one file as both training and validation labels."""
    labels = str(folder / json_name)
    return ["--train-json", labels, "--train-images", str(folder), "--val-json", labels, "--val-images", str(folder)]


def _ap10k(output: Path, *options: str) -> list[str]:
    return [*_files(AP10K, "test_ap10k.json"), "--output", str(output), "--no-progress", *options]


def test_ap10k_gives_the_categories_skeleton_with_inferred_mirror_pairs(tmp_path, capsys):
    folder = _prepare_coco().main(_ap10k(tmp_path / "ap10k", "--ratios", "50"))
    skeleton = read_dataset_metadata(folder)["skeleton"]
    assert skeleton["name"] == "test_ap10k"  # every species shares the layout: named after the file
    assert skeleton["keypoints"] == AP10K_NAMES
    assert skeleton["limbs"] == [  # the category's 1-based `skeleton`, as names
        ["left_eye", "right_eye"], ["left_eye", "nose"], ["right_eye", "nose"], ["nose", "neck"],
        ["neck", "root_of_tail"], ["neck", "left_shoulder"], ["left_shoulder", "left_elbow"],
        ["left_elbow", "left_front_paw"], ["neck", "right_shoulder"], ["right_shoulder", "right_elbow"],
        ["right_elbow", "right_front_paw"], ["root_of_tail", "left_hip"], ["left_hip", "left_knee"],
        ["left_knee", "left_back_paw"], ["root_of_tail", "right_hip"], ["right_hip", "right_knee"],
        ["right_knee", "right_back_paw"],
    ]
    assert skeleton["flip_pairs"] == [
        ["left_eye", "right_eye"], ["left_shoulder", "right_shoulder"], ["left_elbow", "right_elbow"],
        ["left_front_paw", "right_front_paw"], ["left_hip", "right_hip"], ["left_knee", "right_knee"],
        ["left_back_paw", "right_back_paw"],
    ]
    assert skeleton["sigmas"] == [DEFAULT_SIGMA] * 17
    loaded = read_dataset_skeleton(folder)
    assert (loaded.flip_index, loaded.limbs[:3]) == (AP10K_FLIP_INDEX, ((0, 1), (0, 2), (1, 2)))
    assert capsys.readouterr().out == f"Wrote {folder}: skeleton 'test_ap10k', 17 keypoints, mirrored\n"


def test_ap10k_with_both_species_labels_both_images(tmp_path):
    metadata = read_dataset_metadata(_prepare_coco().main(_ap10k(tmp_path / "ap10k", "--ratios", "50")))
    assert metadata["configs"]["full"] == {"labeled": 2, "unlabeled": 0, "validation": 2}
    assert DatasetCard.load(tmp_path / "ap10k" / "README.md").data.license == "unknown"  # not COCO's license


@pytest.mark.parametrize("species", sorted(AP10K_IMAGES))
def test_category_keeps_one_species(tmp_path, species):
    folder = _prepare_coco().main(_ap10k(tmp_path / species, "--category", species, "--ratios", "50"))
    metadata = read_dataset_metadata(folder)
    assert metadata["labeled_image_ids"]["full"] == [AP10K_IMAGES[species]]
    assert metadata["configs"]["full"]["validation"] == 1
    assert (metadata["skeleton"]["name"], metadata["skeleton"]["keypoints"]) == (species, AP10K_NAMES)


def test_a_skeleton_file_states_the_facts_the_category_lacks(tmp_path):
    skeleton_file = tmp_path / "ap10k.yaml"
    skeleton_file.write_text(f"keypoints: {json.dumps(AP10K_NAMES)}\nsigmas: 0.05\n")
    folder = _prepare_coco().main(_ap10k(tmp_path / "out", "--skeleton", str(skeleton_file)))
    skeleton = read_dataset_skeleton(folder)
    assert (skeleton.name, skeleton.sigmas, skeleton.flip_index) == ("ap10k", (0.05,) * 17, AP10K_FLIP_INDEX)
    assert skeleton.limbs == ()  # the file's facts, not the category's


def test_macaquepose_gives_the_registered_coco_skeleton(tmp_path, capsys):
    arguments = [*_files(MACAQUE, "test_macaque.json"), "--output", str(tmp_path / "macaque"), "--no-progress"]
    folder = _prepare_coco().main(arguments)
    assert read_dataset_skeleton(folder) == get_skeleton("coco")
    assert read_dataset_metadata(folder)["configs"]["full"]["labeled"] == 2
    assert capsys.readouterr().out == f"Wrote {folder}: skeleton 'coco', 17 keypoints, mirrored\n"


def test_an_unknown_category_exits_2_naming_the_file_and_its_categories(tmp_path, monkeypatch, capsys):
    output = tmp_path / "out"
    monkeypatch.setattr("sys.argv", [str(SCRIPT), *_ap10k(output, "--category", "zebu")])
    with pytest.raises(SystemExit) as exit_:
        runpy.run_path(str(SCRIPT), run_name="__main__")
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "Traceback" not in err and err.count("\n") == 1
    assert err.startswith(f"prepare_coco.py: error: {AP10K / 'test_ap10k.json'}: no category is called 'zebu'; "
                          "its categories: ['antelope', 'argali sheep', 'bison', ")
    assert err.endswith("'panda', 'polar bear', 'bat'].\n")
    assert not output.exists()


def test_a_skeleton_that_does_not_match_the_file_exits_2_and_writes_nothing(tmp_path):
    output = tmp_path / "out"
    result = subprocess.run([sys.executable, str(SCRIPT), *_ap10k(output, "--skeleton", "coco")],
                            capture_output=True, text=True, timeout=120)
    coco_names = list(get_skeleton("coco").keypoint_names)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == (
        f"prepare_coco.py: error: {AP10K / 'test_ap10k.json'}: category id 1: names the keypoints {AP10K_NAMES}, "
        f"but the 'coco' skeleton has {coco_names}; pass the skeleton that matches the file (or none, to take the "
        "category's).\n"
    )
    assert not output.exists()


@pytest.mark.parametrize(("arguments", "message"), [
    (["--coco-root", "c", "--train-json", "t.json"],
     "--coco-root and --train-json are two routes; pass --coco-root alone or the four files' options"),
    (["--train-json", "t.json", "--val-images", "v"],
     "pass --coco-root, or all of --train-json --train-images --val-json --val-images "
     "(missing: --train-images --val-json)"),
    ([], "pass --coco-root, or all of --train-json --train-images --val-json --val-images (missing: --train-json "
         "--train-images --val-json --val-images)"),
    (["--coco-root", "c", "--skeleton", "crowdpose"],
     "--coco-root is COCO's people with the registered 'coco' skeleton; --category and --skeleton belong to the "
     "--train-json/--train-images/--val-json/--val-images route"),
])
def test_the_two_routes_are_exclusive(tmp_path, capsys, arguments, message):
    with pytest.raises(SystemExit) as exit_:
        _prepare_coco().main([*arguments, "--output", str(tmp_path / "out")])
    assert exit_.value.code == 2
    assert capsys.readouterr().err.endswith(f"error: {message}\n")
