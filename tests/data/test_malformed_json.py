"""Property tests of the converters on malformed COCO json: one random defect in the real fixture (a wrong type,
a missing key, keypoints of the wrong length, a non-positive size, a duplicate id, a broken ignore region) gives
either valid rows or a ValueError / FileNotFoundError naming the file and the record; never an error from deep
inside a library, never a half-written or changed output folder."""

import copy
import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from pycocotools import mask as mask_utils

from semipose.data.coco_format import compressed_rle_runs, read_coco_keypoints
from semipose.data.dataset_folder import prepare_dataset_folder

SECTIONS = {"images": "image", "annotations": "annotation", "categories": "category"}
FIELDS = {
    "images": ["id", "file_name", "width", "height", "crowdIndex"],
    "annotations": ["id", "image_id", "keypoints", "bbox", "area", "iscrowd", "segmentation"],
    "categories": ["id", "keypoints"],
}
KINDS = {  # defect -> the sections it applies to
    "replace": sorted(SECTIONS), "delete": sorted(SECTIONS), "not a record": sorted(SECTIONS),
    "keypoints length": ["annotations", "categories"], "size": ["images"], "duplicate id": ["images", "annotations"],
    "region": ["annotations"],
}
CLEAR_ERRORS = (ValueError, FileNotFoundError)
SETTINGS = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])

NASTY = [None, True, "", "x", [], {}, 1.5, -1, 0, 2**31, 2**63, -(2**63) - 1, 2**70, 1e39, -1e300,
         [0, 0, 1e30, 1e30], [1e39, 1.0, 2] * 17, [1.0, 1.0, 2] * 16 + [1.0, 1.0, 3]]
JUNK = st.one_of(
    st.sampled_from(NASTY), st.integers(-(2**70), 2**70), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=4),
    st.lists(st.one_of(st.integers(-3, 3), st.floats(-1e40, 1e40), st.text(max_size=2)), max_size=5),
)
RLE_COUNTS = st.one_of(st.text(max_size=8), st.sampled_from(["", "0", "abc", "PP0"]),
                       st.lists(st.integers(-1, 400000), max_size=6))


def apply_defect(base: dict, kind: str, section: str, index: int, field: str, value) -> tuple[dict, list[str]]:
    """A copy of `base` with one defect; and the names an error about it may give its record."""
    document = copy.deepcopy(base)
    records = document[section]
    index %= len(records)
    record = records[index]
    names = [f"{section}[{index}]", f"{SECTIONS[section]} id {record['id']}"]
    if kind == "replace":
        record[field] = value
    elif kind == "delete":
        record.pop(field, None)
    elif kind == "keypoints length":
        record["keypoints"] = [1] * value
    elif kind == "size":
        record[field] = value
    elif kind == "duplicate id":
        record["id"] = records[(index + 1) % len(records)]["id"]
    elif kind == "not a record":
        records[index] = value
    elif kind == "region":
        image = next(image for image in base["images"] if image["id"] == record["image_id"])
        record["iscrowd"] = 1
        record["segmentation"] = {"size": [image["height"], image["width"]], "counts": value}
    if isinstance(records[index], dict) and isinstance(records[index].get("id"), int):
        names.append(f"{SECTIONS[section]} id {records[index]['id']}")
    if section == "images" and kind in ("replace", "delete", "duplicate id"):
        names.append("annotation id")  # annotations of an image whose id changed point nowhere
    return document, names


CASES = [(kind, section, field) for kind in ("replace", "delete") for section in FIELDS for field in FIELDS[section]]
CASES += [("not a record", section, None) for section in SECTIONS] + [("region", "annotations", "segmentation")]
CASES += [("keypoints length", section, "keypoints") for section in KINDS["keypoints length"]]
CASES += [("size", "images", "width"), ("size", "images", "height")]
CASES += [("duplicate id", section, "id") for section in KINDS["duplicate id"]]


def values(kind: str) -> st.SearchStrategy:
    """What a defect of `kind` puts in its field."""
    return {
        "keypoints length": st.integers(0, 60).filter(lambda n: n not in (17, 51)),
        "size": st.integers(-(2**40), 0),
        "region": RLE_COUNTS,
    }.get(kind, JUNK)


@st.composite
def defects(draw, base: dict) -> tuple[dict, list[str]]:
    """One random defect of `apply_defect` in `base`."""
    kind, section, field = draw(st.sampled_from(CASES))
    return apply_defect(base, kind, section, draw(st.integers(0, 20)), field, draw(values(kind)))


@pytest.fixture(scope="module")
def base(coco_fixture_dir) -> dict:
    return json.loads((coco_fixture_dir / "test_coco.json").read_text())


@pytest.fixture(scope="module")
def work_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("malformed")


def _check_clear(error: Exception, file: Path, names: list[str]) -> None:
    """The error names the file and the defective record (or the record that refers to it)."""
    message = str(error)
    assert isinstance(error, CLEAR_ERRORS), f"{type(error).__name__} from deep inside: {message}"
    assert str(file) in message, message
    assert any(name in message for name in names), f"expected one of {names} in: {message}"


def _check_storable(rows: list[dict]) -> None:
    """Accepted rows hold only numbers that survive as float32, ids that fit int64 and whole-image masks."""
    for row in rows:
        numbers = [row["keypoints"], row["bboxes"], row["areas"], row["ignore_bboxes"], row["ignore_areas"]]
        assert all(np.isfinite(np.asarray(values, np.float32)).all() for values in numbers), row["image_id"]
        ids = [row["image_id"], *row["annotation_ids"], *row["ignore_annotation_ids"]]
        assert all(-(2**63) <= value < 2**63 for value in ids), ids
        pixels = row["height"] * row["width"]
        assert all(sum(compressed_rle_runs(rle) or [-1]) == pixels for rle in row["ignore_rles"]), row["image_id"]


@pytest.mark.parametrize("case", CASES, ids=[" ".join(filter(None, case)) for case in CASES])
def test_reader_gives_rows_or_a_clear_error_naming_the_record(base, work_dir, coco_fixture_dir, case):
    kind, section, field = case
    file = work_dir / "reader.json"

    @settings(SETTINGS, max_examples=15)
    @given(index=st.integers(0, 20), value=values(kind))
    def check(index, value):
        document, names = apply_defect(base, kind, section, index, field, value)
        file.write_text(json.dumps(document))
        try:
            rows = read_coco_keypoints(file, coco_fixture_dir, show_progress=False)
        except Exception as error:  # noqa: BLE001 - the property is about which exceptions escape
            _check_clear(error, file, names)
        else:
            _check_storable(rows)

    for value in NASTY if values(kind) is JUNK else ():  # the classic bad values, on every field, every run
        check = example(index=1, value=value)(check)
    check()


# Defects the property test found, each once accepted and then written to parquet (or failing inside pyarrow):
# (kind, section, index, field, value, expected message). Index 3 is annotation 1202706, an ignore region.
FOUND = [
    ("replace", "annotations", 0, "id", 2**70, "field 'id' must be a 64-bit integer"),
    ("replace", "annotations", 1, "area", 1e39, "field 'area' must be a finite float32 number >= 0"),
    ("replace", "annotations", 1, "area", -5.0, "field 'area' must be a finite float32 number >= 0"),
    ("replace", "annotations", 1, "bbox", [0, 0, 1e30, 1e30], "bbox must be .* finite float32 numbers"),
    ("replace", "images", 0, "width", 2**40, "field 'width' must be a positive 32-bit integer"),
    ("region", "annotations", 3, "segmentation", "", r"RLE counts '' is not a compressed mask of .* \(0 runs"),
    ("region", "annotations", 3, "segmentation", "abc", r"RLE counts 'abc' .* \(unparsable\)"),
    ("region", "annotations", 3, "segmentation", [1, 2, 3], "RLE counts must add up to height . width = 166500"),
]


@pytest.mark.parametrize("defect", FOUND, ids=[f"{row[3]}={row[4]!r:.12}" for row in FOUND])
def test_defects_once_accepted_are_named(base, work_dir, coco_fixture_dir, defect):
    kind, section, index, field, value, expected = defect
    document, names = apply_defect(base, kind, section, index, field, value)
    file = work_dir / "found.json"
    file.write_text(json.dumps(document))
    with pytest.raises(ValueError, match=expected) as error:
        read_coco_keypoints(file, coco_fixture_dir, show_progress=False)
    _check_clear(error.value, file, names)


@settings(max_examples=30, deadline=None)
@given(mask=arrays(np.uint8, st.tuples(st.integers(1, 12), st.integers(1, 12)), elements=st.integers(0, 1)))
def test_compressed_rle_runs_match_pycocotools(mask):
    runs = compressed_rle_runs(mask_utils.encode(np.asfortranarray(mask))["counts"].decode())
    assert np.array_equal(np.repeat(np.arange(len(runs)) % 2, runs), mask.flatten(order="F"))


def _snapshot(folder: Path) -> dict[str, str]:
    return {str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(folder.rglob("*")) if path.is_file()}


@pytest.mark.parametrize("overwrite", [False, True], ids=["new folder", "existing folder"])
def test_converter_leaves_no_partial_or_changed_folder(base, work_dir, coco_fixture_dir, overwrite):
    valid = coco_fixture_dir / "test_coco.json"
    file = work_dir / f"train-{overwrite}.json"
    output = work_dir / f"dataset-{overwrite}"
    if overwrite:
        prepare_dataset_folder(valid, coco_fixture_dir, valid, coco_fixture_dir, output, show_progress=False)

    @settings(SETTINGS, max_examples=20)
    @given(defect=defects(base))
    def check(defect):
        document, names = defect
        file.write_text(json.dumps(document))
        before = _snapshot(output) if overwrite else None
        try:
            prepare_dataset_folder(file, coco_fixture_dir, valid, coco_fixture_dir, output, overwrite=overwrite,
                                   show_progress=False)
        except Exception as error:  # noqa: BLE001 - the property is about which exceptions escape
            _check_clear(error, file, names)
            assert (_snapshot(output) == before) if overwrite else not output.exists()
            assert not [path.name for path in work_dir.iterdir() if path.name.startswith(f".{output.name}")]
        else:
            assert (output / "semipose_dataset.json").is_file()
            if not overwrite:
                shutil.rmtree(output)

    for kind, section, index, field, value, _ in FOUND:
        check = example(defect=apply_defect(base, kind, section, index, field, value))(check)
    check()
