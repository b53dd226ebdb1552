"""Tracked poses exported for the analysis tools: DeepLabCut tables and SLEAP labels read back by `movement` and
sleap-io give the same coordinates, scores, track and keypoint names; each bad input names the file."""

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from semipose.data.dlc_format import read_dlc_csv
from semipose.pose_exports import (
    EXPORT_FORMATS,
    TrackedPoses,
    dlc_table,
    export_poses,
    tracked_poses_from_frames,
    write_dlc,
    write_slp,
)
from semipose.skeletons import Skeleton

MIRROR_MOUSE = Path(__file__).resolve().parents[1] / ".." / "shared" / "fixtures" / "mirror-mouse"
MOVEMENT = "movement (the dev extra, Python 3.11+) is the reader the exports are made for"
SLEAP_IO = "the .slp export needs the optional extra semipose[sleap]"
SKELETON = Skeleton.from_dict({"name": "mouse", "keypoints": ["nose", "left_ear", "right_ear"],
                               "limbs": [["nose", "left_ear"], ["nose", "right_ear"]]})
FPS = 25.0
BODY = np.array([[10.125, 20.5], [5.0, 30.25], [15.5, 30.75]])


def _mouse(track_id: int, t: int, missing: int | None = None) -> dict:
    """Track `track_id`'s pose in frame t: the body moved 7.3 px right per frame, 100.2 px down per track id."""
    keypoints = (BODY + [7.3 * t + 0.000123, 100.2 * track_id]).tolist()
    keypoint_scores = [round(0.9 - 0.01 * t - 0.1 * k, 4) for k in range(3)]
    if missing is not None:
        keypoints[missing], keypoint_scores[missing] = [None, None], None
    return {"score": round(0.8 + 0.01 * track_id, 4), "keypoints": keypoints, "keypoint_scores": keypoint_scores,
            "track_id": track_id}


# Tracks 0, 2 and 5 over 5 frames: track 2 absent in frames 1 and 3, track 5 born in frame 2, and in frame 4
# track 0 has no right ear (NaN coordinates and score). The people of a frame are not in track order.
FRAMES = [
    {"frame_index": 0, "timestamp": 0.0, "people": [_mouse(2, 0), _mouse(0, 0)]},
    {"frame_index": 1, "timestamp": 0.04, "people": [_mouse(0, 1)]},
    {"frame_index": 2, "timestamp": 0.08, "people": [_mouse(0, 2), _mouse(5, 2), _mouse(2, 2)]},
    {"frame_index": 3, "timestamp": 0.12, "people": [_mouse(5, 3), _mouse(0, 3)]},
    {"frame_index": 4, "timestamp": 0.16, "people": [_mouse(0, 4, missing=2), _mouse(2, 4), _mouse(5, 4)]},
]
PRESENT = {0: [0, 1, 2, 3, 4], 2: [0, 2, 4], 5: [2, 3, 4]}


@pytest.fixture(scope="module")
def poses() -> TrackedPoses:
    return tracked_poses_from_frames(FRAMES, SKELETON, fps=FPS, video="clip.mp4")


@pytest.fixture(scope="module")
def load_poses():
    return pytest.importorskip("movement.io.load_poses", reason=MOVEMENT)


@pytest.fixture(scope="module")
def sio():
    return pytest.importorskip("sleap_io", reason=SLEAP_IO)


def _expected_keypoints(track_id: int, t: int) -> np.ndarray:
    return np.array(_mouse(track_id, t, missing=2 if (track_id, t) == (0, 4) else None)["keypoints"], dtype=float)


def test_frames_gather_into_one_column_per_track_with_nan_where_absent(poses):
    assert poses.track_ids == (0, 2, 5) and poses.track_names == ("track_0", "track_2", "track_5")
    assert poses.frame_indices == (0, 1, 2, 3, 4) and poses.fps == 25.0 and poses.video_path == "clip.mp4"
    assert poses.keypoints.shape == (5, 3, 3, 2) and poses.keypoint_scores.shape == (5, 3, 3)
    for n, track_id in enumerate(poses.track_ids):
        for t in range(5):
            if t in PRESENT[track_id]:
                np.testing.assert_array_equal(poses.keypoints[t, n], _expected_keypoints(track_id, t))
                assert poses.scores[t, n] == round(0.8 + 0.01 * track_id, 4)
            else:
                assert np.isnan(poses.keypoints[t, n]).all() and np.isnan(poses.keypoint_scores[t, n]).all()
                assert np.isnan(poses.scores[t, n])
    assert poses.keypoint_scores[4, 0].tolist()[:2] == [0.86, 0.76] and np.isnan(poses.keypoint_scores[4, 0, 2])


def _check_movement_dataset(dataset, poses: TrackedPoses, num_rows: int, rows: list[int]) -> None:
    """The movement dataset holds `poses` at `rows` of `num_rows` frames (NaN elsewhere), names and times."""
    assert dataset.individuals.values.tolist() == list(poses.track_names)
    assert dataset.keypoints.values.tolist() == list(poses.skeleton.keypoint_names)
    np.testing.assert_allclose(dataset.time.values, np.arange(num_rows) / poses.fps)
    position = np.full((num_rows, 2, poses.skeleton.num_keypoints, len(poses.track_ids)), np.nan)
    position[rows] = poses.keypoints.transpose(0, 3, 2, 1)
    confidence = np.full((num_rows, poses.skeleton.num_keypoints, len(poses.track_ids)), np.nan)
    confidence[rows] = poses.keypoint_scores.transpose(0, 2, 1)
    np.testing.assert_allclose(dataset.position.values, position, rtol=1e-6, atol=0)  # NaN where NaN
    np.testing.assert_allclose(dataset.confidence.values, confidence, rtol=1e-6, atol=0)


@pytest.mark.parametrize("format", ["dlc-csv", "dlc-h5", "slp"])
def test_movement_reads_back_the_same_tracks(tmp_path, poses, load_poses, format):
    if format == "slp":
        pytest.importorskip("sleap_io", reason=SLEAP_IO)
    path = export_poses(poses, tmp_path / f"clip{EXPORT_FORMATS[format]}", format)
    software = "SLEAP" if format == "slp" else "DeepLabCut"
    dataset = load_poses.from_file(path, source_software=software, fps=FPS)
    _check_movement_dataset(dataset, poses, 5, list(range(5)))
    if format != "slp":  # DeepLabCut's tables keep float64: exact
        np.testing.assert_array_equal(dataset.position.values, poses.keypoints.transpose(0, 3, 2, 1))


def test_dlc_csv_holds_the_multi_animal_header_and_one_row_per_frame(tmp_path, poses):
    path = tmp_path / "clip.csv"
    write_dlc(poses, path)
    lines = path.read_text().splitlines()
    assert len(lines) == 4 + 5
    assert lines[0] == "scorer" + ",semipose" * 27
    assert lines[1] == "individuals" + "".join(f",track_{i}" * 9 for i in (0, 2, 5))
    assert lines[2] == "bodyparts" + ",nose,nose,nose,left_ear,left_ear,left_ear,right_ear,right_ear,right_ear" * 3
    assert lines[3] == "coords" + ",x,y,likelihood" * 9
    assert lines[5].split(",")[:10] == ["1", "17.425123", "20.5", "0.89", "12.300123", "30.25", "0.79", "22.800123",
                                        "30.75", "0.69"]
    assert lines[5].split(",")[10:19] == [""] * 9  # track 2 is absent in frame 1
    table = read_dlc_csv(path)  # semipose's own DeepLabCut reader agrees
    assert table.individuals == poses.track_names and table.bodyparts == SKELETON.keypoint_names
    np.testing.assert_array_equal(table.xy, poses.keypoints)


def test_dlc_h5_is_the_same_table_under_deeplabcuts_key(tmp_path, poses):
    pytest.importorskip("tables", reason="the .h5 export needs PyTables (movement brings it to the dev extra)")
    path = tmp_path / "clip.h5"
    write_dlc(poses, path)
    stored = pd.read_hdf(path, key="df_with_missing")
    pd.testing.assert_frame_equal(stored, dlc_table(poses))
    assert list(stored.columns.names) == ["scorer", "individuals", "bodyparts", "coords"]
    assert stored.index.tolist() == [0, 1, 2, 3, 4]


def test_frames_missing_from_the_records_are_empty_rows_in_every_format(tmp_path, load_poses):
    pytest.importorskip("sleap_io", reason=SLEAP_IO)
    frames = [{"frame_index": index, "people": [_mouse(3, index)]} for index in (2, 3, 6)]
    poses = tracked_poses_from_frames(frames, SKELETON, fps=FPS, video=tmp_path / "clip.mp4")
    assert poses.frame_indices == (2, 3, 6) and np.isnan(poses.scores).sum() == 0
    for format, suffix in EXPORT_FORMATS.items():
        path = export_poses(poses, tmp_path / f"gaps{suffix}")
        software = "SLEAP" if format == "slp" else "DeepLabCut"
        _check_movement_dataset(load_poses.from_file(path, software, fps=FPS), poses, 7, [2, 3, 6])


def test_slp_holds_skeleton_tracks_and_predicted_instances(tmp_path, poses, sio):
    path = tmp_path / "out" / "clip.slp"
    export_poses(poses, path, "slp")
    labels = sio.load_slp(str(path))
    skeleton = labels.skeletons[0]
    assert skeleton.name == "mouse" and skeleton.node_names == ["nose", "left_ear", "right_ear"]
    assert skeleton.edge_names == [("nose", "left_ear"), ("nose", "right_ear")]
    assert {frozenset(pair) for pair in skeleton.symmetry_names} == {frozenset({"left_ear", "right_ear"})}
    assert [track.name for track in labels.tracks] == ["track_0", "track_2", "track_5"]
    assert [video.filename for video in labels.videos] == [str(Path("clip.mp4").absolute())]
    assert [frame.frame_idx for frame in labels.labeled_frames] == [0, 1, 2, 3, 4]
    for t, frame in enumerate(labels.labeled_frames):
        found = {instance.track.name: instance for instance in frame.instances}
        assert sorted(found) == sorted(f"track_{i}" for i in PRESENT if t in PRESENT[i])
        for track_id in PRESENT:
            if t in PRESENT[track_id]:
                instance = found[f"track_{track_id}"]
                assert type(instance).__name__ == "PredictedInstance"
                assert instance.score == pytest.approx(0.8 + 0.01 * track_id, abs=1e-6)
                n = poses.track_ids.index(track_id)
                np.testing.assert_array_equal(instance.numpy(), poses.keypoints[t, n])
                np.testing.assert_allclose(instance.numpy(scores=True)[:, 2], poses.keypoint_scores[t, n], rtol=1e-6)


def test_a_skeleton_that_never_flips_has_no_symmetries(tmp_path, sio):
    skeleton = Skeleton.from_dict({"keypoints": ["left_paw", "nose"]})  # no mirror for left_paw: never flipped
    frames = [{"frame_index": 0, "people": [{"keypoints": [[1.0, 2.0], [3.0, 4.0]], "keypoint_scores": [1, 1],
                                              "track_id": 7}]}]
    poses = tracked_poses_from_frames(frames, skeleton, video="v.mp4")
    write_slp(poses, tmp_path / "v.slp")
    labels = sio.load_slp(str(tmp_path / "v.slp"))
    assert labels.skeletons[0].symmetries == [] and labels.skeletons[0].edges == []
    assert np.isnan(labels.labeled_frames[0].instances[0].score)  # no person score in the record


@pytest.mark.skipif(not MIRROR_MOUSE.is_dir(), reason="the shared mirror-mouse fixture is not beside the repository")
def test_mirror_mouse_names_and_real_coordinates_survive_every_format(tmp_path, load_poses, sio):
    labels = read_dlc_csv(MIRROR_MOUSE / "CollectedData.csv")  # 17 names such as paw1LH_top, obsHigh_bot
    skeleton = Skeleton.from_dict({"name": "mirror-mouse", "keypoints": list(labels.bodyparts)})
    frames = [{"frame_index": t, "people": [{"score": 1.0, "keypoints": xy[0].tolist(),
                                             "keypoint_scores": np.where(np.isnan(xy[0, :, 0]), np.nan, 1.0),
                                             "track_id": 0}]}
              for t, xy in enumerate(labels.xy[:6])]
    video = MIRROR_MOUSE / "videos" / "test_vid.mp4"
    poses = tracked_poses_from_frames(frames, skeleton, fps=250, video=video)
    assert poses.keypoints[0, 0, 1].tolist() == [253.5, 101.900392541708] and np.isnan(poses.keypoints[0, 0, 4]).all()
    for format, suffix in EXPORT_FORMATS.items():
        path = export_poses(poses, tmp_path / f"mouse{suffix}")
        dataset = load_poses.from_file(path, "SLEAP" if format == "slp" else "DeepLabCut", fps=poses.fps)
        assert dataset.keypoints.values.tolist() == list(labels.bodyparts) and dataset.individuals.values == ["track_0"]
        _check_movement_dataset(dataset, poses, 6, list(range(6)))
    video_back = sio.load_slp(str(tmp_path / "mouse.slp")).videos[0]
    assert video_back.filename == str(video.absolute()) and video_back.shape[:3] == (994, 406, 396)


def test_the_format_follows_the_suffix_and_must_fit_it(tmp_path, poses):
    assert export_poses(poses, tmp_path / "a.CSV").read_text().startswith("scorer,semipose")
    with pytest.raises(ValueError, match=r"a\.h5: the dlc-csv format needs a file ending in \.csv, got '\.h5'"):
        export_poses(poses, tmp_path / "a.h5", "dlc-csv")
    with pytest.raises(ValueError, match=r"b\.csv: unknown export format 'nwb'; expected one of dlc-csv \(\.csv\), "
                                         r"dlc-h5 \(\.h5\), slp \(\.slp\)"):
        export_poses(poses, tmp_path / "b.csv", "nwb")
    with pytest.raises(ValueError, match=r"c\.json: cannot tell the export format from the suffix '\.json'"):
        export_poses(poses, tmp_path / "c.json")
    with pytest.raises(ValueError, match=r"d\.slp: a DeepLabCut table needs a file ending in \.csv or \.h5"):
        write_dlc(poses, tmp_path / "d.slp")
    with pytest.raises(ValueError, match=r"e\.csv: SLEAP labels needs a file ending in \.slp"):
        write_slp(poses, tmp_path / "e.csv")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["a.CSV"]


def _with(poses: TrackedPoses, **changes) -> TrackedPoses:
    fields = {name: getattr(poses, name) for name in TrackedPoses.__dataclass_fields__}
    return TrackedPoses(**{**fields, **changes})


@pytest.mark.parametrize("suffix", [".csv", ".h5", ".slp"])
def test_poses_the_skeleton_cannot_hold_are_refused_naming_the_file(tmp_path, poses, suffix):
    path = tmp_path / f"clip{suffix}"
    two_keypoints = _with(poses, skeleton=Skeleton.from_dict({"name": "pair", "keypoints": ["nose", "tail"]}))
    with pytest.raises(ValueError, match=rf"clip\{suffix}: `keypoints` has shape \(5, 3, 3, 2\); expected \(5, 3, "
                                         r"2, 2\) for 5 frames, 3 tracks and the 2 keypoints of skeleton 'pair'"):
        export_poses(two_keypoints, path)
    nobody = tracked_poses_from_frames([{"frame_index": 0, "people": []}], SKELETON, video="clip.mp4")
    with pytest.raises(ValueError, match=rf"clip\{suffix}: no tracks to export \(no person tracked in any of the 1 "
                                         r"frames\); expected at least one track"):
        export_poses(nobody, path)
    no_frames = _with(poses, keypoints=np.zeros((0, 0, 3, 2)), keypoint_scores=np.zeros((0, 0, 3)),
                      scores=np.zeros((0, 0)), track_ids=(), frame_indices=())
    with pytest.raises(ValueError, match=rf"clip\{suffix}: no frames to export; expected at least one"):
        export_poses(no_frames, path)
    assert not any(tmp_path.iterdir())


def test_slp_needs_the_video_and_csv_needs_one_line_names(tmp_path, poses):
    with pytest.raises(ValueError, match=r"clip\.slp: SLEAP labels tie every frame to a video; expected the "
                                         r"video's path \(TrackedPoses\.video_path\), got None"):
        write_slp(_with(poses, video_path=None), tmp_path / "clip.slp")
    broken = Skeleton.from_dict({"keypoints": ["nose", "left\near", "right_ear"]})
    with pytest.raises(ValueError, match=r"clip\.csv: keypoint names \['left\\near'\] hold a line break"):
        write_dlc(_with(poses, skeleton=broken), tmp_path / "clip.csv")


@pytest.mark.parametrize(("frames", "message"), [
    ([], r"run\.json: no frames; expected at least one frame record"),
    ([{"frame_index": 1, "people": []}, {"frame_index": 1, "people": []}],
     r"run\.json, record 1: expected a `frame_index` integer of 0 or more after frame 1 \(frames in increasing "
     r"order\), got 1"),
    ([{"frame_index": 0, "people": None}], r"run\.json, frame 0: expected `people`, a list of person records"),
    ([{"frame_index": 0, "people": [{"keypoints": BODY.tolist(), "keypoint_scores": [1, 1, 1]}]}],
     r"run\.json, frame 0, person 0: expected an integer `track_id` \(people tracked with semipose\.tracking\), "
     r"got None"),
    ([{"frame_index": 0, "people": [_mouse(1, 0), _mouse(4, 0), _mouse(1, 0)]}],
     r"run\.json, frame 0: track ids \[1\] are given to more than one person; expected one person per track"),
    ([{"frame_index": 0, "people": [{**_mouse(1, 0), "keypoints": [[1.0, 2.0]] * 4}]}],
     r"run\.json, frame 0, person 0: expected `keypoints` of shape \(3, 2\) \(the skeleton's keypoints\), got "
     r"shape \(4, 2\)"),
    ([{"frame_index": 0, "people": [{**_mouse(1, 0), "keypoint_scores": ["high", 1, 1]}]}],
     r"run\.json, frame 0, person 0: expected `keypoint_scores` of shape \(3,\) \(the skeleton's keypoints\), got "
     r"not numbers"),
])
def test_bad_frame_records_name_the_source_frame_and_person(frames, message):
    with pytest.raises(ValueError, match=message):
        tracked_poses_from_frames(frames, SKELETON, source="run.json")


def test_missing_libraries_say_how_to_install_them(tmp_path, poses, monkeypatch):
    monkeypatch.setitem(sys.modules, "sleap_io", None)  # import sleap_io raises ImportError
    monkeypatch.setitem(sys.modules, "tables", None)
    with pytest.raises(ImportError, match=r"pip install 'semipose\[sleap\]'"):
        export_poses(poses, tmp_path / "clip.slp")
    with pytest.raises(ImportError, match=r"DeepLabCut \.h5 tables needs PyTables: pip install 'semipose\[export\]'"):
        export_poses(poses, tmp_path / "clip.h5")
    assert not any(tmp_path.iterdir())


def test_a_failed_write_leaves_no_file(tmp_path, poses, monkeypatch):
    (tmp_path / "clip.csv").write_text("earlier export")

    def fail(table, path, *args, **kwargs):
        Path(path).write_text("scorer,semi")  # half a file
        raise OSError("disk full")

    monkeypatch.setattr(pd.DataFrame, "to_csv", fail)
    with pytest.raises(OSError, match="disk full"):
        write_dlc(poses, tmp_path / "clip.csv")
    assert [path.name for path in tmp_path.iterdir()] == ["clip.csv"]
    assert (tmp_path / "clip.csv").read_text() == "earlier export"
