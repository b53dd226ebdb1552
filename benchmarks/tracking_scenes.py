"""Synthetic videos with known identities, for the tracking benchmark: people walk, cross and hide each other,
leave the frame and come back, drawn frame by frame by semipose's own synthetic renderer.

A video is a fixed camera on a fixed background: every frame is `render_scene` of the same background random
state (`numpy.random.default_rng([seed, kind, video, 1])` anew per frame, so background, lighting, blur and noise
do not change), with the people of `make_figures` posed by a walking gait and moved along horizontal paths. Each
person keeps its index in the video as its identity: the ground truth of a frame is, per person, that id, its
keypoints `(x, y, v)` (COCO visibility: 1 hidden by a nearer person, 0 outside the frame) and its area and box
inside the frame, as the synthetic datasets annotate them.

Scene kinds (two people each, feet near the bottom edge, walking at 0.4-0.9 px a frame, turning at the ends of
their paths):

- `apart`: each walks back and forth in its own half of the frame; their boxes never overlap (the smallest gap
  between them is recorded, `min_box_gap`).
- `crossing`: both walk back and forth over the whole width, starting from opposite sides, at different speeds and
  a few pixels apart in height; one is drawn in front, so they cross, hide each other and overtake (the number of
  times they pass each other is recorded, `crossings`).
- `reentering`: as `apart`, but one of them walks out through the outer edge (from half to wholly out of the
  frame), waits there 0-30 frames and walks back in, as often as the video allows: it is not counted for a few to
  some 60 frames each time (`reentries`, and each one's `gaps`: frames not counted).

Shapes: N people of a video, K keypoints of the skeleton; frames are `size x size` RGB pictures.

Example:

```python
>>> video = render_video("crossing", 0, seed=0, num_frames=3)
>>> video.name, len(video.frames), video.frames[0].size, video.truth[0].keypoints.shape
('crossing-0', 3, (64, 64), (2, 14, 3))
>>> video.truth[0].ids.tolist()
[0, 1]

```
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from PIL import Image

from semipose.data.synthetic import (
    Figures,
    SyntheticConfig,
    make_figures,
    render_scene,
    sample_body_proportions,
    sample_part_colors,
    sample_pose_angles,
)

SCENE_KINDS = ("apart", "crossing", "reentering")
SCENE_VERSION = 1
"""Bump when the videos change (paths, gait, ground truth), so that the benchmark's stored pieces are not reused."""
VIDEO_CONFIG = SyntheticConfig(image_size=64, clutter=0.0, max_yaw=60.0, skeleton="crowdpose")
"""The renderer's settings: the main job's synthetic data (64 px, no clutter, people turned at most 60 degrees from
the camera, CrowdPose's 14 keypoints), so the models see frames like the images they were trained on."""
PEOPLE = 2
HEIGHT_RANGE = (0.5, 0.62)
"""Standing heights, fractions of the frame: the small end of the main job's 0.5-0.95, so that two people fit side
by side in 64 px."""
SPEED_RANGE = (0.4, 0.9)
"""Walking speed in pixels a frame: about 1-2 body heights a second at 25 frames a second."""
OUT_RANGE = (0.0, 1.0)
"""How far out a person leaving the frame goes (`reentering`): its pelvis this fraction of (its box's half width +
2 px) beyond the edge, uniform: from half out (pelvis on the edge) to wholly out."""
GAP_RANGE = (0, 30)
"""Frames a person leaving the frame waits there before it walks back (`reentering`), uniform."""
FACING_YAW = 35.0
"""Degrees a walker is turned from the camera toward where it walks (inside the training's 60)."""
GAIT_CYCLE = 1.2
"""Distance of one gait cycle (two steps), in standing heights."""
TURN_FRAMES = 8
"""Frames a walker takes to turn round (facing the camera half way), and to start or stop swinging its limbs."""
MIN_COUNTED_KEYPOINTS = 4
"""A person counts in a frame's ground truth with at least this many keypoints inside the frame (labeled); one with
fewer, yet some, is an ignore region (see `FrameTruth.counted`)."""
_MARGIN = 1.0
"""Pixels kept between a walker's box and the edge of its lane (`apart`, `reentering`)."""


@dataclass
class FrameTruth:
    """The people of one frame, in identity order.

    Attributes:
        ids (`np.ndarray` of shape `(N,)`): each person's identity (its index in the video).
        keypoints (`np.ndarray` of shape `(N, K, 3)`): (x, y, v), v = 0 (outside the frame) with x = y = 0.
        areas (`np.ndarray` of shape `(N,)`): pixels of each figure inside the frame (the OKS scale).
        boxes (`np.ndarray` of shape `(N, 4)`): (x, y, w, h) of each figure inside the frame.

    A person with no labeled keypoint is out of the frame; one with at least `MIN_COUNTED_KEYPOINTS` is `counted`;
    one in between is `ignored` (a prediction on it is neither a hit nor a false positive).
    """

    ids: np.ndarray
    keypoints: np.ndarray
    areas: np.ndarray
    boxes: np.ndarray

    @property
    def counted(self) -> np.ndarray:
        """`(N,)`: at least `MIN_COUNTED_KEYPOINTS` labeled keypoints (inside the frame, hidden or not)."""
        return (self.keypoints[..., 2] > 0).sum(-1) >= MIN_COUNTED_KEYPOINTS

    @property
    def ignored(self) -> np.ndarray:
        """`(N,)`: some keypoints labeled, fewer than `MIN_COUNTED_KEYPOINTS`."""
        return ~self.counted & (self.keypoints[..., 2] > 0).any(-1)


@dataclass
class SceneVideo:
    """One rendered video: its frames, their ground truth, and what happens in it.

    Attributes:
        name: `{kind}-{index}`.
        kind: one of `SCENE_KINDS`.
        frames: the RGB pictures.
        truth: one `FrameTruth` per frame.
        events: `crossings` (times two people pass each other), `reentries` (times a person comes back into the
            frame) with their `gaps` (frames out), and `min_box_gap` (pixels between the two figures' boxes at
            their closest, negative when they overlap).
    """

    name: str
    kind: str
    frames: list[Image.Image]
    truth: list[FrameTruth]
    events: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Walker:
    """One person's walk: pelvis x at each frame (pixels, may be outside the frame) on a fixed ground line."""

    xs: np.ndarray
    ground: float
    """Pixel row of the walker's lowest point."""
    depth: int
    """Drawing rank: higher is nearer the camera (drawn over the others)."""


def render_video(kind: str, index: int, *, seed: int = 0, num_frames: int = 150,
                 config: SyntheticConfig = VIDEO_CONFIG) -> SceneVideo:
    """Render video `index` of scene `kind`; depends only on (seed, kind, index, num_frames, config).

    Raises:
        ValueError: an unknown `kind`, or `num_frames` < 1.
    """
    if kind not in SCENE_KINDS:
        raise ValueError(f"Unknown scene kind {kind!r}; expected one of {list(SCENE_KINDS)}.")
    if num_frames < 1:
        raise ValueError(f"num_frames must be >= 1, got {num_frames}.")
    rng = np.random.default_rng([seed, SCENE_KINDS.index(kind), index])
    people = _sample_people(rng, config)
    walkers = _PATHS[kind](rng, people, num_frames, config.image_size)
    background = [seed, SCENE_KINDS.index(kind), index, 1]
    order = np.argsort([walker.depth for walker in walkers], kind="stable")
    identity = np.argsort(order)
    motion = _motion(people, walkers)
    frames, truth, gaps = [], [], []
    for frame in range(num_frames):
        figures = _posed_figures(people, walkers, motion, frame)
        scene = render_scene(np.random.default_rng(background), figures.reordered(order), config)
        frames.append(scene.image)
        truth.append(FrameTruth(np.arange(len(walkers)), scene.keypoints[identity], scene.areas[identity],
                                scene.boxes[identity]))
        gaps.append(_box_gap(figures.boxes()))
    events = {**_absences(truth), "min_box_gap": round(float(min(gaps)), 2)}
    return SceneVideo(f"{kind}-{index}", kind, frames, truth, events)


@dataclass(frozen=True)
class _People:
    """What stays the same of the people of a video: angles of everything the gait does not move, body
    proportions, heights (pixels), part colors, and the half width of each figure's box (pixels)."""

    angles: dict[str, np.ndarray]
    proportions: dict[str, np.ndarray]
    heights: np.ndarray
    colors: np.ndarray
    half_widths: np.ndarray
    feet: np.ndarray
    """`(N,)` pixels from the pelvis down to the lowest point of the figure (standing, gait at rest)."""


def _sample_people(rng: np.random.Generator, config: SyntheticConfig) -> _People:
    size = config.image_size
    heights = rng.uniform(*HEIGHT_RANGE, PEOPLE) * size
    angles = sample_pose_angles(rng, PEOPLE, config.max_yaw)
    angles.update({"roll": rng.uniform(-3, 3, PEOPLE), "pitch": rng.uniform(-5, 5, PEOPLE),
                   "bend": rng.uniform(-3, 10, PEOPLE), "side_bend": rng.uniform(-4, 4, PEOPLE),
                   "twist": rng.uniform(-10, 10, PEOPLE)})
    proportions = sample_body_proportions(rng, PEOPLE)
    colors = sample_part_colors(rng, PEOPLE)
    people = _People(angles, proportions, heights, colors, np.zeros(PEOPLE), np.zeros(PEOPLE))
    extents = []
    for phase in np.linspace(0, 2 * np.pi, 8, endpoint=False):
        for facing in (-1.0, 1.0):
            boxes = make_figures(_gait(people, np.full(PEOPLE, phase), np.full(PEOPLE, facing), np.ones(PEOPLE)),
                                 proportions, heights, colors).boxes()
            extents.append(boxes)
    extents = np.stack(extents)
    half_widths = np.maximum(-extents[..., 0], extents[..., 2]).max(0)
    return replace(people, half_widths=half_widths, feet=extents[..., 3].max(0))


def _gait(people: _People, phase: np.ndarray, facing: np.ndarray, moving: np.ndarray) -> dict[str, np.ndarray]:
    """Joint angles of N walkers at gait `phase` (radians), turned toward `facing` (-1 left, +1 right); `moving`
    0 stands with the limbs at rest."""
    angles = dict(people.angles)
    angles["yaw"] = facing * FACING_YAW
    swing = np.sin(phase) * moving
    for side, sign in (("left", 1.0), ("right", -1.0)):
        leg, arm = sign * swing * 30.0, -sign * swing * 25.0
        angles[f"hip_plane_{side}"] = np.where(leg >= 0, 90.0, -90.0)
        angles[f"hip_elevation_{side}"] = np.abs(leg)
        angles[f"hip_rotation_{side}"] = np.zeros_like(phase)
        angles[f"knee_{side}"] = 5 + 40 * np.clip(-sign * np.cos(phase) * moving, 0, None)
        angles[f"shoulder_plane_{side}"] = np.where(arm >= 0, 90.0, -90.0)
        angles[f"shoulder_elevation_{side}"] = np.abs(arm) + 5
        angles[f"shoulder_rotation_{side}"] = np.zeros_like(phase)
        angles[f"elbow_{side}"] = 20 + 15 * np.abs(swing)
    return angles


@dataclass(frozen=True)
class _Motion:
    """How the walkers of a video move their bodies, `(N, T)` each: gait `phase` (radians, from the distance
    walked), `facing` (-1 left to +1 right, through 0 while turning round) and `moving` (0 standing to 1 walking)."""

    phase: np.ndarray
    facing: np.ndarray
    moving: np.ndarray


def _motion(people: _People, walkers: list[Walker]) -> _Motion:
    """Turning round and starting or stopping take `TURN_FRAMES` frames (moving averages of the walking
    direction and of whether the walker moves), so that no limb jumps from one frame to the next."""
    xs = np.stack([walker.xs for walker in walkers])
    steps = np.diff(xs, axis=1, prepend=xs[:, :1])
    walking = np.abs(steps) > 1e-6
    phase = 2 * np.pi * np.cumsum(np.abs(steps), axis=1) / (GAIT_CYCLE * people.heights[:, None])
    return _Motion(phase, _trailing_mean(_directions(steps, walking), TURN_FRAMES),
                   _trailing_mean(walking.astype(float), TURN_FRAMES))


def _directions(steps: np.ndarray, walking: np.ndarray) -> np.ndarray:
    """`(N, T)` +1 / -1: the direction of each walker's last step at or before each frame (before its first step,
    of that one; +1 for one that never moves)."""
    directions = np.ones(steps.shape)
    for row, (step, moves) in enumerate(zip(steps, walking)):
        if moves.any():
            last = np.maximum.accumulate(np.where(moves, np.arange(len(step)), np.argmax(moves)))
            directions[row] = np.sign(step[last])
    return directions


def _trailing_mean(values: np.ndarray, window: int) -> np.ndarray:
    """`(N, T)` mean of each row over the `window` frames up to each frame (fewer at the start)."""
    sums = np.cumsum(np.pad(values, ((0, 0), (1, 0))), axis=1)
    ends = np.arange(1, values.shape[1] + 1)
    starts = np.maximum(ends - window, 0)
    return (sums[:, ends] - sums[:, starts]) / (ends - starts)


def _posed_figures(people: _People, walkers: list[Walker], motion: _Motion, frame: int) -> Figures:
    """The video's figures at `frame`, in identity order, placed on their paths."""
    angles = _gait(people, motion.phase[:, frame], motion.facing[:, frame], motion.moving[:, frame])
    figures = make_figures(angles, people.proportions, people.heights, people.colors)
    offsets = np.stack([[walker.xs[frame] for walker in walkers],
                        [walker.ground for walker in walkers] - people.feet], -1)
    return figures.shifted(offsets)


def _bounce(low: float, high: float, start: float, speed: float, num_frames: int) -> np.ndarray:
    """x at each frame of a walk from `start` at `speed` (signed, px a frame) turning at `low` and `high`."""
    length = max(high - low, 1e-9)
    travelled = (start - low) + speed * np.arange(num_frames)
    folded = np.mod(travelled, 2 * length)
    return low + np.where(folded <= length, folded, 2 * length - folded)


def _lanes(people: _People, size: int) -> list[tuple[float, float]]:
    """Each person's range of pelvis x keeping its box inside its half of the frame (left, right)."""
    lanes = []
    for person, (low, high) in enumerate(((0.0, size / 2), (size / 2, float(size)))):
        reach = people.half_widths[person] + _MARGIN
        lanes.append((low + reach, max(low + reach, high - reach)))
    return lanes


def _grounds(rng: np.random.Generator, size: int) -> np.ndarray:
    """Pixel row of each walker's feet: 1-6 px above the bottom edge."""
    return size - 1 - rng.uniform(0, 5, PEOPLE)


def _apart_paths(rng: np.random.Generator, people: _People, num_frames: int, size: int) -> list[Walker]:
    """Each person back and forth in its own half, from a random point in a random direction."""
    grounds = _grounds(rng, size)
    return [Walker(_bounce(low, high, rng.uniform(low, high), rng.choice([-1, 1]) * rng.uniform(*SPEED_RANGE),
                           num_frames), grounds[person], person)
            for person, (low, high) in enumerate(_lanes(people, size))]


def _crossing_paths(rng: np.random.Generator, people: _People, num_frames: int, size: int) -> list[Walker]:
    """Both back and forth over the whole width (boxes inside the frame), from opposite sides, one in front."""
    grounds = _grounds(rng, size)
    speeds = rng.uniform(*SPEED_RANGE, PEOPLE) * np.array([1.0, -1.0])
    front = int(rng.integers(PEOPLE))
    walkers = []
    for person in range(PEOPLE):
        low, high = people.half_widths[person] + _MARGIN, size - people.half_widths[person] - _MARGIN
        start = low + rng.uniform(0, 4) if person == 0 else high - rng.uniform(0, 4)
        walkers.append(Walker(_bounce(low, high, start, speeds[person], num_frames), grounds[person],
                              int(person == front)))
    return walkers


def _reentering_paths(rng: np.random.Generator, people: _People, num_frames: int, size: int) -> list[Walker]:
    """As `apart`; one of the two walks out through its outer edge (its pelvis `OUT_RANGE` of its box's half width
    plus 2 px beyond the edge), waits there `GAP_RANGE` frames, walks back to a random point of its half, and
    again, until the video ends."""
    walkers = _apart_paths(rng, people, num_frames, size)
    leaver = int(rng.integers(PEOPLE))
    low, high = _lanes(people, size)[leaver]
    speed = rng.uniform(*SPEED_RANGE)
    times, xs = [0.0], [walkers[leaver].xs[0]]
    while times[-1] < num_frames:
        reach = rng.uniform(*OUT_RANGE) * (people.half_widths[leaver] + 2)
        outside = -reach if leaver == 0 else size + reach
        gap, inside = int(rng.integers(GAP_RANGE[0], GAP_RANGE[1] + 1)), rng.uniform(low, high)
        out = times[-1] + abs(xs[-1] - outside) / speed
        times += [out, out + gap, out + gap + abs(outside - inside) / speed]
        xs += [outside, outside, inside]
    walkers[leaver] = replace(walkers[leaver], xs=np.interp(np.arange(num_frames), times, xs))
    return walkers


_PATHS = {"apart": _apart_paths, "crossing": _crossing_paths, "reentering": _reentering_paths}


def _box_gap(boxes: np.ndarray) -> float:
    """Pixels between two (x0, y0, x1, y1) boxes along x; negative when their x ranges overlap."""
    (a0, _, a1, _), (b0, _, b1, _) = boxes
    return max(b0 - a1, a0 - b1)


def _absences(truth: list[FrameTruth]) -> dict[str, Any]:
    """`reentries`: times a person is counted again after frames not counted, with those `gaps` (frames); and
    `crossings`: times the two counted people change their left-right order."""
    counted = np.stack([frame.counted for frame in truth])
    gaps = []
    for column in counted.T:
        seen, run = False, 0
        for present in column:
            if present and seen and run:
                gaps.append(run)
            seen, run = seen or present, (0 if present else run + 1)
    order = [np.sign(np.subtract(*[np.mean(points[points[:, 2] > 0, 0]) for points in frame.keypoints[::-1]]))
             for frame in truth if frame.counted.all()]
    order = np.array([sign for sign in order if sign != 0])
    return {"reentries": len(gaps), "gaps": gaps, "crossings": int((np.diff(order) != 0).sum())}
