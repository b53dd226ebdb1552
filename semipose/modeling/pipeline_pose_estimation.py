"""The `pose-estimation` transformers pipeline, and the image-in / people-out steps it shares with `PoseEstimator`.

This file travels with every saved checkpoint (the model's code imports it, so `save_pretrained` copies it),
which is why it imports nothing from semipose outside this folder:

- with semipose installed, `import semipose` registers the task: `pipeline("pose-estimation", model=DIR)`;
- without it, `pipeline(model=DIR, trust_remote_code=True)` finds the class through the checkpoint's
  `config.json` (`custom_pipelines`, under `REMOTE_CODE_TASK`; see `remote_code_pipelines` for why that
  name differs from `TASK`).

Both take image file paths, PIL images and numpy arrays (uint8 `(H, W, 3)` RGB, or BGR with
`channel_order="bgr"`, or `(H, W)` grayscale), and return, per image, the people `PoseEstimator` returns: sorted
by score, each a person of `person_dicts` (semipose's `score`, `keypoints`, `keypoint_scores`, and the keys of
transformers' ViTPose post-processing, `scores`, `labels`, `bbox`); `people_to_json` makes them json.

It is also where all of semipose opens image files (`open_image_file`: one error contract, naming the file) and
serialises people (`person_dicts`, with `to_coco_results` and `people_to_json` built on it): inference, video,
the dataset converters and the training data import them from here.

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

import difflib
import io
import math
from collections.abc import Iterable, Iterator
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
CHANNEL_ORDERS = ("rgb", "bgr")
"""Channel orders of an `(H, W, 3)` array input: "bgr" for OpenCV frames (`cv2.imread`, `cv2.VideoCapture`)."""
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


def read_image(
    image: PIL.Image.Image | np.ndarray | str | Path, longest_edge: int | None = None, channel_order: str = "rgb",
    where: str = "images",
) -> PIL.Image.Image:
    """An input of `PoseEstimator` or the pipeline as an RGB image: a PIL image (converted, see `to_rgb`), a
    numpy array (see `array_to_image`; `channel_order` applies to arrays only: files and PIL images know their
    own) or a local file path (see `open_image`), never a URL. `where` names the input in errors."""
    if isinstance(image, PIL.Image.Image):
        return to_rgb(image)
    if isinstance(image, np.ndarray):
        return array_to_image(image, channel_order, where)
    if not isinstance(image, (str, Path)):
        raise TypeError(
            f"{where}: expected a PIL image, a numpy array or an image file path, got {type(image).__name__}."
        )
    if str(image).startswith(("http://", "https://")):
        raise ValueError(f"{image}: URLs are not fetched; download the image and pass its path or a PIL image.")
    return open_image(image, longest_edge)


def check_channel_order(channel_order: str) -> str:
    """`channel_order` if it is one of `CHANNEL_ORDERS`, else ValueError."""
    if channel_order not in CHANNEL_ORDERS:
        raise ValueError(f"channel_order: expected one of {list(CHANNEL_ORDERS)}, got {channel_order!r}.")
    return channel_order


def array_to_image(array: np.ndarray, channel_order: str = "rgb", where: str = "images") -> PIL.Image.Image:
    """A uint8 array `(H, W, 3)` (RGB, or BGR with `channel_order="bgr"`, as OpenCV reads) or `(H, W)`
    (grayscale) as an RGB PIL image; any other dtype or shape is a ValueError saying what was expected."""
    check_channel_order(channel_order)
    expected = "a uint8 array of shape (H, W, 3) (RGB; BGR with channel_order='bgr') or (H, W) (grayscale)"
    if array.dtype != np.uint8:
        hint = "convert it to uint8 0-255 first"
        if np.issubdtype(array.dtype, np.floating):
            hint += ", e.g. (array * 255).round().astype(np.uint8) for values in [0, 1]"
        raise ValueError(f"{where}: expected {expected}, got dtype {array.dtype}; {hint}.")
    color = array.ndim == 3 and array.shape[-1] == 3
    if not (array.ndim == 2 or color) or 0 in array.shape:
        hint = "; pass several images as a list of arrays" if array.ndim == 4 else ""
        raise ValueError(f"{where}: expected {expected}, got shape {array.shape}{hint}.")
    if color and channel_order == "bgr":
        array = array[..., ::-1]
    return to_rgb(PIL.Image.fromarray(np.ascontiguousarray(array)))


def unknown_arguments_error(where: str, unknown: Iterable[str], valid: Iterable[str]) -> TypeError:
    """The TypeError for keyword arguments `where` does not take, naming the closest valid one of each
    ("flip: did you mean flip_test?") and, failing that, all of them."""
    valid, unknown = sorted(valid), sorted(unknown)
    reasons = []
    for name in unknown:
        close = difflib.get_close_matches(name, valid, n=1)
        reasons.append(f"{name!r} (did you mean {close[0]}?)" if close else repr(name))
    noun = "argument" if len(unknown) == 1 else "arguments"
    return TypeError(f"{where}: unknown {noun} {', '.join(reasons)}; it takes {', '.join(valid)}.")


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
    """One image's people as one dict each, the one serialised form of a person (`PoseEstimator`, the pipeline,
    COCO results and `semipose predict`'s video json all start from it). Per person, semipose's keys:

    - `score` (float): the person's score, what people are sorted and thresholded by;
    - `keypoints` ([K, 2] float32 array): (x, y) in image pixels;
    - `keypoint_scores` ([K] float32 array): each keypoint's score;

    and those of transformers' ViTPose `post_process_pose_estimation`, so code written for it reads these too:

    - `scores`: the same array as `keypoint_scores` (ViTPose's per-keypoint scores);
    - `labels` ([K] int64 array): the keypoint indices, `0 .. K-1`, into the skeleton's `keypoint_names`;
    - `bbox` ([4] float32 array): `(x1, y1, x2, y2)` in image pixels, as ViTPose's: here the box of all K
      keypoints as decoded (scored low or not; ViTPose's is the detector's box).

    Args:
        people: `keypoints [M, K, 2]`, `keypoint_scores [M, K]`, `scores [M]` (as `estimate_people` returns).
    """
    scores, keypoints, keypoint_scores = (people[name].cpu() for name in ("scores", "keypoints", "keypoint_scores"))
    labels = np.arange(keypoints.shape[1], dtype=np.int64)
    return [
        {"score": float(score), "keypoints": points.numpy(), "keypoint_scores": point_scores.numpy(),
         "scores": point_scores.numpy(), "labels": labels.copy(), "bbox": keypoint_box(points.numpy())}
        for score, points, point_scores in zip(scores, keypoints, keypoint_scores)
    ]


def keypoint_box(keypoints: np.ndarray) -> np.ndarray:
    """`(x1, y1, x2, y2)`, the smallest box holding `keypoints [K, 2]` (zeros for K = 0)."""
    if len(keypoints) == 0:
        return np.zeros(4, dtype=keypoints.dtype)
    return np.concatenate([keypoints.min(axis=0), keypoints.max(axis=0)])


def people_to_json(people: Any) -> Any:
    """People (a person dict, one image's list of them, or a list of such lists, as `PoseEstimator` and the
    pipeline return) with every array and numpy number made a plain list or number, so `json.dumps` takes them.
    Values are kept whole (float32 keypoints read e.g. 34.70000076293945); round them yourself for smaller files.

    Example:

    ```python
    >>> import json
    >>> people = person_dicts({"keypoints": torch.tensor([[[1.0, 2.0], [3.0, 0.5]]]),
    ...     "keypoint_scores": torch.tensor([[0.5, 0.25]]), "scores": torch.tensor([0.75])})
    >>> person = json.loads(json.dumps(people_to_json(people)))[0]
    >>> person["score"], person["keypoints"], person["scores"], person["labels"], person["bbox"]
    (0.75, [[1.0, 2.0], [3.0, 0.5]], [0.5, 0.25], [0, 1], [1.0, 0.5, 3.0, 2.0])

    ```
    """
    if isinstance(people, dict):
        return {name: people_to_json(value) for name, value in people.items()}
    if isinstance(people, (list, tuple)):
        return [people_to_json(value) for value in people]
    if isinstance(people, (np.ndarray, np.generic, torch.Tensor)):
        return people.tolist()
    return people


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

    Takes an image file path, a PIL image (any mode), a numpy array (uint8 `(H, W, 3)` or `(H, W)`) or a list of
    them; URLs are not fetched. Call parameters: `threshold` (people scoring below it are dropped; default 0),
    `flip_test` (also run the mirrored image and average the maps; default: the model config's `flip_test`) and
    `channel_order` ("rgb", the default, or "bgr" for OpenCV's arrays). One image per forward pass, through
    `estimate_people`. People are `person_dicts` (see `people_to_json` for json).

    Illustration (not run: needs a trained model folder):

    ```python
    estimator = pipeline("pose-estimation", model="outputs/run_semi_pose")
    [len(people) for people in estimator(["a.jpg", Image.open("b.png")], flip_test=True)]  # people per image
    estimator(cv2.imread("c.jpg"), channel_order="bgr")  # an OpenCV frame
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

    def _sanitize_parameters(
        self, threshold: float | None = None, flip_test: bool | None = None, channel_order: str | None = None,
        **kwargs,
    ):
        if kwargs:
            raise unknown_arguments_error(f"{TASK} pipeline", kwargs, ("threshold", "flip_test", "channel_order"))
        preprocess = {} if channel_order is None else {"channel_order": check_channel_order(channel_order)}
        forward = {} if flip_test is None else {"flip_test": flip_test}
        postprocess = {} if threshold is None else {"threshold": threshold}
        return preprocess, forward, postprocess

    def preprocess(
        self, image: PIL.Image.Image | np.ndarray | str | Path, channel_order: str = "rgb"
    ) -> dict[str, Any]:
        image = read_image(image, self.image_processor.size.longest_edge, channel_order)
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


__all__ = [
    "PoseEstimationPipeline", "estimate_people", "people_to_json", "register_pipeline", "remote_code_pipelines",
    "to_coco_results",
]
