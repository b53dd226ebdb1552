"""The tracking benchmark without training: its videos' ground truth, and its metric code on known answers."""

import numpy as np
import pytest

from benchmarks import bench_tracking
from benchmarks.bench_tracking import (
    GROUND_TRUTH,
    PieceStore,
    accumulate,
    frame_distances,
    given_models,
    ground_truth_people,
    idf1_bound,
    markdown,
    score_rows,
    summarize,
    switch_causes,
    targets,
    truth_frames,
    truth_piece,
    work_minutes,
)
from benchmarks.tracking_scenes import MIN_COUNTED_KEYPOINTS, SCENE_KINDS, SPEED_RANGE, FrameTruth, render_video
from semipose.tracking import track_frames

K = 14


def _person(x: float, y: float = 40.0, labeled: int = K) -> np.ndarray:
    """A `(K, 3)` pose: keypoints spread over a 12 x 30 px box at (x, y), the first `labeled` of them visible."""
    angles = np.linspace(0, 2 * np.pi, K, endpoint=False)
    points = np.stack([x + 6 + 6 * np.cos(angles), y + 15 + 15 * np.sin(angles), np.full(K, 2.0)], -1)
    points[labeled:] = 0
    return points


def _frame(*xs: float, labeled: tuple[int, ...] | None = None) -> FrameTruth:
    labeled = labeled or (K,) * len(xs)
    keypoints = np.stack([_person(x, labeled=count) for x, count in zip(xs, labeled)])
    return FrameTruth(np.arange(len(xs)), keypoints, np.full(len(xs), 300.0),
                      np.array([[x, 40.0, 12.0, 30.0] for x in xs]))


def _walk(num_frames: int = 10) -> list[FrameTruth]:
    """Two people 30 px apart walking right, one pixel a frame."""
    return [_frame(5.0 + frame, 35.0 + frame) for frame in range(num_frames)]


def _as_predictions(truth: list[FrameTruth]) -> list[np.ndarray]:
    return [frame.keypoints[:, :, :2] for frame in truth]


# ------------------------------------------------------------------------------------------------- the videos


@pytest.fixture(scope="module")
def crossing():
    return render_video("crossing", 0, seed=0, num_frames=60)


def test_render_video_is_determined_by_its_arguments(crossing):
    again = render_video("crossing", 0, seed=0, num_frames=31)  # a shorter video is the same walk, cut
    assert np.array_equal(np.asarray(again.frames[30]), np.asarray(crossing.frames[30]))
    assert np.array_equal(again.truth[30].keypoints, crossing.truth[30].keypoints)
    assert not np.array_equal(np.asarray(render_video("crossing", 0, seed=1, num_frames=1).frames[0]),
                              np.asarray(crossing.frames[0]))


def test_ground_truth_follows_each_person_from_frame_to_frame(crossing):
    """Ids are kept: a person's hips move at most the walking speed a frame, and the two pass each other."""
    hips = np.stack([frame.keypoints[:, 6:8, :2].mean(1) for frame in crossing.truth])  # [T, N, 2]
    assert np.abs(np.diff(hips[..., 0], axis=0)).max() <= SPEED_RANGE[1] + 1e-6
    assert np.abs(np.diff(hips[..., 1], axis=0)).max() < 1.0
    assert crossing.events["crossings"] == 1
    assert crossing.events["min_box_gap"] < 0


def test_ground_truth_is_labeled_as_the_synthetic_datasets(crossing):
    keypoints = np.stack([frame.keypoints for frame in crossing.truth])
    visibility = keypoints[..., 2]
    assert set(np.unique(visibility)) <= {0.0, 1.0, 2.0}
    assert (keypoints[visibility == 0][:, :2] == 0).all()
    inside = keypoints[visibility > 0][:, :2]
    assert ((inside >= -0.5) & (inside < 63.5)).all()
    assert (visibility == 1).any(), "people crossing hide some of each other's keypoints"
    for frame in crossing.truth:
        x, y, w, h = frame.boxes.T
        points = frame.keypoints
        labeled = points[..., 2] > 0
        assert ((points[..., 0] >= x[:, None] - 1) & (points[..., 0] <= (x + w)[:, None] + 1) | ~labeled).all()
        assert ((points[..., 1] >= y[:, None] - 1) & (points[..., 1] <= (y + h)[:, None] + 1) | ~labeled).all()


def test_apart_people_never_overlap_and_reentering_people_leave_and_come_back():
    apart = render_video("apart", 0, seed=0, num_frames=20)
    assert apart.events["min_box_gap"] > 0 and apart.events["crossings"] == 0
    reentering = render_video("reentering", 0, seed=0, num_frames=80)
    counted = "".join("1" if frame.counted[1] else "0" for frame in reentering.truth)
    assert counted == "1" * 19 + "0" * 28 + "1" * 33
    assert all(frame.counted[0] for frame in reentering.truth)
    assert reentering.events == {"reentries": 1, "gaps": [28], "crossings": 0, "min_box_gap": 13.03}


def test_render_video_refuses_unknown_kinds():
    with pytest.raises(ValueError, match=r"Unknown scene kind 'waltz'; expected one of \['apart'"):
        render_video("waltz", 0)


# ------------------------------------------------------------------------------------------------- the metrics


def test_ground_truth_as_predictions_scores_perfectly():
    truth = _walk()
    metrics = summarize({"walk": accumulate(truth, _as_predictions(truth), [[0, 1]] * 10)})["walk"]
    assert (metrics["idf1"], metrics["num_switches"], metrics["mota"]) == (1.0, 0, 1.0)
    assert (metrics["num_false_positives"], metrics["num_misses"], metrics["num_objects"]) == (0, 0, 20)
    assert metrics["motp"] == 0.0


def test_idf1_bound_is_the_idf1_of_the_detections_with_every_id_right():
    assert idf1_bound({"num_objects": 20, "num_misses": 4, "num_false_positives": 2}) == round(32 / 38, 4)
    assert idf1_bound({"num_objects": 0, "num_misses": 0, "num_false_positives": 0}) is None


def test_swapped_ids_count_two_switches():
    """From frame 5 on the two ids are swapped: two switches; each id is right for half of its frames."""
    truth = _walk()
    ids = [[0, 1]] * 5 + [[1, 0]] * 5
    accumulator = accumulate(truth, _as_predictions(truth), ids)
    metrics = summarize({"walk": accumulator})["walk"]
    assert (metrics["num_switches"], metrics["idf1"], metrics["mota"]) == (2, 0.5, 0.9)
    assert switch_causes(accumulator, truth) == {"reentry": 0, "overlap": 0, "after_miss": 0, "other": 2}


def test_a_person_back_after_leaving_with_a_new_id_is_a_reentry_switch():
    truth = _walk()
    for frame in (4, 5):  # person 0 out of the frame
        truth[frame] = FrameTruth(truth[frame].ids, truth[frame].keypoints * [1, 1, 0], truth[frame].areas,
                                  truth[frame].boxes)
        truth[frame].keypoints[0, :, 2], truth[frame].keypoints[1, :, 2] = 0, 2
    predictions = [frame.keypoints[frame.counted, :, :2] for frame in truth]
    ids = [[0, 1]] * 4 + [[1]] * 2 + [[2, 1]] * 4
    accumulator = accumulate(truth, predictions, ids)
    assert summarize({"walk": accumulator})["walk"]["num_switches"] == 1
    assert switch_causes(accumulator, truth) == {"reentry": 1, "overlap": 0, "after_miss": 0, "other": 0}


def test_predictions_on_ignore_regions_are_dropped_and_strays_are_false_positives():
    """Person 1 shows fewer than MIN_COUNTED_KEYPOINTS keypoints: not counted, and the prediction on it is no
    false positive; a prediction where nobody is counts as one."""
    frame = _frame(5.0, 35.0, labeled=(K, MIN_COUNTED_KEYPOINTS - 1))
    predictions = np.stack([_person(5.0)[:, :2], _person(35.0)[:, :2], _person(200.0)[:, :2]])
    truth_ids, kept, distances = frame_distances(frame, predictions)
    assert truth_ids.tolist() == [0] and kept.tolist() == [0, 2]
    assert distances[0, 0] == 0.0 and np.isnan(distances[0, 1])
    metrics = summarize({"frame": accumulate([frame], [predictions], [[7, 8, 9]])})["frame"]
    assert (metrics["num_objects"], metrics["num_matches"], metrics["num_false_positives"]) == (1, 1, 1)


def test_a_pose_off_by_more_than_the_oks_gate_is_a_miss_and_a_false_positive():
    frame = _frame(5.0)
    far = frame.keypoints[:, :, :2] + 4.0  # OKS about 0.16 at this size: 1 - OKS above 0.5
    metrics = summarize({"frame": accumulate([frame], [far], [[0]])})["frame"]
    assert (metrics["num_misses"], metrics["num_false_positives"], metrics["mota"]) == (1, 1, -1.0)


def test_the_tracker_on_a_rendered_videos_ground_truth_keeps_every_id(crossing):
    people = ground_truth_people(crossing.truth)
    predictions = [np.array([person["keypoints"] for person in frame]) for frame in people]
    ids = track_frames(people, skeleton=bench_tracking.SKELETON)
    metrics = summarize({"crossing": accumulate(crossing.truth, predictions, ids)})["crossing"]
    assert (metrics["num_switches"], metrics["idf1"], metrics["mota"]) == (0, 1.0, 1.0)


def test_ground_truth_people_seen_keeps_the_people_a_detector_can_see():
    """Person 1 hidden but for 3 keypoints: tracker input of the `ground truth` rows, not of `ground truth, seen`."""
    frame = _frame(5.0, 35.0)
    frame.keypoints[1, 3:, 2] = 1
    frame.keypoints[0, 0, 2] = 0
    everyone, seen = ground_truth_people([frame]), ground_truth_people([frame], seen=True)
    assert [person["keypoint_scores"].sum() for person in everyone[0]] == [K - 1, K]
    assert [person["keypoint_scores"].sum() for person in seen[0]] == [K - 1]


# ---------------------------------------------------------------------------------------------- the report


def test_report_from_pieces_of_ground_truth_predictions():
    """The report path on pieces whose predictions are the ground truth with its own ids: every target met."""
    videos = [render_video(kind, 0, seed=0, num_frames=4) for kind in SCENE_KINDS]
    truths = {video.name: truth_piece(video, seconds=20.0) for video in videos}
    pieces = {video.name: {"video": video.name, "seconds": 0.4, "frames_per_second": 10.0, "frames": [
        [{"track_id": int(person), "score": 1.0, "keypoints": frame.keypoints[person, :, :2].tolist(),
          "keypoint_scores": [1.0] * K} for person in np.flatnonzero(frame.counted)]
        for frame in truth_frames(truths[video.name])]} for video in videos}
    rows, per_video = score_rows(truths, {"center_offset": pieces})
    assert [(row["family"], row["tracking"]) for row in rows[::3]] == [
        ("center_offset", "tracker"), ("center_offset", "none"), *((truth, "tracker") for truth in GROUND_TRUTH)]
    assert {row["idf1"] for row in rows if row["tracking"] == "tracker"} == {1.0}
    assert [row["frames_per_second"] for row in rows[:3]] == [10.0, 10.0, 10.0]
    assert len(per_video) == 12
    results = targets(rows)
    assert [(result["kind"], result["value"], result["met"]) for result in results] == [
        ("apart", 0, True), ("crossing", 1.0, True)]
    videos = {name: {"events": truths[name]["events"], "person_frames": 8} for name in truths}
    model = {"steps": 1500, "train_seconds": 170.0, "validation_AP": 0.3, "person_threshold": 0.2, "path": "m",
             "trained_now": False}
    report = {"settings": {"num_frames": 4, "video_config": {"image_size": 64}, "seed": 0, "max_distance": 0.5},
              "total_minutes": 0.1, "machine": {"cpu_count": 2, "platform": "test", "load_average_1min_at_start": 0.5},
              "targets": results, "results": rows, "models": {"center_offset": model}, "videos": videos,
              "work_minutes": work_minutes({"center_offset": model}, truths, {"center_offset": pieces})}
    text = markdown(report)
    assert "| center_offset | apart | no ID switch | 0 | met |" in text
    assert "## Diagnosis\n\nEvery target met." in text
    assert "| crossing-0 | 8 |" in text
    assert "load average 0.5 at the start); center_offset trained before (see Models)." in text
    assert "| center_offset | 1500 | 170.0 | 0.3 | 0.2 | `m` |" in text
    assert "training 2.8 min, rendering 1.0 min, prediction and tracking 0.0 min, 3.8 min in all." in text


def test_piece_store_round_trip_keyed_by_settings(tmp_path):
    store = PieceStore(tmp_path, {"seed": 0})
    assert store.load("truth-apart-0") is None
    store.save("truth-apart-0", {"frames": [1, 2]})
    assert PieceStore(tmp_path, {"seed": 0}).load("truth-apart-0") == {"frames": [1, 2]}
    assert PieceStore(tmp_path, {"seed": 1}).load("truth-apart-0") is None
    (store.folder / "broken.json").write_text("{")
    with pytest.raises(ValueError, match=r"broken.json: not a json piece"):
        store.load("broken")


def test_given_models_names_a_malformed_pair():
    assert given_models(["center_offset=runs/co"], ["center_offset"]) == {"center_offset": "runs/co"}
    with pytest.raises(ValueError, match=r"--model 'runs/co': expected FAMILY=PATH with FAMILY one of"):
        given_models(["runs/co"], ["center_offset"])
