"""People linked across video frames: one track id per person, kept through short misses, never reused.

Each frame, every live track's pose is moved forward by its recent velocity (per keypoint, from its last two
matched poses, times the frames elapsed since), scored against each of the frame's people, and the pairs are
chosen by an optimal assignment (`scipy.optimize.linear_sum_assignment`) that maximises the summed similarity
over the pairs that clear the gate. A person left unmatched starts a new track; a track left unmatched for more
than `max_age` frames in a row ends.

A track's pose is not only its last matched one: it remembers each keypoint's last confident position, moved
along with the body since, as long as that keypoint was seen at most `max_age` frames before the track's last
match (the horizon over which the tracker trusts its straight-line extrapolation of a whole lost person). A partly
hidden person often shows other keypoints from one frame to the next (the arm in front, then the leg); without
this memory the last pose and the person could share no keypoint, score nothing, and the person would start a new
track.

The similarity is the object keypoint similarity (OKS, the COCO formula) when the skeleton's per-keypoint sigmas
are known, and otherwise the mean keypoint distance relative to the pose's size. Both count only the keypoints
that are confident (score above `keypoint_threshold`) in the person and remembered by the track. The scale of a
pair is the larger of two tight boxes, around the keypoints the track remembers and around the person's
confident keypoints: each is a lower bound of the body's size (the keypoints seen span at most the body), so the
larger is the better one. A person at the frame edge shows one to three keypoints, whose box alone is nearly flat
and would make every pixel of motion look like a different person; where both boxes are that small (a person
walking into the frame), the OKS kernel of each keypoint is still never narrower than `MIN_KEYPOINT_SPREAD`.

Shapes: K keypoints; a pose is `keypoints [K, 2]` (x, y) in image pixels with `keypoint_scores [K]`; T tracks,
M people in a frame.

Example:

```python
>>> import numpy as np
>>> from semipose.skeletons import Skeleton
>>> from semipose.tracking import PoseTracker
>>> skeleton = Skeleton.from_dict({"keypoints": ["head", "tail"], "sigmas": 0.1})
>>> def mouse(x, y):
...     return {"keypoints": np.array([[x, y], [x + 40.0, y + 30.0]]), "keypoint_scores": np.ones(2)}
>>> tracker = PoseTracker(skeleton=skeleton, max_age=2)
>>> tracker.update([mouse(0, 0), mouse(200, 0)]), tracker.update([mouse(204, 0), mouse(2, 0)])
([0, 1], [1, 0])
>>> tracker.update([mouse(4, 0)]), tracker.track_ids  # track 1 is missed, not ended
([0], [0, 1])
>>> [tracker.update([]) for _ in range(3)], tracker.track_ids  # three frames unmatched: more than max_age
([[], [], []], [])
>>> tracker.update([mouse(4, 0)])  # a new track, a new id
[2]

```
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .evaluation.pixel_error import match_people, oks_from_squared_distances
from .skeletons import Skeleton

DEFAULT_MAX_AGE = 10
"""Frames a track survives unmatched: a third of a second at 25-30 fps. Long enough to bridge a few missed
detections or a person passing behind a pole; short enough that the straight-line extrapolation of the pose has
not drifted far, and that someone else stepping into the same place is not yet taken for the lost person (the
tracker has no appearance model to tell them apart)."""
DEFAULT_MIN_OKS = 0.3
"""OKS a pair needs to match: the predicted pose and the person overlap clearly (two different people side by
side score near 0, the same person one frame on near 1), while a pose that moved faster than its velocity
predicts or half-turned still matches."""
DEFAULT_MAX_DISTANCE = 0.25
"""Mean keypoint distance a pair may have to match, in units of the predicted pose's box diagonal (used when
no sigmas are known): a quarter of the body's size, the distance-mode counterpart of `DEFAULT_MIN_OKS`."""
DEFAULT_KEYPOINT_THRESHOLD = 0.3
"""Keypoint score above which a keypoint counts for matching and velocity (the drawing threshold of semipose)."""
MIN_KEYPOINT_SPREAD = 1.0
"""Pixels: the narrowest a keypoint's OKS kernel gets (its standard deviation `s * 2 sigma_k`), whatever the scale:
keypoints are not located finer than a pixel. Only tiny poses reach it (for CrowdPose's sigmas, box areas under
40-65 px^2), such as a person entering the frame with one to three keypoints in it, whose flat box would otherwise
turn a one-pixel step into a different person."""


@dataclass
class Track:
    """One person followed over frames.

    Attributes:
        track_id: the id given at birth, never given to another track.
        keypoints (`np.ndarray` of shape `(K, 2)`): the last matched pose, in image pixels.
        keypoint_scores (`np.ndarray` of shape `(K,)`): its keypoint scores.
        frame: the index of the frame it was last matched in (frames count from 0, one per `update`).
        velocity (`np.ndarray` of shape `(K, 2)`): pixels per frame, from the last two matched poses (zero after
            one): per keypoint where that keypoint is confident in both, else the median over those that are (the
            body's); kept as it was when the two share no confident keypoint (nothing measured the motion).
        remembered (`np.ndarray` of shape `(K, 2)`): each keypoint's last confident position, moved along by the
            velocity up to `frame` (the last pose's position where it is confident).
        last_seen (`np.ndarray` of shape `(K,)`): the frame each keypoint was last confident in (`-inf`: never).
        missed: frames in a row it has gone unmatched since.
    """

    track_id: int
    keypoints: np.ndarray
    keypoint_scores: np.ndarray
    frame: int
    velocity: np.ndarray
    remembered: np.ndarray
    last_seen: np.ndarray
    missed: int = 0

    def predict(self, frame: int) -> np.ndarray:
        """The pose expected in `frame`: the remembered one moved by the velocity for the frames elapsed, `(K, 2)`."""
        return self.remembered + self.velocity * (frame - self.frame)

    def remembers(self, horizon: int) -> np.ndarray:
        """`(K,)` bool: the keypoints it remembers, those seen at most `horizon` frames before its last match (what
        its predicted pose is compared on)."""
        return self.last_seen >= self.frame - horizon


def object_keypoint_similarity(
    keypoints_a: np.ndarray, scores_a: np.ndarray, keypoints_b: np.ndarray, scores_b: np.ndarray,
    sigmas: Sequence[float], keypoint_threshold: float = DEFAULT_KEYPOINT_THRESHOLD,
) -> np.ndarray:
    """OKS between every pose of `a` (the tracks' predicted poses) and every pose of `b` (the frame's people).

    `mean_k exp(-d_k^2 / (2 s^2 (2 sigma_k)^2))` over the keypoints confident in both (score above
    `keypoint_threshold`, finite coordinates), with `s^2` the larger area (w * h) of the tight boxes around the
    confident keypoints of the two poses: the COCO formula with the box standing in for the segment area,
    symmetric in `a` and `b`. Per keypoint, `s^2` is at least `(MIN_KEYPOINT_SPREAD / (2 sigma_k))^2`: no
    keypoint's kernel is narrower than a pixel.

    Args:
        keypoints_a (`np.ndarray` of shape `(T, K, 2)`), scores_a (`(T, K)`): the reference poses.
        keypoints_b (`np.ndarray` of shape `(M, K, 2)`), scores_b (`(M, K)`): the poses compared with them.
        sigmas: K per-keypoint OKS constants.

    Returns:
        `np.ndarray` of shape `(T, M)` in [0, 1]; 0 where a pair shares no confident keypoint.

    Example:

    ```python
    >>> a, b = np.array([[[0.0, 0.0], [10.0, 10.0]]]), np.array([[[0.0, 0.0], [10.0, 13.0]]])
    >>> oks = object_keypoint_similarity(a, np.ones((1, 2)), b, np.ones((1, 2)), [0.5, 0.5])
    >>> round(float(oks[0, 0]), 4), round(float(1 + np.exp(-9 / (2 * 130 * 1.0))) / 2, 4)  # b's box: 130 px^2
    (0.983, 0.983)

    ```
    """
    return _oks(keypoints_a, _confident(keypoints_a, scores_a, keypoint_threshold),
                keypoints_b, _confident(keypoints_b, scores_b, keypoint_threshold), sigmas)


def keypoint_distance(
    keypoints_a: np.ndarray, scores_a: np.ndarray, keypoints_b: np.ndarray, scores_b: np.ndarray,
    keypoint_threshold: float = DEFAULT_KEYPOINT_THRESHOLD,
) -> np.ndarray:
    """Mean distance between the keypoints confident in both poses, over the longer diagonal of the tight boxes
    around the confident keypoints of the two poses (at least 1 px): the pose-size-free distance, for skeletons
    without sigmas.

    Args: as `object_keypoint_similarity`, without sigmas.

    Returns:
        `np.ndarray` of shape `(T, M)`; `inf` where a pair shares no confident keypoint.

    Example:

    ```python
    >>> a, b = np.array([[[0.0, 0.0], [30.0, 40.0]]]), np.array([[[5.0, 0.0], [25.0, 40.0]]])
    >>> keypoint_distance(a, np.ones((1, 2)), b, np.ones((1, 2))).tolist()  # 5 px over a's 50 px diagonal
    [[0.1]]

    ```
    """
    return _keypoint_distance(keypoints_a, _confident(keypoints_a, scores_a, keypoint_threshold),
                              keypoints_b, _confident(keypoints_b, scores_b, keypoint_threshold))


class PoseTracker:
    """Gives each person of a stream of frames a track id (see the module docstring for the method).

    Args:
        skeleton: where the OKS sigmas come from (a `semipose.skeletons.Skeleton`).
        sigmas: K OKS constants, instead of a skeleton. With neither, people are matched by keypoint distance.
        max_age: frames in a row a track may go unmatched and still be matched again; one more and it ends.
        min_similarity: OKS a pair needs to match (OKS mode only; default `DEFAULT_MIN_OKS`).
        max_distance: mean keypoint distance over the predicted pose's box diagonal that a pair must stay below
            to match (distance mode only; default `DEFAULT_MAX_DISTANCE`).
        keypoint_threshold: keypoints scoring above it count for matching and velocity.
        use_velocity: move each track's last pose by its velocity before matching; False matches against the
            last pose as it was.

    Example:

    ```python
    >>> tracker = PoseTracker(max_age=5)  # no sigmas: keypoint-distance mode
    >>> person = {"keypoints": np.array([[0.0, 0.0], [30.0, 40.0]]), "keypoint_scores": np.ones(2)}
    >>> tracker.update([person]), tracker.update([{**person, "keypoints": person["keypoints"] + 5}])
    ([0], [0])
    >>> tracker.tracks[0].velocity.tolist()  # pixels per frame
    [[5.0, 5.0], [5.0, 5.0]]
    >>> tail_hidden = {"keypoints": person["keypoints"] + 10, "keypoint_scores": np.array([1.0, 0.0])}
    >>> tracker.update([tail_hidden]), tracker.tracks[0].remembered.tolist()  # the tail moved on with the head
    ([0], [[10.0, 10.0], [40.0, 50.0]])

    ```
    """

    def __init__(
        self, *, skeleton: Skeleton | None = None, sigmas: Sequence[float] | None = None,
        max_age: int = DEFAULT_MAX_AGE, min_similarity: float | None = None, max_distance: float | None = None,
        keypoint_threshold: float = DEFAULT_KEYPOINT_THRESHOLD, use_velocity: bool = True,
    ):
        self.sigmas = _resolve_sigmas(skeleton, sigmas)
        _check_options(self.sigmas, max_age, min_similarity, max_distance)
        self.max_age, self.keypoint_threshold, self.use_velocity = max_age, keypoint_threshold, use_velocity
        self.min_similarity = DEFAULT_MIN_OKS if min_similarity is None else min_similarity
        self.max_distance = DEFAULT_MAX_DISTANCE if max_distance is None else max_distance
        self.num_keypoints = None if self.sigmas is None else len(self.sigmas)
        self.tracks: list[Track] = []
        self.frame = -1
        self._next_id = 0

    @property
    def track_ids(self) -> list[int]:
        """The ids of the live tracks (matched in this frame or missed for at most `max_age` frames)."""
        return [track.track_id for track in self.tracks]

    def update(self, people: Sequence[dict[str, Any]]) -> list[int]:
        """Take the next frame's people; return one track id per person, in their order.

        Args:
            people: each a dict with `keypoints` (`(K, 2)`, image pixels) and `keypoint_scores` (`(K,)`); other
                keys are ignored.
        """
        self.frame += 1
        keypoints, scores = self._read_people(people)
        pairs = self._match(keypoints, scores)
        ids = [-1] * len(people)
        for track_index, person in pairs:
            self._extend(self.tracks[track_index], keypoints[person], scores[person])
            ids[person] = self.tracks[track_index].track_id
        matched = {track_index for track_index, _ in pairs}
        for track_index, track in enumerate(self.tracks):
            track.missed = 0 if track_index in matched else track.missed + 1
        self.tracks = [track for track in self.tracks if track.missed <= self.max_age]
        for person, track_id in enumerate(ids):
            if track_id < 0:
                ids[person] = self._start(keypoints[person], scores[person])
        return ids

    def _match(self, keypoints: np.ndarray, scores: np.ndarray) -> list[tuple[int, int]]:
        """(track index, person index) pairs: the assignment of most summed similarity among gated pairs."""
        if not self.tracks or not len(keypoints):
            return []
        rows, columns = match_people(self._similarity(keypoints, scores))
        return list(zip(rows.tolist(), columns.tolist()))

    def _similarity(self, keypoints: np.ndarray, scores: np.ndarray) -> np.ndarray:
        """`(T, M)`: how well each track's predicted pose fits each person, 0 for pairs outside the gate."""
        predicted = np.stack([track.predict(self.frame) if self.use_velocity else track.remembered
                              for track in self.tracks])
        remembered = np.stack([track.remembers(self.max_age) for track in self.tracks])
        confident = _confident(keypoints, scores, self.keypoint_threshold)
        if self.sigmas is None:
            distance = _keypoint_distance(predicted, remembered, keypoints, confident)
            return np.where(distance < self.max_distance, 1 - distance / self.max_distance, 0.0)
        oks = _oks(predicted, remembered, keypoints, confident, self.sigmas)
        return np.where(oks >= self.min_similarity, oks, 0.0)

    def _extend(self, track: Track, keypoints: np.ndarray, scores: np.ndarray) -> None:
        """Move `track` to its newly matched pose, with the velocity from its previous one; the keypoints the pose
        hides stay remembered, moved along by that velocity (not moved without `use_velocity`)."""
        elapsed = self.frame - track.frame
        confident = _confident(keypoints, scores, self.keypoint_threshold)
        track.velocity = self._velocity(track, keypoints, confident, elapsed)
        moved = track.remembered + (track.velocity * elapsed if self.use_velocity else 0.0)
        track.remembered = np.where(confident[:, None], keypoints, moved)
        track.last_seen = np.where(confident, self.frame, track.last_seen)
        track.keypoints, track.keypoint_scores, track.frame = keypoints, scores, self.frame

    def _velocity(self, track: Track, keypoints: np.ndarray, confident: np.ndarray, elapsed: int) -> np.ndarray:
        """`(K, 2)` pixels per frame from `track`'s last pose to `keypoints`: per keypoint confident in both, the
        body's (their median) for the others; the track's velocity as it was when they share none."""
        both = _confident(track.keypoints, track.keypoint_scores, self.keypoint_threshold) & confident
        if not both.any():
            return track.velocity
        step = np.where(both[:, None], keypoints - track.keypoints, 0.0) / elapsed
        return np.where(both[:, None], step, np.median(step[both], axis=0))

    def _start(self, keypoints: np.ndarray, scores: np.ndarray) -> int:
        seen = np.where(_confident(keypoints, scores, self.keypoint_threshold), float(self.frame), -np.inf)
        track = Track(self._next_id, keypoints, scores, self.frame, np.zeros_like(keypoints), keypoints, seen)
        self.tracks.append(track)
        self._next_id += 1
        return track.track_id

    def _read_people(self, people: Sequence[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
        """The people's keypoints `(M, K, 2)` and scores `(M, K)` as float arrays, shapes checked."""
        keypoints = [np.asarray(person["keypoints"], dtype=np.float64) for person in people]
        scores = [np.asarray(person["keypoint_scores"], dtype=np.float64) for person in people]
        for index, (points, confidence) in enumerate(zip(keypoints, scores)):
            expected = self.num_keypoints if self.num_keypoints is not None else points.shape[0]
            if points.shape != (expected, 2) or confidence.shape != (expected,):
                raise ValueError(
                    f"PoseTracker frame {self.frame}, person {index}: expected keypoints ({expected}, 2) and "
                    f"keypoint_scores ({expected},), got {points.shape} and {confidence.shape}.")
            self.num_keypoints = expected
        if not people:
            return np.zeros((0, self.num_keypoints or 0, 2)), np.zeros((0, self.num_keypoints or 0))
        return np.stack(keypoints), np.stack(scores)


def track_frames(frames_people: Iterable[Sequence[dict[str, Any]]], **options: Any) -> list[list[int]]:
    """Track ids for a whole sequence: per frame, one id per person (a fresh `PoseTracker(**options)`).

    Example:

    ```python
    >>> still = {"keypoints": np.array([[0.0, 0.0], [30.0, 40.0]]), "keypoint_scores": np.ones(2)}
    >>> track_frames([[still], [still, {**still, "keypoints": still["keypoints"] + 500}], []], max_age=1)
    [[0], [0, 1], []]

    ```
    """
    tracker = PoseTracker(**options)
    return [tracker.update(people) for people in frames_people]


def _confident(keypoints: np.ndarray, scores: np.ndarray, threshold: float) -> np.ndarray:
    """`keypoints [..., K, 2]`, `scores [..., K]` -> `[..., K]`: scored above `threshold`, finite coordinates."""
    return (scores > threshold) & np.isfinite(keypoints).all(-1)


def _oks(keypoints_a: np.ndarray, confident_a: np.ndarray, keypoints_b: np.ndarray, confident_b: np.ndarray,
         sigmas: Sequence[float]) -> np.ndarray:
    """`object_keypoint_similarity` of poses `(T, K, 2)`, `(M, K, 2)` with the keypoints that count given as masks
    `(T, K)`, `(M, K)`: `(T, M)`. Each pair's squared distances are divided by its own scale (`_pair_areas`, per
    keypoint at least the one of `MIN_KEYPOINT_SPREAD`), so that the formula's scale is 1."""
    shared, squared = _shared_keypoints(keypoints_a, confident_a, keypoints_b, confident_b)
    smallest = (MIN_KEYPOINT_SPREAD / (2 * np.asarray(sigmas, dtype=np.float64))) ** 2
    areas = np.maximum(_pair_areas(keypoints_a, confident_a, keypoints_b, confident_b)[..., None], smallest)
    return oks_from_squared_distances(squared / areas, np.ones(len(keypoints_a)), sigmas, shared)


def _keypoint_distance(keypoints_a: np.ndarray, confident_a: np.ndarray, keypoints_b: np.ndarray,
                       confident_b: np.ndarray) -> np.ndarray:
    """`keypoint_distance` with the keypoints that count given as masks `(T, K)`, `(M, K)`: `(T, M)`."""
    shared, squared = _shared_keypoints(keypoints_a, confident_a, keypoints_b, confident_b)
    sides_a, sides_b = _box_sides(keypoints_a, confident_a), _box_sides(keypoints_b, confident_b)
    diagonals = np.maximum(np.hypot(*sides_a.T)[:, None], np.hypot(*sides_b.T)[None])
    count = shared.sum(-1)
    mean = np.where(shared, np.sqrt(squared), 0.0).sum(-1) / np.maximum(count, 1)
    return np.where(count > 0, mean / np.maximum(diagonals, 1), np.inf)


def _shared_keypoints(
    keypoints_a: np.ndarray, confident_a: np.ndarray, keypoints_b: np.ndarray, confident_b: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """`(T, M, K)`: which keypoints count in both poses of each pair, and their squared distances."""
    shared = confident_a[:, None] & confident_b[None]
    with np.errstate(invalid="ignore"):
        squared = ((keypoints_a[:, None] - keypoints_b[None]) ** 2).sum(-1)
    return shared, np.where(shared, squared, 0.0)


def _pair_areas(keypoints_a: np.ndarray, confident_a: np.ndarray, keypoints_b: np.ndarray,
                confident_b: np.ndarray) -> np.ndarray:
    """`(T, M)` OKS scale `s^2` of each pair: the larger box area (w * h) of its two poses."""
    areas_a = np.prod(_box_sides(keypoints_a, confident_a), -1)
    areas_b = np.prod(_box_sides(keypoints_b, confident_b), -1)
    return np.maximum(areas_a[:, None], areas_b[None])


def _box_sides(keypoints: np.ndarray, confident: np.ndarray) -> np.ndarray:
    """`(T, K, 2)`, `(T, K)` -> `(T, 2)`: width and height of the tight box around each pose's confident keypoints
    (0 for a pose with none)."""
    low = np.where(confident[..., None], keypoints, np.inf).min(-2)
    high = np.where(confident[..., None], keypoints, -np.inf).max(-2)
    return np.where(confident.any(-1)[:, None], high - low, 0.0)


def _resolve_sigmas(skeleton: Skeleton | None, sigmas: Sequence[float] | None) -> tuple[float, ...] | None:
    if skeleton is not None and sigmas is not None:
        raise ValueError("PoseTracker: pass a skeleton or sigmas, not both.")
    values = skeleton.sigmas if skeleton is not None else sigmas
    if values is None:
        return None
    values = tuple(float(sigma) for sigma in values)
    if not values or not all(sigma > 0 for sigma in values):
        raise ValueError(f"PoseTracker: sigmas must be positive numbers, one per keypoint, got {list(values)}.")
    return values


def _check_options(
    sigmas: tuple[float, ...] | None, max_age: int, min_similarity: float | None, max_distance: float | None
) -> None:
    if isinstance(max_age, bool) or not isinstance(max_age, int) or max_age < 0:
        raise ValueError(f"PoseTracker: max_age must be an integer >= 0 (frames), got {max_age!r}.")
    if sigmas is None and min_similarity is not None:
        raise ValueError("PoseTracker: min_similarity is the OKS gate, which needs sigmas (a skeleton); without "
                         "them people are matched by distance: set max_distance instead.")
    if sigmas is not None and max_distance is not None:
        raise ValueError("PoseTracker: max_distance is the gate of distance matching, used without sigmas; with a "
                         "skeleton or sigmas people are matched by OKS: set min_similarity instead.")
    if min_similarity is not None and not 0 < min_similarity <= 1:
        raise ValueError(f"PoseTracker: min_similarity must be an OKS in (0, 1], got {min_similarity!r}.")
    if max_distance is not None and not max_distance > 0:
        raise ValueError(f"PoseTracker: max_distance must be > 0 (pose diagonals), got {max_distance!r}.")
