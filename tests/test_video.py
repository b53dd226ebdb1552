"""Videos: frames, timestamps and people found where they were drawn; the drawn copy; broken and empty files;
people tracked, smoothed and exported; `semipose predict` on a video and on a folder of images and videos."""

from __future__ import annotations

import importlib.util
import json
import logging
import re
import shutil
import sys
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw
from test_cli import run
from tiny_checkpoint import TEMPLATE_OFFSETS

from semipose.inference import PoseEstimator
from semipose.modeling import CenterOffsetConfig, CenterOffsetForPoseEstimation, PoseImageProcessor
from semipose.smoothing import OneEuroFilter
from semipose.video import (
    UnreadableVideoError,
    VideoExportError,
    VideoReader,
    is_video_file,
    read_video_frames,
    track_people,
    write_video_predictions,
)
from semipose.visualization import track_color

WIDTH, HEIGHT, FPS = 128, 96, 10
STRIDE, SCALE = 4, 0.5  # output stride; the image processor resizes 128 -> 64 (longest edge)
SPOTS = [[(30, 30), (96, 60)], [(36, 34), (90, 58)], [(42, 38)], [(48, 42), (84, 54)], [(54, 46), (78, 50)]]
"""Per frame, the (x, y) centers of the white disks drawn in it: two people walking, one hidden in frame 2."""
RADIUS = 9


class BrightSpotModel(CenterOffsetForPoseEstimation):
    """A model whose people are wherever the image is white: its center heatmap is the input brightness pooled to
    the output stride (1 on white, 0 on black and on the gray padding), its keypoints the `TEMPLATE_OFFSETS`
    figure around each center, each scoring 0.6; so the people it finds are where the test drew them."""

    def predict_maps(self, pixel_values: torch.Tensor) -> dict[str, torch.Tensor]:
        white, black = 2.4, -2.0  # mean normalized (ImageNet) value of white and black pixels
        brightness = F.avg_pool2d(pixel_values.mean(dim=1, keepdim=True), self.config.output_stride)
        center_heatmap = ((brightness - black) / (white - black)).clamp(0, 1) ** 4
        batch, _, height, width = center_heatmap.shape
        offsets = torch.tensor(TEMPLATE_OFFSETS).flatten().view(1, -1, 1, 1).expand(batch, -1, height, width)
        heatmaps = torch.full((batch, self.config.num_keypoints, height, width), 0.6)
        return {"heatmaps": heatmaps, "center_heatmap": center_heatmap, "offsets": offsets}


@pytest.fixture(scope="module")
def bright_spot_estimator() -> PoseEstimator:
    config = CenterOffsetConfig(backbone="regnetx_002", neck_channels=16, refine=False, center_threshold=0.5)
    processor = PoseImageProcessor(size=int(WIDTH * SCALE), output_stride=STRIDE)
    return PoseEstimator(BrightSpotModel(config), processor, device="cpu", batch_size=2)


def spot_frame(centers) -> np.ndarray:
    image = Image.new("RGB", (WIDTH, HEIGHT))
    draw = ImageDraw.Draw(image)
    for x, y in centers:
        draw.ellipse((x - RADIUS, y - RADIUS, x + RADIUS, y + RADIUS), fill=(255, 255, 255))
    return np.asarray(image)


def write_video(path, frames: list[np.ndarray], options: dict | None = None, lossless: bool = False,
                times: list[float] | None = None) -> None:
    """An H.264 video of `frames` at `FPS` frames per second, or at `times` (seconds, to the millisecond), written
    with PyAV (not the code under test); `lossless` (x264's qp 0) decodes equal frames to equal pixels."""
    with av.open(str(path), "w", options=options or {}) as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.height, stream.width = frames[0].shape[:2] if frames else (HEIGHT, WIDTH)
        stream.pix_fmt = "yuv420p"
        stream.options = {"qp": "0"} if lossless else {}
        if times is not None:
            stream.codec_context.time_base = Fraction(1, 1000)
        container.start_encoding()
        for index, array in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(array, format="rgb24")
            if times is not None:
                frame.pts, frame.time_base = round(times[index] * 1000), Fraction(1, 1000)
            container.mux(stream.encode(frame))
        container.mux(stream.encode())


def decodable_frames(path) -> int:
    """How many frames PyAV decodes from the file packet by packet, passing over packets that do not decode (an
    independent count, not the code under test)."""
    count = 0
    with av.open(str(path)) as container:
        for packet in container.demux(video=0):
            try:
                count += len(packet.decode())
            except av.error.FFmpegError:
                pass
    return count


def with_display_matrix(path, matrix: tuple[int, ...]) -> None:
    """Put `matrix` (a, b, c, d in 16.16 fixed point) in the video track's header (tkhd) of an MP4 that PyAV wrote
    with the identity, as a phone stores its orientation."""
    data = path.read_bytes()
    identity = np.array([1 << 16, 0, 0, 0, 1 << 16, 0, 0, 0, 1 << 30], dtype=">i4").tobytes()
    a, b, c, d = matrix
    at = data.index(identity, data.index(b"tkhd"))
    rotated = np.array([a, b, 0, c, d, 0, 0, 0, 1 << 30], dtype=">i4").tobytes()
    path.write_bytes(data[:at] + rotated + data[at + len(identity):])


@pytest.fixture(scope="module")
def spots_video(tmp_path_factory):
    path = tmp_path_factory.mktemp("videos") / "walk.mp4"
    write_video(path, [spot_frame(centers) for centers in SPOTS])
    return path


def expected_keypoints(center: tuple[int, int]) -> np.ndarray:
    """The template figure around `center` in frame pixels: heatmap offsets -> input pixels -> frame pixels."""
    offsets = np.asarray(TEMPLATE_OFFSETS) * STRIDE / SCALE
    return np.asarray(center) + offsets


def test_reader_gives_every_frame_with_its_timestamp(spots_video):
    with VideoReader(spots_video) as reader:
        assert (reader.info.width, reader.info.height, reader.info.fps, reader.info.num_frames) == (
            WIDTH, HEIGHT, Fraction(FPS), len(SPOTS))
    with pytest.raises(ValueError, match="walk.mp4: its frames were read already"), VideoReader(spots_video) as reader:
        frames = list(reader)
        list(reader)
    assert [frame.index for frame in frames] == list(range(len(SPOTS)))
    assert [frame.timestamp for frame in frames] == pytest.approx([index / FPS for index in range(len(SPOTS))])
    center = np.asarray(frames[0].image)[30, 30]
    assert frames[0].image.size == (WIDTH, HEIGHT) and (center > 240).all()  # a white disk survives H.264


def test_video_predictions_find_people_where_they_were_drawn(tmp_path, spots_video, bright_spot_estimator):
    summary = write_video_predictions(bright_spot_estimator, spots_video, tmp_path, show_progress=False)
    record = json.loads((tmp_path / "walk.json").read_text())
    assert summary == {"video": str(spots_video), "num_frames": 5, "num_people": 9, "num_tracks": None,
                       "json": str(tmp_path / "walk.json"), "poses_video": str(tmp_path / "walk_poses.mp4"),
                       "exports": [], "error": None}
    assert (record["width"], record["height"], record["fps"], record["num_frames"]) == (WIDTH, HEIGHT, FPS, 5)
    assert record["rotation"] == 0
    assert record["skeleton"] == "coco" and len(record["keypoint_names"]) == 17 and record["error"] is None
    assert record["tracking"] is None and record["smoothing"] is None
    assert [frame["frame_index"] for frame in record["frames"]] == [0, 1, 2, 3, 4]
    assert [frame["timestamp"] for frame in record["frames"]] == pytest.approx([0, 0.1, 0.2, 0.3, 0.4])
    for frame, centers in zip(record["frames"], SPOTS):
        people = sorted(frame["people"], key=lambda person: person["keypoints"][0][0])
        assert len(people) == len(centers)
        for person, center in zip(people, sorted(centers)):
            assert sorted(person) == ["keypoint_scores", "keypoints", "score"]
            # a center lands on its heatmap pixel, 8 frame pixels wide: within 4 of the drawn center (+ rounding)
            np.testing.assert_allclose(person["keypoints"], expected_keypoints(center), atol=4.5)
            assert person["keypoint_scores"] == pytest.approx([0.6] * 17)


def test_video_predictions_match_the_estimator_on_each_frame(tmp_path, spots_video, bright_spot_estimator):
    write_video_predictions(bright_spot_estimator, spots_video, tmp_path, show_progress=False)
    record = json.loads((tmp_path / "walk.json").read_text())
    for frame, written in zip(read_video_frames(spots_video), record["frames"]):
        people = bright_spot_estimator(frame.image)
        expected_scores = [p["score"] for p in people]
        assert [person["score"] for person in written["people"]] == pytest.approx(expected_scores, abs=1e-4)
        for person, expected in zip(written["people"], people):
            np.testing.assert_allclose(person["keypoints"], expected["keypoints"], atol=0.006)


def test_poses_video_has_the_frames_size_and_rate_with_skeletons_drawn(tmp_path, spots_video, bright_spot_estimator):
    write_video_predictions(bright_spot_estimator, spots_video, tmp_path, show_progress=False)
    with VideoReader(tmp_path / "walk_poses.mp4") as reader:
        assert (reader.info.width, reader.info.height, reader.info.fps) == (WIDTH, HEIGHT, Fraction(FPS))
    drawn = list(read_video_frames(tmp_path / "walk_poses.mp4"))
    original = list(read_video_frames(spots_video))
    assert [frame.timestamp for frame in drawn] == pytest.approx([frame.timestamp for frame in original])
    people = json.loads((tmp_path / "walk.json").read_text())["frames"][0]["people"]
    noses = np.asarray([person["keypoints"][0] for person in people]).round().astype(int)
    for x, y in noses:  # on the black background above each disk, a keypoint dot
        assert np.asarray(original[0].image)[y, x].max() < 30 and np.asarray(drawn[0].image)[y, x].max() > 100


def noisy_spots(count: int = 30) -> list[np.ndarray]:
    """`count` frames of the walking spots over noise, so that each frame takes some bytes and a cut lands inside."""
    noise = np.random.default_rng(0).integers(0, 40, (count, HEIGHT, WIDTH, 3), dtype=np.uint8)
    return [spot_frame(SPOTS[index % 5]) | noise[index] for index in range(count)]


@pytest.fixture(scope="module")
def cut_videos(tmp_path_factory) -> dict[str, Path]:
    """30 frames cut at half their bytes: as MP4 with the index at the front (faststart) and at the end, and as
    Matroska (whose frame count is not declared, its duration is)."""
    folder = tmp_path_factory.mktemp("cut")
    cut = {}
    for name, options in (("front.mp4", {"movflags": "faststart"}), ("end.mp4", {}), ("clip.mkv", {})):
        write_video(folder / name, noisy_spots(), options)
        data = (folder / name).read_bytes()
        cut[name] = folder / f"cut_{name}"
        cut[name].write_bytes(data[: len(data) // 2])
    return cut


@pytest.mark.parametrize("name, declared", [("front.mp4", " of the 30 it declares"),
                                            ("clip.mkv", r", at \d\.\d+ s of the 3\.000 s it declares")])
def test_a_truncated_video_keeps_every_decodable_frame_and_warns_where_it_broke_off(
    tmp_path, caplog, cut_videos, bright_spot_estimator, name, declared
):
    video, out = cut_videos[name], tmp_path / "out"
    decodable = decodable_frames(video)
    assert 0 < decodable < 30
    with caplog.at_level(logging.WARNING, logger="semipose.video"):
        summary = write_video_predictions(bright_spot_estimator, video, out, show_progress=False, track=True,
                                          export_formats=["dlc-csv"])
    stem = video.stem
    broke_off = rf"{video}: truncated or corrupt video, it breaks off at frame {decodable}{declared} \(.+\)\."
    assert summary["num_frames"] == decodable and re.fullmatch(broke_off, summary["error"])
    assert [record.getMessage() for record in caplog.records] == [
        f"{summary['error']} The {decodable} frames read are in {out / f'{stem}.json'}, "
        f"{out / f'{stem}_poses.mp4'} and {out / f'{stem}_tracks.csv'}."]
    record = json.loads((out / f"{stem}.json").read_text())
    assert record["num_frames"] == len(record["frames"]) == decodable and record["error"] == summary["error"]
    assert [frame["frame_index"] for frame in record["frames"]] == list(range(decodable))
    assert len(list(read_video_frames(out / f"{stem}_poses.mp4"))) == decodable
    assert len((out / f"{stem}_tracks.csv").read_text().splitlines()) == 4 + decodable  # four header rows


def test_reading_a_truncated_video_raises_after_its_last_decodable_frame(cut_videos):
    frames = []
    with pytest.raises(UnreadableVideoError, match="breaks off at frame") as error:
        frames.extend(read_video_frames(cut_videos["front.mp4"]))
    assert len(frames) == error.value.frames_read == decodable_frames(cut_videos["front.mp4"])


class StoppingContainer:
    """A PyAV container whose demuxer fails at packet `stop`, as a damaged file's may."""

    def __init__(self, container, stop: int):
        self.container, self.stop = container, stop

    def __getattr__(self, name):
        return getattr(self.container, name)

    def demux(self, *streams):
        for index, packet in enumerate(self.container.demux(*streams)):
            if index == self.stop:
                raise av.error.InvalidDataError(1094995529, "Invalid data found when processing input")
            yield packet


def test_a_demuxer_that_fails_still_gives_the_frames_the_decoder_holds(spots_video, monkeypatch):
    monkeypatch.setattr(av, "open", lambda file, open=av.open: StoppingContainer(open(file), stop=3))
    frames = []
    with pytest.raises(UnreadableVideoError, match=r"walk.mp4: truncated or corrupt video, it breaks off at frame 3 "
                                                   r"of the 5 it declares \(Invalid data found when processing"):
        frames.extend(read_video_frames(spots_video))
    assert [frame.index for frame in frames] == [0, 1, 2]  # the three packets read, each a whole frame


def test_a_cut_mp4_whose_index_was_at_the_end_says_it_looks_truncated(tmp_path, cut_videos, bright_spot_estimator):
    message = (rf"{cut_videos['end.mp4']}: not a readable video: it looks truncated, its index \(the MP4 'moov' box, "
               rf"which most recorders write last\) is missing, so no frame can be found in its \d+ bytes of media "
               rf"data \(of the \d+ its mdat box declares\)\. Expected a complete file")
    with pytest.raises(UnreadableVideoError, match=message):
        write_video_predictions(bright_spot_estimator, cut_videos["end.mp4"], tmp_path / "out", show_progress=False)
    assert not (tmp_path / "out").exists()


def test_a_corrupt_stretch_loses_only_its_own_frames(tmp_path, caplog, bright_spot_estimator):
    write_video(tmp_path / "whole.mp4", noisy_spots(), {"movflags": "faststart"})
    with av.open(str(tmp_path / "whole.mp4")) as container:
        starts = [packet.pos for packet in container.demux(video=0) if packet.size]
    data = bytearray((tmp_path / "whole.mp4").read_bytes())
    data[starts[10]: starts[10] + 4] = b"\xff" * 4  # the 11th frame's first NAL unit claims more bytes than it has
    (tmp_path / "bad.mp4").write_bytes(data)
    decodable = decodable_frames(tmp_path / "bad.mp4")
    assert decodable == 29  # all but the broken one
    with caplog.at_level(logging.WARNING, logger="semipose.video"):
        summary = write_video_predictions(bright_spot_estimator, tmp_path / "bad.mp4", tmp_path, show_progress=False)
    assert summary["num_frames"] == decodable
    assert re.fullmatch(rf"{tmp_path / 'bad.mp4'}: corrupt video, 1 frame\(s\) did not decode, the "
                        rf"first after frame \d+ \(.+\); the {decodable} frames that decoded are numbered in order, "
                        rf"each with the stream's timestamp\.", summary["error"])
    assert caplog.records[0].getMessage().startswith(summary["error"])
    timestamps = [frame["timestamp"] for frame in json.loads((tmp_path / "bad.json").read_text())["frames"]]
    places = np.asarray(timestamps) * FPS  # each frame keeps its place in the file: the lost ones leave gaps
    assert np.allclose(places, places.round()) and (np.diff(places) > 0).all() and places[-1].round() == 29


def test_variable_frame_rate_keeps_the_streams_timestamps(tmp_path, bright_spot_estimator):
    times = [0.0, 0.1, 0.25, 0.3, 0.7]
    write_video(tmp_path / "vfr.mp4", [spot_frame(centers) for centers in SPOTS], times=times)
    summary = write_video_predictions(bright_spot_estimator, tmp_path / "vfr.mp4", tmp_path / "out",
                                      show_progress=False)
    record = json.loads(Path(summary["json"]).read_text())
    assert [frame["timestamp"] for frame in record["frames"]] == times and summary["error"] is None
    assert [frame.timestamp for frame in read_video_frames(summary["poses_video"])] == pytest.approx(times)


PORTRAIT = (0, 1 << 16, -1 << 16, 0)
"""The display matrix of a phone held upright: the stored frame is turned 90 degrees clockwise to be shown."""


def test_a_display_matrix_is_applied_so_frames_stand_as_players_show_them(tmp_path, bright_spot_estimator):
    arrays = [spot_frame(centers) for centers in SPOTS]
    write_video(tmp_path / "stored.mp4", arrays, lossless=True)
    shutil.copy(tmp_path / "stored.mp4", tmp_path / "phone.mp4")
    with_display_matrix(tmp_path / "phone.mp4", PORTRAIT)
    with VideoReader(tmp_path / "phone.mp4") as reader:
        assert (reader.info.width, reader.info.height, reader.info.rotation) == (HEIGHT, WIDTH, -90)
    for stored, upright in zip(read_video_frames(tmp_path / "stored.mp4"), read_video_frames(tmp_path / "phone.mp4")):
        np.testing.assert_array_equal(np.asarray(upright.image), np.rot90(np.asarray(stored.image), k=-1))
    summary = write_video_predictions(bright_spot_estimator, tmp_path / "phone.mp4", tmp_path, show_progress=False)
    record = json.loads(Path(summary["json"]).read_text())
    assert (record["width"], record["height"], record["rotation"]) == (HEIGHT, WIDTH, -90)
    for frame, centers in zip(record["frames"], SPOTS):  # a stored (x, y) stands at (HEIGHT - y, x), turned clockwise
        people = sorted(frame["people"], key=lambda person: person["keypoints"][0][0])
        for person, center in zip(people, sorted((HEIGHT - y, x) for x, y in centers), strict=True):
            np.testing.assert_allclose(person["keypoints"], expected_keypoints(center), atol=5)


@pytest.mark.parametrize("matrix, message", [
    ((-1 << 16, 0, 0, 1 << 16), "its display matrix mirrors the frames; expected one that only turns them"),
    ((46341, -46341, 46341, 46341), "its display matrix turns the frames by 45 degrees; expected a multiple of 90"),
], ids=["mirrored", "45 degrees"])
def test_a_display_matrix_that_cannot_be_applied_is_refused(tmp_path, bright_spot_estimator, matrix, message):
    write_video(tmp_path / "odd.mp4", [spot_frame(SPOTS[0])])
    with_display_matrix(tmp_path / "odd.mp4", matrix)
    with pytest.raises(UnreadableVideoError, match=f"odd.mp4: {message}"):
        write_video_predictions(bright_spot_estimator, tmp_path / "odd.mp4", tmp_path / "out", show_progress=False)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("make, message", [
    (lambda path: None, "gone.mp4: no such video file"),
    (lambda path: path.write_bytes(b""), r"gone.mp4: empty file \(0 bytes\); expected a video"),
    (lambda path: path.write_text("not a video"), r"gone.mp4: not a readable video \(.+\); expected a video file"),
    (lambda path: write_video(path, []), "gone.mp4: no video frames, "),  # a header, no frames
], ids=["missing", "empty file", "not a video", "zero frames"])
def test_a_video_with_nothing_to_read_names_the_file_and_makes_no_folder(tmp_path, bright_spot_estimator, make,
                                                                         message):
    make(tmp_path / "gone.mp4")
    with pytest.raises((FileNotFoundError, UnreadableVideoError), match=message):
        write_video_predictions(bright_spot_estimator, tmp_path / "gone.mp4", tmp_path / "out", show_progress=False)
    assert not (tmp_path / "out").exists()
    assert is_video_file("a/CLIP.MOV") and not is_video_file("a/clip.png")


def test_predict_command_on_a_video_and_on_a_folder_of_images_and_videos(
    tmp_path, capsys, checkpoint, spots_video, coco_fixture_dir
):
    status, out, _ = run(["predict", spots_video, "--model", checkpoint, "--output", tmp_path / "one"], capsys)
    assert status == 0 and out.strip().endswith(f"-> {tmp_path / 'one' / 'walk.json'} and "
                                                f"{tmp_path / 'one' / 'walk_poses.mp4'}")
    assert sorted(path.name for path in (tmp_path / "one").iterdir()) == ["walk.json", "walk_poses.mp4"]
    assert json.loads((tmp_path / "one" / "walk.json").read_text())["num_frames"] == 5

    folder = tmp_path / "mixed"
    folder.mkdir()
    shutil.copy(spots_video, folder / "walk.mp4")
    shutil.copy(spots_video, folder / "predictions.mov")  # would overwrite the images' predictions.json
    shutil.copy(next(coco_fixture_dir.glob("*.jpg")), folder / "photo.jpg")
    (folder / "broken.mp4").write_text("not a video")
    status, out, _ = run(["predict", folder, "--model", checkpoint, "--output", tmp_path / "out"], capsys)
    assert status == 0
    written = sorted(path.name for path in (tmp_path / "out").iterdir())
    assert written == ["images.json", "photo.png", "predictions.json", "predictions_mov.json",
                       "predictions_mov_poses.mp4", "walk.json", "walk_poses.mp4"]
    assert "1 images" in out and f"failed: {folder / 'broken.mp4'}: not a readable video" in out

    status, _, err = run(["predict", folder / "broken.mp4", "--model", checkpoint, "--output", tmp_path], capsys)
    assert status == 2 and "broken.mp4: not a readable video" in err


def test_predict_command_keeps_what_a_truncated_video_holds_and_exits_0_with_a_warning(
    tmp_path, capsys, caplog, checkpoint, cut_videos
):
    video, out = cut_videos["front.mp4"], tmp_path / "out"
    decodable = decodable_frames(video)
    with caplog.at_level(logging.WARNING, logger="semipose.video"):
        status, printed, _ = run(["predict", video, "--model", checkpoint, "--output", out], capsys)
    assert status == 0
    assert printed.strip().startswith(f"{video}: {decodable} frames (incomplete, see the warning), ")
    assert [record.getMessage().split(" (")[0] for record in caplog.records] == [
        f"{video}: truncated or corrupt video, it breaks off at frame {decodable} of the 30 it declares"]
    assert json.loads((out / "cut_front.json").read_text())["num_frames"] == decodable

    status, _, err = run(["predict", cut_videos["end.mp4"], "--model", checkpoint, "--output", tmp_path / "no"],
                         capsys)
    assert status == 2 and f"error: {cut_videos['end.mp4']}: not a readable video: it looks truncated, its index" in err
    assert not (tmp_path / "no").exists()


def test_predict_command_fails_only_when_it_can_read_nothing_and_then_leaves_no_folder(
    tmp_path, capsys, checkpoint, spots_video
):
    unreadable = tmp_path / "unreadable"
    unreadable.mkdir()
    (unreadable / "empty.mp4").write_bytes(b"")
    (unreadable / "notes.mov").write_text("not a video")
    status, _, err = run(["predict", unreadable, "--model", checkpoint, "--output", tmp_path / "a" / "out"], capsys)
    assert status == 2 and (f"semipose predict: error: {unreadable}: nothing could be read; expected at least one "
                            f"readable image or video. {unreadable / 'empty.mp4'}: empty file (0 bytes); expected a "
                            f"video. {unreadable / 'notes.mov'}: not a readable video") in err
    assert not (tmp_path / "a").exists()

    folder = tmp_path / "clip_and_notes"  # a clip with a text file beside it: the clip is read, the text passed over
    folder.mkdir()
    shutil.copy(spots_video, folder / "walk.mp4")
    (folder / "notes.txt").write_text("trial 3, mouse 2")
    status, printed, _ = run(["predict", folder, "--model", checkpoint, "--output", tmp_path / "out"], capsys)
    lines = printed.strip().splitlines()
    assert status == 0 and lines[0].startswith("1 other file(s), no readable image among them: skipped (")
    assert lines[1].startswith(f"{folder / 'walk.mp4'}: 5 frames, ")
    assert sorted(path.name for path in (tmp_path / "out").iterdir()) == ["walk.json", "walk_poses.mp4"]


# ------------------------------------------------------------------------- tracking, smoothing, exports

WALKERS = [[0, 1], [0, 1], [0], [0, 1], [0, 1]]
"""The track ids in each frame of `SPOTS`, people left to right: the one hidden in frame 2 keeps its id."""
LOW_GATE = {"min_similarity": 0.1}
"""The found people jump a whole heatmap cell (8 frame pixels, a seventh of the figure's height) a frame, which the
default OKS gate (0.3) takes for someone else while a track's velocity is unknown; a gate of 0.1 follows them."""


def ids_left_to_right(frames) -> list[list[int]]:
    return [[person["track_id"] for person in sorted(frame["people"], key=lambda person: person["keypoints"][0][0])]
            for frame in frames]


@pytest.fixture(scope="module")
def tracked(tmp_path_factory, spots_video, bright_spot_estimator) -> dict[bool, tuple[dict, dict]]:
    """walk.mp4 tracked (False) and tracked and smoothed (True): the summary and the json of each."""
    results = {}
    for smooth in (False, True):
        summary = write_video_predictions(bright_spot_estimator, spots_video, tmp_path_factory.mktemp("tracked"),
                                          track=True, smooth=smooth, tracker_options=LOW_GATE, show_progress=False)
        results[smooth] = summary, json.loads(open(summary["json"]).read())
    return results


def test_tracking_gives_every_person_an_id_kept_through_a_hidden_frame(
    tmp_path, tracked, spots_video, bright_spot_estimator
):
    summary, record = tracked[False]
    assert ids_left_to_right(record["frames"]) == WALKERS and summary["num_tracks"] == 2
    assert record["tracking"] == {"max_age": 10, "min_oks": 0.1, "keypoint_threshold": 0.3}
    assert record["smoothing"] is None and summary["exports"] == []
    write_video_predictions(bright_spot_estimator, spots_video, tmp_path, show_progress=False)
    untracked = json.loads((tmp_path / "walk.json").read_text())["frames"]
    for frame, plain in zip(record["frames"], untracked):  # the same people, each with its id first
        assert [list(person)[0] for person in frame["people"]] == ["track_id"] * len(plain["people"])
        assert [{key: person[key] for key in plain["people"][0]} for person in frame["people"]] == plain["people"]
    assert all("track_id" not in person for frame in untracked for person in frame["people"])


def test_smoothing_keeps_each_tracks_first_pose_and_filters_the_next(tracked):
    (_, raw), (_, smoothed) = tracked[False], tracked[True]
    assert smoothed["smoothing"] == {"min_cutoff": 1.0, "beta": 0.05, "d_cutoff": 1.0}
    assert ids_left_to_right(smoothed["frames"]) == WALKERS and smoothed["frames"][0] == raw["frames"][0]
    filters = {}  # One-Euro filters of the module's defaults, one per track, at the frames' timestamps
    for raw_frame, frame in zip(raw["frames"], smoothed["frames"]):
        for raw_person, person in zip(raw_frame["people"], frame["people"], strict=True):
            one_euro = filters.setdefault(person["track_id"], OneEuroFilter(min_cutoff=1.0, beta=0.05))
            expected = one_euro(raw_person["keypoints"], raw_frame["timestamp"])
            np.testing.assert_allclose(person["keypoints"], expected, atol=0.011)  # both rounded to 0.01
            assert {**person, "keypoints": None} == {**raw_person, "keypoints": None}
    moved = np.subtract(smoothed["frames"][1]["people"][0]["keypoints"], raw["frames"][1]["people"][0]["keypoints"])
    assert np.abs(moved).max() > 1  # the smoothed pose trails the found one


def test_the_poses_video_draws_each_track_in_its_color(tracked, spots_video, bright_spot_estimator):
    summary, record = tracked[False]
    frame, drawn = next(read_video_frames(spots_video)), next(read_video_frames(summary["poses_video"]))
    people = record["frames"][0]["people"]
    by_track = np.asarray(bright_spot_estimator.draw(frame.image, people), dtype=float)
    untracked = [{key: value for key, value in person.items() if key != "track_id"} for person in people]
    by_side = np.asarray(bright_spot_estimator.draw(frame.image, untracked), dtype=float)
    differ, got = (by_track != by_side).any(axis=-1), np.asarray(drawn.image, dtype=float)
    assert differ.sum() > 100 and track_color(0) != track_color(1)
    # H.264 blurs the thin lines, yet the drawn frame is far closer to the colors by track than by side
    assert np.abs(got - by_track)[differ].mean() < 0.5 * np.abs(got - by_side)[differ].mean()


def test_track_people_follows_people_through_arrays_and_images(bright_spot_estimator):
    arrays = [spot_frame(centers) for centers in SPOTS]
    for frames in (arrays, [Image.fromarray(array) for array in arrays]):
        results = list(track_people(bright_spot_estimator, frames, fps=FPS, tracker_options=LOW_GATE))
        assert [frame.index for frame, _ in results] == [0, 1, 2, 3, 4]
        assert [frame.timestamp for frame, _ in results] == pytest.approx([0, 0.1, 0.2, 0.3, 0.4])
        assert ids_left_to_right([{"people": people} for _, people in results]) == WALKERS
        for (_, people), centers in zip(results, SPOTS):
            people = sorted(people, key=lambda person: person["keypoints"][0][0])
            for person, center in zip(people, sorted(centers), strict=True):
                np.testing.assert_allclose(person["keypoints"], expected_keypoints(center), atol=4)
    with pytest.raises(ValueError, match="max_age must be an integer >= 0"):
        track_people(bright_spot_estimator, arrays, tracker_options={"max_age": -1})  # at once, before any frame
    with pytest.raises(ValueError, match=r"frames\[1\]: expected a Frame, a PIL image or a uint8 array of shape "
                                         r"\(H, W, 3\) or \(H, W\), got an array of shape \(4, 4\) and dtype float64"):
        list(track_people(bright_spot_estimator, [arrays[0], np.zeros((4, 4))]))


@pytest.fixture(scope="module")
def exported(tmp_path_factory, spots_video, bright_spot_estimator) -> tuple[dict, dict]:
    """walk.mp4 tracked and written in every format whose library is installed: the summary and the json."""
    libraries = {"dlc-h5": "tables", "slp": "sleap_io"}  # slp twice: written once
    formats = [name for name in ("slp", "dlc-csv", "dlc-h5", "slp") if name not in libraries
               or importlib.util.find_spec(libraries[name])]
    summary = write_video_predictions(bright_spot_estimator, spots_video, tmp_path_factory.mktemp("exported"),
                                      track=True, tracker_options=LOW_GATE, export_formats=formats,
                                      show_progress=False)
    return summary, json.loads(open(summary["json"]).read())


def exported_file(summary: dict, suffix: str):
    """The export ending in `suffix`; a skip saying which library is missing when it was not written."""
    files = [Path(file) for file in summary["exports"] if file.endswith(suffix)]
    if not files:
        pytest.skip(f"the {suffix} export needs {'sleap-io' if suffix == '.slp' else 'PyTables'} (semipose[export])")
    return files[0]


def track_keypoints(record: dict) -> np.ndarray:
    """`(T, N, K, 2)` keypoints of the json, track n in column n, NaN where it has no person."""
    keypoints = np.full((record["num_frames"], 2, 17, 2), np.nan)
    for t, frame in enumerate(record["frames"]):
        for person in frame["people"]:
            keypoints[t, person["track_id"]] = person["keypoints"]
    return keypoints


def test_exports_are_written_beside_the_json_as_each_format_asks(exported):
    summary, record = exported
    folder = Path(summary["json"]).parent
    assert [Path(file).name for file in summary["exports"]] == [
        name for name in ("walk_tracks.slp", "walk_tracks.csv", "walk_tracks.h5") if folder.joinpath(name).exists()]
    assert "walk_tracks.csv" in [Path(file).name for file in summary["exports"]]  # each format once
    table = pd.read_csv(folder / "walk_tracks.csv", header=[0, 1, 2, 3], index_col=0)
    nose = track_keypoints(record)[:, :, 0]
    for n, track in enumerate(("track_0", "track_1")):
        np.testing.assert_array_equal(table["semipose", track, "nose", "x"], nose[:, n, 0])
        np.testing.assert_array_equal(table["semipose", track, "nose", "y"], nose[:, n, 1])


def test_sleap_io_reads_the_exported_tracks(exported):
    summary, record = exported
    sio = pytest.importorskip("sleap_io", reason="the .slp export needs the optional extra semipose[sleap]")
    labels = sio.load_slp(str(exported_file(summary, ".slp")))
    assert [track.name for track in labels.tracks] == ["track_0", "track_1"] and len(labels.labeled_frames) == 5
    assert [len(frame.instances) for frame in labels.labeled_frames] == [2, 2, 1, 2, 2]
    assert labels.skeletons[0].node_names == record["keypoint_names"]
    np.testing.assert_allclose(labels.numpy(), track_keypoints(record), rtol=1e-6)


@pytest.mark.parametrize("suffix", [".csv", ".h5"])
def test_movement_reads_the_exported_tracks(exported, suffix):
    summary, record = exported
    load_poses = pytest.importorskip("movement.io.load_poses", reason="movement (dev extra, Python 3.11+) is the "
                                                                      "reader the exports are made for")
    dataset = load_poses.from_file(exported_file(summary, suffix), source_software="DeepLabCut", fps=FPS)
    assert dataset.individuals.values.tolist() == ["track_0", "track_1"]
    assert dataset.keypoints.values.tolist() == record["keypoint_names"]
    np.testing.assert_array_equal(dataset.position.values, track_keypoints(record).transpose(0, 3, 2, 1))


def test_an_export_that_fails_keeps_the_json_and_the_drawn_video(tmp_path, bright_spot_estimator):
    write_video(tmp_path / "dark.mp4", [spot_frame([])] * 3)  # nobody in it: no track to export
    out = tmp_path / "out"
    with pytest.raises(VideoExportError) as error:
        write_video_predictions(bright_spot_estimator, tmp_path / "dark.mp4", out, track=True,
                                export_formats=["dlc-csv"], show_progress=False)
    assert str(error.value).startswith(f"{out / 'dark_tracks.csv'}: no tracks to export (no person tracked in any of "
                                       f"the 3 frames); expected at least one track. The 3 frames are in "
                                       f"{out / 'dark.json'} and {out / 'dark_poses.mp4'}; export them again")
    assert json.loads((out / "dark.json").read_text())["num_frames"] == 3
    assert len(list(read_video_frames(out / "dark_poses.mp4"))) == 3 and not (out / "dark_tracks.csv").exists()


def test_a_missing_export_library_stops_before_the_video_is_read(tmp_path, spots_video, bright_spot_estimator,
                                                                 monkeypatch):
    monkeypatch.setitem(sys.modules, "tables", None)  # `import tables` raises ImportError
    with pytest.raises(ImportError, match=r"\.h5 tables needs PyTables: pip install 'semipose\[export\]'"):
        write_video_predictions(bright_spot_estimator, spots_video, tmp_path / "out", track=True,
                                export_formats=["dlc-h5"], show_progress=False)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("options, message", [
    ({"smooth": True}, "smooth=True: the One-Euro filter smooths each track's keypoints; expected track=True"),
    ({"export_formats": ["dlc-csv"]},
     r"export formats \['dlc-csv'\]: the exported files hold one individual per track; expected track=True"),
    ({"track": True, "export_formats": ["dlc-csv", "nwb"]},
     r"export formats \['nwb'\]: unknown; expected some of \['dlc-csv', 'dlc-h5', 'slp'\]"),
    ({"track": True, "smoother_options": {"beta": 0.1}},
     r"smoother_options \{'beta': 0.1\}: they set the smoothing, which is off; expected smooth=True with them"),
    ({"track": True, "tracker_options": {"max_age": -1}}, "max_age must be an integer >= 0"),
], ids=["smooth untracked", "export untracked", "unknown format", "smoother options unsmoothed", "bad max_age"])
def test_options_that_cannot_work_are_refused_before_anything_is_written(
    tmp_path, spots_video, bright_spot_estimator, options, message
):
    with pytest.raises(ValueError, match=message):
        write_video_predictions(bright_spot_estimator, spots_video, tmp_path / "out", show_progress=False, **options)
    assert not (tmp_path / "out").exists()


def test_predict_command_tracks_the_videos_of_a_folder_with_ids_stable_in_a_still_scene(
    tmp_path, capsys, checkpoint, coco_fixture_dir
):
    folder, out = tmp_path / "mixed", tmp_path / "out"
    folder.mkdir()
    write_video(folder / "still.mp4", [spot_frame(SPOTS[0])] * 4, lossless=True)  # four equal frames
    shutil.copy(next(coco_fixture_dir.glob("*.jpg")), folder / "photo.jpg")
    status, printed, _ = run(["predict", folder, "--model", checkpoint, "--output", out, "--track", "--max-age", 3,
                              "--min-oks", 0.5, "--smooth", "--smooth-beta", 0.1, "--format", "dlc-csv"], capsys)
    assert status == 0
    record = json.loads((out / "still.json").read_text())
    first = record["frames"][0]["people"]
    assert len(first) > 1 and [person["track_id"] for person in first] == list(range(len(first)))
    assert all(frame["people"] == first for frame in record["frames"])  # the same ids, the still poses unchanged
    assert record["tracking"] == {"max_age": 3, "min_oks": 0.5, "keypoint_threshold": 0.3}
    assert record["smoothing"] == {"min_cutoff": 1.0, "beta": 0.1, "d_cutoff": 1.0}
    lines = printed.strip().splitlines()
    assert lines[0].endswith("1 pictures (not tracked: tracking follows people through videos only)")
    assert lines[1] == (f"{folder / 'still.mp4'}: 4 frames, {4 * len(first)} people, {len(first)} tracks -> "
                        f"{out / 'still.json'}, {out / 'still_poses.mp4'} and {out / 'still_tracks.csv'}")
    predictions = json.loads((out / "predictions.json").read_text())
    assert predictions and all("track_id" not in result for result in predictions)
