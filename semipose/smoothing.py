"""Keypoints smoothed over time with the One-Euro filter, one filter per track.

A pose estimator run frame by frame jitters: each frame's keypoints are found anew, a pixel or two off.
Averaging over time removes the jitter but makes the keypoints trail behind a moving person. The One-Euro
filter (Casiez, Roussel & Vogel, "1€ Filter: A Simple Speed-based Low-pass Filter for Noisy Input in Interactive
Systems", CHI 2012) trades the two by speed: a first-order low-pass filter whose cutoff frequency rises with
the signal's (low-passed) speed, so a still keypoint is smoothed hard and a moving one is followed closely.

The equations, per sample `x_i` at time `t_i` (`T = t_i - t_{i-1}`):

- `alpha(f) = r / (r + 1)` with `r = 2 pi f T` (that is `1 / (1 + tau / T)`, `tau = 1 / (2 pi f)`);
- speed `dx_i = (x_i - x_{i-1}) / T`, low-passed: `dx^_i = alpha(d_cutoff) dx_i + (1 - alpha(d_cutoff)) dx^_{i-1}`;
- cutoff `f_i = min_cutoff + beta |dx^_i|`;
- output `x^_i = alpha(f_i) x_i + (1 - alpha(f_i)) x^_{i-1}`; the first sample passes through (`dx^_0 = 0`).

The speed differences consecutive raw samples, so on a ramp of speed `v` it is exact and, once `dx^` has
converged, the output trails by exactly `v / (2 pi (min_cutoff + beta |v|))` (the lag of a first-order filter,
`v * tau`): at most `1 / (2 pi beta)` however fast the keypoint moves.

The two parameters (defaults for keypoints in image pixels, a person a few hundred pixels tall):

- `min_cutoff` (Hz, default `1.0`): the cutoff at rest. Lower removes more jitter from still keypoints and lets
  slow ones lag more; at 30 fps, 1 Hz averages over about 5 frames (`alpha` 0.17).
- `beta` (1/pixel, default `0.05`): how fast the cutoff rises with speed. Higher cuts lag on moving keypoints and
  lets more jitter through (jitter looks like speed); 0.05 bounds the lag at `1 / (2 pi 0.05)` = 3.2 pixels, and a
  keypoint moving 10 px a frame at 30 fps trails by 3.0 px instead of the 48 px of a fixed 1 Hz filter. It is in
  pixels: for keypoints twice as large on screen, halve it.

`d_cutoff` (Hz, default `1.0`, as in the paper) smooths the speed estimate itself.

Shapes: any; a pose is `[K, 2]` (x, y) per keypoint, and every element is filtered on its own.

Example:

```python
>>> import numpy as np
>>> from semipose.smoothing import OneEuroFilter, PoseSmoother
>>> still = OneEuroFilter(min_cutoff=1.0, beta=0.05, frame_rate=30)
>>> [round(float(still(x)), 3) for x in (10.0, 12.0, 10.0)]  # the first passes, then the jump is damped
[10.0, 10.483, 10.393]
>>> smoother = PoseSmoother(frame_rate=30)
>>> person = {"score": 0.9, "keypoints": np.array([[10.0, 20.0], [30.0, 40.0]]), "keypoint_scores": np.ones(2)}
>>> smoothed = smoother.update([person], track_ids=[0])
>>> smoothed[0]["keypoints"].tolist(), smoothed[0]["score"]
([[10.0, 20.0], [30.0, 40.0]], 0.9)

```
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from typing import Any

import numpy as np

from .modeling.pipeline_pose_estimation import keypoint_box

DEFAULT_MIN_CUTOFF = 1.0
"""Hz: the cutoff of a still keypoint (see the module docstring)."""
DEFAULT_BETA = 0.05
"""1/pixel: how fast the cutoff rises with a keypoint's speed in pixels per second (see the module docstring)."""
DEFAULT_D_CUTOFF = 1.0
"""Hz: the cutoff that smooths the speed estimate (the paper's choice)."""


def smoothing_factor(cutoff: float | np.ndarray, period: float) -> float | np.ndarray:
    """`alpha` of a first-order low-pass filter of cutoff `cutoff` (Hz) sampled every `period` seconds."""
    rate = 2 * math.pi * cutoff * period
    return rate / (rate + 1)


class OneEuroFilter:
    """One-Euro filter of an array signal (every element filtered on its own), sampled at any times.

    Args:
        min_cutoff: the cutoff frequency (Hz) when the signal is still: lower, less jitter.
        beta: how much the cutoff rises per unit of speed (per signal unit per second): higher, less lag.
        d_cutoff: the cutoff frequency (Hz) of the speed estimate.
        frame_rate: samples per second, for samples given without a timestamp. None: every sample needs one.

    Example:

    ```python
    >>> import numpy as np
    >>> ramp = OneEuroFilter(min_cutoff=1.0, beta=0.0, frame_rate=10)
    >>> outputs = [ramp(np.array([float(x)])) for x in range(200)]  # 10 units a second
    >>> round(float(199 - outputs[-1][0]), 4), round(10 / (2 * np.pi), 4)  # lags by speed / (2 pi cutoff)
    (1.5915, 1.5915)

    ```
    """

    def __init__(
        self, min_cutoff: float = DEFAULT_MIN_CUTOFF, beta: float = DEFAULT_BETA, d_cutoff: float = DEFAULT_D_CUTOFF,
        *, frame_rate: float | None = None,
    ):
        _check_parameters(min_cutoff, beta, d_cutoff, frame_rate)
        self.min_cutoff, self.beta, self.d_cutoff, self.frame_rate = min_cutoff, beta, d_cutoff, frame_rate
        self.reset()

    def reset(self) -> None:
        """Forget the past: the next sample passes through unchanged."""
        self._time: float | None = None
        self._raw: np.ndarray | None = None
        self._smoothed: np.ndarray | None = None
        self._speed: np.ndarray | None = None

    def __call__(self, x: Any, timestamp: float | None = None) -> np.ndarray:
        """The filtered value of sample `x` (array-like, the shape of the first sample) taken at `timestamp` seconds.

        Without a timestamp the sample comes `1 / frame_rate` after the previous one.
        """
        x = np.array(x, dtype=np.float64)
        time = self._sample_time(timestamp)
        if self._smoothed is None:
            self._time, self._raw, self._smoothed, self._speed = time, x, x.copy(), np.zeros_like(x)
            return x.copy()
        if x.shape != self._raw.shape:
            raise ValueError(f"OneEuroFilter: a sample of shape {x.shape}, expected {self._raw.shape} as before.")
        period = time - self._time
        self._speed += smoothing_factor(self.d_cutoff, period) * ((x - self._raw) / period - self._speed)
        cutoff = self.min_cutoff + self.beta * np.abs(self._speed)
        self._smoothed += smoothing_factor(cutoff, period) * (x - self._smoothed)
        self._time, self._raw = time, x
        return self._smoothed.copy()

    def _sample_time(self, timestamp: float | None) -> float:
        if timestamp is None:
            if self.frame_rate is None:
                raise ValueError("OneEuroFilter: a sample without a timestamp needs the filter's frame_rate, got None.")
            return 0.0 if self._time is None else self._time + 1 / self.frame_rate
        if self._time is not None and not timestamp > self._time:
            raise ValueError(f"OneEuroFilter: timestamps must increase, got {timestamp} after {self._time}.")
        return float(timestamp)


class PoseSmoother:
    """One-Euro filters over the keypoints of tracked people: one filter per track id, started when the id first
    shows (its first pose passes unchanged) and dropped when its track ends.

    A track missed for some frames keeps its filter; the time since its last pose sets how far its next one is
    trusted. Only `keypoints` are filtered; scores and the other keys of each person pass through.

    Args:
        min_cutoff, beta, d_cutoff: the filters' parameters (see `OneEuroFilter` and the module docstring).
        frame_rate: frames per second, for frames given without a timestamp (every `update` is one frame).

    Example:

    ```python
    >>> import numpy as np
    >>> smoother = PoseSmoother(min_cutoff=1.0, beta=0.0, frame_rate=30)
    >>> steps = [[{"keypoints": np.array([[x, 0.0]]), "keypoint_scores": np.ones(1)}] for x in (0.0, 3.0, 3.0)]
    >>> [round(float(smoother.update(people, [7])[0]["keypoints"][0, 0]), 3) for people in steps]
    [0.0, 0.52, 0.949]

    ```
    """

    def __init__(
        self, *, min_cutoff: float = DEFAULT_MIN_CUTOFF, beta: float = DEFAULT_BETA,
        d_cutoff: float = DEFAULT_D_CUTOFF, frame_rate: float | None = None,
    ):
        _check_parameters(min_cutoff, beta, d_cutoff, frame_rate)
        self.min_cutoff, self.beta, self.d_cutoff, self.frame_rate = min_cutoff, beta, d_cutoff, frame_rate
        self.filters: dict[int, OneEuroFilter] = {}
        self._frames = 0

    def update(
        self, people: Sequence[dict[str, Any]], track_ids: Sequence[int], *, timestamp: float | None = None,
        active_ids: Collection[int] | None = None,
    ) -> list[dict[str, Any]]:
        """One frame's people with their keypoints smoothed (new dicts; the inputs are not changed).

        Args:
            people: the frame's people, each with `keypoints` of shape `(K, 2)`.
            track_ids: one distinct track id per person (`PoseTracker.update`'s answer).
            timestamp: the frame's time in seconds. None: `frame index / frame_rate`.
            active_ids: the ids of the tracks still alive (`PoseTracker.track_ids`); the filters of all others
                are dropped. None: keep every filter.
        """
        if len(track_ids) != len(people) or len(set(track_ids)) != len(track_ids):
            raise ValueError(f"PoseSmoother: one distinct track id per person expected, got {list(track_ids)} "
                             f"for {len(people)} people.")
        time = self._frame_time(timestamp)
        smoothed = [_with_keypoints(person, self._filter(track_id)(person["keypoints"], time))
                    for person, track_id in zip(people, track_ids)]
        if active_ids is not None:
            alive = set(active_ids)
            self.filters = {track_id: f for track_id, f in self.filters.items() if track_id in alive}
        return smoothed

    def _filter(self, track_id: int) -> OneEuroFilter:
        if track_id not in self.filters:
            self.filters[track_id] = OneEuroFilter(self.min_cutoff, self.beta, self.d_cutoff)
        return self.filters[track_id]

    def _frame_time(self, timestamp: float | None) -> float:
        index, self._frames = self._frames, self._frames + 1
        if timestamp is not None:
            return float(timestamp)
        if self.frame_rate is None:
            raise ValueError("PoseSmoother: a frame without a timestamp needs the smoother's frame_rate, got None.")
        return index / self.frame_rate


def _check_parameters(min_cutoff: float, beta: float, d_cutoff: float, frame_rate: float | None) -> None:
    problems = [f"{name} must be {rule}, got {value!r}" for name, value, rule, ok in (
        ("min_cutoff", min_cutoff, "> 0 (Hz)", min_cutoff > 0),
        ("beta", beta, ">= 0", beta >= 0),
        ("d_cutoff", d_cutoff, "> 0 (Hz)", d_cutoff > 0),
        ("frame_rate", frame_rate, "> 0 or None", frame_rate is None or frame_rate > 0),
    ) if not ok]
    if problems:
        raise ValueError(f"One-Euro filter: {'; '.join(problems)}.")


def _with_keypoints(person: dict[str, Any], keypoints: np.ndarray) -> dict[str, Any]:
    """`person` with its keypoints replaced, and its keypoint box (`bbox`, where it has one) made to fit them."""
    smoothed = {**person, "keypoints": keypoints}
    if "bbox" in person:
        smoothed["bbox"] = keypoint_box(keypoints).astype(np.asarray(person["bbox"]).dtype)
    return smoothed
