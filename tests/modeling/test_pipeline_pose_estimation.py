"""The `pose-estimation` transformers pipeline: the people of `PoseEstimator` for paths, PIL images, numpy arrays
in either channel order and lists, its parameters and bad inputs, and the same people with
`trust_remote_code=True` where semipose is not installed; the image-file contract every reader shares, and the
serialised person forms (person dicts with transformers ViTPose's keys, json, COCO results)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from PIL import Image
from test_auto_and_hub import HIDE_SEMIPOSE
from transformers import VitPoseImageProcessor, pipeline

from semipose.data.coco_format import read_image_size
from semipose.data.unreadable import decode_row_image
from semipose.inference import PoseEstimator
from semipose.model_card import model_card
from semipose.modeling import CenterOffsetConfig, to_coco_results
from semipose.modeling.pipeline_pose_estimation import (
    REMOTE_CODE_TASK,
    PoseEstimationPipeline,
    UnreadableImageError,
    open_image,
    open_image_file,
    people_to_json,
    person_dicts,
    read_image,
)

PIPELINE_WITHOUT_SEMIPOSE_SCRIPT = HIDE_SEMIPOSE + textwrap.dedent(
    """
    import torch
    from PIL import Image
    from transformers import pipeline

    folder, photo, output = sys.argv[1:]
    estimator = pipeline(model=folder, trust_remote_code=True, device="cpu")  # the task comes from config.json
    people = estimator([photo, Image.open(photo)], flip_test=True)
    torch.save({"class": type(estimator).__module__ + "." + type(estimator).__name__, "people": people}, output)
    """
)


@pytest.fixture(scope="module")
def photos(coco_fixture_dir):
    return sorted(coco_fixture_dir.glob("*.jpg"))


def assert_same_people(got: list[dict], expected: list[dict]) -> None:
    assert len(got) == len(expected) > 0
    for person, reference in zip(got, expected):
        assert sorted(person) == ["bbox", "keypoint_scores", "keypoints", "labels", "score", "scores"]
        assert isinstance(person["score"], float)
        assert person["score"] == pytest.approx(reference["score"], abs=1e-6)
        np.testing.assert_allclose(person["keypoints"], reference["keypoints"], atol=1e-3)
        np.testing.assert_allclose(person["keypoint_scores"], reference["keypoint_scores"], atol=1e-6)


def test_pipeline_returns_the_people_of_pose_estimator(checkpoint, photos):
    estimator = pipeline("pose-estimation", model=checkpoint, device="cpu")
    assert type(estimator) is PoseEstimationPipeline
    reference = PoseEstimator.from_pretrained(checkpoint, device="cpu", batch_size=1)
    assert_same_people(estimator(str(photos[0])), reference(photos[0]))  # one path -> its people
    rgba = Image.open(photos[1]).convert("RGBA")
    for got, expected in zip(estimator([photos[2], rgba]), reference([photos[2], rgba])):  # a list -> a list of lists
        assert_same_people(got, expected)
    reference.threshold, reference.flip_test = 0.6, True
    assert_same_people(estimator(photos[3], threshold=0.6, flip_test=True), reference(photos[3]))


def test_the_model_cards_pipeline_tag_names_the_same_pipeline(checkpoint, photos):
    tag = model_card(CenterOffsetConfig(), {"ssl_mode": "semi", "dataset_config": "ratio_5", "final_model": "teacher",
                                            "metrics": {}}).data.pipeline_tag
    by_tag = pipeline(tag, model=checkpoint, device="cpu")
    assert type(by_tag) is PoseEstimationPipeline
    assert_same_people(by_tag(photos[0]), pipeline("pose-estimation", model=checkpoint, device="cpu")(photos[0]))


def test_pipeline_refuses_urls_missing_files_and_other_inputs(tmp_path, checkpoint):
    estimator = pipeline("pose-estimation", model=checkpoint, device="cpu")
    with pytest.raises(ValueError, match="https://example.com/a.jpg: URLs are not fetched"):
        estimator("https://example.com/a.jpg")
    with pytest.raises(FileNotFoundError, match="image file .*missing.jpg does not exist"):
        estimator(str(tmp_path / "missing.jpg"))
    (tmp_path / "notes.jpg").write_text("not an image")
    with pytest.raises(UnreadableImageError, match="image file .*notes.jpg is not a readable image"):
        estimator(tmp_path / "notes.jpg")
    with pytest.raises(TypeError, match="images: expected a PIL image, a numpy array or an image file path, got int"):
        estimator(3)
    with pytest.raises(ValueError, match=r"images: expected a uint8 array .*, got dtype float64; convert it to uint8"):
        estimator(np.zeros((8, 8, 3)))
    with pytest.raises(TypeError) as caught:
        estimator(Image.new("RGB", (8, 8)), flip=True)
    assert str(caught.value) == ("pose-estimation pipeline: unknown argument 'flip' (did you mean flip_test?); it "
                                 "takes channel_order, flip_test, threshold.")
    with pytest.raises(ValueError, match=r"channel_order: expected one of \['rgb', 'bgr'\], got 'brg'"):
        estimator(Image.new("RGB", (8, 8)), channel_order="brg")


def test_pipeline_reads_numpy_arrays_in_either_channel_order(checkpoint, photos):
    estimator = pipeline("pose-estimation", model=checkpoint, device="cpu")
    image = Image.open(photos[2]).convert("RGB")
    expected = people_to_json(estimator(image))
    rgb = np.asarray(image)
    assert people_to_json(estimator(rgb)) == expected and len(expected) > 0
    assert people_to_json(estimator([rgb[..., ::-1]], channel_order="bgr")) == [expected]


def test_checkpoint_declares_the_pipeline_and_stays_loadable_without_remote_code(tmp_path, checkpoint, photos):
    config = json.loads((checkpoint / "config.json").read_text())
    expected = {"impl": "pipeline_pose_estimation.PoseEstimationPipeline", "pt": ["AutoModelForPoseEstimation"],
                "type": "image"}
    assert config["custom_pipelines"] == {REMOTE_CODE_TASK: expected}
    assert (checkpoint / "pipeline_pose_estimation.py").is_file()
    estimator = pipeline("pose-estimation", model=checkpoint, device="cpu")
    estimator.save_pretrained(tmp_path)  # a pipeline saves its own task name: it must not shadow the registry
    assert list(json.loads((tmp_path / "config.json").read_text())["custom_pipelines"]) == [REMOTE_CODE_TASK]
    again = pipeline("pose-estimation", model=tmp_path, device="cpu")
    assert_same_people(again(photos[0]), estimator(photos[0]))


def test_pipeline_with_trust_remote_code_works_without_semipose(tmp_path, checkpoint, photos):
    environment = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf_home"), "PYTHONPATH": ""}
    process = subprocess.run(
        [sys.executable, "-c", PIPELINE_WITHOUT_SEMIPOSE_SCRIPT, checkpoint, photos[0], tmp_path / "people.pt"],
        cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=300,
    )
    assert process.returncode == 0, process.stderr[-3000:]
    result = torch.load(tmp_path / "people.pt", weights_only=False)
    assert result["class"].startswith("transformers_modules.") and result["class"].endswith(".PoseEstimationPipeline")
    reference = PoseEstimator.from_pretrained(checkpoint, device="cpu", flip_test=True)
    from_path, from_image = result["people"]  # a path decodes reduced for the small input, an open image does not
    assert_same_people(from_path, reference(photos[0]))
    assert_same_people(from_image, reference(Image.open(photos[0])))


def test_open_image_file_names_the_file_and_who_refers_to_it(tmp_path, photos):
    with pytest.raises(FileNotFoundError) as missing, open_image_file(tmp_path / "gone.jpg", "ann.json: image id 5"):
        pass
    assert str(missing.value) == f"ann.json: image id 5: image file {tmp_path / 'gone.jpg'} does not exist."
    (tmp_path / "notes.jpg").write_text("not an image")
    with pytest.raises(UnreadableImageError) as foreign, open_image_file(tmp_path / "notes.jpg"):
        pass
    assert str(foreign.value) == (f"image file {tmp_path / 'notes.jpg'} is not a readable image (cannot identify "
                                  f"image file '{tmp_path / 'notes.jpg'}').")
    data = photos[0].read_bytes()
    half = data[: len(data) // 2]
    with open_image_file(half) as image:  # the header is whole: it opens
        assert image.size == (640, 425)
    with pytest.raises(UnreadableImageError) as truncated, open_image_file(half, "image 785") as image:
        image.load()  # the pixels are not: decoding them in the block fails as the file's error
    assert str(truncated.value) == ("image 785: image file (embedded bytes) is not a readable image (image file is "
                                    "truncated (14 bytes not processed)).")


def test_every_image_reader_raises_the_one_contracts_error(tmp_path, checkpoint):
    """The pipeline, `PoseEstimator`, the dataset converters and the training data name a bad file alike, with
    the one `UnreadableImageError` (a ValueError), so one `except` catches it everywhere."""
    notes = tmp_path / "notes.jpg"
    notes.write_text("not an image")
    reason = f"image file {notes} is not a readable image (cannot identify image file '{notes}')."
    readers = {
        "": [lambda: open_image(notes), lambda: read_image(str(notes)),
             lambda: PoseEstimator.from_pretrained(checkpoint, device="cpu")(notes)],
        "ann.json: image id 5: ": [lambda: read_image_size(notes, "ann.json: image id 5")],
        "Image 5: ": [lambda: decode_row_image({"image_id": 5, "image": {"path": str(notes), "bytes": None}})],
    }
    for where, calls in readers.items():
        for call in calls:
            with pytest.raises(UnreadableImageError) as caught:
                call()
            assert str(caught.value) == where + reason


def test_person_dicts_are_the_form_coco_results_are_made_of():
    people = {"keypoints": torch.tensor([[[1.0, 2.0], [3.0, 4.0]], [[5.5, 6.0], [7.0, 8.25]]]),
              "keypoint_scores": torch.tensor([[0.5, 0.25], [0.125, 1.0]]), "scores": torch.tensor([0.75, 0.5])}
    first, second = person_dicts(people)
    assert first["score"] == 0.75 and isinstance(first["score"], float)
    np.testing.assert_array_equal(second["keypoints"], [[5.5, 6.0], [7.0, 8.25]])
    np.testing.assert_array_equal(second["keypoint_scores"], [0.125, 1.0])
    assert json.dumps(people_to_json(second)) == (
        '{"score": 0.5, "keypoints": [[5.5, 6.0], [7.0, 8.25]], "keypoint_scores": [0.125, 1.0], '
        '"scores": [0.125, 1.0], "labels": [0, 1], "bbox": [5.5, 6.0, 7.0, 8.25]}'
    )
    nobody = {"keypoints": torch.zeros(0, 2, 2), "keypoint_scores": torch.zeros(0, 2), "scores": torch.zeros(0)}
    assert to_coco_results([people, nobody], image_ids=[785, 40083]) == [
        {"image_id": 785, "category_id": 1, "keypoints": [1.0, 2.0, 0.5, 3.0, 4.0, 0.25], "score": 0.75},
        {"image_id": 785, "category_id": 1, "keypoints": [5.5, 6.0, 0.125, 7.0, 8.25, 1.0], "score": 0.5},
    ]
    with pytest.raises(ValueError, match=r"image_ids: expected 2 ids \(one per prediction\), got 1"):
        to_coco_results([people, nobody], image_ids=[785])


def test_an_images_people_do_not_depend_on_the_batch_it_runs_in(checkpoint, photos):
    """`estimate_people` runs each image alone: in a batch of four photos of four heights (so padded beyond its
    own input) and with two torch threads, each photo keeps the people it has alone, on one thread, to the bit."""
    images = [Image.open(path).convert("RGB") for path in photos]
    ids = list(range(len(images)))
    alone = to_coco_results(PoseEstimator.from_pretrained(checkpoint, device="cpu", batch_size=1).predict(images), ids)
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        estimator = PoseEstimator.from_pretrained(checkpoint, device="cpu", batch_size=len(images))
        batched = to_coco_results(estimator.predict(images), ids)
    finally:
        torch.set_num_threads(threads)
    assert len({image.height for image in images}) == 4 and threads == 1
    assert batched == alone and len(alone) > 0


def test_person_dicts_carry_the_keys_shapes_and_types_of_vitposes_post_processing():
    """transformers' `VitPoseImageProcessor.post_process_pose_estimation` gives per person `keypoints` [K, 2],
    `scores` [K], `labels` [K] (int64) and `bbox` [4] (x1, y1, x2, y2), as float32 / int64 tensors; semipose's
    people carry the same as numpy arrays, beside `score` and `keypoint_scores`."""
    outputs = type("VitPoseOutputs", (), {"heatmaps": torch.zeros(1, 3, 64, 48)})()
    vitpose = VitPoseImageProcessor().post_process_pose_estimation(outputs, boxes=[[[10.0, 20.0, 30.0, 40.0]]])[0][0]
    ours = person_dicts({"keypoints": torch.tensor([[[4.0, 9.0], [2.0, 3.0], [7.5, 1.0]]]),
                         "keypoint_scores": torch.tensor([[0.5, 0.25, 0.0]]), "scores": torch.tensor([0.4])})[0]
    for name, value in vitpose.items():
        assert (ours[name].shape, str(ours[name].dtype)) == (tuple(value.shape), str(value.dtype).split(".")[-1])
    assert ours["bbox"].tolist() == [2.0, 1.0, 7.5, 9.0] and ours["labels"].tolist() == [0, 1, 2]
    assert set(ours) == set(vitpose) | {"score", "keypoint_scores"}
