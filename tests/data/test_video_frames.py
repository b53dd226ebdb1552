"""Tests of videos as unlabeled data: the sampling rule, frames extracted into the dataset folder on the real
mirror-mouse video (pixels, indices, timestamps, metadata), the CLI options and bad videos."""

import argparse
import json
import shutil
from fractions import Fraction
from pathlib import Path

import numpy as np
import PIL.Image
import pytest

from semipose.data.dataset_folder import (
    add_dataset_folder_arguments,
    dataset_folder_options,
    load_pose_dataset,
    prepare_dataset_folder,
    read_dataset_metadata,
    warn_of_leaking_videos,
)
from semipose.data.video_frames import VideoSampling, extract_video_frames, sample_video
from semipose.video import VideoWriter, import_av

av = pytest.importorskip("av", reason="video frames are read with PyAV (semipose[video])")

VIDEO = Path(__file__).resolve().parents[2] / ".." / "shared" / "fixtures" / "mirror-mouse" / "videos" / "test_vid.mp4"
needs_video = pytest.mark.skipif(not VIDEO.is_file(), reason="the shared mirror-mouse video is not beside the repo")
FIRST_EXTRA_ID = 197389  # extra rows get ids after the largest id of test_coco.json
EVERY_100 = list(range(0, 1000, 100))
FIVE_SEEDED = [60, 336, 490, 626, 911]  # VideoSampling(frames=5, seed=0).indices(994, "test_vid")


def _prepare(coco_fixture_dir: Path, output: Path, extra: list[Path], **options) -> Path:
    annotations = coco_fixture_dir / "test_coco.json"
    return prepare_dataset_folder(annotations, coco_fixture_dir, annotations, coco_fixture_dir, output,
                                  extra_unlabeled_dirs=extra, show_progress=False, **options)


def _decoded(indices: list[int]) -> dict[int, np.ndarray]:
    """PyAV's own RGB decode of the fixture's frames at `indices`."""
    with av.open(str(VIDEO)) as container:
        return {index: frame.to_ndarray(format="rgb24")
                for index, frame in enumerate(container.decode(video=0)) if index in indices}


def _write_video(path: Path, num_frames: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with VideoWriter(path, 32, 24, Fraction(10)) as writer:
        for value in range(num_frames):
            writer.write(PIL.Image.new("RGB", (32, 24), (value * 40, 0, 0)))
    return path


@pytest.fixture(scope="module")
def every_100(coco_fixture_dir, tmp_path_factory) -> Path:
    return _prepare(coco_fixture_dir, tmp_path_factory.mktemp("every_100") / "folder", [VIDEO],
                    video_sampling=VideoSampling(every=100))


def test_sampling_rules_give_exact_indices():
    assert VideoSampling().to_dict() == {"every": 10}
    assert VideoSampling(every=3).indices(10, "clip") == [0, 3, 6, 9]
    assert VideoSampling(frames=5).indices(994, "test_vid") == FIVE_SEEDED
    assert VideoSampling(frames=4).indices(4, "clip") == [0, 1, 2, 3]
    assert VideoSampling(frames=5, seed=1).indices(994, "clip") != VideoSampling(frames=5).indices(994, "clip")
    indices = VideoSampling(frames=7, seed=3).indices(50, "clip")
    bounds = [i * 50 // 7 for i in range(8)]  # one index per stride [i*50//7, (i+1)*50//7)
    assert all(low <= index < high for index, low, high in zip(indices, bounds[:-1], bounds[1:], strict=True))


@pytest.mark.parametrize("options, message", [
    ({"every": 2, "frames": 3}, r"every=2 and frames=3 both set"),
    ({"every": 0}, r"every \(--video-every\) must be an integer >= 1, got 0"),
    ({"frames": -1}, r"frames \(--video-frames\) must be an integer >= 1, got -1"),
])
def test_sampling_refuses_bad_settings(options, message):
    with pytest.raises(ValueError, match=message):
        VideoSampling(**options)


@needs_video
def test_every_100_rows_hold_the_decoded_frames(every_100):
    rows = {row["image_id"]: row for row in load_pose_dataset(every_100, "full", "unlabeled")}
    ids = list(range(FIRST_EXTRA_ID, FIRST_EXTRA_ID + 10))
    assert sorted(rows) == ids
    decoded = _decoded(EVERY_100)
    for image_id, index in zip(ids, EVERY_100):
        row = rows[image_id]
        assert row["file_name"] == f"video_frames/test_vid/{index:06d}.png"
        assert (row["width"], row["height"], row["keypoints"]) == (396, 406, [])
        assert np.array_equal(np.asarray(row["image"].convert("RGB")), decoded[index])
        assert (every_100 / row["file_name"]).is_file()


@needs_video
def test_every_100_metadata_records_rule_indices_and_timestamps(every_100):
    metadata = read_dataset_metadata(every_100)
    assert metadata["sources"]["video_sampling"] == {"every": 100}
    assert metadata["sources"]["extra_unlabeled_dirs"] == [str(VIDEO.resolve())]
    assert metadata["sources"]["extra_unlabeled_videos"] == [{
        "video": str(VIDEO.resolve()), "frames_dir": "video_frames/test_vid", "width": 396, "height": 406,
        "fps": 250.0, "num_frames": 994, "frame_indices": EVERY_100}]
    assert metadata["video_frames"] == {
        str(FIRST_EXTRA_ID + n): {"video": str(VIDEO.resolve()), "frame_index": index, "timestamp": index / 250}
        for n, index in enumerate(EVERY_100)}
    assert metadata["configs"]["full"]["unlabeled"] == 10
    readme = (every_100 / "README.md").read_text()
    assert "- Extra unlabeled image folders: `test_vid.mp4`\n" in readme
    assert "- Video frames: 10 of 1 videos (every 100-th frame), extracted to `video_frames/`" in readme
    assert str(VIDEO.resolve()) not in readme


@needs_video
def test_video_frames_5_are_seeded_and_reproducible(tmp_path):
    first = sample_video(VIDEO, VideoSampling(frames=5), name="test_vid")
    assert sample_video(VIDEO, VideoSampling(frames=5), name="test_vid") == first
    assert list(first.indices) == FIVE_SEEDED
    assert list(first.timestamps) == [index / 250 for index in FIVE_SEEDED]
    written = extract_video_frames([first], tmp_path)
    assert [path.relative_to(tmp_path).as_posix() for path in written] == [
        f"video_frames/test_vid/{index:06d}.png" for index in FIVE_SEEDED]
    assert sample_video(VIDEO, VideoSampling(frames=5, seed=1), name="test_vid").indices != first.indices


def test_folder_of_videos_and_images_embedded(coco_fixture_dir, tmp_path):
    """A folder with an image and a nested video: the image first, then the frames, embedded; portable."""
    extra = tmp_path / "extra"
    (extra / "day1").mkdir(parents=True)
    PIL.Image.new("RGB", (8, 6), (1, 2, 3)).save(extra / "still.png")
    _write_video(extra / "day1" / "clip.mp4", 5)
    folder = _prepare(coco_fixture_dir, tmp_path / "folder", [extra], embed_images=True,
                      video_sampling=VideoSampling(every=2))
    moved = shutil.move(folder, tmp_path / "moved")
    rows = load_pose_dataset(moved, "full", "unlabeled", cache_dir=tmp_path / "cache")
    assert rows["file_name"] == ["extra/still.png", *(f"video_frames/extra/day1/clip/{i:06d}.png" for i in (0, 2, 4))]
    reds = [int(np.asarray(image)[12, 16, 0]) for image in rows["image"][1:]]
    assert [abs(red - expected) <= 8 for red, expected in zip(reds, (0, 80, 160))] == [True] * 3  # H.264 is lossy
    assert json.loads((Path(moved) / "semipose_dataset.json").read_text())["video_frames"]["197390"]["timestamp"] == 0.0


def test_cli_options_give_the_rule():
    parser = argparse.ArgumentParser()
    add_dataset_folder_arguments(parser)
    args = parser.parse_args(["--output", "x", "--extra-unlabeled", "clip.mp4", "--video-frames", "5", "--seed", "3"])
    assert dataset_folder_options(args)["video_sampling"] == VideoSampling(frames=5, seed=3)
    args = parser.parse_args(["--output", "x"])
    assert dataset_folder_options(args)["video_sampling"] == VideoSampling(every=10)
    with pytest.raises(SystemExit):
        parser.parse_args(["--output", "x", "--video-every", "3", "--video-frames", "5"])


def _undecodable(tmp_path: Path) -> tuple[list[Path], dict]:
    bad = tmp_path / "half.mp4"
    bad.write_bytes(b"\x00\x00\x00 ftypisom" + bytes(2000))
    return [bad], {}


def _zero_frames(tmp_path: Path) -> tuple[list[Path], dict]:
    path = tmp_path / "zero.mp4"
    container = import_av().open(str(path), "w")
    stream = container.add_stream("libx264", rate=25)
    stream.width, stream.height, stream.pix_fmt = 32, 24, "yuv420p"
    container.start_encoding()
    container.close()
    return [path], {}


def _too_short(tmp_path: Path) -> tuple[list[Path], dict]:
    return [_write_video(tmp_path / "short.mp4", 3)], {"video_sampling": VideoSampling(frames=5)}


def _empty_folder(tmp_path: Path) -> tuple[list[Path], dict]:
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("neither")
    return [tmp_path / "empty"], {}


def _same_name(tmp_path: Path) -> tuple[list[Path], dict]:
    for day in ("a", "b"):
        _write_video(tmp_path / day / "videos" / "clip.mp4", 1)
    return [tmp_path / "a" / "videos", tmp_path / "b" / "videos"], {}


@pytest.mark.parametrize("make, error, message", [
    (_undecodable, ValueError, r"half\.mp4: not a readable video"),
    (_zero_frames, ValueError, r"zero\.mp4: no video frames"),
    (_too_short, ValueError, r"short\.mp4: 3 frames, fewer than the 5 that --video-frames asks for"),
    (_empty_folder, ValueError, r"empty holds no image or video files"),
    (_same_name, ValueError, r"would both extract to video_frames/videos/clip/"),
    (lambda tmp_path: ([tmp_path / "nowhere.mp4"], {}), FileNotFoundError, r"nowhere\.mp4 does not exist"),
], ids=["undecodable", "zero frames", "too short", "empty folder", "same name", "missing"])
def test_bad_videos_name_the_file_and_write_nothing(make, error, message, coco_fixture_dir, tmp_path):
    extra, options = make(tmp_path)
    before = sorted(tmp_path.iterdir())
    with pytest.raises(error, match=message):
        _prepare(coco_fixture_dir, tmp_path / "folder", extra, **options)
    assert sorted(tmp_path.iterdir()) == before


def test_a_video_that_the_validation_frames_come_from_is_named_as_a_leak(tmp_path, caplog):
    video = sample_video(_write_video(tmp_path / "mouse_day1.mp4", 3), VideoSampling(every=1), name="mouse_day1")
    rows = [{"file_name": "labeled-data/mouse_day1/img001.png"}, {"file_name": "labeled-data/other/img002.png"}]
    assert warn_of_leaking_videos([video], rows) == [
        f"The split leaks: 1 of the 2 validation frames (e.g. labeled-data/mouse_day1/img001.png) come from video "
        f"{video.path}, whose frames are unlabeled training data. Use another recording's video as unlabeled data, "
        "or validation frames from another video."]
    assert caplog.messages[0].startswith("The split leaks: 1 of the 2 validation frames")
    assert warn_of_leaking_videos([video], rows[1:]) == []
