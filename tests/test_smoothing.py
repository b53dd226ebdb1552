"""One-Euro filter on known trajectories (jitter removed, lag measured) and the per-track PoseSmoother."""

import math

import numpy as np
import pytest

from semipose.smoothing import OneEuroFilter, PoseSmoother, smoothing_factor

FPS = 30
FRAMES = 300
SETTLED = 30  # frames left out of the error statistics while the filter settles (1 s)
SPEED = 300.0  # pixels per second: 10 px a frame


def _trajectory(speed: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """`(FRAMES, 17, 2)` true keypoints moving at `speed` px/s from 100, and them plus 2-px Gaussian jitter."""
    truth = 100 + speed * np.arange(FRAMES)[:, None, None] / FPS * np.ones((FRAMES, 17, 2))
    return truth, truth + np.random.default_rng(seed).normal(0.0, 2.0, truth.shape)


def _filtered(samples: np.ndarray, **parameters) -> np.ndarray:
    one_euro = OneEuroFilter(**parameters, frame_rate=FPS)
    return np.stack([one_euro(sample) for sample in samples])


def _lag_and_jitter_reduction(speed: float, **parameters) -> tuple[float, float]:
    """Mean lag (px, truth minus output) and raw jitter std over output error std, after the first second."""
    truth, observed = _trajectory(speed)
    error = (truth - _filtered(observed, **parameters))[SETTLED:]
    return float(error.mean()), float((observed - truth)[SETTLED:].std() / error.std())


def test_jitter_at_rest_is_reduced_with_the_defaults():
    lag, reduction = _lag_and_jitter_reduction(0.0)
    assert abs(lag) < 0.05
    assert reduction > 2.3  # measured 2.42 (std 2.0 px -> 0.83 px)


def test_jittered_ramp_lags_by_the_closed_form_and_is_still_smoothed():
    lag, reduction = _lag_and_jitter_reduction(SPEED)
    assert lag == pytest.approx(SPEED / (2 * math.pi * (1 + 0.05 * SPEED)), abs=0.1)  # 2.98; measured 2.95
    assert reduction > 1.15  # measured 1.21: at 16 Hz the filter follows the motion, and so lets jitter through


def test_clean_ramp_lag_after_convergence_is_exactly_speed_over_two_pi_cutoff():
    truth, _ = _trajectory(SPEED)
    for beta in (0.0, 0.05, 0.5):
        lag = truth[-1] - _filtered(truth, min_cutoff=1.0, beta=beta)[-1]
        np.testing.assert_allclose(lag, SPEED / (2 * math.pi * (1 + beta * SPEED)), rtol=1e-9)
    assert SPEED / (2 * math.pi * (1 + 0.05 * SPEED)) < 1 / (2 * math.pi * 0.05)  # the bound 1 / (2 pi beta)


def test_min_cutoff_and_beta_act_in_the_expected_directions():
    rest = {min_cutoff: _lag_and_jitter_reduction(0.0, min_cutoff=min_cutoff, beta=0.05)[1]
            for min_cutoff in (0.5, 1.0, 2.0)}
    assert rest[0.5] > rest[1.0] > rest[2.0]  # a higher cutoff at rest keeps more jitter
    moving = {beta: _lag_and_jitter_reduction(SPEED, min_cutoff=1.0, beta=beta) for beta in (0.0, 0.05, 0.1)}
    lags, reductions = [moving[beta][0] for beta in (0.0, 0.05, 0.1)], [moving[beta][1] for beta in (0.0, 0.05, 0.1)]
    assert lags[0] > 40 > lags[1] > lags[2]  # 47.7, 2.95, 1.51 px: beta cuts the lag...
    assert reductions[0] > reductions[1] > reductions[2]  # ...and lets jitter through (3.31, 1.21, 1.12)


def test_first_sample_passes_through_unchanged():
    sample = np.array([[12.25, -3.5], [7.0, 1e4]])
    np.testing.assert_array_equal(OneEuroFilter(frame_rate=FPS)(sample), sample)
    np.testing.assert_array_equal(OneEuroFilter()(sample, timestamp=12.0), sample)


def test_one_step_by_hand():
    one_euro = OneEuroFilter(min_cutoff=1.0, beta=0.05, d_cutoff=1.0, frame_rate=FPS)
    one_euro(np.array([10.0]))
    speed = smoothing_factor(1.0, 1 / FPS) * 60.0  # raw speed 2 px / (1/30 s) = 60 px/s, low-passed
    expected = 10.0 + smoothing_factor(1.0 + 0.05 * speed, 1 / FPS) * 2.0
    assert one_euro(np.array([12.0]))[0] == pytest.approx(expected, rel=1e-12)
    assert smoothing_factor(1.0, 1 / FPS) == pytest.approx(1 / (1 + (1 / (2 * math.pi)) * FPS), rel=1e-12)


def test_timestamps_and_frame_rate_agree():
    _, observed = _trajectory(SPEED)
    by_rate = _filtered(observed[:60], min_cutoff=1.0, beta=0.05)
    timed = OneEuroFilter(min_cutoff=1.0, beta=0.05)
    by_time = np.stack([timed(sample, timestamp=2.5 + index / FPS) for index, sample in enumerate(observed[:60])])
    np.testing.assert_allclose(by_time, by_rate, rtol=1e-12)


def test_reset_forgets_the_past():
    one_euro = OneEuroFilter(frame_rate=FPS)
    one_euro(np.zeros(3))
    one_euro.reset()
    assert one_euro(np.ones(3)).tolist() == [1.0, 1.0, 1.0]


@pytest.mark.parametrize("parameters, message", [
    ({"min_cutoff": 0.0}, "min_cutoff must be > 0 \\(Hz\\), got 0.0"),
    ({"beta": -1.0}, "beta must be >= 0, got -1.0"),
    ({"d_cutoff": 0.0, "frame_rate": 0}, "d_cutoff must be > 0 \\(Hz\\), got 0.0; frame_rate must be > 0 or None"),
])
def test_bad_parameters_are_refused(parameters, message):
    with pytest.raises(ValueError, match=message):
        OneEuroFilter(**parameters)
    with pytest.raises(ValueError, match=message):
        PoseSmoother(**parameters)


def test_bad_samples_are_refused():
    with pytest.raises(ValueError, match="without a timestamp needs the filter's frame_rate"):
        OneEuroFilter()(np.zeros(2))
    timed = OneEuroFilter()
    timed(np.zeros(2), timestamp=1.0)
    with pytest.raises(ValueError, match="timestamps must increase, got 1.0 after 1.0"):
        timed(np.zeros(2), timestamp=1.0)
    with pytest.raises(ValueError, match=r"a sample of shape \(3,\), expected \(2,\)"):
        timed(np.zeros(3), timestamp=2.0)


def _person(x: float) -> dict:
    return {"score": 0.8, "keypoints": np.array([[x, 2 * x]]), "keypoint_scores": np.array([0.5]), "box": "kept"}


def test_pose_smoother_keeps_one_filter_per_track():
    smoother = PoseSmoother(min_cutoff=1.0, beta=0.0, frame_rate=FPS)
    alpha = smoothing_factor(1.0, 1 / FPS)
    first = smoother.update([_person(0.0), _person(50.0)], [3, 8])
    assert [person["keypoints"].tolist() for person in first] == [[[0.0, 0.0]], [[50.0, 100.0]]]
    second = smoother.update([_person(60.0), _person(10.0)], [8, 3])
    np.testing.assert_allclose(second[0]["keypoints"], [[50 + 10 * alpha, 100 + 20 * alpha]], rtol=1e-12)
    np.testing.assert_allclose(second[1]["keypoints"], [[10 * alpha, 20 * alpha]], rtol=1e-12)
    assert (second[1]["score"], second[1]["keypoint_scores"].tolist(), second[1]["box"]) == (0.8, [0.5], "kept")


def test_pose_smoother_leaves_its_inputs_alone():
    people = [_person(1.0)]
    PoseSmoother(frame_rate=FPS).update(people, [0])
    assert people[0]["keypoints"].tolist() == [[1.0, 2.0]]


def test_a_missed_track_steps_over_the_frames_it_missed():
    smoother = PoseSmoother(min_cutoff=1.0, beta=0.0, frame_rate=FPS)
    smoother.update([_person(0.0)], [0])
    smoother.update([], [])
    smoother.update([], [])
    after_gap = smoother.update([_person(30.0)], [0])[0]["keypoints"]
    np.testing.assert_allclose(after_gap, [[30 * smoothing_factor(1.0, 3 / FPS), 60 * smoothing_factor(1.0, 3 / FPS)]],
                               rtol=1e-12)


def test_ended_tracks_are_dropped_and_a_new_id_starts_fresh():
    smoother = PoseSmoother(frame_rate=FPS)
    smoother.update([_person(0.0), _person(5.0)], [0, 1])
    smoother.update([_person(1.0)], [0], active_ids=[0])
    assert sorted(smoother.filters) == [0]
    assert smoother.update([_person(40.0)], [1])[0]["keypoints"].tolist() == [[40.0, 80.0]]


def test_pose_smoother_timestamps_match_its_frame_rate():
    by_rate, by_time = PoseSmoother(frame_rate=FPS), PoseSmoother()
    for index, x in enumerate((0.0, 4.0, 9.0, 9.0)):
        rated = by_rate.update([_person(x)], [0])[0]["keypoints"]
        timed = by_time.update([_person(x)], [0], timestamp=index / FPS)[0]["keypoints"]
        np.testing.assert_allclose(timed, rated, rtol=1e-12)


def test_pose_smoother_refuses_ids_that_do_not_fit():
    smoother = PoseSmoother(frame_rate=FPS)
    with pytest.raises(ValueError, match=r"one distinct track id per person expected, got \[0, 0\] for 2 people"):
        smoother.update([_person(0.0), _person(1.0)], [0, 0])
    with pytest.raises(ValueError, match=r"got \[0\] for 2 people"):
        smoother.update([_person(0.0), _person(1.0)], [0])
    with pytest.raises(ValueError, match="without a timestamp needs the smoother's frame_rate"):
        PoseSmoother().update([_person(0.0)], [0])


def test_a_smoothed_persons_keypoint_box_fits_the_smoothed_keypoints():
    smoother = PoseSmoother(frame_rate=30)
    first = {"keypoints": np.array([[0.0, 0.0], [10.0, 10.0]]), "keypoint_scores": np.ones(2),
             "bbox": np.array([0.0, 0.0, 10.0, 10.0], dtype=np.float32)}
    moved = {**first, "keypoints": first["keypoints"] + 5, "bbox": first["bbox"] + 5}
    smoother.update([first], [0])
    (smoothed,) = smoother.update([moved], [0])
    expected = np.concatenate([smoothed["keypoints"].min(0), smoothed["keypoints"].max(0)]).astype(np.float32)
    assert np.array_equal(smoothed["bbox"], expected) and smoothed["bbox"].dtype == np.float32
    assert not np.array_equal(smoothed["bbox"], moved["bbox"])  # the raw box no longer describes the keypoints
