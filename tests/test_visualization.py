"""Tests of the shared drawing helpers: side colors, track colors, thresholds, score labels, grids."""

import numpy as np
import pytest
from PIL import Image

from semipose.skeletons import get_skeleton
from semipose.visualization import SIDE_COLORS, TRACK_COLORS, draw_people, make_grid, track_color

COCO = get_skeleton("coco")


def _person(points: dict[int, tuple[float, float, float]]) -> np.ndarray:
    keypoints = np.zeros((1, COCO.num_keypoints, 3))
    for k, point in points.items():
        keypoints[0, k] = point
    return keypoints


def test_limbs_are_colored_by_body_side():
    # left shoulder (5) - left elbow (7), right shoulder (6) - right elbow (8), shoulders (5, 6)
    keypoints = _person({5: (40, 10, 2), 7: (40, 50, 2), 6: (10, 10, 2), 8: (10, 50, 2)})
    drawn = draw_people(Image.new("RGB", (60, 60)), keypoints, COCO, line_width=1)
    assert drawn.getpixel((40, 30)) == SIDE_COLORS["left"]
    assert drawn.getpixel((10, 30)) == SIDE_COLORS["right"]
    assert drawn.getpixel((25, 10)) == SIDE_COLORS["center"]
    assert drawn.getpixel((40, 50)) == SIDE_COLORS["left"]  # the keypoint dot


def test_a_tracked_person_is_drawn_whole_in_its_track_color():
    # the same limbs as above, one person; track 13 takes the fourth color (ids repeat the palette every ten)
    keypoints = _person({5: (40, 10, 2), 7: (40, 50, 2), 6: (10, 10, 2), 8: (10, 50, 2)})
    drawn = draw_people(Image.new("RGB", (60, 60)), keypoints, COCO, line_width=1, track_ids=[13])
    assert track_color(13) == TRACK_COLORS[3] == (0, 130, 200) and track_color(0) == TRACK_COLORS[0]
    for point in ((40, 30), (10, 30), (25, 10), (40, 50)):  # left limb, right limb, center limb, keypoint dot
        assert drawn.getpixel(point) == TRACK_COLORS[3]
    two = np.concatenate([keypoints, keypoints + [[[0, 0, 0]]]])
    two[1, :, 0] += 5
    drawn = draw_people(Image.new("RGB", (60, 60)), two, COCO, line_width=1, track_ids=[0, 1])
    assert drawn.getpixel((40, 30)) == TRACK_COLORS[0] and drawn.getpixel((45, 30)) == TRACK_COLORS[1]


def test_a_track_label_precedes_the_score():
    keypoints = _person({5: (20, 40, 2), 6: (50, 40, 2)})
    scored = np.asarray(draw_people(Image.new("RGB", (80, 60)), keypoints, COCO, scores=[0.87]))
    labeled = np.asarray(draw_people(Image.new("RGB", (80, 60)), keypoints, COCO, scores=[0.87], track_ids=[3]))
    texts = [np.argwhere((picture[:38] > 0).any(axis=-1)) for picture in (scored, labeled)]  # above the keypoints
    # "#3: 0.87" starts where "0.87" does, above the left keypoint, and reaches further right
    assert texts[0][:, 1].min() == texts[1][:, 1].min() >= 18 and texts[1][:, 1].max() > texts[0][:, 1].max() + 10


def test_threshold_hides_keypoints_and_their_limbs():
    image = Image.new("RGB", (60, 60), (9, 9, 9))
    keypoints = _person({5: (40, 10, 0.2), 7: (40, 50, 0.9)})
    drawn = draw_people(image, keypoints, COCO, threshold=0.3, line_width=1)
    assert drawn.getpixel((40, 30)) == (9, 9, 9)
    assert drawn.getpixel((40, 10)) == (9, 9, 9)
    assert drawn.getpixel((40, 50)) == SIDE_COLORS["left"]
    assert image.getpixel((40, 50)) == (9, 9, 9)  # the input is not modified


def test_scores_are_written_above_the_person():
    keypoints = _person({5: (20, 40, 2), 6: (50, 40, 2)})
    plain = np.asarray(draw_people(Image.new("RGB", (80, 60)), keypoints, COCO))
    scored = np.asarray(draw_people(Image.new("RGB", (80, 60)), keypoints, COCO, scores=[0.87]))
    changed = np.argwhere((plain != scored).any(axis=-1))
    assert len(changed) > 0 and changed[:, 0].max() < 40 and changed[:, 1].min() >= 18


def test_bad_inputs_name_the_expected_shape():
    expected = r"shape \[M, 17, 3\] for the 'coco' skeleton, got \[1, 14, 3\]"
    with pytest.raises(ValueError, match=expected):
        draw_people(Image.new("RGB", (8, 8)), np.zeros((1, 14, 3)), COCO)
    with pytest.raises(ValueError, match=r"scores has 2 entries, expected one per person \(1\)"):
        draw_people(Image.new("RGB", (8, 8)), np.zeros((1, 17, 3)), COCO, scores=[1, 2])
    with pytest.raises(ValueError, match=r"track_ids has 0 entries, expected one per person \(1\)"):
        draw_people(Image.new("RGB", (8, 8)), np.zeros((1, 17, 3)), COCO, track_ids=[])
    assert draw_people(Image.new("L", (8, 8)), np.zeros((0, 17, 3)), COCO).mode == "RGB"


def test_make_grid_tiles_row_by_row():
    tiles = [Image.new("RGB", (10, 6), (value, 0, 0)) for value in (50, 100, 150)]
    tiles.append(Image.new("RGB", (4, 12), (0, 200, 0)))
    grid = make_grid(tiles, columns=3, padding=2, background=(1, 2, 3))
    assert grid.size == (3 * 10 + 2 * 2, 2 * 12 + 2)
    assert grid.getpixel((0, 0)) == (50, 0, 0)
    assert grid.getpixel((12, 0)) == (100, 0, 0)
    assert grid.getpixel((24, 5)) == (150, 0, 0)
    assert grid.getpixel((0, 14)) == (0, 200, 0)
    assert grid.getpixel((10, 0)) == (1, 2, 3)
    assert make_grid(tiles[:2], columns=5).size == (22, 6)
    with pytest.raises(ValueError, match="at least one image"):
        make_grid([], columns=2)
    with pytest.raises(ValueError, match="columns must be >= 1, got 0"):
        make_grid(tiles, columns=0)
