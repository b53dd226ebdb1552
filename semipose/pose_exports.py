"""Tracked poses of a video in the files that analysis and labeling tools load: DeepLabCut predictions and SLEAP.

`semipose predict` with tracking gives every person of every frame a track id (`semipose.tracking`). The files
written here hold those tracks the way the animal-behavior tools expect them, one track per individual, so that
`movement` (`movement.io.load_poses.from_file`), DeepLabCut's and SLEAP's labeling tools open them as their own.

Shapes: T frames, N tracks, K keypoints.

Formats (`EXPORT_FORMATS`: name and the file suffix it needs):

- `dlc-csv` (`.csv`) and `dlc-h5` (`.h5`): DeepLabCut's predictions table. Column header rows `scorer`
  (`DLC_SCORER`), `individuals` (the track names, `track_<id>`), `bodyparts` (the skeleton's keypoint names) and
  `coords` (`x`, `y`, `likelihood` = keypoint score); one row per video frame from frame 0 to the last frame
  given, the frame number as the row index, empty cells (NaN) where a track has no pose. Every frame from 0 has
  its row, records or not, because the readers (movement) take the row's position, not its label, for the frame
  number. Always the multi-animal layout, even for one track: the tracks are the individuals. The `.h5` is pandas'
  `to_hdf` of the same table in DeepLabCut's way (key `df_with_missing`, table format; needs PyTables,
  `pip install 'semipose[export]'`).
- `slp` (`.slp`): SLEAP labels through sleap-io (`pip install 'semipose[sleap]'`): the skeleton (nodes = keypoint
  names, edges = limbs, symmetries = flip pairs), one `Track` per track (`track_<id>`), and per frame a
  `LabeledFrame` of `PredictedInstance`s (person score, keypoint scores; NaN points are missing; a track with no
  finite keypoint in a frame has no instance there). Frames without people are written empty, so the readers
  see the video's length. The `Video` is the video file by its absolute path (opened for its frame count, size
  and rate when it exists, a reference only otherwise).

Coordinates are (x, y) in video-frame pixels, integer coordinates at pixel centers (`semipose.skeletons`), which is
DeepLabCut's and SLEAP's convention too; they are written as they are. Every keypoint is written with its score,
however low: the analysis tools filter by confidence themselves (`movement.filtering.filter_by_confidence`).

Example:

```python
>>> import tempfile
>>> from pathlib import Path
>>> import pandas as pd
>>> from semipose.pose_exports import export_poses, tracked_poses_from_frames
>>> from semipose.skeletons import Skeleton
>>> skeleton = Skeleton.from_dict({"name": "mouse", "keypoints": ["nose", "tail"]})
>>> def mouse(x, track_id):
...     return {"score": 0.9, "keypoints": [[x, 10.0], [x + 40.0, 30.0]], "keypoint_scores": [0.8, 0.7],
...             "track_id": track_id}
>>> frames = [{"frame_index": 0, "timestamp": 0.0, "people": [mouse(0.0, 0), mouse(200.0, 1)]},
...           {"frame_index": 1, "timestamp": 0.04, "people": [mouse(204.0, 1)]}]
>>> poses = tracked_poses_from_frames(frames, skeleton, fps=25.0, video="clip.mp4")
>>> poses.keypoints.shape, poses.track_names
((2, 2, 2, 2), ('track_0', 'track_1'))
>>> with tempfile.TemporaryDirectory() as folder:
...     path = export_poses(poses, Path(folder) / "clip.csv", "dlc-csv")
...     table = pd.read_csv(path, header=[0, 1, 2, 3], index_col=0)
>>> table["semipose", "track_1", "nose", "x"].tolist(), table["semipose", "track_0", "tail", "likelihood"].tolist()
([200.0, 204.0], [0.7, nan])

```
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd

from .skeletons import Skeleton

EXPORT_FORMATS = {"dlc-csv": ".csv", "dlc-h5": ".h5", "slp": ".slp"}
"""Export format names (the CLI's `--format`) and the file suffix each needs."""
DLC_SCORER = "semipose"
"""The `scorer` header of the DeepLabCut tables (DeepLabCut writes its network's name there)."""
DLC_HDF_KEY = "df_with_missing"
"""The key DeepLabCut stores its predictions table under in `.h5` files, and the key its readers look up."""
DLC_LEVELS = ("scorer", "individuals", "bodyparts", "coords")
DLC_COORDS = ("x", "y", "likelihood")


@dataclass(frozen=True, eq=False)
class TrackedPoses:
    """The tracked people of one video: per frame, each track's pose or NaN where the track has none.

    Attributes:
        keypoints (`np.ndarray` of shape `(T, N, K, 2)`): (x, y) in frame pixels; NaN where track n has no pose
            in frame t (or that keypoint is missing).
        keypoint_scores (`np.ndarray` of shape `(T, N, K)`): the keypoint scores; NaN likewise.
        scores (`np.ndarray` of shape `(T, N)`): the person scores; NaN where the track has no pose.
        track_ids: N distinct track ids (`PoseTracker`'s), ascending; column n holds track `track_ids[n]`.
        frame_indices: T video frame numbers (from 0, increasing); row t is frame `frame_indices[t]`.
        skeleton: the K keypoints' names, limbs and flip pairs.
        fps: the video's frame rate (the readers take it as an argument: `from_file(..., fps=poses.fps)`).
        video_path: the video file the frames come from; a `.slp` file needs it.
    """

    keypoints: np.ndarray
    keypoint_scores: np.ndarray
    scores: np.ndarray
    track_ids: tuple[int, ...]
    frame_indices: tuple[int, ...]
    skeleton: Skeleton
    fps: float | None = None
    video_path: str | None = None

    @property
    def track_names(self) -> tuple[str, ...]:
        """The individuals' names in the exported files: `track_<id>`."""
        return tuple(track_name(track_id) for track_id in self.track_ids)


def track_name(track_id: int) -> str:
    """The name of a track in the exported files (DeepLabCut individual, SLEAP track): `track_<id>`."""
    return f"track_{track_id}"


def tracked_poses_from_frames(
    frames: Sequence[Mapping[str, Any]], skeleton: Skeleton, *, fps: float | None = None,
    video: str | os.PathLike | None = None, source: str = "frames",
) -> TrackedPoses:
    """Gather the per-frame records of a tracked video into one array per quantity, a column per track.

    Args:
        frames: the records of the video json (`semipose.video`), in frame order: each with `frame_index` and
            `people`, a list of `{"score", "keypoints" [K][2], "keypoint_scores" [K], "track_id"}` (`score` may be
            left out: NaN). A JSON `null` coordinate or score is read as NaN.
        skeleton: the skeleton of the keypoints (K names).
        fps: the video's frame rate.
        video: the video file.
        source: what `frames` is (the json file), for error messages.

    Raises:
        ValueError: no frames, frame indices not increasing from 0 or more, a person without a track id, a
            track id twice in one frame, keypoints or scores of the wrong shape: naming `source`, the frame and
            the person, with what was expected.
    """
    if not frames:
        raise ValueError(f"{source}: no frames; expected at least one frame record.")
    frame_indices = _frame_indices(frames, source)
    people = [[_person(person, skeleton.num_keypoints, f"{source}, frame {index}, person {p}")
               for p, person in enumerate(_people(frame, f"{source}, frame {index}"))]
              for frame, index in zip(frames, frame_indices)]
    for found, index in zip(people, frame_indices):
        _check_distinct_tracks([track_id for track_id, *_ in found], f"{source}, frame {index}")
    track_ids = tuple(sorted({track_id for found in people for track_id, *_ in found}))
    keypoints, keypoint_scores, scores = _track_arrays(people, track_ids, skeleton.num_keypoints)
    return TrackedPoses(keypoints, keypoint_scores, scores, track_ids, frame_indices, skeleton,
                        None if fps is None else float(fps), None if video is None else str(video))


def _track_arrays(
    people: list[list[tuple[int, np.ndarray, np.ndarray, float]]], track_ids: tuple[int, ...], num_keypoints: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Keypoints `(T, N, K, 2)`, keypoint scores `(T, N, K)` and scores `(T, N)`, column n for `track_ids[n]`."""
    column = {track_id: n for n, track_id in enumerate(track_ids)}
    num_frames, num_tracks = len(people), len(track_ids)
    keypoints = np.full((num_frames, num_tracks, num_keypoints, 2), np.nan)
    keypoint_scores, scores = np.full(keypoints.shape[:3], np.nan), np.full(keypoints.shape[:2], np.nan)
    for t, found in enumerate(people):
        for track_id, points, point_scores, score in found:
            n = column[track_id]
            keypoints[t, n], keypoint_scores[t, n], scores[t, n] = points, point_scores, score
    return keypoints, keypoint_scores, scores


def _frame_indices(frames: Sequence[Mapping[str, Any]], source: str) -> tuple[int, ...]:
    indices = []
    for position, frame in enumerate(frames):
        index = frame.get("frame_index") if isinstance(frame, Mapping) else None
        if not _is_int(index) or index < 0 or (indices and index <= indices[-1]):
            after = f" after frame {indices[-1]}" if indices else ""
            raise ValueError(f"{source}, record {position}: expected a `frame_index` integer of 0 or more{after} "
                             f"(frames in increasing order), got {index!r}.")
        indices.append(int(index))
    return tuple(indices)


def _people(frame: Mapping[str, Any], where: str) -> list[Any]:
    people = frame.get("people")
    if not isinstance(people, list):
        raise ValueError(f"{where}: expected `people`, a list of person records, got {people!r:.80}.")
    return people


def _person(person: Any, num_keypoints: int, where: str) -> tuple[int, np.ndarray, np.ndarray, float]:
    """(track id, keypoints `(K, 2)`, keypoint scores `(K,)`, person score) of one person record, checked."""
    if not isinstance(person, Mapping) or not _is_int(person.get("track_id")):
        got = person.get("track_id") if isinstance(person, Mapping) else person
        raise ValueError(f"{where}: expected an integer `track_id` (people tracked with semipose.tracking), "
                         f"got {got!r:.80}.")
    points = _float_array(person.get("keypoints"), (num_keypoints, 2), "keypoints", where)
    point_scores = _float_array(person.get("keypoint_scores"), (num_keypoints,), "keypoint_scores", where)
    score = _float_array(person.get("score"), (), "score", where)
    return int(person["track_id"]), points, point_scores, float(score)


def _float_array(value: Any, shape: tuple[int, ...], name: str, where: str) -> np.ndarray:
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        array = None
    if array is None or array.shape != shape:
        got = "not numbers" if array is None else f"shape {array.shape}"
        raise ValueError(f"{where}: expected `{name}` of shape {shape} (the skeleton's keypoints), got {got}.")
    return array


def _check_distinct_tracks(track_ids: list[int], where: str) -> None:
    repeated = sorted({track_id for track_id in track_ids if track_ids.count(track_id) > 1})
    if repeated:
        raise ValueError(f"{where}: track ids {repeated} are given to more than one person; expected one person "
                         f"per track in a frame.")


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def export_poses(poses: TrackedPoses, path: str | os.PathLike, format: str | None = None) -> Path:
    """Write the tracked poses as `format` (one of `EXPORT_FORMATS`; None: the one the path's suffix names).

    Returns:
        The path written (its folder is created).

    Raises:
        ValueError: an unknown format, a path whose suffix is not the format's, or poses the format cannot hold
            (see `write_dlc`, `write_slp`); the message names the file and what was expected.
        ImportError: the format's library is missing (PyTables for `dlc-h5`, sleap-io for `slp`).
    """
    path = Path(path)
    if format is None:
        format = next((name for name, suffix in EXPORT_FORMATS.items() if path.suffix.lower() == suffix), None)
        if format is None:
            raise ValueError(f"{path}: cannot tell the export format from the suffix {path.suffix!r}; expected "
                             f"one of {_format_list()}.")
    if format not in EXPORT_FORMATS:
        raise ValueError(f"{path}: unknown export format {format!r}; expected one of {_format_list()}.")
    _check_suffix(path, (EXPORT_FORMATS[format],), f"the {format} format")
    (write_slp if format == "slp" else write_dlc)(poses, path)
    return path


def _format_list() -> str:
    return ", ".join(f"{name} ({suffix})" for name, suffix in EXPORT_FORMATS.items())


def write_dlc(poses: TrackedPoses, path: str | os.PathLike, *, scorer: str = DLC_SCORER) -> None:
    """Write DeepLabCut's multi-animal predictions table, `.csv` or `.h5` by the suffix (layout in the module doc).

    Raises:
        ValueError: another suffix, no frames or no track, arrays that do not fit the skeleton, or (`.csv`) a
            keypoint name with a line break, which the CSV readers take for the end of a header row.
        ImportError: PyTables is missing (`.h5` only).
    """
    path = Path(path)
    _check_suffix(path, (".csv", ".h5"), "a DeepLabCut table")
    _check_exportable(poses, path)
    if path.suffix.lower() == ".csv":
        broken = [name for name in poses.skeleton.keypoint_names if "\n" in name or "\r" in name]
        if broken:
            raise ValueError(f"{path}: keypoint names {broken} hold a line break, which a DeepLabCut CSV header "
                             f"cannot; expected names on one line (or write the .h5 table).")
        _write_atomically(path, lambda temporary: dlc_table(poses, scorer).to_csv(temporary))
    else:
        _import_tables()
        _write_atomically(path, lambda temporary: dlc_table(poses, scorer).to_hdf(
            temporary, key=DLC_HDF_KEY, format="table", mode="w"))


def dlc_table(poses: TrackedPoses, scorer: str = DLC_SCORER) -> pd.DataFrame:
    """DeepLabCut's predictions data frame: one row per frame 0 .. last, columns (scorer, individual, bodypart,
    coord) with the coords x, y, likelihood; NaN where a track has no pose."""
    num_rows = poses.frame_indices[-1] + 1
    _, num_tracks, num_keypoints, _ = poses.keypoints.shape
    values = np.full((num_rows, num_tracks, num_keypoints, len(DLC_COORDS)), np.nan)
    rows = list(poses.frame_indices)
    values[rows, ..., :2] = poses.keypoints
    values[rows, ..., 2] = poses.keypoint_scores
    columns = pd.MultiIndex.from_product(
        [[scorer], list(poses.track_names), list(poses.skeleton.keypoint_names), list(DLC_COORDS)], names=DLC_LEVELS)
    return pd.DataFrame(values.reshape(num_rows, -1), index=pd.RangeIndex(num_rows), columns=columns)


def write_slp(poses: TrackedPoses, path: str | os.PathLike) -> None:
    """Write SLEAP labels of predicted instances with sleap-io (layout in the module doc).

    Raises:
        ValueError: a suffix other than `.slp`, no frames or no track, arrays that do not fit the skeleton, or no
            `video_path` (SLEAP ties every labeled frame to a video).
        ImportError: sleap-io is missing.
    """
    path = Path(path)
    _check_suffix(path, (".slp",), "SLEAP labels")
    _check_exportable(poses, path)
    if poses.video_path is None:
        raise ValueError(f"{path}: SLEAP labels tie every frame to a video; expected the video's path "
                         f"(TrackedPoses.video_path), got None.")
    sio = import_sleap_io()
    labels = sleap_labels(poses, sio)
    try:
        _write_atomically(path, lambda temporary: sio.save_slp(labels, str(temporary), verbose=False))
    finally:
        labels.videos[0].close()


def sleap_labels(poses: TrackedPoses, sio: ModuleType) -> Any:
    """The `sleap_io.Labels` of the tracked poses: one video, one skeleton, one track per track id."""
    skeleton = sleap_skeleton(poses.skeleton, sio)
    video = _sleap_video(Path(poses.video_path), sio)
    tracks = [sio.Track(name=name) for name in poses.track_names]
    frames = []
    for t, frame_index in enumerate(poses.frame_indices):
        instances = [
            sio.PredictedInstance.from_numpy(poses.keypoints[t, n], skeleton, point_scores=poses.keypoint_scores[t, n],
                                             score=float(poses.scores[t, n]), track=track)
            for n, track in enumerate(tracks) if not np.isnan(poses.keypoints[t, n]).all()
        ]
        frames.append(sio.LabeledFrame(video=video, frame_idx=frame_index, instances=instances))
    return sio.Labels(labeled_frames=frames, videos=[video], skeletons=[skeleton], tracks=tracks)


def sleap_skeleton(skeleton: Skeleton, sio: ModuleType) -> Any:
    """The `sleap_io.Skeleton` of a semipose skeleton: nodes = keypoint names, edges = limbs, symmetries = flip
    pairs (none for a skeleton that is never flipped). The inverse of `semipose.data.sleap_format.sleap_skeleton`."""
    names = skeleton.keypoint_names
    pairs = [] if skeleton.flip_index is None else [
        (names[k], names[m]) for k, m in enumerate(skeleton.flip_index) if k < m
    ]
    return sio.Skeleton(list(names), edges=[(names[a], names[b]) for a, b in skeleton.limbs], symmetries=pairs,
                        name=skeleton.name)


def _sleap_video(path: Path, sio: ModuleType) -> Any:
    """The video by its absolute path (a relative one would be read against the reader's working folder); opened
    for its frame count and size when the file exists, else a reference only."""
    path = path.absolute()
    if path.is_file():
        return sio.Video.from_filename(str(path))
    return sio.Video(filename=str(path), open_backend=False)


def import_sleap_io() -> ModuleType:
    """The `sleap_io` module, or ImportError saying how to install it."""
    try:
        import sleap_io
    except ImportError as error:
        raise ImportError("Writing SLEAP .slp files needs sleap-io: pip install 'semipose[sleap]'.") from error
    return sleap_io


def check_export_library(format: str) -> None:
    """ImportError, saying how to install it, when the library that writes `format` is missing."""
    if format == "slp":
        import_sleap_io()
    elif format == "dlc-h5":
        _import_tables()


def _import_tables() -> None:
    try:
        import tables  # noqa: F401
    except ImportError as error:
        raise ImportError("Writing DeepLabCut .h5 tables needs PyTables: pip install 'semipose[export]'.") from error


def _check_suffix(path: Path, suffixes: tuple[str, ...], what: str) -> None:
    if path.suffix.lower() not in suffixes:
        raise ValueError(f"{path}: {what} needs a file ending in {' or '.join(suffixes)}, got {path.suffix!r}.")


def _check_exportable(poses: TrackedPoses, path: Path) -> None:
    """ValueError naming `path` unless the arrays hold T >= 1 frames and N >= 1 tracks of the skeleton's K."""
    num_frames, num_tracks, num_keypoints = len(poses.frame_indices), len(poses.track_ids), poses.skeleton.num_keypoints
    if num_frames == 0:
        raise ValueError(f"{path}: no frames to export; expected at least one.")
    if num_tracks == 0:
        raise ValueError(f"{path}: no tracks to export (no person tracked in any of the {num_frames} frames); "
                         f"expected at least one track.")
    expected = {"keypoints": (num_frames, num_tracks, num_keypoints, 2),
                "keypoint_scores": (num_frames, num_tracks, num_keypoints), "scores": (num_frames, num_tracks)}
    for name, shape in expected.items():
        got = np.shape(getattr(poses, name))
        if got != shape:
            raise ValueError(f"{path}: `{name}` has shape {got}; expected {shape} for {num_frames} frames, "
                             f"{num_tracks} tracks and the {num_keypoints} keypoints of skeleton "
                             f"{poses.skeleton.name!r}.")
    indices = np.asarray(poses.frame_indices)
    if len(set(poses.track_ids)) != num_tracks or indices[0] < 0 or (np.diff(indices) <= 0).any():
        raise ValueError(f"{path}: expected distinct track ids and increasing frame indices from 0 or more, got "
                         f"track ids {list(poses.track_ids)} and frame indices {list(poses.frame_indices)[:10]}.")


def _write_atomically(path: Path, write: Callable[[Path], Any]) -> None:
    """`write` to a hidden sibling file, then rename it to `path`: a failed export leaves no half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.stem}.partial{path.suffix}")
    try:
        write(temporary)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
