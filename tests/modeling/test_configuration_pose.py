"""Shared config fields: skeleton facts filled from semipose.skeletons, json round trip, validation."""

import pytest

from semipose.modeling import AssociativeEmbeddingConfig, CenterOffsetConfig
from semipose.skeletons import get_skeleton


@pytest.mark.parametrize("skeleton", ["coco", "crowdpose"])
def test_skeleton_facts_come_from_the_registry(skeleton):
    facts = get_skeleton(skeleton)
    config = CenterOffsetConfig(skeleton=skeleton)
    assert config.num_keypoints == facts.num_keypoints
    assert config.flip_index == list(facts.flip_index)
    assert config.sigmas == list(facts.sigmas)
    assert config.grouping_order == list(facts.grouping_order)


def test_json_round_trip_keeps_every_field(tmp_path):
    config = AssociativeEmbeddingConfig(
        backbone="regnetx_002", skeleton="crowdpose", output_stride=2, tag_threshold=0.5
    )
    config.save_pretrained(tmp_path)
    loaded = AssociativeEmbeddingConfig.from_pretrained(tmp_path)
    assert loaded.to_dict() == config.to_dict()
    assert loaded.model_type == "semipose_associative_embedding"
    assert (loaded.flip_index[:2], loaded.output_stride, loaded.tag_threshold) == ([1, 0], 2, 0.5)


def test_custom_skeleton_with_explicit_facts():
    config = CenterOffsetConfig(
        skeleton="hand", num_keypoints=2, flip_index=[1, 0], sigmas=[0.1, 0.1], grouping_order=[1, 0]
    )
    assert config.num_keypoints == 2


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"skeleton": "coco", "num_keypoints": 14}, "Skeleton 'coco' has 17 keypoints, got num_keypoints=14"),
        ({"skeleton": "hand"}, r"'hand' is not registered.*pass \['num_keypoints', 'sigmas', 'grouping_order'\]"),
        ({"skeleton": "hand", "num_keypoints": 2, "sigmas": [0.1, 0.1], "grouping_order": [0, 1], "flip_test": True},
         "'hand' is never mirrored \\(no flip_index\\): flip_test must be off"),
        (
            {"skeleton": "hand", "num_keypoints": 2, "flip_index": [1, 0], "sigmas": [0.1], "grouping_order": [0, 1]},
            "sigmas must have num_keypoints=2 entries, got 1",
        ),
        ({"output_stride": 8}, r"output_stride must be one of \(2, 4\), got 8"),
    ],
)
def test_inconsistent_config_raises(kwargs, message):
    with pytest.raises(ValueError, match=message):
        AssociativeEmbeddingConfig(**kwargs)
