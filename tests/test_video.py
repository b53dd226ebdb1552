"""Videos: frames, timestamps and people found where they were drawn; the drawn copy; broken and empty files;
`semipose predict` on a video and on a folder of images and videos."""

from __future__ import annotations

import json
import shutil
from fractions import Fraction

import av
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw
from test_cli import run
from tiny_checkpoint import TEMPLATE_OFFSETS

from semipose.inference import PoseEstimator
from semipose.modeling import CenterOffsetConfig, CenterOffsetForPoseEstimation, PoseImageProcessor
from semipose.video import (
    UnreadableVideoError,
    VideoReader,
    is_video_file,
    read_video_frames,
    write_video_predictions,
)

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


def write_video(path, frames: list[np.ndarray], options: dict | None = None) -> None:
    """An H.264 video of `frames` at `FPS` frames per second, written with PyAV (not the code under test)."""
    with av.open(str(path), "w", options=options or {}) as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.height, stream.width = frames[0].shape[:2] if frames else (HEIGHT, WIDTH)
        stream.pix_fmt = "yuv420p"
        container.start_encoding()
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())


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
    frames = list(read_video_frames(spots_video))
    assert [frame.index for frame in frames] == list(range(len(SPOTS)))
    assert [frame.timestamp for frame in frames] == pytest.approx([index / FPS for index in range(len(SPOTS))])
    center = np.asarray(frames[0].image)[30, 30]
    assert frames[0].image.size == (WIDTH, HEIGHT) and (center > 240).all()  # a white disk survives H.264


def test_video_predictions_find_people_where_they_were_drawn(tmp_path, spots_video, bright_spot_estimator):
    summary = write_video_predictions(bright_spot_estimator, spots_video, tmp_path, show_progress=False)
    record = json.loads((tmp_path / "walk.json").read_text())
    assert summary == {"video": str(spots_video), "num_frames": 5, "num_people": 9, "json": str(tmp_path / "walk.json"),
                       "poses_video": str(tmp_path / "walk_poses.mp4")}
    assert (record["width"], record["height"], record["fps"], record["num_frames"]) == (WIDTH, HEIGHT, FPS, 5)
    assert record["skeleton"] == "coco" and len(record["keypoint_names"]) == 17 and record["error"] is None
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


def test_truncated_video_keeps_the_frames_read_and_names_the_frame(tmp_path, bright_spot_estimator):
    noise = np.random.default_rng(0).integers(0, 40, (30, HEIGHT, WIDTH, 3), dtype=np.uint8)  # frames of some size
    full = tmp_path / "full.mp4"
    write_video(full, [spot_frame(SPOTS[index % 5]) | noise[index] for index in range(30)], {"movflags": "faststart"})
    data = full.read_bytes()
    (tmp_path / "cut.mp4").write_bytes(data[: len(data) // 2])  # the index (moov) is at the front: frames go missing
    message = r"cut.mp4: truncated or corrupt video, it breaks off at frame"
    with pytest.raises(UnreadableVideoError, match=message) as error:
        write_video_predictions(bright_spot_estimator, tmp_path / "cut.mp4", tmp_path / "out", show_progress=False)
    read = error.value.frames_read
    assert 0 < read < 30 and f"at frame {read} of the 30 it declares" in str(error.value)
    assert f"The {read} frames read are in {tmp_path / 'out' / 'cut.json'}" in str(error.value)
    record = json.loads((tmp_path / "out" / "cut.json").read_text())
    assert record["num_frames"] == len(record["frames"]) == read and "breaks off" in record["error"]
    assert len(list(read_video_frames(tmp_path / "out" / "cut_poses.mp4"))) == read


def test_missing_empty_and_non_video_files_say_what_was_expected(tmp_path, bright_spot_estimator):
    with pytest.raises(FileNotFoundError, match="gone.mp4: no such video file"):
        VideoReader(tmp_path / "gone.mp4")
    (tmp_path / "notes.mp4").write_text("not a video")
    with pytest.raises(UnreadableVideoError, match=r"notes.mp4: not a readable video .*expected a video file"):
        VideoReader(tmp_path / "notes.mp4")
    write_video(tmp_path / "empty.mp4", [])  # a header, no frames
    with pytest.raises(UnreadableVideoError, match="empty.mp4: no video frames"):
        write_video_predictions(bright_spot_estimator, tmp_path / "empty.mp4", tmp_path / "out", show_progress=False)
    assert not (tmp_path / "out" / "empty.json").exists() and not (tmp_path / "out" / "empty_poses.mp4").exists()
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
