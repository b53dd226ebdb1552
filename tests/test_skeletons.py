"""Tests of skeletons as data (`semipose.skeletons`) and of left/right read off keypoint names
(`semipose.keypoint_sides`): round trips through every form a skeleton travels in, flip inference, defaults,
and bad skeleton files named with the field at fault."""

import json
import logging
import re
from types import SimpleNamespace

import pytest
import yaml

from semipose.keypoint_sides import infer_flip_index, mirror_candidates, side_of
from semipose.modeling import CenterOffsetConfig
from semipose.skeletons import (
    DEFAULT_SIGMA,
    Skeleton,
    get_skeleton,
    load_skeleton,
    resolve_skeleton,
)

MOUSE = {
    "name": "mouse",
    "keypoints": ["nose", "left_ear", "right_ear", "neck", "tail"],
    "limbs": [["nose", "left_ear"], ["nose", "right_ear"], ["nose", "neck"], ["neck", "tail"]],
    "sigmas": [0.026, 0.035, 0.035, 0.05, 0.08],
}
SIDE_VIEW = {"name": "side_view", "keypoints": ["snout", "paw1LH_top", "paw1LH_bottom", "tail"],
             "limbs": [["snout", "tail"]]}
"""DeepLabCut-style names whose side is a code (`LH`: left hind): never paired, so never mirrored."""
UNMIRRORED_WARNING = (
    "skeleton: sided keypoint names ['paw1LH_top', 'paw1LH_bottom'] have no mirror among the names and no "
    "`flip_pairs` are given: this skeleton is never flipped (no flip augmentation, no flip test)."
)


def _skeleton(data: dict) -> Skeleton:
    return Skeleton.from_dict(data)


ROUND_TRIP = {
    "coco": lambda: get_skeleton("coco"),
    "crowdpose": lambda: get_skeleton("crowdpose"),
    "mouse": lambda: _skeleton(MOUSE),
    "side_view": lambda: _skeleton(SIDE_VIEW),
}


# Round trips: file format, COCO category, model config.


@pytest.mark.parametrize("name", sorted(ROUND_TRIP))
def test_the_file_format_reads_back_equal(name):
    skeleton = ROUND_TRIP[name]()
    assert Skeleton.from_dict(skeleton.to_dict()) == skeleton


@pytest.mark.parametrize("name", ["coco", "crowdpose"])
def test_a_registered_skeletons_coco_category_reads_back_as_the_registered_skeleton(name):
    skeleton = get_skeleton(name)
    category = skeleton.coco_category(category_id=3)
    assert (category["id"], category["name"]) == (3, "person")
    assert Skeleton.from_coco_category(category) is skeleton


def test_a_custom_skeletons_coco_category_numbers_limbs_from_1_and_reads_back_with_its_facts():
    mouse = _skeleton(MOUSE)
    category = mouse.coco_category()
    assert category == {"id": 1, "name": "mouse", "supercategory": "mouse", "keypoints": MOUSE["keypoints"],
                        "skeleton": [[1, 2], [1, 3], [1, 4], [4, 5]]}
    assert Skeleton.from_coco_category(category, sigmas=MOUSE["sigmas"]) == mouse
    defaults = Skeleton.from_coco_category(category)  # a COCO category holds no sigmas: the default each
    assert defaults.sigmas == (DEFAULT_SIGMA,) * 5
    assert (defaults.flip_index, defaults.limbs) == (mouse.flip_index, mouse.limbs)


@pytest.mark.parametrize("name", sorted(ROUND_TRIP))
def test_a_model_config_carries_the_whole_skeleton(name):
    skeleton = ROUND_TRIP[name]()
    config = CenterOffsetConfig(backbone="regnetx_002", neck_channels=16, **skeleton.config_fields())
    assert Skeleton.from_config(config) == skeleton


def test_a_config_saved_with_a_skeleton_name_only_gives_the_registered_skeleton():
    config = SimpleNamespace(skeleton="crowdpose")  # a config of before configs held keypoint names
    assert Skeleton.from_config(config) is get_skeleton("crowdpose")


# Left/right from names.


@pytest.mark.parametrize(("name", "side", "mirrors"), [
    ("left_ear", "left", ["right_ear"]),
    ("leftear", "left", ["rightear"]),
    ("earleft", "center", []),  # a word that merely ends in a side (upright, cleft) is not sided
    ("Lefteye", "left", ["Righteye"]),
    ("LeftEar", "left", ["RightEar"]),
    ("LEFT_EAR", "left", ["RIGHT_EAR"]),
    ("ear_l", "left", ["ear_r"]),
    ("EarR", "right", ["EarL"]),
    ("hip.right", "right", ["hip.left"]),
    ("Left-Ear", "left", ["Right-Ear"]),
    ("nose", "center", []),
    ("paw1LH_top", "sided code", []),
])
def test_side_words_and_mirror_names(name, side, mirrors):
    assert (side_of(name), mirror_candidates(name)) == (side, mirrors)


@pytest.mark.parametrize("names", [
    ("left_ear", "right_ear", "nose"),
    ("leftear", "rightear", "nose"),
    ("LeftEar", "RightEar", "nose"),
    ("ear_l", "ear_r", "nose"),
])
def test_mirror_pairs_are_inferred_from_the_names(names, caplog):
    with caplog.at_level(logging.WARNING, logger="semipose.skeletons"):
        skeleton = Skeleton.from_dict({"keypoints": list(names)})
    assert (skeleton.flip_index, skeleton.can_flip, caplog.records) == ((1, 0, 2), True, [])


def test_a_keypoint_without_a_side_maps_to_itself():
    skeleton = Skeleton.from_dict({"keypoints": ["tail", "right_paw", "nose", "left_paw", "neck"]})
    assert skeleton.flip_index == (0, 3, 2, 1, 4)


def test_a_sided_code_is_not_paired_and_leaves_the_skeleton_unmirrored_with_a_warning(caplog):
    with caplog.at_level(logging.WARNING, logger="semipose.skeletons"):
        skeleton = Skeleton.from_dict(SIDE_VIEW)
    assert (skeleton.flip_index, skeleton.can_flip) == (None, False)
    assert [record.getMessage() for record in caplog.records] == [UNMIRRORED_WARNING]
    assert infer_flip_index(SIDE_VIEW["keypoints"]) == (None, ["paw1LH_top", "paw1LH_bottom"])


def test_a_sided_name_without_its_mirror_leaves_the_skeleton_unmirrored():
    assert infer_flip_index(["nose", "left_ear"]) == (None, ["left_ear"])


@pytest.mark.parametrize(("names", "flip_pairs", "flip_index"), [
    (["left_ear", "right_ear", "nose"], [], (0, 1, 2)),  # no pair at all, against the names
    (["left_ear", "right_ear", "nose"], [["left_ear", "nose"]], (2, 1, 0)),
    (["snout", "paw1LH_top", "paw1RH_top"], [["paw1LH_top", "paw1RH_top"]], (0, 2, 1)),
    (["nose", "left_ear"], [], (0, 1)),  # an unpaired sided name maps to itself when pairs are given
])
def test_explicit_flip_pairs_win_over_the_names(names, flip_pairs, flip_index, caplog):
    with caplog.at_level(logging.WARNING, logger="semipose.skeletons"):
        skeleton = Skeleton.from_dict({"keypoints": names, "flip_pairs": flip_pairs})
    assert (skeleton.flip_index, caplog.records) == (flip_index, [])


def test_horizontal_flip_false_never_mirrors_even_with_pairs():
    data = {"keypoints": ["left_ear", "right_ear"], "flip_pairs": [["left_ear", "right_ear"]],
            "horizontal_flip": False}
    skeleton = Skeleton.from_dict(data)
    assert (skeleton.flip_index, skeleton.to_dict()["horizontal_flip"]) == (None, False)


def test_body_sides_color_limbs():
    coco = get_skeleton("coco")
    assert [coco.side(k) for k in (0, 1, 2)] == ["center", "left", "right"]
    assert [coco.limb_side(limb) for limb in ((5, 7), (6, 8), (1, 2), (0, 1))] == ["left", "right", "center", "center"]


# Defaults: sigmas, grouping order.


@pytest.mark.parametrize(("sigmas", "expected"), [
    (None, (DEFAULT_SIGMA,) * 3),
    (0.05, (0.05,) * 3),
    (1, (1.0,) * 3),
    ([0.1, 0.2, 0.3], (0.1, 0.2, 0.3)),
])
def test_sigmas_default_one_number_or_one_per_keypoint(sigmas, expected):
    data = {"keypoints": ["a", "b", "c"]} | ({} if sigmas is None else {"sigmas": sigmas})
    assert Skeleton.from_dict(data).sigmas == expected


@pytest.mark.parametrize(("keypoints", "limbs", "order"), [
    # nose has the most limbs; breadth-first from it; `tag` no limb reaches comes last
    (["tail", "nose", "left_ear", "right_ear", "neck", "tag"],
     [["nose", "left_ear"], ["nose", "right_ear"], ["nose", "neck"], ["neck", "tail"]],
     (1, 2, 3, 4, 0, 5)),
    # two trees: the best-connected root's first, then the next by (most limbs, index)
    (["p", "q", "r", "s", "t"], [["r", "s"], ["r", "t"], ["p", "q"]], (2, 3, 4, 0, 1)),
    # no limbs: keypoint order
    (["a", "b", "c"], [], (0, 1, 2)),
])
def test_grouping_order_walks_the_limb_tree(keypoints, limbs, order):
    assert Skeleton.from_dict({"keypoints": keypoints, "limbs": limbs}).grouping_order == order


def test_a_given_grouping_order_is_kept():
    skeleton = Skeleton.from_dict({**MOUSE, "grouping_order": ["neck", "tail", "nose", "right_ear", "left_ear"]})
    assert skeleton.grouping_order == (3, 4, 0, 2, 1)


# Files and names.


@pytest.mark.parametrize("suffix", [".yaml", ".yml", ".json"])
def test_skeleton_files_load_and_are_named_after_the_file_by_default(tmp_path, suffix):
    path = tmp_path / f"lab_mouse{suffix}"
    data = {key: value for key, value in MOUSE.items() if key != "name"}
    path.write_text(json.dumps(data) if suffix == ".json" else yaml.safe_dump(data))
    skeleton = load_skeleton(path)
    assert skeleton == Skeleton.from_dict({**MOUSE, "name": "lab_mouse"})
    assert resolve_skeleton(str(path)) == resolve_skeleton(path) == skeleton


def test_a_name_in_the_file_wins_over_its_stem(tmp_path):
    path = tmp_path / "file.yaml"
    path.write_text(yaml.safe_dump(MOUSE))
    assert load_skeleton(path) == Skeleton.from_dict(MOUSE)


def test_resolve_skeleton_takes_every_form():
    mouse = Skeleton.from_dict(MOUSE)
    assert resolve_skeleton(mouse) is mouse
    assert resolve_skeleton(MOUSE) == mouse
    assert resolve_skeleton("coco") is get_skeleton("coco")


def test_an_unknown_skeleton_name_lists_the_registered_ones():
    message = "Unknown skeleton 'cocoa': expected one of ['coco', 'crowdpose'] or a skeleton file (.json, .yaml, .yml)."
    with pytest.raises(ValueError, match=re.escape(message)):
        get_skeleton("cocoa")


# Bad input: a ValueError naming the file and the field.


BAD_FILES = [
    ({"keypoints": ["nose", "ear", "nose"]}, r"duplicate keypoint names \['nose'\]"),
    ({"keypoints": []}, r"`keypoints` must be a non-empty list of names, got \[\]"),
    ({"name": "x"}, r"`keypoints` must be a non-empty list of names, got None"),
    ({"keypoints": ["nose", 3]}, r"every keypoint name must be a non-empty string, got \['nose', 3\]"),
    ({"keypoints": ["nose", "tail"], "limbs": [["nose", "paw"]]},
     r"`limbs` names 'paw', which is not a keypoint; keypoints: \['nose', 'tail'\]"),
    ({"keypoints": ["nose", "tail"], "limbs": [["nose"]]}, r"`limbs` entry \['nose'\] is not a pair"),
    ({"keypoints": ["left_ear", "right_ear", "nose"], "flip_pairs": [["left_ear", "right_ear", "nose"]]},
     r"`flip_pairs` entry \['left_ear', 'right_ear', 'nose'\] is not a pair"),
    ({"keypoints": ["left_ear", "right_ear", "nose"], "flip_pairs": [["left_ear", "right_ear"], ["left_ear", "nose"]]},
     r"`flip_pairs` must pair distinct keypoints, each at most once; \['left_ear', 'nose'\] breaks that"),
    ({"keypoints": ["left_ear", "right_ear", "nose"], "flip_pairs": [["nose", "nose"]]},
     r"`flip_pairs` must pair distinct keypoints, each at most once; \['nose', 'nose'\] breaks that"),
    ({"keypoints": ["a", "b", "c"], "sigmas": [0.1, 0.2]},
     r"`sigmas` must be one positive number or 3 of them \(one per keypoint\), got \[0.1, 0.2\]"),
    ({"keypoints": ["a", "b", "c"], "sigmas": [0.1, 0, 0.2]},
     r"`sigmas` must be one positive number .*\[0.1, 0, 0.2\]"),
    ({"keypoints": ["a", "b", "c"], "sigmas": -0.1}, r"`sigmas` must be one positive number .*\[-0.1, -0.1, -0.1\]"),
    ({"keypoints": ["a", "b", "c"], "sigmas": True}, r"`sigmas` must be one positive number .*got True"),
    ({"keypoints": ["a", "b", "c"], "grouping_order": ["c", "a"]},
     r"`grouping_order` must list each keypoint name once, got \['c', 'a'\]"),
    ({"keypoints": ["a", "b"], "color": "red", "bones": []},
     r"unknown fields \['bones', 'color'\]; expected some of \['flip_pairs', 'grouping_order', 'horizontal_flip', "
     r"'keypoints', 'limbs', 'name', 'oks_area_from_bbox', 'sigmas'\]"),
    ({**get_skeleton("coco").to_dict(), "sigmas": 0.05},
     r"the name 'coco' is semipose's registered skeleton, but these facts differ from it; give the skeleton "
     "another name"),
    ({"name": 7, "keypoints": ["a"]}, r"`name` must be a non-empty string, got 7"),
    (["nose", "tail"], r"expected a mapping of skeleton fields, got list"),
]


@pytest.mark.parametrize(("data", "message"), BAD_FILES)
def test_a_bad_skeleton_file_names_itself_and_the_field(tmp_path, data, message):
    path = tmp_path / "mouse.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ValueError, match=f"^{re.escape(str(path))}: {message}"):
        load_skeleton(path)


@pytest.mark.parametrize(("file_name", "text"), [
    ("mouse.yaml", "keypoints: [nose, tail\n"),
    ("mouse.json", '{"keypoints": ["nose", "tail"]'),
])
def test_an_unreadable_skeleton_file_is_named(tmp_path, file_name, text):
    path = tmp_path / file_name
    path.write_text(text)
    with pytest.raises(ValueError, match=f"^{re.escape(str(path))}: not a readable {path.suffix[1:]} file"):
        load_skeleton(path)


def test_a_missing_skeleton_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=f"^Skeleton file {re.escape(str(tmp_path / 'no.yaml'))} does not"):
        resolve_skeleton(str(tmp_path / "no.yaml"))


def test_a_coco_category_limb_is_numbered_from_1():
    category = {"name": "mouse", "keypoints": ["nose", "tail"], "skeleton": [[0, 1]]}
    with pytest.raises(ValueError, match=re.escape(
            "ann.json: category id 1: limb [0, 1] names a keypoint outside 1..2 (COCO numbers them from 1).")):
        Skeleton.from_coco_category(category, "ann.json: category id 1")


def test_facts_that_disagree_on_k_are_refused():
    with pytest.raises(ValueError, match=re.escape("Skeleton 'x': flip_index [1, 1] is not a swap of pairs")):
        Skeleton(name="x", keypoint_names=("a", "b"), flip_index=(1, 1), sigmas=(0.1, 0.1), limbs=(),
                 grouping_order=(0, 1))


@pytest.mark.parametrize("names", [["Lefteye", "Righteye", "nose"], ["LEFTEYE", "RIGHTEYE", "NOSE"]])
def test_capitalized_one_word_sides_are_paired(names):
    assert Skeleton.from_dict({"keypoints": names}).flip_index == (1, 0, 2)


@pytest.mark.parametrize("field", ["oks_area_from_bbox", "horizontal_flip"])
def test_boolean_fields_must_be_booleans(tmp_path, field):
    path = tmp_path / "mouse.json"
    path.write_text(json.dumps({"keypoints": ["left_ear", "right_ear"], field: "false"}))
    with pytest.raises(ValueError, match=f"^{re.escape(str(path))}: `{field}`"):
        load_skeleton(path)
