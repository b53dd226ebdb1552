"""Geometry proofs for the data pipeline: drawn dots, the keypoints that mark them and the ignore
mask land on the same input pixels after any random view, and a flip swaps left/right channels."""

import dataclasses

import numpy as np
import PIL.Image
import pytest
import torch
import torch.nn.functional as nnf
from datasets import Dataset
from pycocotools import mask as mask_utils

from semipose.data.coco_format import pose_features, read_coco_keypoints
from semipose.data.transforms import (
    AugmentationConfig,
    LabeledTransform,
    UnlabeledTransform,
    View,
    ignore_region_mask,
    sample_view,
    transform_keypoints_by_view,
    view_matrix,
)
from semipose.skeletons import get_skeleton

COCO = get_skeleton("coco")
MEAN = torch.tensor([0.485, 0.456, 0.406])[:, None, None]
STD = torch.tensor([0.229, 0.224, 0.225])[:, None, None]
WIDTH, HEIGHT, SIZE = 120, 96, 128
NUM_PEOPLE = 3
WILD = AugmentationConfig(
    scale_range=(0.8, 1.6), max_rotation=60.0, max_translation=0.15, flip_probability=1.0
)
NO_PEOPLE = np.zeros((0, COCO.num_keypoints, 3), np.float32)


def dot_positions() -> np.ndarray:
    """[3, 17, 2] integer pixels (x, y) on a grid 12-14 px apart: one dot per keypoint."""
    cells = [(8 + 12 * column, 8 + 14 * row) for row in range(6) for column in range(9)]
    return np.array(cells[: NUM_PEOPLE * COCO.num_keypoints]).reshape(NUM_PEOPLE, -1, 2)


def labeled_keypoints(positions: np.ndarray) -> np.ndarray:
    visibility = np.full(positions.shape[:-1] + (1,), 2)
    return np.concatenate([positions, visibility], axis=-1).astype(np.float32)


def make_row(pixels: np.ndarray, keypoints: np.ndarray, ignore_rles: list[str] = ()) -> dict:
    """One row in the dataset schema (image id 7), as a batch of one (dict of column lists)."""
    height, width = pixels.shape[:2]
    row = {
        "image": PIL.Image.fromarray(pixels), "image_id": 7, "file_name": "7.png",
        "width": width, "height": height,
        "keypoints": keypoints.tolist(), "ignore_rles": list(ignore_rles),
    }
    return {key: [value] for key, value in row.items()}


def run(batch: dict, config: AugmentationConfig, seed: int, size: int = SIZE) -> dict:
    """The labeled transform with a fresh generator: the same seed always draws the same view."""
    generator = torch.Generator().manual_seed(seed)
    output = LabeledTransform(size, config, skeleton=COCO, generator=generator)(batch)
    return {key: values[0] for key, values in output.items()}


def unnormalized(pixel_values: torch.Tensor) -> torch.Tensor:
    return pixel_values * STD + MEAN


def brightness(pixel_values: torch.Tensor) -> torch.Tensor:
    """[S, S] summed RGB in [0, 1] inside the image; 0 on padding (exactly 0 after normalization)."""
    padding = (pixel_values == 0).all(dim=0)
    return unnormalized(pixel_values).sum(dim=0) * ~padding


def centroid(weights: torch.Tensor) -> torch.Tensor:
    """(x, y) weighted centroid of an [S, S] map."""
    rows, columns = torch.meshgrid(
        torch.arange(weights.shape[0]), torch.arange(weights.shape[1]), indexing="ij"
    )
    total = weights.sum()
    return torch.stack([(weights * columns).sum() / total, (weights * rows).sum() / total])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_every_keypoint_lands_on_its_dot_after_random_view_and_flip(seed):
    """Each dot is drawn alone in its own image, all with the same view (same seed).

    Flip is forced on, so dot (m, k) must sit under output channel `flip_index[k]`; keypoints
    moved out of the frame must be all-zero and their dot gone from the image.
    """
    positions = dot_positions()
    keypoints = labeled_keypoints(positions)
    inside = outside = 0
    for person in range(NUM_PEOPLE):
        for keypoint in range(COCO.num_keypoints):
            pixels = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
            x, y = positions[person, keypoint]
            pixels[y, x] = 255
            output = run(make_row(pixels, keypoints), WILD, seed)
            x_out, y_out, visibility = output["keypoints"][person, COCO.flip_index[keypoint]]
            dot = brightness(output["pixel_values"])
            if visibility > 0:
                inside += 1
                assert torch.allclose(centroid(dot), torch.stack([x_out, y_out]), atol=0.75)
            else:
                outside += 1
                assert x_out == 0 and y_out == 0
                assert dot[1:-1, 1:-1].sum() < 0.5, "a dot in the frame lost its keypoint"
    assert inside > 10 and outside > 0, "the seeds must put keypoints both in and out of frame"


def test_flip_mirrors_about_the_input_center_and_swaps_left_and_right_channels():
    keypoints = torch.from_numpy(labeled_keypoints(dot_positions()))
    plain_view = View(view_matrix((HEIGHT, WIDTH), SIZE), flipped=False)
    flipped_view = View(view_matrix((HEIGHT, WIDTH), SIZE, flipped=True), flipped=True)
    plain = transform_keypoints_by_view(keypoints, plain_view, SIZE, COCO.flip_index)
    mirrored = transform_keypoints_by_view(keypoints, flipped_view, SIZE, COCO.flip_index)
    left_eye, right_eye = (COCO.keypoint_names.index(name) for name in ("left_eye", "right_eye"))
    assert torch.allclose(mirrored[:, left_eye, 0], SIZE - 1 - plain[:, right_eye, 0], atol=1e-5)
    expected = plain[:, list(COCO.flip_index)].clone()
    expected[..., 0] = SIZE - 1 - expected[..., 0]
    assert torch.allclose(mirrored, expected, atol=1e-5)


def test_ignore_mask_moves_with_the_image():
    """A 13 x 13 ignore square centered on a dot: the warped mask centers where the dot lands."""
    pixels = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    pixels[40, 60] = 255
    region = np.zeros((HEIGHT, WIDTH), np.uint8)
    region[34:47, 54:67] = 1
    rle = mask_utils.encode(np.asfortranarray(region))["counts"].decode("utf-8")
    config = AugmentationConfig(scale_range=(0.8, 1.3), max_rotation=45.0, max_translation=0.05)
    for seed in range(4):
        output = run(make_row(pixels, NO_PEOPLE, [rle]), config, seed)
        mask = output["ignore_mask"]
        dot = centroid(brightness(output["pixel_values"]))
        assert mask.dtype == torch.bool and output["keypoints"].shape == (0, COCO.num_keypoints, 3)
        assert torch.allclose(centroid(mask.float()), dot, atol=1.0)
        view = sample_view(config, (HEIGHT, WIDTH), SIZE, torch.Generator().manual_seed(seed))
        area_scale = abs(torch.linalg.det(view.matrix[:2, :2]).item())
        assert mask.sum().item() == pytest.approx(169 * area_scale, rel=0.15)


def test_identity_view_is_the_exact_top_left_placement_for_keypoints():
    """64 x 48 into 128: x' = 2x + 0.5, y' = 2y + 0.5 (edges -0.5 and 63.5 go to -0.5 and 127.5), top-left."""
    keypoints = np.array([[[0, 0, 2], [63, 47, 1], [10.25, 3.5, 2]] + [[5, 5, 0]] * 14], np.float32)
    image = np.zeros((48, 64, 3), np.uint8)
    output = run(make_row(image, keypoints), AugmentationConfig.none(), seed=0)
    expected = torch.zeros(1, 17, 3)
    expected[0, :3] = torch.tensor([[0.5, 0.5, 2], [126.5, 94.5, 1], [21.0, 7.5, 2]])
    assert torch.allclose(output["keypoints"], expected, atol=1e-5)
    assert not output["ignore_mask"].any()


def test_identity_view_pixels_are_a_resize_with_mean_color_padding_below():
    generator = torch.Generator().manual_seed(0)
    image = torch.randint(0, 256, (48, 64, 3), generator=generator, dtype=torch.uint8)
    output = run(make_row(image.numpy(), NO_PEOPLE), AugmentationConfig.none(), seed=0)
    resized = nnf.interpolate(
        image.permute(2, 0, 1)[None] / 255, size=(96, 128), mode="bilinear", align_corners=False
    )
    expected = torch.zeros(3, 128, 128)
    expected[:, :96] = (resized[0] - MEAN) / STD
    assert torch.allclose(output["pixel_values"], expected, atol=1e-5)


def test_shrinking_view_box_averages_exactly():
    """256 x 192 into 128 is a 2x box downscale: each input pixel is the mean of a 2 x 2 block."""
    generator = torch.Generator().manual_seed(1)
    image = torch.randint(0, 256, (192, 256, 3), generator=generator, dtype=torch.uint8)
    output = run(make_row(image.numpy(), NO_PEOPLE), AugmentationConfig.none(), seed=0)
    blocks = nnf.avg_pool2d(image.permute(2, 0, 1).double()[None], 2)[0] / 255
    restored = unnormalized(output["pixel_values"]).double()
    assert torch.allclose(restored[:, :96], blocks, atol=0.6 / 255)
    padding = output["pixel_values"][:, 96:]
    assert torch.equal(padding, torch.zeros_like(padding))


def test_unlabeled_keypoints_stay_zero_and_the_row_is_not_modified():
    keypoints = labeled_keypoints(dot_positions())
    keypoints[0, 3] = [50, 40, 0]
    batch = make_row(np.zeros((HEIGHT, WIDTH, 3), np.uint8), keypoints)
    output = run(batch, WILD, seed=3)
    assert torch.equal(output["keypoints"][0, COCO.flip_index[3]], torch.zeros(3))
    assert batch["keypoints"][0][0][3] == [50, 40, 0]


@pytest.mark.parametrize("mode", ["L", "RGBA", "P"])
def test_non_rgb_images_become_three_channels(mode):
    batch = make_row(np.zeros((HEIGHT, WIDTH, 3), np.uint8), NO_PEOPLE)
    batch["image"] = [PIL.Image.fromarray(np.full((HEIGHT, WIDTH), 100, np.uint8)).convert(mode)]
    restored = unnormalized(run(batch, AugmentationConfig.none(), seed=0)["pixel_values"])
    assert torch.allclose(restored[:, 64, 64], torch.full((3,), 100 / 255), atol=1e-5)


def test_same_seed_same_output_and_color_jitter_keeps_geometry():
    pixels = np.random.default_rng(0).integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)
    batch = make_row(pixels, labeled_keypoints(dot_positions()))
    strong = AugmentationConfig.strong()
    first, again, other = (run(batch, strong, seed) for seed in (5, 5, 6))
    for key in ("pixel_values", "keypoints", "ignore_mask"):
        assert torch.equal(first[key], again[key])
    assert not torch.equal(first["keypoints"], other["keypoints"])
    plain = run(batch, dataclasses.replace(strong, color_jitter=0.0), seed=5)
    assert torch.equal(plain["keypoints"], first["keypoints"])
    assert not torch.allclose(plain["pixel_values"], first["pixel_values"])


def test_labeled_cutout_hides_squares_but_keeps_the_keypoints():
    pixels = np.full((HEIGHT, WIDTH, 3), 200, dtype=np.uint8)
    batch = make_row(pixels, labeled_keypoints(dot_positions()))
    plain = AugmentationConfig.none()
    reference = run(batch, plain, seed=3)
    one_hole = run(batch, dataclasses.replace(plain, cutout_holes=1, cutout_size=0.25), seed=3)
    hidden = (one_hole["pixel_values"] == 0).all(dim=0) & (reference["pixel_values"] != 0).any(dim=0)
    assert 0 < hidden.sum() <= (SIZE // 4) ** 2
    assert torch.equal(one_hole["keypoints"], reference["keypoints"])
    on_joints = run(batch, dataclasses.replace(plain, joint_cutout_probability=1.0, joint_cutout_size=0.05), seed=3)
    x, y = on_joints["keypoints"][..., 0].long(), on_joints["keypoints"][..., 1].long()
    assert (on_joints["pixel_values"][:, y, x] == 0).all()
    assert (reference["pixel_values"][:, y, x] != 0).all()


def test_unlabeled_transform_outputs_only_the_weak_view():
    batch = make_row(np.zeros((HEIGHT, WIDTH, 3), np.uint8), labeled_keypoints(dot_positions()))
    batch = {key: batch[key] * 2 for key in ("image", "image_id")}
    output = UnlabeledTransform(64, generator=torch.Generator().manual_seed(0))(batch)
    assert sorted(output) == ["image_id", "pixel_values"] and output["image_id"] == [7, 7]
    assert [tuple(pixels.shape) for pixels in output["pixel_values"]] == [(3, 64, 64)] * 2


def test_bad_rows_raise_clear_errors():
    none = AugmentationConfig.none()
    batch = make_row(np.zeros((HEIGHT, WIDTH, 3), np.uint8), np.zeros((2, 14, 3)))
    with pytest.raises(ValueError, match=r"Image 7 \(7.png\): expected keypoints of shape "
                                         r"\[M, 17, 3\], got \[2, 14, 3\]"):
        run(batch, none, 0)
    batch["keypoints"] = [[[]]]
    with pytest.raises(ValueError, match=r"got \[1, 0\]"):
        run(batch, none, 0)
    batch["keypoints"] = [[[[1, 2, 2]] * 17, [[1, 2, 2]] * 16]]
    with pytest.raises(ValueError, match="ragged"):
        run(batch, none, 0)
    batch["width"] = [121]
    with pytest.raises(ValueError, match="record says 121x96 .* image file is 120x96"):
        run(batch, none, 0)
    with pytest.raises(ValueError, match=r"missing \['ignore_rles'\]"):
        run({key: value for key, value in batch.items() if key != "ignore_rles"}, none, 0)
    batch["image"] = [{"path": "no/such/7.png", "bytes": None}]  # undecoded rows are decoded, or named
    with pytest.raises(ValueError, match=r"^Image 7: image file no/such/7.png does not exist\.$"):
        run(batch, none, 0)
    batch["image"] = [b"not a row image"]
    with pytest.raises(ValueError, match=r"Image 7: expected a PIL image or a \{'path', 'bytes'\} dict .* got bytes"):
        run(batch, none, 0)
    with pytest.raises(ValueError, match=r"flip_probability: expected in \[0, 1\], got 1.5"):
        AugmentationConfig(flip_probability=1.5)


MAGENTA, GREEN = (255, 0, 255), (0, 255, 0)


def painted_fixture_rows(fixture_dir) -> list[dict]:
    """Real fixture rows; ignore regions painted green, 7 x 7 magenta marks on labeled keypoints."""
    rows = read_coco_keypoints(fixture_dir / "test_coco.json", fixture_dir, show_progress=False)
    for row in rows:
        pixels = np.array(PIL.Image.open(row["image"]).convert("RGB"))
        regions = ignore_region_mask(row["ignore_rles"], (row["height"], row["width"]))
        if regions is not None:
            pixels[regions.numpy()] = GREEN
        for x, y, visibility in np.array(row["keypoints"]).reshape(-1, 3):
            if visibility > 0:
                column, line = round(x), round(y)
                pixels[max(line - 3, 0) : line + 4, max(column - 3, 0) : column + 4] = MAGENTA
        row["image"] = PIL.Image.fromarray(pixels)
    return rows


def near(pixel_values: torch.Tensor, color: tuple[int, int, int]) -> torch.Tensor:
    """[S, S] bool: un-normalized pixels within 0.3 of `color` (RGB distance, colors in [0, 1])."""
    target = torch.tensor(color, dtype=torch.float32)[:, None, None] / 255
    return (unnormalized(pixel_values) - target).norm(dim=0) < 0.3


def torso_orientation(keypoints: torch.Tensor) -> torch.Tensor:
    """[M] sign of the torso polygon's area (l/r shoulder, r/l hip); 0 when a corner is unlabeled.

    A mirror flips the sign of every polygon's area and the left/right swap reverses the polygon's
    order, which flips it back: with a correct swap the sign survives any view, without it flips.
    """
    names = ("left_shoulder", "right_shoulder", "right_hip", "left_hip")
    corners = keypoints[:, [COCO.keypoint_names.index(name) for name in names]]
    x, y = corners[..., 0], corners[..., 1]
    area = (x * y.roll(-1, dims=1) - x.roll(-1, dims=1) * y).sum(dim=1)
    return torch.sign(area) * (corners[..., 2] > 0).all(dim=1)


def test_real_fixture_keypoints_stay_on_their_markers_and_the_mask_on_the_regions(coco_fixture_dir):
    rows = painted_fixture_rows(coco_fixture_dir)
    config = AugmentationConfig(
        scale_range=(0.9, 1.2), max_rotation=30.0, max_translation=0.05, flip_probability=1.0
    )
    batch = {key: [row[key] for row in rows] for key in rows[0]}
    output = LabeledTransform(512, config, generator=torch.Generator().manual_seed(0))(batch)
    visible = torsos = 0
    outputs = zip(rows, output["pixel_values"], output["keypoints"], output["ignore_mask"])
    for row, pixels, keypoints, mask in outputs:
        orientation = torso_orientation(keypoints)
        in_frame = orientation != 0
        original = torso_orientation(torch.tensor(row["keypoints"]))
        assert torch.equal(orientation[in_frame], original[in_frame])
        torsos += int(in_frame.sum())
        magenta = near(pixels, MAGENTA)
        for x, y, _ in keypoints[keypoints[..., 2] > 0].tolist():
            visible += 1
            assert magenta[round(y), round(x)], f"keypoint ({x:.1f}, {y:.1f}) is off its marker"
        if mask.any():
            overlap = (near(pixels, GREEN) & mask).sum()
            assert overlap > 0.8 * mask.sum() and overlap > 0.8 * near(pixels, GREEN).sum()
    assert visible > 100 and torsos >= 10
    assert [bool(mask.any()) for mask in output["ignore_mask"]] == [False, True, True, False]


def test_real_fixture_identity_view_is_the_top_left_placement_of_the_coco_keypoints(coco_fixture_dir):
    rows = read_coco_keypoints(
        coco_fixture_dir / "test_coco.json", coco_fixture_dir, show_progress=False
    )
    dataset = Dataset.from_list(rows, features=pose_features(COCO.num_keypoints))
    output = dataset.with_transform(LabeledTransform(256, AugmentationConfig.none()))[:]
    assert output["image_id"] == [785, 40083, 196141, 197388]
    for row, keypoints in zip(rows, output["keypoints"]):
        original = torch.tensor(row["keypoints"])
        zoom = 256 / max(row["width"], row["height"])
        expected = (original[..., :2] + 0.5) * zoom - 0.5
        labeled = original[..., 2] > 0
        assert torch.allclose(keypoints[..., :2][labeled], expected[labeled], atol=1e-3)
        assert torch.equal(keypoints[..., 2], original[..., 2])
