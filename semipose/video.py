"""Videos in, people per frame out: frames read with PyAV, batched inference, a JSON and a drawn copy.

`semipose predict clip.mp4 --model DIR --output OUT` runs `write_video_predictions`: it writes
`OUT/clip.json` (per frame: its index, its timestamp in seconds, its people) and `OUT/clip_poses.mp4`
(the frames with the skeletons drawn, same size and frame rate). A video that breaks off (truncated
or corrupt file) keeps the frames read before the break in both files, and the error names the frame.

PyAV bundles FFmpeg, so no system ffmpeg is needed; it is the optional extra `semipose[video]`.

Illustration (not run: needs a trained model folder and a video):

```python
from semipose.inference import PoseEstimator
from semipose.video import read_video_frames, write_video_predictions

estimator = PoseEstimator.from_pretrained("outputs/run_semi_pose")
for frame in read_video_frames("clip.mp4"):  # index, timestamp (s) and RGB image of each frame
    people = estimator(frame.image)
summary = write_video_predictions(estimator, "clip.mp4", "poses/")
summary["num_frames"], summary["json"]  # e.g. 120 frames, 'poses/clip.json'
```
"""

from __future__ import annotations

import itertools
import json
import logging
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from types import ModuleType
from typing import Any

import PIL.Image
from tqdm.auto import tqdm

from .data.folder_files import relative_stems
from .inference import PoseEstimator, draw_predictions
from .modeling.pipeline_pose_estimation import person_dicts

logger = logging.getLogger(__name__)

VIDEO_SUFFIXES = frozenset({".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".wmv", ".flv", ".ts"})
"""File name suffixes `semipose predict` reads as videos (lower case); every other file is read as an image."""
RESERVED_STEMS = frozenset({"predictions", "images"})
"""Stems of the image results (`predictions.json`, `images.json`) a video's json must not overwrite."""
FALLBACK_FPS = Fraction(25)
"""Frame rate assumed for a stream that states none."""


class UnreadableVideoError(ValueError):
    """A video file PyAV cannot open, that holds no frames, or that breaks off after `frames_read` frames."""

    def __init__(self, message: str, frames_read: int = 0):
        super().__init__(message)
        self.frames_read = frames_read


def is_video_file(path: str | Path) -> bool:
    """True when the file name ends in one of `VIDEO_SUFFIXES`."""
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


def import_av() -> ModuleType:
    """The `av` module (PyAV), or ImportError saying how to install it."""
    try:
        import av
    except ImportError as error:
        raise ImportError("Reading and writing videos needs PyAV: pip install 'semipose[video]'.") from error
    return av


@dataclass(frozen=True)
class VideoInfo:
    """What a video's first video stream says about itself."""

    path: Path
    width: int
    height: int
    fps: Fraction
    num_frames: int
    """Frame count the container declares; 0 when it declares none (e.g. Matroska)."""


@dataclass(frozen=True)
class Frame:
    """One decoded frame: its index from 0, its presentation time in seconds and its RGB image."""

    index: int
    timestamp: float
    image: PIL.Image.Image


class VideoReader:
    """The frames of one video file, in order, as RGB images; a context manager that closes the file.

    Raises (on opening):
        FileNotFoundError: no such file.
        UnreadableVideoError: not a video PyAV can open, or no video stream in it.
    Raises (while iterating):
        UnreadableVideoError: no frames at all, a frame that cannot be decoded, or fewer frames than
            the container declares (truncated file); `frames_read` frames were yielded before.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"{self.path}: no such video file.")
        self._av = import_av()
        try:
            self._container = self._av.open(str(self.path))
        except self._av.error.FFmpegError as error:
            raise UnreadableVideoError(
                f"{self.path}: not a readable video ({error}); expected a video file FFmpeg can decode "
                f"({', '.join(sorted(VIDEO_SUFFIXES))})."
            ) from error
        if not self._container.streams.video:
            self._container.close()
            raise UnreadableVideoError(f"{self.path}: no video frames, the file holds no video stream.")
        stream = self._container.streams.video[0]
        self.info = VideoInfo(self.path, stream.width, stream.height,
                              Fraction(stream.average_rate or stream.guessed_rate or FALLBACK_FPS), stream.frames)

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc_info) -> None:
        self._container.close()

    def __iter__(self) -> Iterator[Frame]:
        count = 0
        try:
            for frame in self._container.decode(video=0):
                timestamp = frame.time if frame.time is not None else count / self.info.fps
                yield Frame(count, float(timestamp), frame.to_image())
                count += 1
        except self._av.error.FFmpegError as error:
            raise UnreadableVideoError(self._break_message(count, str(error)), frames_read=count) from error
        if count == 0:
            raise UnreadableVideoError(f"{self.path}: no video frames, expected at least one.")
        if count < self.info.num_frames:
            raise UnreadableVideoError(self._break_message(count, "end of file"), frames_read=count)

    def _break_message(self, count: int, reason: str) -> str:
        declared = f" of the {self.info.num_frames} it declares" if self.info.num_frames else ""
        return f"{self.path}: truncated or corrupt video, it breaks off at frame {count}{declared} ({reason})."


def read_video_frames(path: str | Path) -> Iterator[Frame]:
    """The frames of the video at `path` (see `VideoReader` for the errors)."""
    with VideoReader(path) as reader:
        yield from reader


class VideoWriter:
    """Writes RGB images as an H.264 video of a given size and frame rate; the file is created at the first frame.

    Even sizes are encoded in yuv420p (what every player reads); odd ones, which yuv420p cannot hold,
    in yuv444p.
    """

    def __init__(self, path: str | Path, width: int, height: int, fps: Fraction):
        self.path, self.width, self.height, self.fps = Path(path), width, height, fps
        self._av = import_av()
        self._container = None
        self._stream = None

    def write(self, image: PIL.Image.Image) -> None:
        if self._container is None:
            self._open()
        for packet in self._stream.encode(self._av.VideoFrame.from_image(image.convert("RGB"))):
            self._container.mux(packet)

    def _open(self) -> None:
        self._container = self._av.open(str(self.path), "w")
        self._stream = self._container.add_stream("libx264", rate=self.fps)
        self._stream.width, self._stream.height = self.width, self.height
        self._stream.pix_fmt = "yuv420p" if self.width % 2 == 0 and self.height % 2 == 0 else "yuv444p"

    def close(self) -> None:
        """Flush the encoder and close the file (nothing to do when no frame was written)."""
        if self._container is None:
            return
        for packet in self._stream.encode():
            self._container.mux(packet)
        self._container.close()
        self._container = None

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def write_video_predictions(
    estimator: PoseEstimator, path: str | Path, output_dir: str | Path, *, name: str | None = None,
    keypoint_threshold: float = 0.3, show_progress: bool | None = None,
) -> dict[str, Any]:
    """Predict the people of every frame of a video; write `<name>.json` and `<name>_poses.mp4` to `output_dir`.

    Frames go through the estimator in batches of `estimator.batch_size`. The json holds the video's
    size, frame rate and skeleton, and per frame `frame_index`, `timestamp` (seconds) and `people`
    (`score`, `keypoints` [K][2] as (x, y) in frame pixels, `keypoint_scores` [K]), as `PoseEstimator`
    returns them.

    Args:
        estimator: the model, batch size, flip test and person threshold to use.
        path: the video file.
        output_dir: where the two files go (created).
        name: stem of the output files (may name a sub-folder, `trip/clip`); default the video's stem.
        keypoint_threshold: keypoints scoring at or below it are not drawn (all are written to the json).
        show_progress: a progress bar over the frames; None shows it on a terminal only.

    Returns:
        A summary: `video`, `num_frames`, `num_people`, `json`, `poses_video`.

    Raises:
        FileNotFoundError, UnreadableVideoError: see `VideoReader`; a video that breaks off after some
            frames has them written first, and the message names both files.
    """
    path, output_dir = Path(path), Path(output_dir)
    name = name or path.stem
    json_path, poses_path = output_dir / f"{name}.json", output_dir / f"{name}_poses.mp4"
    json_path.parent.mkdir(parents=True, exist_ok=True)
    with VideoReader(path) as reader:
        info = reader.info
        frames, failure = [], None
        disable = None if show_progress is None else not show_progress
        with VideoWriter(poses_path, info.width, info.height, info.fps) as writer, tqdm(
            total=info.num_frames or None, desc=f"semipose predict {path.name}", unit="frame", disable=disable
        ) as progress:
            try:
                for batch in _batches(reader, estimator.batch_size):
                    frames += _predict_frames(estimator, batch, writer, keypoint_threshold)
                    progress.update(len(batch))
            except UnreadableVideoError as error:
                failure = error
    if failure is not None and not frames:
        raise failure
    _write_json(json_path, info, estimator, frames, poses_path.name, failure)
    if failure is not None:
        raise UnreadableVideoError(
            f"{failure} The {len(frames)} frames read are in {json_path} and {poses_path}.", frames_read=len(frames)
        )
    return {"video": str(path), "num_frames": len(frames), "num_people": sum(len(f["people"]) for f in frames),
            "json": str(json_path), "poses_video": str(poses_path)}


def _batches(frames: Iterable[Frame], size: int) -> Iterator[list[Frame]]:
    iterator = iter(frames)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


def _predict_frames(
    estimator: PoseEstimator, batch: list[Frame], writer: VideoWriter, keypoint_threshold: float
) -> list[dict[str, Any]]:
    """The json records of one batch of frames; their drawn copies go to `writer`."""
    images = [frame.image for frame in batch]
    people = estimator.predict(images)
    for drawn in draw_predictions(images, people, estimator.skeleton, keypoint_threshold):
        writer.write(drawn)
    return [{"frame_index": frame.index, "timestamp": round(frame.timestamp, 6),
             "people": [_rounded(person) for person in person_dicts(found)]} for frame, found in zip(batch, people)]


def _rounded(person: dict[str, Any]) -> dict[str, Any]:
    """A person of `person_dicts` as json: score and keypoint scores to 1e-4, (x, y) keypoints to 0.01 pixel."""
    return {"score": round(person["score"], 4), "keypoints": person["keypoints"].round(2).tolist(),
            "keypoint_scores": person["keypoint_scores"].round(4).tolist()}


def _write_json(
    json_path: Path, info: VideoInfo, estimator: PoseEstimator, frames: list[dict[str, Any]], poses_video: str,
    failure: UnreadableVideoError | None,
) -> None:
    skeleton = estimator.skeleton
    record = {
        "video": str(info.path), "width": info.width, "height": info.height, "fps": float(info.fps),
        "num_frames": len(frames), "skeleton": skeleton.name, "keypoint_names": list(skeleton.keypoint_names),
        "poses_video": poses_video, "error": None if failure is None else str(failure), "frames": frames,
    }
    json_path.write_text(json.dumps(record))


def write_videos_predictions(
    estimator: PoseEstimator, paths: Sequence[Path], output_dir: str | Path, *, keypoint_threshold: float = 0.3,
    show_progress: bool | None = None,
) -> dict[str, Any]:
    """`write_video_predictions` for each video of a folder; one that fails is warned about and listed.

    Output stems are the videos' stems with their sub-folders (see `relative_stems`), `<stem>_<suffix>` where
    two videos share a stem or a stem is one of `RESERVED_STEMS`. A single video's error is raised, as
    `write_predictions` does for a single image.

    Returns:
        `videos`: the summary of each video read to its end; `failed`: `{file, reason}` of the others (the
        reason says where the frames read before a break were written).
    """
    written, failed = [], []
    for path, name in zip(paths, _output_stems(paths)):
        try:
            written.append(write_video_predictions(estimator, path, output_dir, name=name,
                                                   keypoint_threshold=keypoint_threshold, show_progress=show_progress))
        except UnreadableVideoError as error:
            if len(paths) == 1:
                raise
            logger.warning("Video failed: %s", error)
            failed.append({"file": str(path), "reason": str(error)})
    return {"videos": written, "failed": failed}


def _output_stems(paths: Sequence[Path]) -> list[str]:
    stems = relative_stems(paths)
    counts = Counter(stems)
    return [stem if counts[stem] == 1 and stem not in RESERVED_STEMS
            else f"{stem}_{path.suffix.lstrip('.').lower()}" for stem, path in zip(stems, paths)]
