"""PoseTracker: ids follow people through moving apart, crossing, short misses, partial views and the frame edge;
OKS and distance by hand."""

import math

import numpy as np
import pytest

from semipose.skeletons import Skeleton, get_skeleton
from semipose.tracking import (
    DEFAULT_MAX_AGE,
    MIN_KEYPOINT_SPREAD,
    PoseTracker,
    keypoint_distance,
    object_keypoint_similarity,
    track_frames,
)

# A rigid five-keypoint body in a 100 x 100 box (OKS scale: area 10^4 px^2), sigma 0.1 for every keypoint:
# a keypoint d pixels off scores exp(-d^2 / (2 * 10^4 * 0.2^2)) = exp(-d^2 / 800).
BODY = np.array([[0.0, 0.0], [100.0, 0.0], [0.0, 100.0], [100.0, 100.0], [50.0, 50.0]])
SIGMAS = [0.1] * 5
TOP, BOTTOM, LEFT, CENTER = (np.array(scores) for scores in (
    [1.0, 1, 0, 0, 0], [0.0, 0, 1, 1, 0], [1.0, 0, 1, 0, 0], [0.0, 0, 0, 0, 1]))
"""Keypoint scores showing the top corners, the bottom corners, the left side (a 0 x 100 px box) or the center."""


def person(x: float, y: float = 0.0, scores=None) -> dict:
    return {"score": 0.9, "keypoints": BODY + [x, y], "keypoint_scores": np.ones(5) if scores is None else scores}


def test_people_moving_apart_keep_their_ids_whatever_their_order():
    tracker = PoseTracker(sigmas=SIGMAS)
    for t in range(20):
        left, right = person(200 - 10 * t), person(230 + 10 * t)
        if t % 2:
            assert tracker.update([right, left]) == [1, 0]
        else:
            assert tracker.update([left, right]) == [0, 1]


def _crossing(t: int) -> list[dict]:
    """Two people 10 px a frame apart at t = 5 and crossing at t = 5.25 (x = 100 + 20 t and 310 - 20 t)."""
    return [person(100 + 20 * t), person(310 - 20 * t)]


def test_crossing_people_keep_their_ids_thanks_to_velocity():
    assert track_frames([_crossing(t) for t in range(12)], sigmas=SIGMAS) == [[0, 1]] * 12


def test_crossing_people_swap_ids_without_velocity():
    # At t = 6 the last poses (t = 5) sit at x = 200 and 210, the people at 220 and 190: each is 10 px from the
    # other's last pose (OKS exp(-1/8) = 0.88) and 20 px from its own (exp(-1/2) = 0.61), so the swap wins.
    ids = track_frames([_crossing(t) for t in range(12)], sigmas=SIGMAS, use_velocity=False)
    assert ids == [[0, 1]] * 6 + [[1, 0]] * 6


def test_prediction_moves_the_last_pose_by_velocity_times_frames_elapsed():
    tracker = PoseTracker(sigmas=SIGMAS)
    tracker.update([person(0, 0)])
    tracker.update([person(20, 10)])
    track = tracker.tracks[0]
    assert track.velocity.tolist() == [[20.0, 10.0]] * 5
    np.testing.assert_array_equal(track.predict(4), BODY + [80, 40])  # 3 frames on from frame 1


def test_velocity_of_a_keypoint_unseen_before_is_the_body_median():
    tracker = PoseTracker(sigmas=SIGMAS)
    tracker.update([person(0, scores=np.array([1, 1, 1, 1, 0.0]))])
    moved = person(10, scores=np.ones(5))
    moved["keypoints"][:2] += [[2.0, 0.0], [4.0, 0.0]]  # the box's top corners move 12 and 14 px
    tracker.update([moved])
    assert tracker.tracks[0].velocity[:, 0].tolist() == [12.0, 14.0, 10.0, 10.0, 11.0]


def test_a_moving_person_missed_for_max_age_frames_keeps_its_id_where_velocity_says():
    max_age = 3
    tracker = PoseTracker(sigmas=SIGMAS, max_age=max_age)
    ids = [tracker.update([person(20 * t)]) for t in range(3)]
    ids += [tracker.update([]) for _ in range(max_age)]
    ids.append(tracker.update([person(20 * (3 + max_age))]))  # 80 px from where it was last seen
    assert ids == [[0]] * 3 + [[]] * max_age + [[0]]


def test_a_person_showing_other_keypoints_than_its_last_pose_keeps_its_id():
    # Frame 1 shows the top corners, frame 2 the bottom ones: the last pose and the person share no keypoint, but
    # the track remembers the bottom corners from frame 0, moved along by the body's 10 px a frame: OKS 1.
    tracker = PoseTracker(sigmas=SIGMAS)
    assert [tracker.update([person(10 * t, scores=scores)]) for t, scores in enumerate((None, TOP))] == [[0], [0]]
    track = tracker.tracks[0]
    np.testing.assert_array_equal(track.predict(2), BODY + [20, 0])
    assert track.remembers(DEFAULT_MAX_AGE).all()
    assert tracker.update([person(20, scores=BOTTOM)]) == [0]
    assert track.velocity.tolist() == [[10.0, 0.0]] * 5  # nothing shared to measure it by: the motion goes on
    np.testing.assert_array_equal(track.remembered, BODY + [20, 0])
    assert track.last_seen.tolist() == [1, 1, 2, 2, 0]


@pytest.mark.parametrize("max_age, last_id", [(1, 1), (2, 0)])
def test_a_keypoint_is_remembered_max_age_frames_after_it_was_last_seen(max_age, last_id):
    # The bottom corners are seen in frame 0 only; in frame 3 they are 2 frames older than the last match (frame 2).
    tracker = PoseTracker(sigmas=SIGMAS, max_age=max_age)
    frames = [[person(0)], [person(0, scores=TOP)], [person(0, scores=TOP)], [person(0, scores=BOTTOM)]]
    assert [tracker.update(people) for people in frames] == [[0], [0], [0], [last_id]]


def test_without_velocity_hidden_keypoints_stay_where_they_were_seen():
    tracker = PoseTracker(sigmas=SIGMAS, use_velocity=False)
    tracker.update([person(0)])
    tracker.update([person(10, scores=TOP)])
    np.testing.assert_array_equal(tracker.tracks[0].remembered, np.concatenate([BODY[:2] + [10, 0], BODY[2:]]))


def test_a_track_showing_a_flat_box_keeps_the_scale_of_the_keypoints_it_remembers():
    # Frame 1 shows the left side only (box 0 x 100 px: area 0, a scale of 1 px^2 before); in frame 2 it moved 5 px.
    # The remembered 100 x 100 box gives the scale: OKS exp(-25 / 800) = 0.97 on both keypoints.
    tracker = PoseTracker(sigmas=SIGMAS)
    assert [tracker.update([person(0, scores=scores)]) for scores in (None, LEFT)] == [[0], [0]]
    track = tracker.tracks[0]
    remembered = track.remembers(DEFAULT_MAX_AGE).astype(float)
    oks = object_keypoint_similarity(track.predict(2)[None], remembered[None], (BODY + [5, 0])[None], LEFT[None],
                                     SIGMAS)
    assert oks[0, 0] == pytest.approx(math.exp(-25 / 800), rel=1e-12)
    assert tracker.update([person(5, scores=LEFT)]) == [0]


def test_a_track_born_with_a_flat_box_takes_the_scale_of_a_fuller_person():
    # Born showing the left side (area 0); next frame the whole body 3 px on: its 100 x 100 box gives the scale,
    # OKS exp(-9 / 800) on the two shared keypoints, either way round.
    tracker = PoseTracker(sigmas=SIGMAS)
    assert [tracker.update([person(3 * t, scores=scores)]) for t, scores in enumerate((LEFT, None))] == [[0], [0]]
    flat, full = (BODY[None], LEFT[None]), ((BODY + [3, 0])[None], np.ones((1, 5)))
    expected = math.exp(-9 / 800)
    assert object_keypoint_similarity(*flat, *full, SIGMAS)[0, 0] == pytest.approx(expected, rel=1e-12)
    assert object_keypoint_similarity(*full, *flat, SIGMAS)[0, 0] == pytest.approx(expected, rel=1e-12)
    assert keypoint_distance(*flat, *full)[0, 0] == pytest.approx(3 / (100 * math.sqrt(2)), rel=1e-12)


@pytest.mark.parametrize("step, same", [(1.0, True), (2.0, False)])
def test_one_keypoint_poses_match_within_the_one_pixel_kernel(step, same):
    # A person entering the frame shows one keypoint: both boxes are points, so the kernel is MIN_KEYPOINT_SPREAD
    # = 1 px wide whatever the sigma: OKS exp(-step^2 / 2), 0.61 for 1 px (matches), 0.14 for 2 px (does not).
    assert MIN_KEYPOINT_SPREAD == 1.0
    point, moved = BODY[None], (BODY + [step, 0])[None]
    for sigmas in (SIGMAS, [0.05] * 5):
        oks = object_keypoint_similarity(point, CENTER[None], moved, CENTER[None], sigmas)
        assert oks[0, 0] == pytest.approx(math.exp(-step**2 / 2), rel=1e-12)
    tracker = PoseTracker(sigmas=SIGMAS)
    assert [tracker.update([person(x, scores=CENTER)]) for x in (0, step)] == [[0], [0 if same else 1]]


def test_a_person_missed_for_max_age_plus_one_frames_gets_a_new_id():
    tracker = PoseTracker(sigmas=SIGMAS, max_age=DEFAULT_MAX_AGE)
    assert tracker.update([person(0)]) == [0]
    for _ in range(DEFAULT_MAX_AGE):
        assert tracker.update([]) == []
    assert tracker.track_ids == [0] and tracker.tracks[0].missed == DEFAULT_MAX_AGE
    assert tracker.update([]) == [] and tracker.track_ids == []
    assert tracker.update([person(0)]) == [1]


def test_new_people_get_new_ids_and_ids_are_never_reused():
    tracker = PoseTracker(sigmas=SIGMAS, max_age=0)
    frames = [[person(0)], [person(0), person(500)], [person(500)], [], [person(0), person(500)], [person(1000)]]
    assert [tracker.update(people) for people in frames] == [[0], [0, 1], [1], [], [2, 3], [4]]


def test_empty_frames_on_an_empty_tracker():
    tracker = PoseTracker()
    assert [tracker.update([]) for _ in range(3)] == [[], [], []]
    assert tracker.update([person(0)]) == [0] and tracker.frame == 3


def test_oks_of_one_pair_by_hand():
    # Reference pose: confident keypoints (0, 0), (40, 0), (40, 30): box 40 x 30 = 1200 px^2, larger than the other
    # pose's 37 x 30; the fourth is unconfident in both and ignored (and left out of the boxes), the fifth
    # unconfident in the other pose.
    reference = np.array([[[0.0, 0.0], [40.0, 0.0], [40.0, 30.0], [500.0, 500.0], [20.0, 15.0]]])
    other = reference + np.array([[[3.0, 4.0], [0.0, 0.0], [-6.0, 0.0], [0.0, 0.0], [0.0, 0.0]]])
    sigmas = [0.05, 0.1, 0.2, 0.1, 0.1]
    oks = object_keypoint_similarity(reference, np.array([[0.9, 0.9, 0.9, 0.2, 0.9]]),
                                     other, np.array([[0.9, 0.9, 0.9, 0.2, 0.1]]), sigmas)
    expected = (math.exp(-25 / (2 * 1200 * 0.1**2)) + 1 + math.exp(-36 / (2 * 1200 * 0.4**2))) / 3
    assert oks.shape == (1, 1)
    assert oks[0, 0] == pytest.approx(expected, rel=1e-12)


def test_oks_is_zero_and_distance_infinite_without_shared_confident_keypoints():
    poses = np.stack([BODY, BODY])
    scores = np.array([[1.0, 1, 0, 0, 0], [0.0, 0, 1, 1, 1]])
    assert object_keypoint_similarity(poses, scores, poses, scores, SIGMAS)[0, 1] == 0.0
    assert keypoint_distance(poses, scores, poses, scores)[0, 1] == math.inf


def test_keypoint_distance_by_hand():
    # Box 100 x 100: diagonal 100 sqrt(2); mean distance (3 + 4 + 0 + 0 + 5) / 5 = 2.4.
    other = BODY + [[3.0, 0.0], [0.0, 4.0], [0.0, 0.0], [0.0, 0.0], [3.0, 4.0]]
    distance = keypoint_distance(BODY[None], np.ones((1, 5)), other[None], np.ones((1, 5)))
    assert distance[0, 0] == pytest.approx(2.4 / (100 * math.sqrt(2)), rel=1e-12)


def test_without_sigmas_people_are_matched_by_distance_within_max_distance():
    tracker = PoseTracker(max_distance=0.25)  # a quarter of the 141 px diagonal: 35.4 px
    assert tracker.sigmas is None
    assert tracker.update([person(0)]) == [0]
    assert tracker.update([person(35)]) == [0]  # velocity 35 px a frame from now on
    assert tracker.update([person(70 + 36)]) == [1]  # 36 px off the prediction: outside the gate


def test_a_skeleton_gives_oks_matching_with_its_sigmas():
    tracker = PoseTracker(skeleton=Skeleton.from_dict({"keypoints": list("abcde"), "sigmas": 0.1}))
    assert tracker.sigmas == tuple(SIGMAS) and tracker.min_similarity == 0.3
    # 30 px off: OKS exp(-900 / 800) = 0.32 matches; 32 px: exp(-1024 / 800) = 0.28 does not.
    assert [tracker.update([person(x)]) for x in (0, 30, 60 + 32)] == [[0], [0], [1]]


def test_track_frames_is_one_tracker_over_the_frames():
    frames = [_crossing(t) for t in range(4)] + [[], [person(1000)]]
    tracker = PoseTracker(sigmas=SIGMAS, max_age=1)
    assert track_frames(frames, sigmas=SIGMAS, max_age=1) == [tracker.update(people) for people in frames]


def test_bad_people_name_the_frame_and_person():
    tracker = PoseTracker(skeleton=get_skeleton("coco"))
    with pytest.raises(ValueError, match=r"frame 0, person 1: expected keypoints \(17, 2\).*got \(5, 2\)"):
        tracker.update([{"keypoints": np.zeros((17, 2)), "keypoint_scores": np.ones(17)}, person(0)])
    distance = PoseTracker()
    distance.update([person(0)])
    with pytest.raises(ValueError, match=r"frame 1, person 0: expected keypoints \(5, 2\).*got \(4, 2\)"):
        distance.update([{"keypoints": np.zeros((4, 2)), "keypoint_scores": np.ones(4)}])


@pytest.mark.parametrize("options, message", [
    ({"skeleton": get_skeleton("coco"), "sigmas": [0.1] * 17}, "a skeleton or sigmas, not both"),
    ({"min_similarity": 0.5}, "min_similarity is the OKS gate, which needs sigmas"),
    ({"sigmas": SIGMAS, "max_distance": 0.5}, "max_distance is the gate of distance matching"),
    ({"sigmas": SIGMAS, "min_similarity": 0.0}, r"min_similarity must be an OKS in \(0, 1\], got 0.0"),
    ({"max_age": -1}, "max_age must be an integer >= 0"),
    ({"sigmas": [0.1, 0.0]}, r"sigmas must be positive numbers, one per keypoint, got \[0.1, 0.0\]"),
])
def test_bad_options_are_refused(options, message):
    with pytest.raises(ValueError, match=message):
        PoseTracker(**options)
