"""The inference API: image reading in every mode (numpy arrays too), checkpoint checks, argument checks,
`PoseEstimator` on real photos and its people (semipose's and ViTPose's keys, json)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from semipose.inference import (
    HUB_ARGUMENTS,
    PoseEstimator,
    _image_ids,
    _picture_names,
    check_local_checkpoint_name,
    load_checkpoint,
    open_image,
    people_to_json,
    to_rgb,
    write_predictions,
)
from semipose.modeling import PoseImageProcessor
from semipose.modeling.pipeline_pose_estimation import PHOTO_SIZE, REDUCED_BY, UnreadableImageError, photo_geometry


@pytest.fixture(scope="module")
def photos(coco_fixture_dir):
    return sorted(coco_fixture_dir.glob("*.jpg"))


def test_to_rgb_converts_grayscale_alpha_and_16_bit_images():
    sixteen_bit = Image.fromarray(np.array([[0, 32896, 65535]], dtype=np.uint16))
    assert sixteen_bit.mode.startswith("I;16")
    assert [to_rgb(sixteen_bit).getpixel((x, 0)) for x in range(3)] == [(0, 0, 0), (128, 128, 128), (255, 255, 255)]
    rgba = Image.new("RGBA", (2, 1), (200, 10, 10, 255))
    rgba.putpixel((1, 0), (0, 0, 0, 0))  # fully transparent black -> the white background
    assert [to_rgb(rgba).getpixel((x, 0)) for x in range(2)] == [(200, 10, 10), (255, 255, 255)]
    assert to_rgb(Image.new("L", (1, 1), 77)).getpixel((0, 0)) == (77, 77, 77)
    assert to_rgb(Image.new("I", (1, 1), 200)).getpixel((0, 0)) == (200, 200, 200)  # 8-bit range kept


def test_open_image_reads_16_bit_png_and_rejects_what_is_not_an_image(tmp_path, photos):
    Image.fromarray(np.full((4, 6), 65535, dtype=np.uint16)).save(tmp_path / "depth.png")
    loaded = open_image(tmp_path / "depth.png")
    assert (loaded.mode, loaded.size, loaded.getpixel((0, 0))) == ("RGB", (6, 4), (255, 255, 255))
    (tmp_path / "notes.jpg").write_text("not an image")
    (tmp_path / "truncated.jpg").write_bytes(photos[0].read_bytes()[:2000])
    for name in ("notes.jpg", "truncated.jpg"):
        with pytest.raises(UnreadableImageError) as caught:
            open_image(tmp_path / name)
        assert str(caught.value).startswith(f"image file {tmp_path / name} is not a readable image (")
    with pytest.raises(FileNotFoundError) as caught:
        open_image(tmp_path / "missing.jpg")
    assert str(caught.value) == f"image file {tmp_path / 'missing.jpg'} does not exist."


def test_estimator_finds_people_in_image_pixels_for_paths_and_pil_images(checkpoint, photos):
    estimator = PoseEstimator.from_pretrained(checkpoint, device="cpu", batch_size=4)
    people = estimator(photos)
    assert len(people) == 4 and all(people)
    for path, image_people in zip(photos, people):
        width, height = Image.open(path).size
        for person in image_people:
            assert sorted(person) == ["bbox", "keypoint_scores", "keypoints", "labels", "score", "scores"]
            assert person["keypoints"].shape == (17, 2) and person["keypoint_scores"].shape == (17,)
            assert (person["keypoints"] >= 0).all()
            assert (person["keypoints"] <= [width - 1, height - 1]).all()
        assert [person["score"] for person in image_people] == sorted((p["score"] for p in image_people), reverse=True)
    single = estimator(open_image(photos[1], estimator.input_size))  # one PIL image in -> its people, not a list
    assert [person["score"] for person in single] == pytest.approx([person["score"] for person in people[1]], abs=1e-5)
    np.testing.assert_allclose(single[0]["keypoints"], people[1][0]["keypoints"], atol=0.01)  # batch padding
    drawn = estimator.draw(photos[1], single)
    assert drawn.size == Image.open(photos[1]).size and drawn.mode == "RGB"


def test_estimator_threshold_drops_people_and_bad_inputs_raise(checkpoint, photos):
    estimator = PoseEstimator.from_pretrained(checkpoint, device="cpu")
    scores = [person["score"] for person in estimator(photos[0])]
    estimator.threshold = float(np.median(scores))
    kept = [person["score"] for person in estimator(photos[0])]
    assert kept == [score for score in scores if score >= estimator.threshold] and 0 < len(kept) < len(scores)
    with pytest.raises(TypeError, match=r"images\[1\]: expected a PIL image, a numpy array or an image file path, "
                                        "got list"):
        estimator([photos[0], [[0, 0, 0]]])
    with pytest.raises(ValueError, match="batch_size must be >= 1, got 0"):
        PoseEstimator(estimator.model, estimator.image_processor, batch_size=0)


def test_estimator_refuses_a_processor_that_decodes_otherwise_than_the_model(checkpoint):
    model, _ = load_checkpoint(checkpoint)
    with pytest.raises(ValueError, match="output_stride=2 but the model config has 4"):
        PoseEstimator(model, PoseImageProcessor(size=64, output_stride=2))


def test_load_checkpoint_says_why_a_folder_is_not_a_semipose_checkpoint(tmp_path, checkpoint):
    with pytest.raises(ValueError, match="not a semipose checkpoint, no config.json"):
        load_checkpoint(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(ValueError, match="config.json has model_type 'bert', expected one of"):
        load_checkpoint(tmp_path)
    shutil.copy(checkpoint / "config.json", tmp_path / "config.json")
    with pytest.raises(ValueError, match="no weights, expected one of"):
        load_checkpoint(tmp_path)
    shutil.copy(checkpoint / "model.safetensors", tmp_path / "model.safetensors")
    with pytest.raises(ValueError, match="no preprocessor_config.json"):
        load_checkpoint(tmp_path)


def test_image_ids_follow_coco_file_names_and_picture_names_stay_unique(tmp_path):
    paths = [tmp_path / name for name in ("000000000785.jpg", "notes.txt", "a.jpg", "a.png", "000000000012.png")]
    assert _image_ids(paths) == [785, 786, 787, 788, 12]
    assert _image_ids([tmp_path / "1.jpg", tmp_path / "001.png"]) == [1, 2]  # same number twice: renumbered
    assert _picture_names(paths) == ["000000000785.png", "notes.png", "a_jpg.png", "a_png.png", "000000000012.png"]


def test_picture_names_keep_sub_folders_apart(tmp_path):
    paths = [tmp_path / name for name in ("a.jpg", "trip/a.jpg", "trip/a.png", "trip/day2/b.jpg")]
    assert _picture_names(paths) == ["a.png", "trip/a_jpg.png", "trip/a_png.png", "trip/day2/b.png"]


def test_a_mistyped_local_folder_is_not_taken_for_a_hub_id(tmp_path, monkeypatch, checkpoint):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "outputs" / "run_semi_pose").mkdir(parents=True)
    for name in ("outputs/run_semi_pos", "./outputs/run_semi_pos", "outputs/run_semi_pose/checkpoint-9/"):
        with pytest.raises(FileNotFoundError, match="no such checkpoint folder"):
            check_local_checkpoint_name(name)
    with pytest.raises(FileNotFoundError, match=r"outputs/run_semi_pos: no such checkpoint folder; did you mean "
                                                r"outputs/run_semi_pose\?"):
        load_checkpoint("outputs/run_semi_pos")  # raised before any Hub request
    with pytest.raises(FileNotFoundError, match=r"/nowhere/run: no such checkpoint folder \(/nowhere holds"):
        check_local_checkpoint_name("/nowhere/run")
    for hub_id_or_folder in ("gpt2", "facebook/vitpose-base", "outputs/run_semi_pose", str(checkpoint)):
        check_local_checkpoint_name(hub_id_or_folder)  # Hub ids and existing folders pass


def test_exif_rotated_photo_gives_the_upright_photos_keypoints(tmp_path, checkpoint, photos):
    """A photo stored turned a quarter (pixels rotated, EXIF orientation 6: "rotate 90 clockwise to view") is
    read upright, so its people are the upright photo's (within 0.4 px; lossless PNG, so exactly here: the tiny
    model finds people everywhere, and JPEG re-encoding noise would move those)."""
    suffix = ".png"
    upright = Image.open(photos[0]).convert("RGB")
    exif = Image.Exif()
    exif[0x0112] = 6
    upright.save(tmp_path / f"upright{suffix}")
    upright.transpose(Image.Transpose.ROTATE_90).save(tmp_path / f"rotated{suffix}", exif=exif)
    assert Image.open(tmp_path / f"rotated{suffix}").size == (upright.height, upright.width)
    estimator = PoseEstimator.from_pretrained(checkpoint, device="cpu")
    straight, turned = estimator([tmp_path / f"upright{suffix}", tmp_path / f"rotated{suffix}"])
    assert len(straight) == len(turned) > 0
    for person, rotated_person in zip(straight, turned):
        np.testing.assert_allclose(rotated_person["keypoints"], person["keypoints"], atol=0.4)


def _large_jpeg(path, photo, size=(1030, 777), orientation=None):
    """`photo` enlarged to `size` (not a multiple of 8, so the last reduced pixels reach past the photo)."""
    exif = Image.Exif()
    if orientation:
        exif[0x0112] = orientation
    Image.open(photo).convert("RGB").resize(size).save(path, quality=90, exif=exif)
    return path


def test_a_large_jpeg_is_decoded_reduced_with_its_photo_geometry(tmp_path, photos):
    """1030 x 777 for a 64 px input: libjpeg's largest reduction, 8, keeps at least 128 px (ceil -> 129 x 98);
    the photo's upright size and the reduced pixels' extent (129 * 8 = 1032 >= 1030) are what map back."""
    path = _large_jpeg(tmp_path / "large.jpg", photos[0], orientation=6)  # stored turned: upright 777 x 1030
    reduced = open_image(path, longest_edge=64)
    assert reduced.size == (98, 129)
    assert (reduced.info[REDUCED_BY], reduced.info[PHOTO_SIZE]) == (8, (777, 1030))
    assert photo_geometry(reduced) == ((1032, 784), (1030, 777))
    whole = open_image(path, longest_edge=512)  # 1030 < 4 * 512: decoded whole
    assert whole.size == (777, 1030) and photo_geometry(whole) == ((1030, 777), (1030, 777))
    assert REDUCED_BY not in whole.info


def test_people_of_a_reduced_decode_map_back_to_the_photos_pixels_exactly(tmp_path, checkpoint, photos):
    """The same reduced pixels predicted as a plain image, then scaled by the factor (pixel centers: x -> 8 (x +
    0.5) - 0.5) and clipped into the photo, are the people `PoseEstimator` returns for the file (where the plain
    prediction was not clipped into the reduced image itself); `semipose
    predict`'s records give the photo's own size, and its picture is drawn at the photo's own size too."""
    path = _large_jpeg(tmp_path / "large.jpg", photos[0])
    estimator = PoseEstimator.from_pretrained(checkpoint, device="cpu")
    reduced = open_image(path, estimator.input_size)
    plain = reduced.copy()
    plain.info.clear()
    from_file, from_plain = estimator([path, plain])
    assert len(from_file) == len(from_plain) > 0
    plain_limits = np.array(reduced.size) - 1
    for person, plain_person in zip(from_file, from_plain):
        inside = (plain_person["keypoints"] > 0) & (plain_person["keypoints"] < plain_limits)  # not clipped there
        expected = np.clip(8 * (plain_person["keypoints"] + 0.5) - 0.5, 0, [1029, 776])
        np.testing.assert_allclose(person["keypoints"][inside], expected[inside], atol=1e-3)
        assert inside.mean() > 0.5
    summary = write_predictions(estimator, [path], tmp_path / "out", show_progress=False)
    images = json.loads((tmp_path / "out" / "images.json").read_text())["images"]
    assert (summary["num_images"], images[0]["width"], images[0]["height"]) == (1, 1030, 777)
    assert Image.open(tmp_path / "out" / images[0]["picture"]).size == (1030, 777) != reduced.size


def test_numpy_arrays_give_the_people_of_the_pil_image_in_either_channel_order(checkpoint, photos):
    """An RGB array is the PIL image's pixels, a BGR one (OpenCV's) with `channel_order="bgr"` too, a 2-D one the
    grayscale image's: the same people, to the bit."""
    image = Image.open(photos[0]).convert("RGB")
    rgb = np.asarray(image)
    estimator = PoseEstimator.from_pretrained(checkpoint, device="cpu")
    expected = people_to_json(estimator(image))
    assert len(expected) > 0
    assert people_to_json(estimator(rgb)) == expected
    opencv = PoseEstimator.from_pretrained(checkpoint, device="cpu", channel_order="bgr")
    assert people_to_json(opencv(rgb[..., ::-1])) == expected
    assert people_to_json(opencv([rgb[..., ::-1], image])) == [expected, expected]  # PIL images stay RGB
    assert people_to_json(estimator(rgb[..., ::-1])) != expected  # the flag is what makes BGR right
    gray = image.convert("L")
    assert people_to_json(estimator(np.asarray(gray))) == people_to_json(estimator(gray))
    assert estimator.predict([rgb])[0]["scores"].tolist() == [person["score"] for person in expected]
    assert opencv.draw(rgb[..., ::-1], opencv(rgb[..., ::-1])).tobytes() == estimator.draw(image, expected).tobytes()


def test_people_carry_vitposes_keys_consistent_with_semiposes_and_dump_to_json(checkpoint, photos):
    estimator = PoseEstimator.from_pretrained(checkpoint, device="cpu")
    people = estimator(photos[1])
    assert len(people) > 0
    for person in people:
        np.testing.assert_array_equal(person["scores"], person["keypoint_scores"])
        assert person["labels"].tolist() == list(range(17)) and person["labels"].dtype == np.int64
        x1, y1, x2, y2 = person["bbox"].tolist()
        assert person["bbox"].shape == (4,) and person["bbox"].dtype == np.float32
        assert (x1, y1) == tuple(person["keypoints"].min(axis=0)) and (x2, y2) == tuple(person["keypoints"].max(axis=0))
    text = json.dumps(people_to_json(estimator([photos[1]])))  # one call, a list of lists
    first = json.loads(text)[0][0]
    assert sorted(first) == ["bbox", "keypoint_scores", "keypoints", "labels", "score", "scores"]
    assert first["score"] == people[0]["score"] and first["keypoints"] == people[0]["keypoints"].tolist()


def test_bad_arrays_and_channel_orders_are_refused_saying_what_was_expected(checkpoint):
    estimator = PoseEstimator.from_pretrained(checkpoint, device="cpu")
    expected = "expected a uint8 array of shape (H, W, 3) (RGB; BGR with channel_order='bgr') or (H, W) (grayscale)"
    refused = {
        "images: " + expected + ", got dtype float32; convert it to uint8 0-255 first, e.g. "
        "(array * 255).round().astype(np.uint8) for values in [0, 1].": np.zeros((8, 8, 3), dtype=np.float32),
        "images: " + expected + ", got dtype uint16; convert it to uint8 0-255 first.": np.zeros((8, 8), np.uint16),
        "images: " + expected + ", got shape (3, 8, 8).": np.zeros((3, 8, 8), dtype=np.uint8),
        "images: " + expected + ", got shape (8, 8, 4).": np.zeros((8, 8, 4), dtype=np.uint8),
        "images: " + expected + ", got shape (0, 8, 3).": np.zeros((0, 8, 3), dtype=np.uint8),
        "images: " + expected + ", got shape (2, 8, 8, 3); pass several images as a list of arrays.":
            np.zeros((2, 8, 8, 3), dtype=np.uint8),
    }
    for message, array in refused.items():
        with pytest.raises(ValueError) as caught:
            estimator(array)
        assert str(caught.value) == message
    with pytest.raises(ValueError, match=r"images\[1\]: expected a uint8 array .*, got dtype float64"):
        estimator([np.zeros((8, 8, 3), np.uint8), np.zeros((8, 8, 3))])
    with pytest.raises(ValueError, match=r"^channel_order: expected one of \['rgb', 'bgr'\], got 'BGR'.$"):
        PoseEstimator(estimator.model, estimator.image_processor, channel_order="BGR")


def test_unknown_keyword_arguments_name_the_closest_valid_one(checkpoint):
    with pytest.raises(TypeError) as caught:
        PoseEstimator.from_pretrained(checkpoint, device="cpu", flip=True)
    valid = sorted(["model_name_or_path", "device", "batch_size", "flip_test", "threshold", "channel_order",
                    "backend", "onnx_file", *HUB_ARGUMENTS, "num_threads"])
    assert str(caught.value) == (f"PoseEstimator.from_pretrained: unknown argument 'flip' (did you mean flip_test?); "
                                 f"it takes {', '.join(valid)}.")
    model, image_processor = load_checkpoint(checkpoint)
    with pytest.raises(TypeError) as caught:
        PoseEstimator(model, image_processor, thresold=0.5, bgr=True)
    assert str(caught.value) == (
        "PoseEstimator: unknown arguments 'bgr', 'thresold' (did you mean threshold?); it takes batch_size, "
        "channel_order, device, flip_test, image_processor, model, threshold."
    )
    with pytest.raises(ValueError, match=r"^num_threads: only the onnxruntime backend takes it, got backend='torch'"):
        PoseEstimator.from_pretrained(checkpoint, num_threads=2)
    PoseEstimator.from_pretrained(checkpoint, device="cpu", local_files_only=True)  # a Hub argument passes
