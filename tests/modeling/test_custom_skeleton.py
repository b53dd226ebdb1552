"""One path for a skeleton nobody hard-coded: a five-keypoint test skeleton (one flip pair, a centre keypoint, a
keypoint without a mirror) from its yaml file through conversion, the main job (both families), saving,
`from_pretrained`, prediction and drawing, ONNX export and run, the pipeline, `semipose evaluate`, and loading with
`trust_remote_code` where semipose is not installed."""

from __future__ import annotations

import json
import os
import runpy
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw
from test_auto_and_hub import HIDE_SEMIPOSE
from transformers import pipeline

from semipose.cli import main as semipose_main
from semipose.data.dataset_folder import load_pose_dataset, prepare_dataset_folder, read_dataset_skeleton
from semipose.inference import PoseEstimator
from semipose.skeletons import Skeleton, load_skeleton

REPO = Path(__file__).resolve().parents[2]
STAR_YAML = """\
name: star
keypoints: [head, left_arm, right_arm, centre, tail]
limbs: [[centre, head], [centre, left_arm], [centre, right_arm], [centre, tail]]
sigmas: 0.05
"""
OFFSETS = np.array([[0, -9], [-8, -2], [8, -2], [0, 0], [0, 10]], dtype=float)
"""Where each keypoint sits relative to the star's centre, in pixels."""
COLORS = [(255, 60, 60), (60, 255, 60), (60, 60, 255), (255, 255, 60), (255, 60, 255)]
SIZE = 64
REMOTE_SCRIPT = HIDE_SEMIPOSE + """
import torch
from PIL import Image
from transformers import AutoImageProcessor, AutoModelForPoseEstimation

folder, photo, output = sys.argv[1:]
model = AutoModelForPoseEstimation.from_pretrained(folder, trust_remote_code=True).eval()
processor = AutoImageProcessor.from_pretrained(folder, trust_remote_code=True)
image = Image.open(photo).convert("RGB")
with torch.no_grad():
    outputs = model(**processor(image, return_tensors="pt"))
people = processor.post_process_pose_estimation(model.decode(outputs), target_sizes=[(image.height, image.width)])
torch.save({"module": type(model).__module__, "names": model.config.keypoint_names, "people": people}, output)
"""


def _draw_stars(path: Path, centres: np.ndarray) -> list[np.ndarray]:
    """A dark image with one star per centre (a colored disc per keypoint); returns each star's keypoints."""
    image = Image.new("RGB", (SIZE, SIZE), (20, 20, 30))
    draw = ImageDraw.Draw(image)
    stars = []
    for centre in centres:
        points = centre + OFFSETS
        for (x, y), color in zip(points, COLORS):
            draw.ellipse([x - 2, y - 2, x + 2, y + 2], fill=color)
        stars.append(points)
    image.save(path)
    return stars


def _coco_file(folder: Path, skeleton: Skeleton, count: int, seed: int) -> Path:
    """`count` images of one or two stars each, as a COCO-format file of the star category."""
    rng = np.random.default_rng(seed)
    images, annotations = [], []
    for index in range(count):
        centres = rng.uniform(14, SIZE - 14, size=(int(rng.integers(1, 3)), 2)).round(1)
        stars = _draw_stars(folder / f"{seed}_{index}.png", centres)
        images.append({"id": index + 1, "file_name": f"{seed}_{index}.png", "width": SIZE, "height": SIZE})
        for points in stars:
            keypoints = np.concatenate([points, np.full((5, 1), 2.0)], axis=1).reshape(-1).tolist()
            low, high = points.min(0) - 3, points.max(0) + 3
            annotations.append({"id": len(annotations) + 1, "image_id": index + 1, "category_id": 1, "iscrowd": 0,
                                "keypoints": keypoints, "bbox": [*low, *(high - low)],
                                "area": float(np.prod(high - low))})
    file = folder / f"stars_{seed}.json"
    file.write_text(json.dumps({"images": images, "annotations": annotations,
                                "categories": [skeleton.coco_category()]}))
    return file


@pytest.fixture(scope="module")
def star_folder(tmp_path_factory) -> Path:
    """The converted dataset folder of the star skeleton: 24 training and 6 validation images."""
    root = tmp_path_factory.mktemp("stars")
    (root / "star.yaml").write_text(STAR_YAML)
    skeleton = load_skeleton(root / "star.yaml")
    train, val = _coco_file(root, skeleton, 24, seed=0), _coco_file(root, skeleton, 6, seed=1)
    return prepare_dataset_folder(train, root, val, root, root / "dataset", skeleton=root / "star.yaml",
                                  ratios=[25], show_progress=False)


def test_the_star_skeleton_is_read_whole_from_its_file(star_folder):
    skeleton = read_dataset_skeleton(star_folder)
    assert skeleton.keypoint_names == ("head", "left_arm", "right_arm", "centre", "tail")
    assert skeleton.flip_index == (0, 2, 1, 3, 4)  # one pair; the centre and the unmirrored tail map to themselves
    assert skeleton.sigmas == (0.05,) * 5 and skeleton.limbs == ((3, 0), (3, 1), (3, 2), (3, 4))
    assert skeleton.grouping_order == (3, 0, 1, 2, 4)  # breadth-first from the best-connected keypoint
    assert len(load_pose_dataset(star_folder, "full", "labeled")[0]["keypoints"][0]) == 5


def _main_job(folder: Path, output_dir: Path, family: str, monkeypatch) -> None:
    """The main job, as users run it, on the folder alone: the skeleton comes from the folder."""
    monkeypatch.setattr(sys, "argv", [
        "run_semi_pose.py", "--dataset_dir", str(folder), "--dataset_config", "ratio_25", "--model_family", family,
        "--output_dir", str(output_dir), "--max_steps", "3", "--burn_in_steps", "1", "--ssl_mode", "semi",
        "--per_device_train_batch_size", "2", "--per_device_eval_batch_size", "4", "--neck_channels", "16",
        "--eval_strategy", "no", "--save_strategy", "no", "--report_to", "none", "--dataloader_num_workers", "0",
        "--pseudo_person_threshold", "0", "--pseudo_keypoint_threshold", "0",
    ])
    runpy.run_path(str(REPO / "examples" / "run_semi_pose.py"))["main"]()


def _raise_heatmaps(model_dir: Path) -> None:
    """Raise the saved network's heatmap biases, so that three steps of training still decode people everywhere:
    the path is under test here, not accuracy."""
    model = PoseEstimator.from_pretrained(model_dir, device="cpu").model
    with torch.no_grad():
        if hasattr(model, "heatmap_head"):  # center_offset: keypoints, then the person centre
            model.heatmap_head[-1].bias[:-1] = 0.6
            model.heatmap_head[-1].bias[-1] = 1.0
        else:  # associative_embedding: keypoint heatmaps, then tags
            model.head[-1].bias[: model.config.num_keypoints] = 0.6
    model.save_pretrained(model_dir)


@pytest.mark.slow  # trains both families through the main job, exports to ONNX, starts a fresh interpreter
@pytest.mark.parametrize("family", ["associative_embedding", "center_offset"])
def test_a_new_skeleton_runs_the_whole_path(star_folder, tmp_path, family, monkeypatch, capsys):
    model_dir = tmp_path / "model"
    _main_job(star_folder, model_dir, family, monkeypatch)
    _raise_heatmaps(model_dir)
    skeleton = read_dataset_skeleton(star_folder)
    estimator = PoseEstimator.from_pretrained(model_dir, device="cpu", flip_test=True)
    assert estimator.skeleton == skeleton and estimator.model.config.flip_test is True
    photo = next(star_folder.parent.glob("1_*.png"))
    people = estimator(Image.open(photo))
    assert people and all(person["keypoints"].shape == (5, 2) for person in people)
    assert estimator.draw(Image.open(photo), people).size == (SIZE, SIZE)
    assert "**Skeleton**: star (5 keypoints: head, left_arm, right_arm, centre, tail)" in (
        model_dir / "README.md").read_text()

    assert semipose_main(["export", "--model", str(model_dir), "--output", str(model_dir / "model.onnx")]) == 0
    onnx = PoseEstimator.from_pretrained(model_dir, backend="onnxruntime", device="cpu")
    onnx_people = onnx(Image.open(photo))
    assert len(onnx_people) == len(people)
    np.testing.assert_allclose(onnx_people[0]["keypoints"], people[0]["keypoints"], atol=0.05)

    piped = pipeline("pose-estimation", model=str(model_dir), device="cpu")(str(photo), flip_test=True)
    assert len(piped) == len(people)
    np.testing.assert_allclose(piped[0]["keypoints"], people[0]["keypoints"], atol=1e-4)

    report_file = tmp_path / "report.json"
    assert semipose_main(["evaluate", "--model", str(model_dir), "--dataset", str(star_folder), "--config", "full",
                          "--output", str(report_file)]) == 0
    report = json.loads(report_file.read_text())
    assert report["skeleton"] == "star" and report["num_images"] == 6 and "AP" in report["metrics"]
    capsys.readouterr()

    environment = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf_home"), "PYTHONPATH": ""}
    process = subprocess.run([sys.executable, "-c", REMOTE_SCRIPT, str(model_dir), str(photo), str(tmp_path / "r.pt")],
                             cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=300)
    assert process.returncode == 0, process.stderr[-3000:]
    remote = torch.load(tmp_path / "r.pt")
    assert remote["module"].startswith("transformers_modules.")
    assert remote["names"] == list(skeleton.keypoint_names) and remote["people"][0]["keypoints"].shape[1:] == (5, 2)


def test_a_checkpoint_of_another_skeleton_is_refused_naming_both(star_folder, tmp_path, capsys):
    legacy = REPO / "tests" / "fixtures" / "legacy_checkpoints" / "center_offset"  # COCO-17
    with pytest.raises(SystemExit) as exit_:
        semipose_main(["evaluate", "--model", str(legacy), "--dataset", str(star_folder), "--config", "full"])
    message = capsys.readouterr().err
    assert exit_.value.code == 2
    assert f"Model {legacy} predicts the 'coco' skeleton ['nose', 'left_eye'" in message
    assert "is labeled with the 'star' skeleton ['head', 'left_arm', 'right_arm', 'centre', 'tail']" in message


def test_the_trainer_refuses_a_model_of_another_skeleton(star_folder, tmp_path):
    from semipose.training import SemiPoseTrainer, SemiPoseTrainingArguments

    model = PoseEstimator.from_pretrained(REPO / "tests" / "fixtures" / "legacy_checkpoints" / "center_offset").model
    arguments = SemiPoseTrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to="none")
    with pytest.raises(ValueError, match=r"The model predicts the 'coco' skeleton's keypoints \['nose', .* but the "
                                         r"dataset's skeleton 'star' has \['head', 'left_arm'"):
        SemiPoseTrainer(model=model, args=arguments, skeleton=read_dataset_skeleton(star_folder))
