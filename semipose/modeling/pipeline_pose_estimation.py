"""The `pose-estimation` transformers pipeline, and the image-in / people-out steps it shares with `PoseEstimator`.

This file travels with every saved checkpoint (the model's code imports it, so `save_pretrained` copies it),
which is why it imports nothing from semipose outside this folder:

- with semipose installed, `import semipose` registers the task: `pipeline("pose-estimation", model=DIR)`;
- without it, `pipeline(model=DIR, trust_remote_code=True)` finds the class through the checkpoint's
  `config.json` (`custom_pipelines`, under `REMOTE_CODE_TASK`; see `remote_code_pipelines` for why that
  name differs from `TASK`).

Both return, per image, the people `PoseEstimator` returns: sorted by score, each
`{"score": float, "keypoints": [K, 2] array of (x, y) in image pixels, "keypoint_scores": [K] array}`.

It is also where all of semipose opens image files (`open_image_file`: one error contract, naming the file) and
serialises people (`person_dicts`, with `to_coco_results` built on it): inference, video, the dataset
converters and the training data import them from here.

Shapes: M people in an image, K keypoints.

Illustration (not run: needs a trained model folder):

```python
import semipose  # registers the task
from transformers import pipeline

estimator = pipeline("pose-estimation", model="outputs/run_semi_pose", device="cpu")
people = estimator("photo.jpg", threshold=0.2)  # a list of images -> a list of lists
people[0]["keypoints"].shape  # (K, 2): (x, y) in photo pixels
```
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import PIL.ExifTags
import PIL.Image
import PIL.ImageOps
import torch
from transformers import AutoModelForPoseEstimation, Pipeline
from transformers.pipelines import PIPELINE_REGISTRY

TASK = "pose-estimation"
"""The task name `import semipose` registers."""
HUB_TASK = "keypoint-detection"
"""The Hub's task for pose models (a model card's `pipeline_tag`), registered too, so the tag names a pipeline."""
REMOTE_CODE_TASK = "semipose-pose-estimation"
"""The task name a saved checkpoint's `custom_pipelines` declares (for use without semipose)."""
SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")
ALPHA_MODES = ("RGBA", "RGBa", "LA", "La", "PA")
REDUCED_BY = "semipose_reduced_by"
"""`Image.info` key of an image `open_image` decoded reduced: the integer factor (2, 4 or 8) it was reduced by."""
PHOTO_SIZE = "semipose_photo_size"
"""`Image.info` key of a reduced decode: the upright photo's `(width, height)` in the file's own pixels."""
SWAPPING_ORIENTATIONS = (5, 6, 7, 8)
"""EXIF orientations that turn the photo by 90 degrees, so its width and height trade places."""
IMAGE_DECODE_ERRORS = (OSError, SyntaxError, ValueError, PIL.Image.DecompressionBombError)
"""What PIL raises for a file that is not a readable image (truncated, corrupt, foreign, too large)."""


# ------------------------------------------------------------------------------------------ images


class UnreadableImageError(ValueError):
    """An image file PIL cannot decode (or, for a dataset row, a missing one); the message names the file (and
    the image id of a dataset row, also kept as `image_id`). The training data skips it (`SkipUnreadable`)."""

    def __init__(self, message: str, image_id: int | None = None):
        super().__init__(message)
        self.image_id = image_id


@contextmanager
def open_image_file(file: str | Path | bytes, where: str = "") -> Iterator[PIL.Image.Image]:
    """`PIL.Image.open` under the one error contract of every image reader in semipose (inference, the pipeline,
    the dataset converters and the training data): the image as opened (header read, pixels not yet), closed
    on exit. A decoding error inside the block counts as the file's too: pixels are decoded lazily.

    Args:
        file: an image file's path, or its bytes (an image embedded in a dataset folder).
        where: who refers to the file, the start of the messages (e.g. "ann.json: image id 785").

    Raises:
        FileNotFoundError: "{where}: image file {file} does not exist."
        UnreadableImageError: PIL raised one of `IMAGE_DECODE_ERRORS`: "{where}: image file {file} is not a
            readable image ({PIL's message})."
    """
    embedded = isinstance(file, bytes)
    name = f"image file {'(embedded bytes)' if embedded else file}"
    name = f"{where}: {name}" if where else name
    if not embedded and not Path(file).is_file():
        raise FileNotFoundError(f"{name} does not exist.")
    try:
        with PIL.Image.open(io.BytesIO(file) if embedded else file) as image:
            yield image
    except IMAGE_DECODE_ERRORS as error:
        raise UnreadableImageError(f"{name} is not a readable image ({error}).") from error


def to_rgb(image: PIL.Image.Image) -> PIL.Image.Image:
    """An 8-bit RGB copy of a PIL image of any mode.

    Transparent images are composited on white; 16-bit and 32-bit grayscale (`I;16`, `I`, `F`) are
    scaled to 8 bits (full scale 65535, or 255 when no value exceeds 255), not clipped as
    `Image.convert` would; grayscale, palette and CMYK images are converted.
    """
    if image.mode in SIXTEEN_BIT_MODES:
        values = np.asarray(image, dtype=np.float64)
        full_scale = 65535.0 if image.mode.startswith("I;16") or values.max(initial=0) > 255 else 255.0
        image = PIL.Image.fromarray(np.clip(np.rint(values * 255 / full_scale), 0, 255).astype(np.uint8))
    if image.mode in ALPHA_MODES or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        white = PIL.Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return PIL.Image.alpha_composite(white, rgba).convert("RGB")
    return image.convert("RGB")


def open_image(file: str | Path | bytes, longest_edge: int | None = None) -> PIL.Image.Image:
    """The image file at `file` (a path, or the file's bytes) decoded, turned upright by its EXIF orientation,
    as RGB (see `to_rgb`).

    With `longest_edge` (the model input's), a JPEG at least four times larger is decoded reduced by 2, 4 or 8
    (libjpeg's DCT scaling, Pillow's `draft`), never below twice `longest_edge`: a 6000 x 4000 photo for a
    512 input decodes at 1500 x 1000, in a fraction of the time and memory, and the processor shrinks it
    further anyway. Reduced pixel i covers the file's pixels `[r * i, r * (i + 1))`, so the factor `r` and the
    photo's size, kept in `info` (`REDUCED_BY`, `PHOTO_SIZE`), map keypoints back exactly (`photo_geometry`).

    Raises FileNotFoundError or UnreadableImageError naming the file (see `open_image_file`).
    """
    with open_image_file(file) as image:
        width, height = image.size
        if longest_edge and image.format == "JPEG" and max(width, height) >= 4 * longest_edge:
            fraction = 2 * longest_edge / max(width, height)
            image.draft(image.mode, (math.ceil(width * fraction), math.ceil(height * fraction)))
        image.load()
        reduced_by = round(width / image.width)
        swapped = image.getexif().get(PIL.ExifTags.Base.Orientation) in SWAPPING_ORIENTATIONS
        upright = to_rgb(PIL.ImageOps.exif_transpose(image))
    if reduced_by > 1:
        upright.info[REDUCED_BY] = reduced_by
        upright.info[PHOTO_SIZE] = (height, width) if swapped else (width, height)
    return upright


def read_image(image: PIL.Image.Image | str | Path, longest_edge: int | None = None) -> PIL.Image.Image:
    """An input of `PoseEstimator` or the pipeline as an RGB image: a PIL image (converted, see `to_rgb`) or a
    local file path (see `open_image`), never a URL."""
    if isinstance(image, PIL.Image.Image):
        return to_rgb(image)
    if not isinstance(image, (str, Path)):
        raise TypeError(f"images: expected a PIL image or an image file path, got {type(image).__name__}.")
    if str(image).startswith(("http://", "https://")):
        raise ValueError(f"{image}: URLs are not fetched; download the image and pass its path or a PIL image.")
    return open_image(image, longest_edge)


def photo_geometry(image: PIL.Image.Image) -> tuple[tuple[int, int], tuple[int, int]]:
    """`(extent, size)` of the photo `image` shows, both `(height, width)` in the photo's own pixels.

    `extent` is what the image's pixels cover (its size times the factor `open_image` reduced it by: the last
    reduced row and column may reach past the photo), so the placement inverts exactly; `size` is the photo's,
    to clip keypoints into. Both are the image's size for an image decoded whole.
    """
    reduced_by = image.info.get(REDUCED_BY, 1)
    width, height = image.info.get(PHOTO_SIZE, image.size)
    return (image.height * reduced_by, image.width * reduced_by), (height, width)


def to_decoded_pixels(keypoints: torch.Tensor, image: PIL.Image.Image) -> torch.Tensor:
    """`[..., 2]` (x, y) in the photo's own pixels -> pixels of `image` as decoded (reduced or not), to draw."""
    reduced_by = image.info.get(REDUCED_BY, 1)
    return (keypoints + 0.5) / reduced_by - 0.5


# ------------------------------------------------------------------------------------------ people


def keep_confident(people: dict[str, torch.Tensor], threshold: float) -> dict[str, torch.Tensor]:
    """The people of one image whose person score reaches `threshold`."""
    keep = people["scores"] >= threshold
    return {name: value[keep] for name, value in people.items()}


def clip_to_image(people: dict[str, torch.Tensor], size: tuple[int, int]) -> dict[str, torch.Tensor]:
    """Keypoints of one image's people clamped into the image of `size = (width, height)`."""
    limits = torch.tensor([size[0] - 1, size[1] - 1], dtype=people["keypoints"].dtype)
    keypoints = people["keypoints"].clamp(min=torch.zeros_like(limits), max=limits)
    return {**people, "keypoints": keypoints}


@torch.no_grad()
def estimate_people(
    model, image_processor, pixel_values: torch.Tensor, image_sizes: list[tuple[int, int]],
    flip_test: bool | None = None, clip_sizes: list[tuple[int, int]] | None = None,
) -> list[dict[str, torch.Tensor]]:
    """The one path from model inputs to people: the trainer's evaluation, `PoseEstimator` (so `semipose predict`
    and `semipose evaluate --model`) and the pipeline all run it, so the same weights score the same everywhere.

    Per image, alone: the network on the input the image processor makes of it alone (the batch's extra padding
    cut off; mirrored too when `flip_test`, None = the model config's `flip_test`), the model's decoder with its
    config settings, the inverse of the image processor's placement, keypoints clipped into their image. A
    batch would change an image's maps in the last bits (convolution kernels are chosen by batch size and
    thread count; padding reaches into the maps), and peak snapping and ranking carry such bits into the people,
    so the batch size, the thread count and an image's batch-mates would change the AP.

    Args:
        pixel_values (`torch.Tensor` of shape `(B, 3, H, W)`): the image processor's output for the images.
        image_sizes: original `(height, width)` of each image (the `extent` of `photo_geometry`).
        clip_sizes: `(height, width)` to clip each image's keypoints into (None = `image_sizes`; the `size` of
            `photo_geometry` for a photo decoded reduced).

    Returns:
        Per image, float CPU tensors `keypoints [M, K, 2]` (image pixels), `keypoint_scores [M, K]`, `scores [M]`.
    """
    flip_test = model.config.flip_test if flip_test is None else flip_test
    image_sizes = [(int(height), int(width)) for height, width in image_sizes]
    people = []
    for pixels, size, (height, width) in zip(pixel_values, image_sizes, clip_sizes or image_sizes):
        input_height, input_width = image_processor.padded_input_size(size)
        outputs = model(pixel_values=pixels[None, :, :input_height, :input_width], flip_test=flip_test)
        found = image_processor.post_process_pose_estimation(model.decode(outputs), target_sizes=[size])[0]
        people.append(clip_to_image({name: value.float().cpu() for name, value in found.items()}, (width, height)))
    return people


def person_dicts(people: dict[str, torch.Tensor]) -> list[dict[str, Any]]:
    """One image's people as one dict each: `{"score": float, "keypoints": [K, 2] array of (x, y) in image pixels,
    "keypoint_scores": [K] array}`, the one serialised form of a person (`PoseEstimator`, the pipeline, COCO
    results and `semipose predict`'s video json all start from it).

    Args:
        people: `keypoints [M, K, 2]`, `keypoint_scores [M, K]`, `scores [M]` (as `estimate_people` returns).
    """
    scores, keypoints, keypoint_scores = (people[name].cpu() for name in ("scores", "keypoints", "keypoint_scores"))
    return [
        {"score": float(score), "keypoints": points.numpy(), "keypoint_scores": point_scores.numpy()}
        for score, points, point_scores in zip(scores, keypoints, keypoint_scores)
    ]


def to_coco_results(
    predictions: list[dict[str, torch.Tensor]], image_ids: list[int], category_id: int = 1
) -> list[dict[str, Any]]:
    """COCO keypoint results json entries: each person of `person_dicts` with its keypoints and their scores
    interleaved, the standard file format `semipose predict` writes and `semipose evaluate` reads.

    Args:
        predictions: one dict per image with `keypoints [M, K, 2]`, `keypoint_scores [M, K]`, `scores [M]`.
        image_ids: the COCO image id of each prediction.
        category_id: COCO category (1 = person).

    Returns:
        One `{"image_id", "category_id", "keypoints": [x, y, score] * K flat, "score"}` per person.

    Example:

    ```python
    >>> to_coco_results([{"keypoints": torch.ones(1, 2, 2), "keypoint_scores": torch.ones(1, 2),
    ...     "scores": torch.tensor([0.5])}], image_ids=[785])
    [{'image_id': 785, 'category_id': 1, 'keypoints': [1.0, 1.0, 1.0, 1.0, 1.0, 1.0], 'score': 0.5}]

    ```
    """
    if len(predictions) != len(image_ids):
        raise ValueError(f"image_ids: expected {len(predictions)} ids (one per prediction), got {len(image_ids)}.")
    return [
        {"image_id": int(image_id), "category_id": category_id,
         "keypoints": np.column_stack([person["keypoints"], person["keypoint_scores"]]).reshape(-1).tolist(),
         "score": person["score"]}
        for prediction, image_id in zip(predictions, image_ids) for person in person_dicts(prediction)
    ]


# ---------------------------------------------------------------------------------------- pipeline


class PoseEstimationPipeline(Pipeline):
    """People in images, with any semipose model (either family) and its `PoseImageProcessor`.

    Takes an image file path, a PIL image (any mode) or a list of them; URLs are not fetched. Call
    parameters: `threshold` (people scoring below it are dropped; default 0) and `flip_test` (also run
    the mirrored image and average the maps; default: the model config's `flip_test`). One image per forward
    pass, through `estimate_people`.

    Illustration (not run: needs a trained model folder):

    ```python
    estimator = pipeline("pose-estimation", model="outputs/run_semi_pose")
    [len(people) for people in estimator(["a.jpg", Image.open("b.png")], flip_test=True)]  # people per image
    ```
    """

    _load_processor = False
    _load_image_processor = True
    _load_video_processor = False
    _load_feature_extractor = False
    _load_tokenizer = False

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.model.eval()

    def _sanitize_parameters(self, threshold: float | None = None, flip_test: bool | None = None, **kwargs):
        if kwargs:
            raise ValueError(f"{TASK} pipeline: unknown parameters {sorted(kwargs)}; it takes threshold and flip_test.")
        forward = {} if flip_test is None else {"flip_test": flip_test}
        postprocess = {} if threshold is None else {"threshold": threshold}
        return {}, forward, postprocess

    def preprocess(self, image: PIL.Image.Image | str | Path) -> dict[str, Any]:
        image = read_image(image, self.image_processor.size.longest_edge)
        inputs = self.image_processor(image, return_tensors="pt")
        return {"pixel_values": inputs["pixel_values"].to(self.dtype), "photo_geometry": photo_geometry(image)}

    def _forward(self, model_inputs: dict[str, Any], flip_test: bool | None = None) -> dict[str, Any]:
        extent, size = model_inputs["photo_geometry"]
        people = estimate_people(
            self.model, self.image_processor, model_inputs["pixel_values"], [extent], flip_test, clip_sizes=[size]
        )[0]
        return {"people": people}

    def postprocess(self, model_outputs: dict[str, Any], threshold: float = 0.0) -> list[dict[str, Any]]:
        return person_dicts(keep_confident(model_outputs["people"], threshold))


def register_pipeline() -> None:
    """Register `PoseEstimationPipeline` as the `pose-estimation` and `keypoint-detection` tasks with transformers
    (idempotent)."""
    for task in (TASK, HUB_TASK):
        if PIPELINE_REGISTRY.supported_tasks.get(task, {}).get("impl") is not PoseEstimationPipeline:
            PIPELINE_REGISTRY.register_pipeline(
                task, pipeline_class=PoseEstimationPipeline, pt_model=AutoModelForPoseEstimation, type="image"
            )


def remote_code_pipelines() -> dict[str, dict[str, Any]]:
    """The `custom_pipelines` entry of a saved checkpoint's config.json.

    transformers looks a task up in `custom_pipelines` before its registry, and loads a task found there only
    with `trust_remote_code=True`; declaring `TASK` itself would make `pipeline("pose-estimation", model=DIR)`
    demand it even where semipose is installed. So the checkpoint declares `REMOTE_CODE_TASK`, the only task
    there, which `pipeline(model=DIR, trust_remote_code=True)` picks without being named.
    """
    reference = f"{PoseEstimationPipeline.__module__.split('.')[-1]}.{PoseEstimationPipeline.__name__}"
    return {REMOTE_CODE_TASK: {"impl": reference, "pt": ["AutoModelForPoseEstimation"], "type": "image"}}


__all__ = ["PoseEstimationPipeline", "estimate_people", "register_pipeline", "remote_code_pipelines", "to_coco_results"]
