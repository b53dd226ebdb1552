"""Tests of the synthetic multi-person generator: determinism, COCO validity, visibility rules,
ranges, the CrowdPose variant, the dataset folder it feeds and its command line."""

import contextlib
import importlib.util
import io
import json
from pathlib import Path

import numpy as np
import pytest
from datasets import load_dataset
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from semipose.data.synthetic import (
    BODY_KEYPOINTS,
    SyntheticConfig,
    crowd_index,
    generate_scene,
    make_figures,
    prepare_synthetic_dataset,
    render_contact_sheet,
    render_scene,
    sample_body_proportions,
    sample_figures,
    sample_part_colors,
    sample_pose_angles,
    synthetic_dataset_dir,
    synthetic_source_dir,
    write_coco_split,
)
from semipose.skeletons import get_skeleton

REPO = Path(__file__).resolve().parents[2]
COCO_NAMES = get_skeleton("coco").keypoint_names
PLAIN = dict(clutter=0.0, blur=0.0, noise=0.0)


def _standing(heights, yaw=0.0, **angles):
    """Figures of people in a neutral pose (arms slightly out) with the pelvis at pixel (0, 0)."""
    rng = np.random.default_rng(0)
    count = len(heights)
    neutral = {name: np.zeros(count) for name in sample_pose_angles(rng, count)}
    neutral["yaw"] = np.full(count, yaw)
    for side in ("left", "right"):
        neutral[f"shoulder_elevation_{side}"] = np.full(count, 20.0)
    neutral.update({name: np.full(count, value) for name, value in angles.items()})
    proportions = {name: np.ones(count) for name in sample_body_proportions(rng, count)}
    colors = sample_part_colors(rng, count)
    return make_figures(neutral, proportions, np.asarray(heights, float), colors)


def _render(figures, **config):
    return render_scene(np.random.default_rng(1), figures, SyntheticConfig(**{**PLAIN, **config}))


def test_config_rejects_bad_values():
    expected = r"people must be \(min, max\) with 1 <= min <= max <= 8, got \(0, 3\)"
    with pytest.raises(ValueError, match=expected):
        SyntheticConfig(people=(0, 3))
    with pytest.raises(ValueError, match="people must be .* got \\(1, 9\\)"):
        SyntheticConfig(people=(1, 9))
    with pytest.raises(ValueError, match="height_range must be .* got \\(0.5, 0.2\\)"):
        SyntheticConfig(height_range=(0.5, 0.2))
    with pytest.raises(ValueError, match="Unknown skeleton 'mpii'"):
        SyntheticConfig(skeleton="mpii")
    with pytest.raises(ValueError, match="Unknown split 'test'"):
        generate_scene(SyntheticConfig(), "test", 0)


def test_same_seed_same_bytes_other_seed_other_images(tmp_path):
    config = SyntheticConfig(image_size=64, num_train=3, num_val=1)
    for run in ("a", "b"):
        write_coco_split(config, "train", tmp_path / run, tmp_path / run / "train.json",
                         show_progress=False)
    for name in ("train.json", "train/000000.png", "train/000001.png", "train/000002.png"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    first = generate_scene(config, "train", 1)
    assert first.image.tobytes() == generate_scene(config, "train", 1).image.tobytes()
    reseeded = SyntheticConfig(image_size=64, seed=1)
    assert first.image.tobytes() != generate_scene(reseeded, "train", 1).image.tobytes()
    assert first.image.tobytes() != generate_scene(config, "val", 1).image.tobytes()


def test_coco_json_is_valid_and_scores_perfectly_against_itself(tmp_path):
    config = SyntheticConfig(image_size=96, people=(1, 6), num_train=12)
    annotation_file = write_coco_split(config, "train", tmp_path, tmp_path / "train.json",
                                       show_progress=False)
    with contextlib.redirect_stdout(io.StringIO()):
        ground_truth = COCO(str(annotation_file))
    assert ground_truth.loadCats(1)[0]["keypoints"] == list(COCO_NAMES)
    assert len(ground_truth.getImgIds()) == 12
    assert ground_truth.imgs[1]["file_name"] == "train/000000.png"
    for annotation in ground_truth.loadAnns(ground_truth.getAnnIds()):
        keypoints = np.array(annotation["keypoints"]).reshape(17, 3)
        assert annotation["num_keypoints"] == (keypoints[:, 2] > 0).sum()
        assert set(keypoints[:, 2]) <= {0, 1, 2}
        assert (keypoints[keypoints[:, 2] == 0, :2] == 0).all()
        x, y, w, h = annotation["bbox"]
        assert annotation["area"] > 0 and min(x, y) >= -0.5 and max(x + w, y + h) <= 95.5
        assert annotation["area"] == ground_truth.annToMask(annotation).sum()
        assert annotation["iscrowd"] == 0 and annotation["id"] // 100 == annotation["image_id"]
    results = [
        {"image_id": a["image_id"], "category_id": 1, "keypoints": a["keypoints"], "score": 1.0}
        for a in ground_truth.loadAnns(ground_truth.getAnnIds()) if a["num_keypoints"] > 0
    ]
    with contextlib.redirect_stdout(io.StringIO()):
        evaluation = COCOeval(ground_truth, ground_truth.loadRes(results), "keypoints")
        evaluation.evaluate(), evaluation.accumulate(), evaluation.summarize()
    assert evaluation.stats[0] == pytest.approx(1.0)


def test_keypoints_behind_a_nearer_person_are_occluded():
    figures = _standing([60, 60]).shifted(np.array([[64.0, 64.0], [64.0, 64.0]]))
    scene = _render(figures)
    assert (scene.keypoints[0, :, 2] == 1).all()  # far person, drawn first, hidden everywhere
    assert (scene.keypoints[1, :, 2] == 2).all()
    np.testing.assert_allclose(scene.keypoints[0, :, :2], scene.keypoints[1, :, :2])


def test_keypoints_outside_the_frame_are_unlabeled_at_zero():
    figures = _standing([60]).shifted(np.array([[-3.0, 64.0]]))
    scene = _render(figures)
    positions = figures.keypoints[0, [BODY_KEYPOINTS.index(n) for n in COCO_NAMES]]
    outside = positions[:, 0] < -0.5
    assert 0 < outside.sum() < 17
    assert (scene.keypoints[0, outside] == 0).all()
    assert (scene.keypoints[0, ~outside, 2] > 0).all()
    np.testing.assert_allclose(scene.keypoints[0, ~outside, :2], positions[~outside])


def test_facing_decides_left_right_and_labeled_face_points():
    front, back = _standing([100], yaw=0.0), _standing([100], yaw=180.0)
    names = list(BODY_KEYPOINTS)
    shoulders = [names.index("left_shoulder"), names.index("right_shoulder")]
    assert front.keypoints[0, shoulders[0], 0] > front.keypoints[0, shoulders[1], 0]
    assert back.keypoints[0, shoulders[0], 0] < back.keypoints[0, shoulders[1], 0]
    face = [names.index(name) for name in COCO_NAMES[:5]]
    assert front.labeled[0, face].all()
    assert list(back.labeled[0, face]) == [False, False, False, True, True]
    profile = _standing([100], yaw=90.0)  # facing image right: the left ear is turned away
    assert list(profile.labeled[0, face]) == [True, False, True, False, True]


def test_body_proportions_are_human():
    figures = _standing([100], shoulder_elevation_left=0.0, shoulder_elevation_right=0.0)
    point = dict(zip(BODY_KEYPOINTS, figures.keypoints[0]))
    assert point["head"][1] - point["left_ankle"][1] == pytest.approx(-95, abs=3)
    assert point["left_shoulder"][0] - point["right_shoulder"][0] == pytest.approx(24, abs=1)
    assert point["left_wrist"][1] == pytest.approx(point["left_hip"][1] + 4, abs=4)
    assert point["left_knee"][1] - point["left_hip"][1] == pytest.approx(24.5, abs=0.1)


def test_pose_angles_stay_within_joint_limits():
    angles = sample_pose_angles(np.random.default_rng(0), 3000)
    for side in ("left", "right"):
        for joint in ("elbow", "knee"):
            assert 0 <= angles[f"{joint}_{side}"].min() and angles[f"{joint}_{side}"].max() <= 150
        behind = angles[f"shoulder_plane_{side}"] < -20
        assert angles[f"shoulder_elevation_{side}"][behind].max() <= 120
        sideways = np.abs(angles[f"hip_plane_{side}"]) < 5
        assert 40 < angles[f"hip_elevation_{side}"][sideways].max() <= 55
        backward = angles[f"hip_plane_{side}"] < -80
        assert 20 < angles[f"hip_elevation_{side}"][backward].max() <= 33
    assert (np.abs(angles["roll"]) > 30).mean() == pytest.approx(0.05 * 0.83, abs=0.015)


def test_people_count_and_height_ranges_are_respected():
    config = SyntheticConfig(image_size=100, people=(2, 3), height_range=(0.4, 0.5))
    counts = set()
    for index in range(30):
        figures = sample_figures(np.random.default_rng(index), config)
        counts.add(len(figures.heights))
        assert (figures.heights >= 40).all() and (figures.heights <= 50).all()
    assert counts == {2, 3}
    assert len(generate_scene(SyntheticConfig(people=(8, 8)), "train", 0).keypoints) == 8


def test_placement_respects_truncation_and_overlap_limits():
    config = SyntheticConfig(image_size=100, people=(3, 3), height_range=(0.2, 0.3),
                             truncation=0.0, max_overlap=0.0)
    for index in range(20):
        boxes = sample_figures(np.random.default_rng(index), config).boxes()
        assert (boxes >= 0).all() and (boxes <= 100).all()
        for first in range(3):
            for second in range(first + 1, 3):
                top_left = np.maximum(boxes[first, :2], boxes[second, :2])
                bottom_right = np.minimum(boxes[first, 2:], boxes[second, 2:])
                assert (bottom_right <= top_left).any()  # disjoint boxes
    loose = SyntheticConfig(image_size=100, people=(3, 3), truncation=0.5)
    boxes = np.concatenate(
        [sample_figures(np.random.default_rng(i), loose).boxes() for i in range(20)]
    )
    assert (boxes[:, :2] < 0).any() and (boxes[:, 2:] > 100).any()


def test_crowd_index_counts_other_peoples_keypoints_in_each_box():
    keypoints = np.zeros((2, 14, 3))
    keypoints[..., 2] = 2
    keypoints[0, :, :2] = [5, 5]
    keypoints[1, :, :2] = [50, 50]
    keypoints[1, :3, :2] = [8, 8]
    boxes = np.array([[0, 0, 10, 10], [40, 40, 20, 20]])
    assert crowd_index(keypoints, boxes) == pytest.approx((3 / 14 + 0) / 2)
    keypoints[1, 3:, 2] = 0  # person 1 keeps only the 3 points inside person 0's box
    same_boxes = np.array([[0, 0, 10, 10], [0, 0, 10, 10]])
    assert crowd_index(keypoints, same_boxes) == 1.0  # (3/14 + 14/3) / 2, capped
    assert crowd_index(keypoints[:1], boxes[:1]) == 0.0


def test_crowdpose_variant_has_14_keypoints_and_crowd_index(tmp_path):
    config = SyntheticConfig(image_size=64, people=(3, 8), skeleton="crowdpose", num_val=6)
    annotation_file = write_coco_split(config, "val", tmp_path, tmp_path / "val.json",
                                       show_progress=False)
    data = json.loads(annotation_file.read_text())
    assert data["categories"][0]["keypoints"] == list(get_skeleton("crowdpose").keypoint_names)
    assert data["images"][0]["id"] == 100_000_001
    assert all(0 <= image["crowdIndex"] <= 1 for image in data["images"])
    assert max(image["crowdIndex"] for image in data["images"]) > 0
    assert all(len(annotation["keypoints"]) == 42 for annotation in data["annotations"])
    assert generate_scene(SyntheticConfig(), "train", 0).crowd_index is None


def test_prepare_synthetic_dataset_end_to_end_and_cached(tmp_path):
    settings = dict(image_size=48, num_train=20, num_val=4, **PLAIN)
    config = SyntheticConfig(**settings)
    root = synthetic_dataset_dir(tmp_path, config)
    assert root == synthetic_dataset_dir(tmp_path, SyntheticConfig(**settings))
    assert root != synthetic_dataset_dir(tmp_path, SyntheticConfig(**{**settings, "seed": 1}))
    assert root != synthetic_dataset_dir(tmp_path, config, ratios=(5, 10))
    assert prepare_synthetic_dataset(root, config, show_progress=False) == root
    cache = str(tmp_path / "cache")
    labeled = load_dataset(str(root), "ratio_10", split="labeled", cache_dir=cache)
    validation = load_dataset(str(root), "ratio_10", split="validation", cache_dir=cache)
    assert (len(labeled), len(validation)) == (2, 4)
    assert len(labeled[0]["keypoints"][0]) == 17 and labeled[0]["image"].size == (48, 48)
    source = synthetic_source_dir(root)
    assert labeled[0]["image"].filename.startswith(str(source / "images" / "train"))
    record = source / "synthetic_config.json"
    written = record.stat().st_mtime_ns
    assert prepare_synthetic_dataset(root, config, show_progress=False) == root
    assert record.stat().st_mtime_ns == written


def test_prepare_synthetic_dataset_replaces_only_what_it_made(tmp_path):
    config = SyntheticConfig(image_size=32, num_train=6, num_val=2, **PLAIN)
    root = tmp_path / "synthetic"
    prepare_synthetic_dataset(root, config, show_progress=False)
    other = SyntheticConfig(image_size=32, num_train=4, num_val=2, **PLAIN)
    with pytest.raises(FileExistsError, match="made with other settings"):
        prepare_synthetic_dataset(root, other, show_progress=False)
    prepare_synthetic_dataset(root, other, overwrite=True, show_progress=False)
    assert len(list((synthetic_source_dir(root) / "images" / "train").iterdir())) == 4
    record = synthetic_source_dir(root) / "synthetic_config.json"
    record.write_text(record.read_text().replace('"complete": true', '"complete": false'))
    prepare_synthetic_dataset(root, config, show_progress=False)  # unfinished: always redone
    assert len(list((synthetic_source_dir(root) / "images" / "train").iterdir())) == 6
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    with pytest.raises(FileExistsError, match="mine: it exists and is not a dataset folder"):
        prepare_synthetic_dataset(tmp_path / "mine", config, overwrite=True, show_progress=False)
    (tmp_path / "taken-source").mkdir()
    (tmp_path / "taken-source" / "notes.txt").write_text("keep")
    with pytest.raises(FileExistsError, match="taken-source: it exists and has no synthetic_conf"):
        prepare_synthetic_dataset(tmp_path / "taken", config, show_progress=False)
    (tmp_path / "coco").mkdir()
    (tmp_path / "coco" / "semipose_dataset.json").write_text("{}")  # someone else's dataset
    with pytest.raises(FileExistsError, match="coco already exists; pass overwrite=True"):
        prepare_synthetic_dataset(tmp_path / "coco", config, show_progress=False)
    for kept in ("mine/notes.txt", "taken-source/notes.txt", "coco/semipose_dataset.json"):
        assert (tmp_path / kept).is_file()


def test_contact_sheet_and_cli(tmp_path):
    sheet = render_contact_sheet(SyntheticConfig(image_size=32), count=6, columns=3, scale=2)
    assert sheet.size == (3 * 64 + 2 * 2, 2 * 64 + 2)
    path = REPO / "datasets_scripts" / "prepare_synthetic.py"
    spec = importlib.util.spec_from_file_location("prepare_synthetic", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    with contextlib.redirect_stdout(io.StringIO()):
        folder = script.main([
            "--output", str(tmp_path / "out"), "--image-size", "32", "--people", "2", "3",
            "--num-train", "10", "--num-val", "2", "--skeleton", "crowdpose",
            "--contact-sheet", str(tmp_path / "sheet.png"), "--no-progress",
        ])
    assert folder == tmp_path / "out"
    metadata = json.loads((folder / "semipose_dataset.json").read_text())
    assert (metadata["skeleton"]["name"], metadata["configs"]["full"]["labeled"]) == ("crowdpose", 10)
    assert (tmp_path / "sheet.png").is_file()
    record = json.loads((tmp_path / "out-source" / "synthetic_config.json").read_text())
    assert record["key"]["config"]["people"] == [2, 3]
