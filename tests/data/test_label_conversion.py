"""Tests of what the label-file converters share: keypoint arrays, padded boxes, COCO dicts, the hold-out."""

import numpy as np
import pytest

from semipose.data.label_conversion import (
    BOX_PADDING,
    LabeledImage,
    coco_dict,
    convert_labels,
    hold_out_validation,
    keypoint_box,
    keypoints_from_xy,
)
from semipose.skeletons import Skeleton

SKELETON = Skeleton.from_dict({"name": "mouse", "keypoints": ["nose", "left_ear", "right_ear"],
                               "limbs": [["nose", "left_ear"], ["nose", "right_ear"]]})
NAN = np.nan


def _image(name: str, *instances: list[list[float]], size=(100, 80)) -> LabeledImage:
    return LabeledImage(name, *size, [keypoints_from_xy(np.array(xy, dtype=float)) for xy in instances],
                        f"labels.csv row {name}")


def test_keypoints_from_xy_marks_labeled_2_and_zeroes_unlabeled():
    keypoints = keypoints_from_xy(np.array([[1.5, 2.0], [NAN, NAN], [0.0, 0.0]]))
    assert keypoints.tolist() == [[1.5, 2.0, 2.0], [0.0, 0.0, 0.0], [0.0, 0.0, 2.0]]


def test_keypoint_box_pads_by_the_longer_side_and_clips_to_the_image():
    keypoints = np.array([[20.0, 30.0, 2], [60.0, 40.0, 2], [99.0, 99.0, 0]])  # the unlabeled one does not count
    assert BOX_PADDING == 0.1
    assert keypoint_box(keypoints, 100, 80) == [16.0, 26.0, 48.0, 18.0]  # 40 x 10 tight box, 4 px each side
    near_edge = np.array([[1.0, 70.0, 2], [41.0, 78.0, 2]])
    assert keypoint_box(near_edge, 100, 80) == [-0.5, 66.0, 45.5, 13.5]  # clipped at -0.5 and H - 0.5 = 79.5


def test_one_labeled_keypoint_gets_the_padding_of_the_image():
    box = keypoint_box(np.array([[50.0, 40.0, 2], [0.0, 0.0, 0]]), 100, 80)
    assert box == [40.0, 30.0, 20.0, 20.0]  # 10% of the image's longer side (100) on each side


def test_coco_dict_numbers_images_by_file_name_and_drops_instances_without_labels():
    images = [
        _image("b.png", [[10, 10], [30, 20], [NAN, NAN]], [[NAN, NAN]] * 3),
        _image("a.png"),  # a labeled image without animals stays
    ]
    coco = coco_dict(images, SKELETON)
    assert coco["categories"] == [SKELETON.coco_category()]
    assert coco["images"] == [{"id": 1, "file_name": "a.png", "width": 100, "height": 80},
                              {"id": 2, "file_name": "b.png", "width": 100, "height": 80}]
    assert coco["annotations"] == [{
        "id": 1, "image_id": 2, "category_id": 1, "iscrowd": 0, "num_keypoints": 2,
        "keypoints": [10.0, 10.0, 2.0, 30.0, 20.0, 2.0, 0.0, 0.0, 0.0],
        "bbox": [8.0, 8.0, 24.0, 14.0], "area": 24.0 * 14.0,
    }]


def test_coco_dict_refuses_an_image_labeled_twice_naming_both_sources():
    with pytest.raises(ValueError, match=r"labels.csv row a.png: labels the image 'a.png' that labels.csv row "
                                         r"a.png labels too"):
        coco_dict([_image("a.png"), _image("a.png")], SKELETON)
    with pytest.raises(ValueError, match=r"shape \(2, 3\), expected \(3, 3\) for the 'mouse' skeleton"):
        coco_dict([_image("a.png", [[1, 2], [3, 4]])], SKELETON)


def _coco(count: int) -> dict:
    return coco_dict([_image(f"{index:02d}.png", [[index, 1], [2, 3], [4, 5]]) for index in range(count)], SKELETON)


def test_hold_out_draws_a_seeded_fraction_of_the_sorted_file_names():
    train, validation, record = hold_out_validation(_coco(20), val_fraction=0.1, seed=3)
    names = [f"{index:02d}.png" for index in range(20)]
    expected = sorted(names[index] for index in np.random.default_rng(3).permutation(20)[:2])
    assert [image["file_name"] for image in validation["images"]] == expected
    assert len(train["images"]) == 18 and not {image["file_name"] for image in train["images"]} & set(expected)
    assert {a["image_id"] for a in validation["annotations"]} == {image["id"] for image in validation["images"]}
    assert record == ("2 of 20 labeled images, the first of numpy.random.default_rng(3).permutation of the sorted "
                      "file names (val_fraction 0.1)")
    assert hold_out_validation(_coco(20), val_fraction=0.1, seed=3)[1] == validation  # the same seed, the same split


@pytest.mark.parametrize(("count", "fraction", "held_out"), [(5, 0.1, 1), (3, 0.9, 2), (90, 0.1, 9), (70, 0.1, 7)])
def test_hold_out_keeps_at_least_one_image_on_each_side(count, fraction, held_out):
    train, validation, _ = hold_out_validation(_coco(count), val_fraction=fraction)
    assert (len(train["images"]), len(validation["images"])) == (count - held_out, held_out)


def test_hold_out_of_listed_files():
    train, validation, record = hold_out_validation(_coco(4), val_files=["01.png", "03.png"])
    assert [image["file_name"] for image in validation["images"]] == ["01.png", "03.png"]
    assert [image["file_name"] for image in train["images"]] == ["00.png", "02.png"]
    assert record == "the 2 listed images (val_files) of 4 labeled images"


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"val_files": ["01.png", "missing.png"]}, r"Validation files \['missing.png'\] are not among the 4 labeled "
                                               r"images \(e.g. \['00.png', '01.png', '02.png'\]\)"),
    ({"val_files": ["00.png", "01.png", "02.png", "03.png"]}, "fewer than all 4 labeled images, got 4"),
    ({"val_fraction": 1.0}, r"val_fraction must be in \(0, 1\), got 1.0"),
    ({"val_fraction": 0}, r"val_fraction must be in \(0, 1\), got 0"),
])
def test_hold_out_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        hold_out_validation(_coco(4), **kwargs)


def test_a_single_image_cannot_be_split():
    with pytest.raises(ValueError, match="Only 1 labeled image: a validation image cannot be held out"):
        hold_out_validation(_coco(1))


def test_convert_labels_records_the_label_files_and_the_hold_out(tmp_path):
    images = [_image(f"{index}.png", [[1, 2], [3, 4], [5, 6]]) for index in range(10)]
    converted = convert_labels(images, tmp_path, SKELETON, [tmp_path / "a.csv", tmp_path / "b.csv"], seed=1)
    files = f"{tmp_path / 'a.csv'}, {tmp_path / 'b.csv'}"
    assert converted.sources == {
        "train_annotations": files, "val_annotations": files,
        "validation": "1 of 10 labeled images, the first of numpy.random.default_rng(1).permutation of the sorted "
                      "file names (val_fraction 0.1)",
    }
    assert (converted.image_root, converted.skeleton) == (tmp_path.resolve(), SKELETON)
    assert len(converted.train["images"]) + len(converted.validation["images"]) == 10
