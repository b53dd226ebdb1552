"""Tests of the dataset folder: every config/split through `load_dataset`, subsets, errors, CLIs."""

import importlib.util
import json
import runpy
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from datasets import Features, load_dataset
from datasets import Image as Image_
from huggingface_hub import DatasetCard
from PIL import Image
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from semipose.data import dataset_folder
from semipose.data.coco_format import IGNORE_COLUMNS, PEOPLE_COLUMNS, pose_features
from semipose.data.dataset_folder import (
    METADATA_FILE,
    SPLITS,
    load_pose_dataset,
    prepare_dataset_folder,
    read_dataset_metadata,
    read_dataset_skeleton,
)
from semipose.skeletons import get_skeleton

REPO = Path(__file__).resolve().parents[2]
CONFIGS = ("ratio_1", "ratio_5", "ratio_10", "full")
FIXTURE_IDS = [785, 40083, 196141, 197388]
DRAWN_FIRST = 196141  # first id of the seed-0 shuffle of FIXTURE_IDS
EXTRA_IDS = [197389, 197390]  # extra images get ids after the largest json id


def _save_png(path: Path, size: tuple[int, int]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (90, 120, 30)).save(path)


def _prepare_fixture(coco_fixture_dir: Path, output_dir: Path, **options) -> Path:
    """Convert the real fixture, using its json as both train and validation."""
    annotations = coco_fixture_dir / "test_coco.json"
    return prepare_dataset_folder(annotations, coco_fixture_dir, annotations, coco_fixture_dir,
                                  output_dir, show_progress=False, **options)


def _ids(dataset) -> list[int]:
    return sorted(dataset["image_id"])


@pytest.fixture(scope="module")
def extra_dir(tmp_path_factory) -> Path:
    """Two PNGs (one nested), a text file, a hidden file and an image in a hidden folder, all three skipped."""
    folder = tmp_path_factory.mktemp("extra")
    _save_png(folder / "b.png", (12, 10))
    _save_png(folder / "nested" / "a.jpg", (7, 9))
    (folder / "notes.txt").write_text("not an image")
    (folder / ".hidden.png").write_bytes(b"not an image")
    _save_png(folder / ".thumbnails" / "b.png", (3, 3))
    return folder


@pytest.fixture(scope="module")
def converted(coco_fixture_dir, extra_dir, tmp_path_factory) -> Path:
    output = tmp_path_factory.mktemp("converted") / "coco_semi"
    return _prepare_fixture(coco_fixture_dir, output, extra_unlabeled_dirs=[extra_dir])


def test_every_config_and_split_loads_with_exact_counts(converted, tmp_path):
    expected = {
        "labeled": {config: [DRAWN_FIRST] for config in CONFIGS[:3]} | {"full": FIXTURE_IDS},
        "unlabeled": {config: [785, 40083, 197388, *EXTRA_IDS] for config in CONFIGS[:3]}
        | {"full": EXTRA_IDS},
        "validation": {config: FIXTURE_IDS for config in CONFIGS},
    }
    metadata = read_dataset_metadata(converted)
    for config in CONFIGS:
        for split in SPLITS:
            dataset = load_dataset(str(converted), config, split=split, cache_dir=str(tmp_path))
            assert _ids(dataset) == expected[split][config], (config, split)
            assert dataset.features == pose_features(17)
            assert metadata["configs"][config][split] == len(dataset)
    assert metadata["labeled_image_ids"] == {config: expected["labeled"][config] for config in CONFIGS}


def test_loaded_values_equal_the_json(converted, coco_fixture_dir, tmp_path):
    reference = COCO(str(coco_fixture_dir / "test_coco.json"))
    for split in ("labeled", "validation"):
        for row in load_pose_dataset(converted, "full", split, cache_dir=tmp_path / split):
            annotations = reference.imgToAnns[row["image_id"]]
            people = [a for a in annotations if a["num_keypoints"] > 0]
            ignored = [a for a in annotations if a["num_keypoints"] == 0]
            assert row["annotation_ids"] == sorted(a["id"] for a in people)
            people.sort(key=lambda a: a["id"])
            np.testing.assert_array_equal(
                np.array(row["keypoints"], dtype=np.float32),
                np.array([a["keypoints"] for a in people], dtype=np.float32).reshape(-1, 17, 3))
            np.testing.assert_array_equal(np.array(row["bboxes"], dtype=np.float32),
                                          np.array([a["bbox"] for a in people], dtype=np.float32))
            assert row["areas"] == [np.float32(a["area"]) for a in people]
            assert row["num_keypoints"] == [a["num_keypoints"] for a in people]
            assert row["ignore_annotation_ids"] == [a["id"] for a in ignored]
            assert row["ignore_areas"] == [np.float32(a["area"]) for a in ignored]
            for counts, annotation in zip(row["ignore_rles"], ignored, strict=True):
                rle = {"size": [row["height"], row["width"]], "counts": counts.encode()}
                np.testing.assert_array_equal(mask_utils.decode(rle), reference.annToMask(annotation))
            assert row["image"].size == (row["width"], row["height"])
            assert row["crowd_index"] is None


def test_unlabeled_rows_have_no_annotations(converted, extra_dir, tmp_path):
    for config in CONFIGS:
        dataset = load_pose_dataset(converted, config, "unlabeled", cache_dir=tmp_path / config)
        for row in dataset:
            assert all(row[name] == [] for name in PEOPLE_COLUMNS + IGNORE_COLUMNS)
            assert row["image"].size == (row["width"], row["height"])
    extras = {row["image_id"]: row for row in dataset}
    assert extras[197389]["file_name"] == f"{extra_dir.name}/b.png"
    assert extras[197390]["file_name"] == f"{extra_dir.name}/nested/a.jpg"
    assert [extras[197389]["width"], extras[197390]["height"]] == [12, 9]


def _write_generated_coco(folder: Path, num_images: int = 200) -> Path:
    """8x8 images: the first 150 with a labeled person, 30 with a keypoint-less one, 20 empty."""
    images, annotations = [], []
    for index in range(num_images):
        image_id = 1000 + 7 * index
        _save_png(folder / f"{image_id}.png", (8, 8))
        images.append({"id": image_id, "file_name": f"{image_id}.png", "width": 8, "height": 8})
        if index < 180:
            keypoints = [0] * 51
            keypoints[:3] = [3, 4, 2] if index < 150 else [0, 0, 0]
            annotations.append({"id": index, "image_id": image_id, "iscrowd": 0,
                                "bbox": [1, 1, 5, 5], "keypoints": keypoints})
    annotation_file = folder / "generated.json"
    categories = [get_skeleton("coco").coco_category()]
    annotation_file.write_text(json.dumps({"images": images, "annotations": annotations, "categories": categories}))
    return annotation_file


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("generated")
    return _write_generated_coco(folder)


def _prepare_generated(annotations: Path, output_dir: Path, seed: int, **options) -> dict:
    prepare_dataset_folder(annotations, annotations.parent, annotations, annotations.parent,
                           output_dir, seed=seed, show_progress=False, **options)
    return read_dataset_metadata(output_dir)


def test_dataset_card_yaml_has_license_task_and_features_and_no_absolute_paths(converted, coco_fixture_dir, extra_dir):
    readme = (converted / "README.md").read_text()
    card = DatasetCard.load(converted / "README.md").data
    assert (card.license, card.task_categories, card.pretty_name) == ("unknown", ["keypoint-detection"], "coco_semi")
    assert sorted(info["config_name"] for info in card.dataset_info) == sorted(CONFIGS)
    assert all(Features._from_yaml_list(info["features"]) == pose_features(17) for info in card.dataset_info)
    assert str(coco_fixture_dir.resolve()) not in readme and str(extra_dir) not in readme
    assert "- Training annotations: `test_coco.json`" in readme
    assert f"- Extra unlabeled image folders: `{extra_dir.name}/`" in readme


def test_labeled_subsets_are_seeded_nested_and_disjoint(generated, tmp_path):
    metadata = _prepare_generated(generated, tmp_path / "seed3", seed=3)
    assert _prepare_generated(generated, tmp_path / "seed3_again", seed=3)["labeled_image_ids"] == \
        metadata["labeled_image_ids"]
    other = _prepare_generated(generated, tmp_path / "seed4", seed=4)["labeled_image_ids"]
    assert other["ratio_10"] != metadata["labeled_image_ids"]["ratio_10"]
    ids = {config: set(metadata["labeled_image_ids"][config]) for config in CONFIGS}
    eligible = {1000 + 7 * index for index in range(150)}
    assert [len(ids[config]) for config in CONFIGS] == [2, 8, 15, 150]  # ceil(r * 150 / 100)
    assert ids["ratio_1"] < ids["ratio_5"] < ids["ratio_10"] < ids["full"] == eligible
    all_train = {1000 + 7 * index for index in range(200)}
    for config in ("ratio_1", "ratio_5", "ratio_10"):
        load = dict(folder=tmp_path / "seed3", config=config, cache_dir=tmp_path / config)
        unlabeled = load_pose_dataset(split="unlabeled", **load)
        labeled = load_pose_dataset(split="labeled", **load)
        assert set(_ids(labeled)) == ids[config]
        assert set(_ids(unlabeled)) == all_train - ids[config]
        assert all(row["annotation_ids"] == row["ignore_annotation_ids"] == [] for row in unlabeled)
    card = (tmp_path / "seed3" / "README.md").read_text()
    assert "seed 3" in card and "| ratio_5 | 8 | 192 | 200 |" in card
    assert ", ".join(map(str, sorted(ids["ratio_5"]))) in card


def test_labeled_counts_label_exactly_that_many_images_nested_with_the_ratios(generated, tmp_path):
    metadata = _prepare_generated(generated, tmp_path / "counts", seed=3, ratios=[5], labeled_counts=[25, 10])
    by_ratio = _prepare_generated(generated, tmp_path / "ratios", seed=3)["labeled_image_ids"]
    ids = {config: set(image_ids) for config, image_ids in metadata["labeled_image_ids"].items()}
    assert list(metadata["configs"]) == ["ratio_5", "labeled_10", "labeled_25", "full"]  # smallest subset first
    assert [len(ids[config]) for config in ("ratio_5", "labeled_10", "labeled_25")] == [8, 10, 25]
    assert ids["ratio_5"] == set(by_ratio["ratio_5"]) and set(by_ratio["ratio_10"]) < ids["labeled_25"]
    assert ids["ratio_5"] < ids["labeled_10"] < ids["labeled_25"] < ids["full"]
    assert metadata["labeled_counts"] == [10, 25] and metadata["configs"]["labeled_10"]["unlabeled"] == 190
    labeled = load_pose_dataset(tmp_path / "counts", "labeled_10", "labeled", cache_dir=tmp_path / "cache")
    assert set(_ids(labeled)) == ids["labeled_10"]


@pytest.mark.parametrize(("options", "message"), [
    ({"labeled_counts": [151]}, "151 labeled images asked for, but the training split has 150 images"),
    ({"labeled_counts": [0]}, "expected 1 to 150"),
])
def test_labeled_counts_out_of_range_are_refused(generated, tmp_path, options, message):
    with pytest.raises(ValueError, match=message):
        _prepare_generated(generated, tmp_path / "refused", seed=0, **options)
    assert not (tmp_path / "refused").exists()


def test_empty_split_loads_as_zero_rows_with_the_features(generated, tmp_path):
    metadata = _prepare_generated(generated, tmp_path / "folder", seed=0)
    assert metadata["configs"]["full"] == {"labeled": 150, "unlabeled": 0, "validation": 200}
    empty = load_pose_dataset(tmp_path / "folder", "full", "unlabeled", cache_dir=tmp_path / "cache")
    assert len(empty) == 0 and empty.features == pose_features(17)
    with pytest.raises(ValueError, match="Unknown split"):  # datasets cannot load a split without rows
        load_dataset(str(tmp_path / "folder"), "full", split="unlabeled", cache_dir=str(tmp_path))


def test_embedded_images_are_stored_as_bytes(coco_fixture_dir, tmp_path):
    folder = _prepare_fixture(coco_fixture_dir, tmp_path / "embedded", embed_images=True)
    table = pq.read_table(folder / "data" / "validation.parquet", columns=["image"])
    images = table.column("image").to_pylist()
    assert [image["path"] for image in images] == [f"{image_id:012d}.jpg" for image_id in FIXTURE_IDS]
    assert [image["bytes"] for image in images] == [
        (coco_fixture_dir / f"{image_id:012d}.jpg").read_bytes() for image_id in FIXTURE_IDS]
    moved = shutil.move(folder, tmp_path / "moved")
    row = load_pose_dataset(moved, "ratio_1", "labeled", cache_dir=tmp_path / "cache")[0]
    assert row["image"].size == (row["width"], row["height"])
    assert read_dataset_metadata(moved)["embedded"] is True
    assert "embedded in the parquet files" in (Path(moved) / "README.md").read_text()


def test_load_pose_dataset_names_what_exists(converted, tmp_path):
    cache = tmp_path / "cache"
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_pose_dataset(tmp_path / "nowhere", "full", "labeled", cache_dir=cache)
    expected = f"not a semipose dataset folder: it has no {METADATA_FILE}"
    with pytest.raises(FileNotFoundError, match=expected):
        load_pose_dataset(tmp_path, "full", "labeled", cache_dir=cache)
    expected = r"unknown config 'ratio_2'; expected one of \['ratio_1', 'ratio_5', 'ratio_10', 'full'\]"
    with pytest.raises(ValueError, match=expected):
        load_pose_dataset(converted, "ratio_2", "labeled", cache_dir=cache)
    expected = r"unknown split 'train'; expected one of \['labeled', 'unlabeled', 'validation'\]"
    with pytest.raises(ValueError, match=expected):
        load_pose_dataset(converted, "full", "train", cache_dir=cache)
    assert not cache.exists()


def _bad_json(coco_fixture_dir: Path, tmp_path: Path, monkeypatch) -> dict:
    data = json.loads((coco_fixture_dir / "test_coco.json").read_text())
    data["annotations"][5]["keypoints"] = data["annotations"][5]["keypoints"][:-3]
    (tmp_path / "bad.json").write_text(json.dumps(data))
    return {"val_annotations": tmp_path / "bad.json"}


def _corrupt_extra(coco_fixture_dir: Path, tmp_path: Path, monkeypatch) -> dict:
    (tmp_path / "extra").mkdir()
    (tmp_path / "extra" / "broken.jpg").write_bytes(b"\xff\xd8 not really")
    return {"extra_unlabeled_dirs": [tmp_path / "extra"]}


def _missing_image(coco_fixture_dir: Path, tmp_path: Path, monkeypatch) -> dict:
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "000000000785.jpg").symlink_to(coco_fixture_dir / "000000000785.jpg")
    return {"train_images": tmp_path / "images"}


def _failing_write(coco_fixture_dir: Path, tmp_path: Path, monkeypatch) -> dict:
    encode, calls = dataset_folder._encode, []

    def encode_then_fail(*args):
        calls.append(1)
        if len(calls) > 3:
            raise OSError("disk full")
        return encode(*args)

    monkeypatch.setattr(dataset_folder, "_encode", encode_then_fail)
    return {}


@pytest.mark.parametrize("break_input, error, message", [
    (_bad_json, ValueError, "annotation id 488308: keypoints has 48 numbers, expected 51"),
    (_corrupt_extra, ValueError, "broken.jpg is not a readable image"),
    (_missing_image, FileNotFoundError, "image id 40083: image file .*000000040083.jpg does not exist"),
    (_failing_write, OSError, "disk full"),
])
def test_failed_conversion_leaves_no_folder_behind(
    coco_fixture_dir, tmp_path, monkeypatch, break_input, error, message
):
    annotation_file = coco_fixture_dir / "test_coco.json"
    arguments = {"train_annotations": annotation_file, "train_images": coco_fixture_dir,
                 "val_annotations": annotation_file, "val_images": coco_fixture_dir}
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    arguments |= break_input(coco_fixture_dir, inputs, monkeypatch)
    outputs = tmp_path / "outputs"
    outputs.mkdir()
    with pytest.raises(error, match=message):
        prepare_dataset_folder(**arguments, output_dir=outputs / "dataset", show_progress=False)
    assert list(outputs.iterdir()) == []


def test_existing_output_needs_overwrite_and_must_be_a_dataset_folder(coco_fixture_dir, tmp_path):
    folder = _prepare_fixture(coco_fixture_dir, tmp_path / "dataset", seed=1)
    with pytest.raises(FileExistsError, match="already exists; pass overwrite=True"):
        _prepare_fixture(coco_fixture_dir, folder, seed=2)
    _prepare_fixture(coco_fixture_dir, folder, seed=2, overwrite=True)
    assert read_dataset_metadata(folder)["seed"] == 2
    assert sorted(path.name for path in tmp_path.iterdir()) == ["dataset"]
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("precious")
    with pytest.raises(ValueError, match="Refusing to overwrite .*mine: it is not empty"):
        _prepare_fixture(coco_fixture_dir, tmp_path / "mine", overwrite=True)
    assert (tmp_path / "mine" / "thesis.tex").read_text() == "precious"
    expected = r"ratios must be distinct labeled percentages in \(0, 100\], got \[5, 5\]"
    with pytest.raises(ValueError, match=expected):
        _prepare_fixture(coco_fixture_dir, tmp_path / "other", ratios=(5, 5))


def _script(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "datasets_scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_prepare_coco_cli(coco_fixture_dir, tmp_path):
    root = tmp_path / "coco"
    (root / "annotations").mkdir(parents=True)
    for name in ("train2017", "val2017"):
        annotation_file = root / "annotations" / f"person_keypoints_{name}.json"
        annotation_file.symlink_to(coco_fixture_dir / "test_coco.json")
        (root / name).symlink_to(coco_fixture_dir)
    folder = _script("prepare_coco").main([
        "--coco-root", str(root), "--output", str(tmp_path / "out"), "--ratios", "1", "50",
        "--no-progress"])
    metadata = read_dataset_metadata(folder)
    assert (metadata["skeleton"]["name"], metadata["ratios"]) == ("coco", [1, 50])
    assert DatasetCard.load(folder / "README.md").data.license == "cc-by-4.0"  # the COCO annotations' license
    assert {config: counts["labeled"] for config, counts in metadata["configs"].items()} == \
        {"ratio_1": 1, "ratio_50": 2, "full": 4}


def test_prepare_coco_cli_refuses_a_file_name_outside_the_image_folder_unless_allowed(coco_fixture_dir, tmp_path):
    root = tmp_path / "coco"
    (root / "annotations").mkdir(parents=True)
    data = json.loads((coco_fixture_dir / "test_coco.json").read_text())
    data["images"][0]["file_name"] = str(coco_fixture_dir / data["images"][0]["file_name"])  # absolute
    for name in ("train2017", "val2017"):
        (root / "annotations" / f"person_keypoints_{name}.json").write_text(json.dumps(data))
        (root / name).symlink_to(coco_fixture_dir)
    arguments = ["--coco-root", str(root), "--output", str(tmp_path / "out"), "--no-progress"]
    with pytest.raises(ValueError, match=r"person_keypoints_train2017.json: image id \d+: file_name .* leaves the "
                                         r"image folder .*--allow-outside-image-dir"):
        _script("prepare_coco").main(arguments)
    folder = _script("prepare_coco").main([*arguments, "--allow-outside-image-dir"])
    assert read_dataset_metadata(folder)["configs"]["full"]["labeled"] == 4


def _write_crowdpose_root(root: Path) -> None:
    """CrowdPose layout: images/ and json/crowdpose_{trainval,test}.json, 14 keypoints, crowdIndex."""
    images, annotations = [], []
    for index, crowd_index in enumerate([0.1, 0.5, 0.9]):
        _save_png(root / "images" / f"{100 + index}.jpg", (40, 30))
        images.append({"id": 100 + index, "file_name": f"{100 + index}.jpg", "width": 40, "height": 30,
                       "crowdIndex": crowd_index})
        keypoints = [float(value) for k in range(14) for value in (2 * k + 1, k + 2, 1 + k % 2)]
        annotations.append({"id": index, "image_id": 100 + index, "iscrowd": 0, "num_keypoints": 14,
                            "bbox": [1, 2, 30, 20], "keypoints": keypoints, "category_id": 1})
    annotations.append({"id": 9, "image_id": 101, "iscrowd": 0, "num_keypoints": 0,
                        "bbox": [0, 0, 4, 3], "keypoints": [0] * 42, "category_id": 1})
    data = {"images": images, "annotations": annotations,
            "categories": [get_skeleton("crowdpose").coco_category()]}
    (root / "json").mkdir()
    for name in ("trainval", "test"):
        (root / "json" / f"crowdpose_{name}.json").write_text(json.dumps(data))


def test_prepare_crowdpose_cli_keeps_crowd_index(tmp_path):
    root = tmp_path / "crowdpose"
    _write_crowdpose_root(root)
    folder = _script("prepare_crowdpose").main([
        "--crowdpose-root", str(root), "--output", str(tmp_path / "out"), "--no-progress"])
    assert read_dataset_skeleton(folder) == get_skeleton("crowdpose")
    assert DatasetCard.load(folder / "README.md").data.license == "unknown"  # no --license given
    dataset = load_pose_dataset(folder, "full", "validation", cache_dir=tmp_path / "cache")
    assert dataset.features == pose_features(14)
    assert dataset["crowd_index"] == [np.float32(value) for value in (0.1, 0.5, 0.9)]
    row = dataset[1]
    assert np.array(row["keypoints"]).shape == (1, 14, 3)
    assert row["keypoints"][0][13] == [27.0, 15.0, 2.0]
    assert row["areas"] == [600.0]  # CrowdPose has no `area`: the box's w * h
    box = mask_utils.decode({"size": [30, 40], "counts": row["ignore_rles"][0].encode()})
    assert box.sum() == 12 and box[:3, :4].all()
    with pytest.raises(FileNotFoundError, match="'crowdpose_val.json' not found; looked at"):
        _script("prepare_crowdpose").main([
            "--crowdpose-root", str(root), "--output", str(tmp_path / "out2"), "--val-annotations",
            "crowdpose_val.json"])


def test_same_named_folders_elsewhere_do_not_share_cached_rows(coco_fixture_dir, tmp_path, monkeypatch):
    """Rows hold absolute image paths: a folder regenerated elsewhere must not reuse another's cache."""
    monkeypatch.setattr("datasets.config.HF_DATASETS_CACHE", str(tmp_path / "hf_cache"))
    folders = []
    for place in ("first", "second"):
        images = tmp_path / place / "images"
        shutil.copytree(coco_fixture_dir, images)
        folders.append(dataset_folder.prepare_dataset_folder(
            images / "test_coco.json", images, images / "test_coco.json", images, tmp_path / place / "same_name",
            show_progress=False,
        ))
    rows = [load_pose_dataset(folder, "full", "validation").cast_column("image", Image_(decode=False))[0]
            for folder in folders]
    paths = [row["image"]["path"] for row in rows]
    assert "first" in paths[0] and "second" in paths[1]


@pytest.mark.parametrize(("script", "arguments", "message"), [
    ("prepare_coco", ["--coco-root", "nowhere"],
     "prepare_coco.py: error: Annotation file nowhere/annotations/person_keypoints_train2017.json does not exist.\n"),
    ("prepare_crowdpose", ["--crowdpose-root", "nowhere"],
     "prepare_crowdpose.py: error: CrowdPose annotation file 'crowdpose_trainval.json' not found; looked at"),
    ("prepare_synthetic", ["--num-train", "-3"],
     "prepare_synthetic.py: error: SyntheticConfig.num_train must be >= 1, got -3.\n"),
])
def test_converters_report_bad_input_in_one_line_and_exit_2(
    tmp_path, monkeypatch, capsys, script, arguments, message
):
    path = REPO / "datasets_scripts" / f"{script}.py"
    monkeypatch.setattr("sys.argv", [str(path), *arguments, "--output", str(tmp_path / "out")])
    with pytest.raises(SystemExit) as exit_:
        runpy.run_path(str(path), run_name="__main__")
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.startswith(message) and "Traceback" not in err
    assert not (tmp_path / "out").exists()
