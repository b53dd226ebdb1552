"""Tests of the SLEAP .slp converter on small files built with sleap-io itself: image-file videos referenced in
place, embedded and video-file frames written as PNG, predictions dropped, the file's skeleton kept."""

import importlib.util
import runpy
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from semipose.data.dataset_folder import load_pose_dataset, read_dataset_metadata, read_dataset_skeleton
from semipose.data.sleap_format import convert_slp, load_sleap_labels

sio = pytest.importorskip("sleap_io", reason="the SLEAP converter needs the optional extra semipose[sleap]")

REPO = Path(__file__).resolve().parents[2]
MIRROR_MOUSE_VIDEO = REPO / ".." / "shared" / "fixtures" / "mirror-mouse" / "videos" / "test_vid.mp4"
NODES = ("nose", "left_ear", "right_ear", "tail")  # sio.Skeleton turns a list it is given into Nodes
NAN = np.nan
FRAME_0 = [[10.0, 5.0], [NAN, NAN], [20.0, 8.5], [30.0, 25.0]]
FRAME_2 = [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0], [7.0, 8.0]]


def _script(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "datasets_scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _skeleton(symmetries=(("left_ear", "right_ear"),)):
    return sio.Skeleton(list(NODES), edges=[("nose", "left_ear"), ("nose", "right_ear"), ("nose", "tail")],
                        symmetries=list(symmetries), name="mouse")


def _slp(tmp_path: Path, video=None, skeleton=None, frames=(0, 2)) -> Path:
    """Two user-labeled frames (0 and 2) of three PNG files, one predicted instance on frame 0."""
    skeleton = skeleton or _skeleton()
    if video is None:
        paths = []
        for index in range(3):
            paths.append(str(tmp_path / "images" / f"{index}.png"))
            (tmp_path / "images").mkdir(exist_ok=True)
            Image.fromarray(np.full((30, 40, 3), (40 * index, 100, 200), np.uint8)).save(paths[-1])
        video = sio.Video.from_filename(paths)
    predicted = sio.PredictedInstance.from_numpy(np.ones((4, 2)), skeleton=skeleton, point_scores=np.ones(4),
                                                 score=0.9)
    labeled = [
        sio.LabeledFrame(video=video, frame_idx=frames[0],
                         instances=[sio.Instance.from_numpy(np.array(FRAME_0), skeleton=skeleton), predicted]),
        sio.LabeledFrame(video=video, frame_idx=frames[1],
                         instances=[sio.Instance.from_numpy(np.array(FRAME_2), skeleton=skeleton)]),
    ]
    path = tmp_path / "labels.slp"
    sio.save_slp(sio.Labels(labeled_frames=labeled, videos=[video], skeletons=[skeleton]), str(path))
    return path


def _keypoints(xy: list[list[float]]) -> list[float]:
    return [value for x, y in xy for value in ([0.0, 0.0, 0.0] if np.isnan(x) else [x, y, 2.0])]


def test_image_file_labels_convert_with_the_files_skeleton_and_without_predictions(tmp_path):
    folder = _script("prepare_sleap").main([
        "--slp", str(_slp(tmp_path)), "--output", str(tmp_path / "out"), "--no-progress"])
    assert not (tmp_path / "out-frames").exists()  # image files are referenced in place
    skeleton = read_dataset_skeleton(folder)
    assert (skeleton.name, skeleton.keypoint_names, skeleton.flip_index) == ("mouse", NODES, (0, 2, 1, 3))
    assert skeleton.limbs == ((0, 1), (0, 2), (0, 3))
    metadata = read_dataset_metadata(folder)
    assert metadata["sources"]["train_annotations"] == str((tmp_path / "labels.slp").resolve())
    assert {split: metadata["configs"]["full"][split] for split in ("labeled", "validation")} == \
        {"labeled": 1, "validation": 1}  # 10% of 2 frames: at least one held out, one left to train on
    rows = [*load_pose_dataset(folder, "full", "labeled", cache_dir=tmp_path / "cache"),
            *load_pose_dataset(folder, "full", "validation", cache_dir=tmp_path / "cache")]
    by_name = {row["file_name"]: row for row in rows}
    assert sorted(by_name) == ["0.png", "2.png"]
    assert by_name["0.png"]["keypoints"] == [[[10.0, 5.0, 2.0], [0.0, 0.0, 0.0], [20.0, 8.5, 2.0], [30.0, 25.0, 2.0]]]
    assert by_name["2.png"]["keypoints"] == [[[1.0, 2.0, 2.0], [3.0, 4.0, 2.0], [5.0, 6.0, 2.0], [7.0, 8.0, 2.0]]]
    assert by_name["0.png"]["bboxes"] == [[8.0, 3.0, 24.0, 24.0]]  # tight 20 x 20, 2 px each side


def test_without_symmetries_flip_pairs_are_inferred_and_negative_frames_are_kept(tmp_path):
    slp = _slp(tmp_path, skeleton=_skeleton(symmetries=()))
    labels = sio.load_slp(str(slp))
    labels.append(sio.LabeledFrame(video=labels.videos[0], frame_idx=1, is_negative=True))  # "no animal here"
    sio.save_slp(labels, str(slp))
    converted = convert_slp(slp, tmp_path / "frames")
    assert converted.skeleton.flip_index == (0, 2, 1, 3)
    assert converted.image_root == (tmp_path / "images").resolve()
    images = converted.train["images"] + converted.validation["images"]
    assert sorted((image["id"], image["file_name"]) for image in images) == [(1, "0.png"), (2, "1.png"), (3, "2.png")]
    annotations = converted.train["annotations"] + converted.validation["annotations"]
    assert sorted((a["image_id"], a["keypoints"]) for a in annotations) == [(1, _keypoints(FRAME_0)),
                                                                           (3, _keypoints(FRAME_2))]


def test_embedded_frames_are_written_as_png(tmp_path):
    source = _slp(tmp_path)
    embedded = tmp_path / "embedded.slp"
    sio.save_slp(sio.load_slp(str(source)), str(embedded), embed="user", verbose=False)
    for index in range(3):
        (tmp_path / "images" / f"{index}.png").unlink()  # the .slp alone holds the frames now
    converted = convert_slp(embedded, tmp_path / "frames", val_fraction=0.5, seed=0)
    images = converted.train["images"] + converted.validation["images"]
    assert converted.image_root == (tmp_path / "frames").resolve()
    assert sorted(image["file_name"] for image in images) == ["0_embedded/frame000000.png",
                                                              "0_embedded/frame000002.png"]
    assert {(image["width"], image["height"]) for image in images} == {(40, 30)}
    pixels = np.asarray(Image.open(tmp_path / "frames" / "0_embedded" / "frame000002.png"))
    assert pixels.shape[:2] == (30, 40) and pixels[0, 0].tolist() == [80, 100, 200]


@pytest.mark.skipif(not MIRROR_MOUSE_VIDEO.is_file(), reason="the shared mirror-mouse video is not beside the "
                                                             "repository")
def test_video_file_frames_are_extracted_beside_the_output(tmp_path):
    video = sio.Video.from_filename(str(MIRROR_MOUSE_VIDEO))
    slp = _slp(tmp_path, video=video, frames=(3, 40))
    folder = _script("prepare_sleap").main(["--slp", str(slp), "--output", str(tmp_path / "out"), "--no-progress"])
    frames = sorted(path.relative_to(tmp_path) for path in (tmp_path / "out-frames").rglob("*.png"))
    assert frames == [Path("out-frames/0_test_vid/frame000003.png"), Path("out-frames/0_test_vid/frame000040.png")]
    assert Image.open(tmp_path / frames[0]).size == (396, 406)
    assert np.array_equal(np.asarray(Image.open(tmp_path / frames[1])), video[40][..., 0])
    assert read_dataset_metadata(folder)["configs"]["full"]["validation"] == 1


def test_a_failed_conversion_leaves_no_frames_folder(tmp_path, monkeypatch, capsys):
    source = _slp(tmp_path)
    embedded = tmp_path / "embedded.slp"
    sio.save_slp(sio.load_slp(str(source)), str(embedded), embed="user", verbose=False)
    path = REPO / "datasets_scripts" / "prepare_sleap.py"
    monkeypatch.setattr("sys.argv", [str(path), "--slp", str(embedded), "--output", str(tmp_path / "out"),
                                     "--val-fraction", "1.5"])
    with pytest.raises(SystemExit) as exit_:
        runpy.run_path(str(path), run_name="__main__")  # the frames are written before the fraction is checked
    assert exit_.value.code == 2
    assert capsys.readouterr().err == "prepare_sleap.py: error: val_fraction must be in (0, 1), got 1.5.\n"
    assert not (tmp_path / "out").exists() and not (tmp_path / "out-frames").exists()


def test_predictions_alone_are_not_labels(tmp_path):
    skeleton = _skeleton()
    video = sio.Video.from_filename([str(tmp_path / "0.png")])
    Image.new("RGB", (4, 3)).save(tmp_path / "0.png")
    predicted = sio.PredictedInstance.from_numpy(np.ones((4, 2)), skeleton=skeleton, point_scores=np.ones(4),
                                                 score=0.9)
    labels = sio.Labels(labeled_frames=[sio.LabeledFrame(video=video, frame_idx=0, instances=[predicted])],
                        videos=[video], skeletons=[skeleton])
    sio.save_slp(labels, str(tmp_path / "predicted.slp"))
    with pytest.raises(ValueError, match=r"predicted.slp: no frame has a user-labeled instance \(predictions are not "
                                         r"labels\)"):
        convert_slp(tmp_path / "predicted.slp", tmp_path / "frames")


def test_a_missing_image_file_names_the_frame(tmp_path):
    slp = _slp(tmp_path)
    (tmp_path / "images" / "2.png").unlink()
    with pytest.raises(FileNotFoundError, match=r"labels.slp: frame 2 of video .*0.png, ...: image file "
                                                r".*images/2.png does not exist"):
        convert_slp(slp, tmp_path / "frames")


def test_without_sleap_io_the_error_says_what_to_install(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "sleap_io", None)
    with pytest.raises(ImportError, match=r"pip install 'semipose\[sleap\]'"):
        load_sleap_labels(tmp_path / "labels.slp")
