"""Videos in, people per frame out: frames read with PyAV (`semipose.video_io`), batched inference, a JSON and a
drawn copy; people followed from frame to frame, smoothed, and exported for the analysis and labeling tools.

`semipose predict clip.mp4 --model DIR --output OUT` runs `write_video_predictions`: it writes
`OUT/clip.json` (per frame: its index, its timestamp in seconds from the stream, its people) and
`OUT/clip_poses.mp4` (the frames with the skeletons drawn, same size, at the frames' own times). Frames stand
upright as players show them (a display matrix is applied). A video that breaks off (truncated or corrupt file)
keeps every frame that decoded in both files; the run ends normally with a warning naming the file and the frame
reached, also recorded as the json's and the summary's `error`. A video with no frame to read fails before any
file or folder is made.

With `--track` (`track=True`) each person gets a `track_id` (`semipose.tracking.PoseTracker`) and is drawn in
its track's color; `--smooth` adds a One-Euro filter per keypoint and track (`semipose.smoothing.PoseSmoother`);
`--format dlc-csv dlc-h5 slp` writes the tracks as `OUT/clip_tracks.csv` / `.h5` (DeepLabCut tables) and
`OUT/clip_tracks.slp` (SLEAP labels) after the json (`semipose.pose_exports`). `track_people` is the same path on
any stream of frames.

Illustration (not run: needs a trained model folder and a video):

```python
from semipose.inference import PoseEstimator
from semipose.video import read_video_frames, track_people, write_video_predictions

estimator = PoseEstimator.from_pretrained("outputs/run_semi_pose")
for frame in read_video_frames("clip.mp4"):  # index, timestamp (s) and RGB image of each frame
    people = estimator(frame.image)
for frame, people in track_people(estimator, read_video_frames("clip.mp4"), smooth=True):
    [person["track_id"] for person in people]  # e.g. [0, 1]: the same person keeps its id
summary = write_video_predictions(estimator, "clip.mp4", "poses/", track=True, export_formats=["dlc-csv"])
summary["num_frames"], summary["json"], summary["exports"]  # e.g. 120, 'poses/clip.json', ['poses/clip_tracks.csv']
```
"""

from __future__ import annotations

import json
import logging
import math
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import PIL.Image
from tqdm.auto import tqdm

from .data.folder_files import relative_stems
from .inference import PoseEstimator, to_rgb
from .modeling.pipeline_pose_estimation import person_dicts
from .pose_exports import EXPORT_FORMATS, check_export_library, export_poses, tracked_poses_from_frames
from .skeletons import Skeleton
from .smoothing import PoseSmoother
from .tracking import PoseTracker
from .video_io import (
    FALLBACK_FPS,
    VIDEO_SUFFIXES,
    Frame,
    UnreadableVideoError,
    VideoInfo,
    VideoReader,
    VideoWriter,
    import_av,
    is_video_file,
    read_video_frames,
)

logger = logging.getLogger(__name__)

RESERVED_STEMS = frozenset({"predictions", "images"})
"""Stems of the image results (`predictions.json`, `images.json`) a video's json must not overwrite."""
EXPORT_STEM_SUFFIX = "_tracks"
"""Exported tracks go to `<name>_tracks.csv` / `.h5` / `.slp` beside `<name>.json` (see `export_file`)."""


class VideoExportError(ValueError):
    """Tracks that could not be exported (a library missing, a video without people, ...): the json and the drawn
    video were written before, and the message names them."""


def track_people(
    estimator: PoseEstimator, frames: Iterable[Frame | PIL.Image.Image | np.ndarray], *, smooth: bool = False,
    fps: float | None = None, tracker_options: Mapping[str, Any] | None = None,
    smoother_options: Mapping[str, Any] | None = None,
) -> Iterator[tuple[Frame, list[dict[str, Any]]]]:
    """The people of a stream of frames, each with the `track_id` that follows it from frame to frame.

    The frames go through the estimator in batches of `estimator.batch_size`, in order, and each frame's people
    through one `PoseTracker(skeleton=estimator.skeleton, **tracker_options)` (OKS matching, ids never reused);
    with `smooth`, a `PoseSmoother(**smoother_options)` then smooths each track's keypoints at the frames'
    timestamps (One-Euro filter; its first pose passes unchanged). `write_video_predictions` runs this same path.

    Args:
        estimator: the model, batch size, flip test and person threshold to use.
        frames: the frames in order: `Frame`s (e.g. `read_video_frames`), PIL images, or uint8 arrays `(H, W, 3)`
            (RGB) or `(H, W)`. Images and arrays are numbered by their place in `frames` and timed `index / fps`.
        smooth: smooth the keypoints over time, per track.
        fps: frames per second of the images and arrays (default `FALLBACK_FPS`, 25); `Frame`s keep their times.
        tracker_options: keyword arguments of `PoseTracker` (`max_age`, `min_similarity`, `keypoint_threshold`).
        smoother_options: keyword arguments of `PoseSmoother` (`min_cutoff`, `beta`, `d_cutoff`).

    Returns:
        A generator of `(frame, people)`: the `Frame` (index, timestamp, RGB image) and its people as
        `PoseEstimator` gives them (`score`, `keypoints` `(K, 2)`, `keypoint_scores` `(K,)`) with `track_id`.

    Raises:
        ValueError: options the tracker or smoother refuse, raised here, before any frame is read; a frame that
            is no image (naming its place), while iterating.

    Illustration (not run: needs a trained model folder and a video):

    ```python
    for frame, people in track_people(estimator, read_video_frames("clip.mp4"), smooth=True):
        print(frame.index, [person["track_id"] for person in people])  # e.g. 0 [0, 1], then 1 [1, 0], ...
    ```
    """
    linker = _PeopleLinker.create(estimator.skeleton, track=True, smooth=smooth, fps=fps,
                                  tracker_options=tracker_options, smoother_options=smoother_options)
    return _frame_people(estimator, _as_frames(frames, fps), linker)


class _PeopleLinker:
    """What follows people through frames: a `PoseTracker` (None: people are not tracked) and a `PoseSmoother`
    (None: keypoints are written as found). Called with each frame and its people in turn."""

    def __init__(self, tracker: PoseTracker | None, smoother: PoseSmoother | None, fps: float):
        self.tracker, self.smoother, self.period = tracker, smoother, 1 / fps
        self._time = -math.inf

    @classmethod
    def create(
        cls, skeleton: Skeleton, *, track: bool, smooth: bool, fps: float | None,
        tracker_options: Mapping[str, Any] | None, smoother_options: Mapping[str, Any] | None,
    ) -> _PeopleLinker:
        """The tracker and smoother the options ask for; ValueError for options that set what is not asked for."""
        for name, options, switch, on in (("tracker_options", tracker_options, "track", track),
                                          ("smoother_options", smoother_options, "smooth", smooth)):
            if options and not on:
                raise ValueError(f"{name} {dict(options)}: they set the {switch}ing, which is off; expected "
                                 f"{switch}=True with them.")
        if smooth and not track:
            raise ValueError("smooth=True: the One-Euro filter smooths each track's keypoints; expected track=True.")
        if fps is not None and not fps > 0:
            raise ValueError(f"fps: expected frames per second > 0, got {fps!r}.")
        fps = float(fps or FALLBACK_FPS)
        tracker = PoseTracker(skeleton=skeleton, **(tracker_options or {})) if track else None
        smoother = PoseSmoother(**{"frame_rate": fps, **(smoother_options or {})}) if smooth else None
        return cls(tracker, smoother, fps)

    def __call__(self, frame: Frame, people: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The frame's people with their `track_id` (first key) and smoothed keypoints, as the parts are on."""
        if self.tracker is None:
            return people
        track_ids = self.tracker.update(people)
        people = [{"track_id": track_id, **person} for track_id, person in zip(track_ids, people)]
        if self.smoother is None:
            return people
        # A timestamp that does not increase (a broken stream) is taken as one frame on: the filter needs time.
        self._time = frame.timestamp if frame.timestamp > self._time else self._time + self.period
        return self.smoother.update(people, track_ids, timestamp=self._time, active_ids=self.tracker.track_ids)

    def settings(self) -> dict[str, dict[str, Any] | None]:
        """The json's `tracking` (max_age, the OKS or distance gate, keypoint_threshold) and `smoothing`
        (min_cutoff, beta, d_cutoff) parameters; None for a part that is off."""
        tracker, smoother = self.tracker, self.smoother
        tracking = smoothing = None
        if tracker is not None:
            gate = ({"min_oks": tracker.min_similarity} if tracker.sigmas is not None
                    else {"max_distance": tracker.max_distance})
            tracking = {"max_age": tracker.max_age, **gate, "keypoint_threshold": tracker.keypoint_threshold}
        if smoother is not None:
            smoothing = {"min_cutoff": smoother.min_cutoff, "beta": smoother.beta, "d_cutoff": smoother.d_cutoff}
        return {"tracking": tracking, "smoothing": smoothing}


def _frame_people(
    estimator: PoseEstimator, frames: Iterable[Frame], linker: _PeopleLinker
) -> Iterator[tuple[Frame, list[dict[str, Any]]]]:
    """Each frame with its people (`person_dicts`, then `linker`), predicted in batches, in order."""
    for batch in _batches(frames, estimator.batch_size):
        for frame, found in zip(batch, estimator.predict([frame.image for frame in batch])):
            yield frame, linker(frame, person_dicts(found))


def _as_frames(frames: Iterable[Frame | PIL.Image.Image | np.ndarray], fps: float | None) -> Iterator[Frame]:
    """`Frame`s as they are; images and arrays as RGB `Frame`s numbered by their place, timed `index / fps`."""
    period = 1 / float(fps or FALLBACK_FPS)
    for index, frame in enumerate(frames):
        yield frame if isinstance(frame, Frame) else Frame(index, index * period, _frame_image(frame, index))


def _frame_image(frame: Any, index: int) -> PIL.Image.Image:
    if isinstance(frame, PIL.Image.Image):
        return to_rgb(frame)
    if isinstance(frame, np.ndarray) and frame.dtype == np.uint8 and (
            frame.ndim == 2 or (frame.ndim == 3 and frame.shape[-1] == 3)):
        return to_rgb(PIL.Image.fromarray(frame))
    got = f"an array of shape {frame.shape} and dtype {frame.dtype}" if isinstance(frame, np.ndarray) else (
        type(frame).__name__)
    raise ValueError(f"frames[{index}]: expected a Frame, a PIL image or a uint8 array of shape (H, W, 3) or (H, W), "
                     f"got {got}.")


def export_file(output_dir: str | Path, name: str, format: str) -> Path:
    """Where `write_video_predictions` exports the tracks of video `name` as `format`: `<name>_tracks.csv` (dlc-csv),
    `<name>_tracks.h5` (dlc-h5) or `<name>_tracks.slp` (slp), beside `<name>.json`."""
    return Path(output_dir) / f"{name}{EXPORT_STEM_SUFFIX}{EXPORT_FORMATS[format]}"


def write_video_predictions(
    estimator: PoseEstimator, path: str | Path, output_dir: str | Path, *, name: str | None = None,
    keypoint_threshold: float = 0.3, show_progress: bool | None = None, track: bool = False, smooth: bool = False,
    export_formats: Sequence[str] = (), tracker_options: Mapping[str, Any] | None = None,
    smoother_options: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Predict the people of every frame of a video; write `<name>.json` and `<name>_poses.mp4` to `output_dir`.

    Frames go through the estimator in batches of `estimator.batch_size` (the path of `track_people`). The json
    holds the video's size (upright), average frame rate, `rotation` (degrees its display matrix turned the frames)
    and skeleton, the `tracking` and `smoothing` parameters (None when off), `error` (see Returns), and per frame
    `frame_index` (in the order decoded), `timestamp` (seconds, the stream's own) and `people` (`score`,
    `keypoints` [K][2] as (x, y) in frame pixels, `keypoint_scores` [K], and with `track` their `track_id`).
    Tracked people are drawn in one color per track (`semipose.visualization.track_color`), others by body side.

    Args:
        estimator: the model, batch size, flip test and person threshold to use.
        path: the video file.
        output_dir: where the files go (created).
        name: stem of the output files (may name a sub-folder, `trip/clip`); default the video's stem.
        keypoint_threshold: keypoints scoring at or below it are not drawn (all are written to the json).
        show_progress: a progress bar over the frames; None shows it on a terminal only.
        track: follow people from frame to frame (`semipose.tracking.PoseTracker`): a `track_id` per person.
        smooth: smooth each track's keypoints over time (`semipose.smoothing.PoseSmoother`, at the video's frame
            rate and the frames' timestamps) before they are written and drawn; needs `track`.
        export_formats: names of `semipose.pose_exports.EXPORT_FORMATS` to write the tracks as, after the json,
            to `export_file(output_dir, name, format)`: `<name>_tracks.csv`, `.h5`, `.slp`; needs `track`.
        tracker_options, smoother_options: keyword arguments of `PoseTracker` and `PoseSmoother`.

    Returns:
        A summary: `video`, `num_frames`, `num_people`, `num_tracks` (None untracked), `json`, `poses_video`,
        `exports` (the files exported), `error` (None, or why the video was not read to its end: the frames read
        are written, and the same words are logged as a warning and recorded in the json).

    Raises:
        ValueError: unknown export formats, options that need `track` / `smooth` or that the tracker or smoother
            refuse; ImportError: the library of an export format is missing. All before any frame is read or any
            file or folder made.
        FileNotFoundError, UnreadableVideoError: see `VideoReader`: no file, or no frame to read in it; raised
            before any file or folder is made.
        VideoExportError: an export failed (named, with the reason); the json and drawn video are written.
    """
    path, output_dir = Path(path), Path(output_dir)
    name = name or path.stem
    json_path, poses_path = output_dir / f"{name}.json", output_dir / f"{name}_poses.mp4"
    formats = _checked_export_formats(export_formats, track)
    with VideoReader(path) as reader:  # has read the first frame: a video without one fails here
        info = reader.info
        linker = _PeopleLinker.create(estimator.skeleton, track=track, smooth=smooth, fps=float(info.fps),
                                      tracker_options=tracker_options, smoother_options=smoother_options)
        json_path.parent.mkdir(parents=True, exist_ok=True)
        frames, failure = _predict_video(estimator, reader, linker, poses_path, keypoint_threshold, show_progress)
    _write_json(json_path, info, estimator, frames, poses_path.name, failure, linker.settings())
    exports, export_errors = _write_exports(frames, estimator.skeleton, info, output_dir, name, formats)
    written = _file_list([json_path, poses_path, *exports])
    if failure is not None:
        logger.warning("%s The %d frames read are in %s.", failure, len(frames), written)
    if export_errors:
        raise VideoExportError(f"{'; '.join(export_errors)} The {len(frames)} frames are in {written}; export them "
                               f"again from the json with semipose.pose_exports (tracked_poses_from_frames, "
                               f"export_poses).")
    people = [person for frame in frames for person in frame["people"]]
    return {"video": str(path), "num_frames": len(frames), "num_people": len(people),
            "num_tracks": len({person["track_id"] for person in people}) if track else None,
            "json": str(json_path), "poses_video": str(poses_path), "exports": [str(file) for file in exports],
            "error": None if failure is None else str(failure)}


def _checked_export_formats(export_formats: Sequence[str], track: bool) -> list[str]:
    """The export formats, each once; ValueError for unknown ones or without `track`, ImportError for a format
    whose library is missing (so that it fails before the video is read, not after)."""
    formats = list(dict.fromkeys([export_formats] if isinstance(export_formats, str) else export_formats))
    unknown = [format for format in formats if format not in EXPORT_FORMATS]
    if unknown:
        raise ValueError(f"export formats {unknown}: unknown; expected some of {list(EXPORT_FORMATS)}.")
    if formats and not track:
        raise ValueError(f"export formats {formats}: the exported files hold one individual per track; expected "
                         f"track=True with them.")
    for format in formats:
        check_export_library(format)
    return formats


def _predict_video(
    estimator: PoseEstimator, reader: VideoReader, linker: _PeopleLinker, poses_path: Path, keypoint_threshold: float,
    show_progress: bool | None,
) -> tuple[list[dict[str, Any]], UnreadableVideoError | None]:
    """The json records of the frames read (their drawn copies written to `poses_path` at the frames' times), and
    the reader's error after its last frame (None when the video was read whole)."""
    info, frames = reader.info, []
    disable = None if show_progress is None else not show_progress
    with VideoWriter(poses_path, info.width, info.height, info.fps) as writer, tqdm(
        total=info.num_frames or None, desc=f"semipose predict {info.path.name}", unit="frame", disable=disable
    ) as progress:
        try:
            for frame, people in _frame_people(estimator, reader, linker):
                writer.write(estimator.draw(frame.image, people, keypoint_threshold), frame.timestamp)
                frames.append({"frame_index": frame.index, "timestamp": round(frame.timestamp, 6),
                               "people": [_rounded(person) for person in people]})
                progress.update()
        except UnreadableVideoError as error:
            return frames, error
    return frames, None


def _batches(frames: Iterable[Frame], size: int) -> Iterator[list[Frame]]:
    """Lists of `size` frames, in order; the frames read before a video breaks off come as a last, shorter list
    before its error."""
    batch = []
    try:
        for frame in frames:
            batch.append(frame)
            if len(batch) == size:
                yield batch
                batch = []
    except UnreadableVideoError:
        if batch:
            yield batch
        raise
    if batch:
        yield batch


def _rounded(person: dict[str, Any]) -> dict[str, Any]:
    """A person of `person_dicts` as json: score and keypoint scores to 1e-4, (x, y) keypoints to 0.01 pixel (in
    float64, so that 34.7 is written 34.7, not float32's 34.70000076293945); its `track_id` first when it has one."""
    rounded = {"score": round(float(person["score"]), 4),
               "keypoints": np.asarray(person["keypoints"], dtype=np.float64).round(2).tolist(),
               "keypoint_scores": np.asarray(person["keypoint_scores"], dtype=np.float64).round(4).tolist()}
    return {"track_id": int(person["track_id"]), **rounded} if "track_id" in person else rounded


def _write_json(
    json_path: Path, info: VideoInfo, estimator: PoseEstimator, frames: list[dict[str, Any]], poses_video: str,
    failure: UnreadableVideoError | None, settings: dict[str, Any],
) -> None:
    skeleton = estimator.skeleton
    record = {
        "video": str(info.path), "width": info.width, "height": info.height, "fps": float(info.fps),
        "rotation": info.rotation, "num_frames": len(frames), "skeleton": skeleton.name,
        "keypoint_names": list(skeleton.keypoint_names), "poses_video": poses_video, **settings,
        "error": None if failure is None else str(failure), "frames": frames,
    }
    json_path.write_text(json.dumps(record))


def _write_exports(
    frames: list[dict[str, Any]], skeleton: Skeleton, info: VideoInfo, output_dir: Path, name: str,
    formats: Sequence[str],
) -> tuple[list[Path], list[str]]:
    """Export the tracked json records as each format; the files written, and why each of the others was not."""
    if not formats:
        return [], []
    source = str(output_dir / f"{name}.json")
    poses = tracked_poses_from_frames(frames, skeleton, fps=float(info.fps), video=info.path, source=source)
    written, errors = [], []
    for format in formats:
        path = export_file(output_dir, name, format)
        try:
            written.append(export_poses(poses, path, format))
        except (ValueError, ImportError, OSError) as error:
            errors.append(f"{error}" if str(path) in str(error) else f"{path}: {error}")
    return written, errors


def _file_list(paths: Sequence[Path]) -> str:
    """`a, b and c`."""
    names = [str(path) for path in paths]
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def write_videos_predictions(
    estimator: PoseEstimator, paths: Sequence[Path], output_dir: str | Path, *, keypoint_threshold: float = 0.3,
    show_progress: bool | None = None, **tracking: Any,
) -> dict[str, Any]:
    """`write_video_predictions` for each video of a folder; one that fails is warned about and listed.

    Output stems are the videos' stems with their sub-folders (see `relative_stems`), `<stem>_<suffix>` where
    two videos share a stem or a stem is one of `RESERVED_STEMS`. A single video's error is raised, as
    `write_predictions` does for a single image.

    Args:
        tracking: `track`, `smooth`, `export_formats`, `tracker_options`, `smoother_options` of
            `write_video_predictions`, the same for every video (each video is tracked on its own).

    Returns:
        `videos`: the summary of each video written (one that breaks off has its `error`, and was warned about);
        `failed`: `{file, reason}` of the others: no frame to read, or an export that failed (the reason names the
        files written).
    """
    written, failed = [], []
    for path, name in zip(paths, _output_stems(paths)):
        try:
            written.append(write_video_predictions(estimator, path, output_dir, name=name,
                                                   keypoint_threshold=keypoint_threshold, show_progress=show_progress,
                                                   **tracking))
        except (UnreadableVideoError, VideoExportError) as error:
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


__all__ = [  # with what semipose.video_io reads and writes videos with, as this module offered it first
    "EXPORT_STEM_SUFFIX", "FALLBACK_FPS", "RESERVED_STEMS", "VIDEO_SUFFIXES", "Frame", "UnreadableVideoError",
    "VideoExportError", "VideoInfo", "VideoReader", "VideoWriter", "export_file", "import_av", "is_video_file",
    "read_video_frames", "track_people", "write_video_predictions", "write_videos_predictions",
]
