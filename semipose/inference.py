"""Run a trained pose model on images: people in original image pixels, and pictures of them.

The one path from images to people that `semipose predict`, `semipose evaluate --model`, the main
job's prediction picture and the trainer's image logs share: the image processor's placement (input_geometry), one
forward pass (optionally with flip test), the model's own decoder with its config settings, and the
mapping back to the original pixels.

- `PoseEstimator`: the Python API, in the spirit of transformers pipelines (images in, people out).
- `predict_people` / `draw_predictions`: the tensor-level steps for a model already in memory.
- `write_predictions`: files in, COCO results json + one drawn PNG per image out (the CLI's work).
- `open_image` / `to_rgb`: any readable image file or PIL mode (grayscale, RGBA, 16-bit) to RGB.
  They, the image files' error contract (`UnreadableImageError`), `keep_confident`, `estimate_people` and the
  person dicts are defined with the transformers pipeline (`semipose.modeling.pipeline_pose_estimation`), whose
  code travels with every checkpoint.

Shapes: M people in an image, K keypoints of the model's skeleton.

Illustration (not run: needs a trained model folder, e.g. the main job's output):

```python
from semipose.inference import PoseEstimator

estimator = PoseEstimator.from_pretrained("outputs/run_semi_pose")
people = estimator("photo.jpg")  # one image -> its people; a list of images -> a list of lists
people[0]["score"], people[0]["keypoints"].shape  # a float in [0, 1]; (K, 2): (x, y) in photo pixels
estimator.draw("photo.jpg", people).save("photo_poses.png")
json.dumps(people_to_json(people))  # arrays as lists
```
"""

from __future__ import annotations

import difflib
import inspect
import itertools
import json
import logging
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import PIL.Image
import torch
from tqdm.auto import tqdm
from transformers import AutoConfig, AutoImageProcessor, AutoModelForPoseEstimation

from .data.folder_files import files_under, relative_stems
from .modeling import MODEL_FAMILIES, check_decoding_settings
from .modeling.pipeline_pose_estimation import (
    REDUCED_BY,
    UnreadableImageError,
    check_channel_order,
    estimate_people,
    keep_confident,
    open_image,
    people_to_json,  # noqa: F401 (re-exported: `from semipose.inference import people_to_json`)
    person_dicts,
    photo_geometry,
    read_image,
    to_coco_results,
    to_decoded_pixels,
    to_rgb,
    unknown_arguments_error,
)
from .skeletons import Skeleton, resolve_skeleton
from .visualization import draw_people, enlarge, make_grid

logger = logging.getLogger(__name__)

SEMIPOSE_MODEL_TYPES = tuple(config_class.model_type for config_class, _ in MODEL_FAMILIES.values())
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json")
"""Weights are read from safetensors only: a pickled `pytorch_model.bin` is never opened."""
HUB_ARGUMENTS = ("revision", "token", "cache_dir", "local_files_only", "force_download", "proxies", "subfolder")
"""The keyword arguments `PoseEstimator.from_pretrained` passes on to the Hub (any other is refused, not set on the
config as `AutoConfig.from_pretrained` would)."""
ONNX_ARGUMENTS = ("num_threads",)
"""The keyword arguments `from_pretrained` passes on to `load_onnx_checkpoint` (backend="onnxruntime" only)."""

ImageInput = PIL.Image.Image | np.ndarray | str | Path


# ------------------------------------------------------------------------------------------ images


def find_image_files(path: str | Path, *, exclude: str | Path | None = None) -> list[Path]:
    """`[path]` for a file; for a folder, the files under it and its sub-folders (see `files_under`).

    Every file is a candidate: `write_predictions` skips the ones that are not readable images. Files under
    `exclude` (an output folder inside `path`) are left out.
    """
    path = Path(path)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: no such image file or folder.")
    files = files_under(path, exclude=exclude)
    if not files:
        raise ValueError(f"{path}: neither the folder nor its sub-folders hold files (expected images or videos).")
    return files


# ----------------------------------------------------------------------------------- checkpoints


def load_checkpoint(model_name_or_path: str | Path, **hub_kwargs) -> tuple[torch.nn.Module, Any]:
    """A semipose model (either family, in eval mode) and its image processor from a folder or Hub id.

    Args:
        model_name_or_path: a folder written by `save_pretrained` (model + image processor), or a Hub id.
        hub_kwargs: `revision`, `token`, `cache_dir`, `local_files_only`, ... for both `from_pretrained` calls.

    Raises:
        ValueError: the folder or repository is not a semipose checkpoint (the message says what is missing).
    """
    name = str(model_name_or_path)
    check_local_checkpoint_name(name)
    if Path(name).is_dir():
        _check_checkpoint_folder(Path(name))
    try:
        config = AutoConfig.from_pretrained(name, **hub_kwargs)
    except (OSError, ValueError) as error:
        raise ValueError(
            f"{name}: not a semipose checkpoint folder, and no model of that name could be loaded from the Hub "
            f"({error})"
        ) from error
    if config.model_type not in SEMIPOSE_MODEL_TYPES:
        raise ValueError(
            f"{name}: a {config.model_type!r} model, not a semipose checkpoint (model_type one of "
            f"{list(SEMIPOSE_MODEL_TYPES)})."
        )
    model = AutoModelForPoseEstimation.from_pretrained(name, use_safetensors=True, **hub_kwargs).eval()
    return model, AutoImageProcessor.from_pretrained(name, **hub_kwargs)


def check_local_checkpoint_name(name: str) -> None:
    """FileNotFoundError at once for a path-like `name` that is no folder, before the Hub is asked (a mistyped
    local folder would otherwise be retried as a Hub id until the connection times out).

    Path-like: absolute, or starting with `.` or `~`, or with a backslash, a trailing slash or more than one
    `/` (no Hub id has those), or `FOLDER/NAME` where `FOLDER` exists here.
    """
    path = Path(name).expanduser()
    if path.is_dir():
        return
    shaped_like_a_path = (
        path.is_absolute() or name.startswith((".", "~")) or "\\" in name or name.endswith("/") or name.count("/") > 1
    )
    if not shaped_like_a_path and not (len(path.parts) == 2 and path.parent.is_dir()):
        return
    siblings = [entry.name for entry in path.parent.iterdir() if entry.is_dir()] if path.parent.is_dir() else []
    close = difflib.get_close_matches(path.name, siblings, n=1)
    hint = f"; did you mean {path.parent / close[0]}?" if close else f" ({path.parent} holds no such folder)"
    raise FileNotFoundError(f"{name}: no such checkpoint folder{hint}")


def _check_checkpoint_folder(folder: Path) -> None:
    """ValueError naming the missing file or the foreign model type of a local checkpoint folder."""
    what = "a semipose checkpoint folder holds config.json, preprocessor_config.json and model.safetensors"
    if not (folder / "config.json").is_file():
        raise ValueError(f"{folder}: not a semipose checkpoint, no config.json ({what}).")
    try:
        model_type = json.loads((folder / "config.json").read_text()).get("model_type")
    except (json.JSONDecodeError, AttributeError) as error:
        raise ValueError(f"{folder}/config.json: not a json object ({error}).") from error
    if model_type not in SEMIPOSE_MODEL_TYPES:
        raise ValueError(
            f"{folder}: not a semipose checkpoint, config.json has model_type {model_type!r}, expected one "
            f"of {list(SEMIPOSE_MODEL_TYPES)}."
        )
    if not any((folder / name).is_file() for name in WEIGHT_FILES):
        pickled = " (pytorch_model.bin is a pickle and is not loaded; re-save the model with save_pretrained)"
        raise ValueError(
            f"{folder}: no weights, expected one of {list(WEIGHT_FILES)}"
            f"{pickled if (folder / 'pytorch_model.bin').is_file() else ''} ({what})."
        )
    if not (folder / "preprocessor_config.json").is_file():
        raise ValueError(
            f"{folder}: no preprocessor_config.json; save the PoseImageProcessor beside the model "
            "(image_processor.save_pretrained(folder))."
        )


def resolve_device(device: str | torch.device | None) -> torch.device:
    """`device` as a torch device; None picks CUDA when available, else the CPU."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(device)
    except RuntimeError as error:
        raise ValueError(f"device: expected e.g. 'cpu', 'cuda' or 'cuda:1', got {device!r}.") from error
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device}: CUDA is not available on this machine; use --device cpu.")
    return device


# ------------------------------------------------------------------------------------- prediction


def predict_people(
    model, image_processor, images: Sequence[PIL.Image.Image], flip_test: bool | None = None
) -> list[dict[str, torch.Tensor]]:
    """People per image: `keypoints [M, K, 2]`, `keypoint_scores [M, K]`, `scores [M]` in original pixels.

    The images (any sizes and modes; see `to_rgb`) through `estimate_people`, each alone, the path the trainer's
    evaluation runs too: flip test per `flip_test` (None = the model config's), the model's own decoder,
    keypoints clipped into their image, float tensors on the CPU.
    """
    images = [to_rgb(image) for image in images]
    pixel_values = image_processor(images, return_tensors="pt")["pixel_values"].to(model.device, model.dtype)
    extents, sizes = zip(*(photo_geometry(image) for image in images))
    was_training = model.training
    model.eval()
    people = estimate_people(model, image_processor, pixel_values, list(extents), flip_test, clip_sizes=list(sizes))
    model.train(was_training)
    return people


class PoseEstimator:
    """Images in, people out: a semipose model and its image processor behind one call.

    Args:
        model: a semipose pose model of either family.
        image_processor: its `PoseImageProcessor` (input size; output stride and grouping order as in the
            model's config, else ValueError, see `check_decoding_settings`).
        device: where the model runs; None leaves it where it is.
        batch_size: images per forward pass.
        flip_test: also run each image mirrored and average the maps (slower, usually more accurate); None (the
            default) follows the model config's `flip_test`.
        threshold: people whose score is below it are dropped.
        channel_order: of the numpy arrays passed in: "rgb" (the default; `(H, W, 3)` RGB, as PIL and imageio
            give) or "bgr" (OpenCV's `cv2.imread` and `cv2.VideoCapture` frames). Files and PIL images carry
            their own order.

    Inputs: image file paths, PIL images (any mode) and numpy arrays, uint8 `(H, W, 3)` or `(H, W)`
    (grayscale); other arrays are refused (a float image: convert it to uint8 0-255 first).

    Illustration (not run: needs a trained model folder):

    ```python
    estimator = PoseEstimator.from_pretrained("outputs/run_semi_pose", device="cpu", flip_test=True)
    people = estimator(["a.jpg", Image.open("b.png"), np.asarray(Image.open("c.png"))])  # a list per image
    sorted(people[0][0])  # ['bbox', 'keypoint_scores', 'keypoints', 'labels', 'score', 'scores']

    opencv = PoseEstimator.from_pretrained("outputs/run_semi_pose", channel_order="bgr")
    ok, frame = cv2.VideoCapture("clip.mp4").read()  # BGR
    json.dumps(people_to_json(opencv(frame)))
    ```
    """

    def __init__(
        self, model, image_processor, *, device: str | torch.device | None = None, batch_size: int = 8,
        flip_test: bool | None = None, threshold: float = 0.0, channel_order: str = "rgb", **unknown,
    ):
        if unknown:
            raise unknown_arguments_error("PoseEstimator", unknown, _keyword_names(PoseEstimator.__init__))
        self.channel_order = check_channel_order(channel_order)
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
        check_decoding_settings(image_processor, model.config)
        self.model = model.eval() if device is None else model.to(resolve_device(device)).eval()
        self.image_processor = image_processor
        self.batch_size = batch_size
        self.flip_test = model.config.flip_test if flip_test is None else flip_test
        if self.flip_test and model.config.flip_index is None:
            raise ValueError(f"flip_test: the {model.config.skeleton!r} skeleton is never mirrored (no flip_index).")
        self.threshold = threshold

    @classmethod
    def from_pretrained(
        cls, model_name_or_path: str | Path, *, device: str | torch.device | None = None, batch_size: int = 8,
        flip_test: bool | None = None, threshold: float = 0.0, channel_order: str = "rgb", backend: str = "torch",
        onnx_file: str | Path | None = None, **hub_kwargs,
    ) -> PoseEstimator:
        """Load a checkpoint folder or Hub id (see `load_checkpoint`); None `device` picks CUDA when available.

        `backend="onnxruntime"` runs the network exported by `semipose export` (`onnx_file`, default the
        checkpoint's `model.onnx`; `num_threads`) with ONNX Runtime on the CPU; see `semipose.onnx_runtime`.
        `hub_kwargs` are `HUB_ARGUMENTS` (`revision`, `token`, ...); any other keyword is a TypeError naming the
        closest valid one (`flip=True`: "did you mean flip_test?").
        """
        _check_from_pretrained_arguments(hub_kwargs, backend)
        if backend == "onnxruntime":
            from .onnx_runtime import load_onnx_checkpoint  # optional extra semipose[deploy]

            if device is not None and torch.device(device).type != "cpu":
                raise ValueError(f"device {device}: the onnxruntime backend runs on the CPU; use device='cpu'.")
            model, image_processor = load_onnx_checkpoint(model_name_or_path, onnx_file, **hub_kwargs)
        elif backend == "torch":
            device = resolve_device(device)
            model, image_processor = load_checkpoint(model_name_or_path, **hub_kwargs)
        else:
            raise ValueError(f"backend: expected 'torch' or 'onnxruntime', got {backend!r}.")
        if onnx_file is not None and backend != "onnxruntime":
            raise ValueError(f"onnx_file {onnx_file}: only the onnxruntime backend reads it, got backend={backend!r}.")
        return cls(model, image_processor, device=device, batch_size=batch_size,
                   flip_test=flip_test, threshold=threshold, channel_order=channel_order)

    @property
    def input_size(self) -> int:
        """The longest edge of the model input: image files are decoded no larger than needed for it."""
        return self.image_processor.size.longest_edge

    @property
    def skeleton(self) -> Skeleton:
        """The model's keypoint layout (names, limbs, sides)."""
        return Skeleton.from_config(self.model.config)

    def __call__(self, images: ImageInput | Sequence[ImageInput]) -> list[dict[str, Any]] | list[list[dict[str, Any]]]:
        """The people in one image (a list of person dicts), or in each of several images (a list of lists).

        Args:
            images: a PIL image, a numpy array (uint8 `(H, W, 3)` in `channel_order`, or `(H, W)`) or an image
                file path, or a sequence of them.

        Returns:
            Per image, its people sorted by score, each a person of `person_dicts`: `{"score": float,
            "keypoints": [K, 2] array of (x, y) in the image's own pixels, "keypoint_scores": [K] array}` and
            transformers ViTPose's `scores` [K], `labels` [K] and `bbox` (x1, y1, x2, y2) of the keypoints.
            `people_to_json` makes them json.
        """
        single = isinstance(images, (PIL.Image.Image, np.ndarray, str, Path))
        images = [images] if single else images
        loaded = [self._read(image, f"images[{index}]" if not single else "images")
                  for index, image in enumerate(images)]
        people = [person_dicts(found) for found in self.predict(loaded)]
        return people[0] if single else people

    def _read(self, image: ImageInput, where: str = "images") -> PIL.Image.Image:
        """`read_image` with this estimator's input size (files decode no larger than needed) and channel order."""
        return read_image(image, self.input_size, self.channel_order, where)

    def predict(self, images: Sequence[PIL.Image.Image | np.ndarray]) -> list[dict[str, torch.Tensor]]:
        """`predict_people` in batches of `batch_size`: tensors on the CPU, people below `threshold`
        dropped, keypoints clipped into their image (by `estimate_people`). Arrays are read as `__call__` reads
        them."""
        images = [self._read(image, f"images[{index}]") if isinstance(image, np.ndarray) else image
                  for index, image in enumerate(images)]
        found = []
        for start in range(0, len(images), self.batch_size):
            batch = images[start : start + self.batch_size]
            people = predict_people(self.model, self.image_processor, batch, flip_test=self.flip_test)
            found.extend(keep_confident(image_people, self.threshold) for image_people in people)
        return found

    def draw(
        self, image: ImageInput, people: Sequence[dict[str, Any]], keypoint_threshold: float = 0.3
    ) -> PIL.Image.Image:
        """`image` with `people` (as returned by a call) drawn: limbs colored by body side, person scores; people
        that all carry a `track_id` (`semipose.video.track_people`) are drawn whole in their track's color."""
        picture = read_image(image, channel_order=self.channel_order)
        skeleton = self.skeleton
        keypoints = np.zeros((len(people), skeleton.num_keypoints, 3))
        for index, person in enumerate(people):
            keypoints[index, :, :2] = to_decoded_pixels(torch.as_tensor(person["keypoints"]), picture).numpy()
            keypoints[index, :, 2] = person["keypoint_scores"]
        scores = [person["score"] for person in people]
        tracked = all("track_id" in person for person in people)
        track_ids = [person["track_id"] for person in people] if tracked else None
        return draw_people(picture, keypoints, skeleton, scores=scores, threshold=keypoint_threshold,
                           track_ids=track_ids)


def _keyword_names(function) -> list[str]:
    """The named keyword arguments of `function` (not `self`, not positional-only, not `**kwargs`)."""
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return [name for name, parameter in inspect.signature(function).parameters.items()
            if parameter.kind in kinds and name not in ("self", "cls")]


def _check_from_pretrained_arguments(extra: dict[str, Any], backend: str) -> None:
    """TypeError for a keyword of `from_pretrained` that is neither its own nor a Hub or ONNX argument (naming
    the closest valid one); ValueError for an ONNX argument without the onnxruntime backend."""
    valid = [*_keyword_names(PoseEstimator.from_pretrained), *HUB_ARGUMENTS, *ONNX_ARGUMENTS]
    unknown = [name for name in extra if name not in valid]
    if unknown:
        raise unknown_arguments_error("PoseEstimator.from_pretrained", unknown, valid)
    for name in ONNX_ARGUMENTS:
        if name in extra and backend != "onnxruntime":
            raise ValueError(f"{name}: only the onnxruntime backend takes it, got backend={backend!r}.")


# ---------------------------------------------------------------------------------------- pictures


def draw_predictions(
    images: Sequence[PIL.Image.Image], people: Sequence[dict[str, torch.Tensor]], skeleton: Skeleton | str,
    threshold: float = 0.3,
) -> list[PIL.Image.Image]:
    """Each image with its predicted people drawn (keypoints below `threshold` left out)."""
    drawn = []
    for image, found in zip(images, people):
        keypoints = torch.cat([to_decoded_pixels(found["keypoints"], image), found["keypoint_scores"].unsqueeze(-1)],
                              dim=-1)
        drawn.append(draw_people(image, keypoints.cpu().numpy(), resolve_skeleton(skeleton),
                                 scores=found["scores"].cpu().numpy(), threshold=threshold))
    return drawn


def save_prediction_grid(
    path: str | Path, model, image_processor, rows, skeleton: Skeleton | str, num_images: int = 16, columns: int = 4,
    min_size: int = 256,
) -> Path:
    """Write a PNG grid of predictions on the first `num_images` rows (images upscaled to `min_size`)."""
    images = [rows[index]["image"] for index in range(min(num_images, len(rows)))]
    if not images:
        raise ValueError("save_prediction_grid: no images to draw.")
    images = [enlarge(to_rgb(image), min_size) for image in images]
    drawn = draw_predictions(images, predict_people(model, image_processor, images), skeleton)
    path = Path(path)
    make_grid(drawn, columns=columns).save(path)
    return path


# ------------------------------------------------------------------------------------- many files


def write_predictions(
    estimator: PoseEstimator, paths: Sequence[Path], output_dir: str | Path, *, keypoint_threshold: float = 0.3,
    image_ids: Sequence[int] | None = None, show_progress: bool | None = None,
) -> dict[str, Any]:
    """Predict the people of every readable image of `paths`; write results and pictures to `output_dir`.

    Writes `predictions.json` (COCO keypoint results: `image_id`, `category_id`, `keypoints` [3K],
    `score`), `images.json` (`images`: COCO image entries with `file_name` and the drawn `picture`;
    `skipped`: unreadable files and why) and one `<name>.png` per image with its people drawn.
    Files that are not readable images are skipped with a warning and counted. Image ids are `image_ids`
    when given (see `dataset_image_ids`), else the file names when all are numbers (COCO style), else
    1, 2, ... in name order.

    Args:
        estimator: the model, batch size, flip test and person threshold to use.
        paths: image files (see `find_image_files`).
        keypoint_threshold: keypoints scoring at or below it are not drawn (all are written to the json).
        image_ids: the COCO image id of each path (e.g. a dataset split's, to score the results against it).
        show_progress: a progress bar over the images; None shows it on a terminal only.

    Returns:
        A summary: `num_images`, `num_people`, `num_skipped`, `output_dir`.
    """
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    if image_ids is not None and len(image_ids) != len(paths):
        raise ValueError(f"image_ids: expected one per path ({len(paths)}), got {len(image_ids)}.")
    ids = list(image_ids) if image_ids is not None else _image_ids(paths)
    records = _FileRecords(paths, ids, output_dir, estimator.skeleton, keypoint_threshold,
                           estimator.input_size)
    disable = None if show_progress is None else not show_progress
    with tqdm(total=len(paths), desc="semipose predict", unit="image", disable=disable) as progress:
        for start in range(0, len(paths), estimator.batch_size):
            indices = range(start, min(start + estimator.batch_size, len(paths)))
            batch = records.read(indices)
            for (index, image), people in zip(batch, estimator.predict([image for _, image in batch])):
                records.add(index, image, people)
            progress.update(len(indices))
    return records.write()


class _FileRecords:
    """What `write_predictions` collects per file: image entries, COCO results, skipped files; and the
    pictures it draws."""

    def __init__(
        self, paths: Sequence[Path], ids: list[int], output_dir: Path, skeleton: Skeleton, keypoint_threshold: float,
        input_size: int,
    ):
        self.paths, self.output_dir, self.input_size = paths, output_dir, input_size
        self.skeleton, self.keypoint_threshold = skeleton, keypoint_threshold
        self.ids, self.pictures = ids, _picture_names(paths)
        self.images: list[dict[str, Any]] = []
        self.results: list[dict[str, Any]] = []
        self.skipped: list[dict[str, str]] = []

    def read(self, indices: range) -> list[tuple[int, PIL.Image.Image]]:
        """(index, RGB image) of the readable files among `paths[indices]`; the others are warned
        about and recorded as skipped."""
        batch = []
        for index in indices:
            try:
                batch.append((index, open_image(self.paths[index], self.input_size)))
            except UnreadableImageError as error:
                logger.warning("Skipping: %s", error)
                self.skipped.append({"file": str(self.paths[index]), "reason": str(error)})
        return batch

    def add(self, index: int, image: PIL.Image.Image, people: dict[str, torch.Tensor]) -> None:
        """Record the people of `paths[index]` and save its picture, drawn on the photo at its own size (a photo
        decoded reduced for the network is decoded again whole: the picture is for people to look at)."""
        whole = open_image(self.paths[index]) if image.info.get(REDUCED_BY, 1) > 1 else image
        drawn = draw_predictions([whole], [people], self.skeleton, self.keypoint_threshold)[0]
        picture = self.output_dir / self.pictures[index]
        picture.parent.mkdir(parents=True, exist_ok=True)
        drawn.save(picture)
        _, (height, width) = photo_geometry(image)
        self.images.append({"id": self.ids[index], "file_name": str(self.paths[index]), "width": width,
                            "height": height, "picture": self.pictures[index]})
        self.results += to_coco_results([people], [self.ids[index]])

    def write(self) -> dict[str, Any]:
        """Write the two json files; the run's summary."""
        if len(self.paths) == 1 and self.skipped:
            raise ValueError(self.skipped[0]["reason"])
        if not self.images:
            first = self.skipped[0]["reason"]
            raise ValueError(f"None of the {len(self.paths)} files is a readable image; first: {first}")
        (self.output_dir / "predictions.json").write_text(json.dumps(self.results))
        listing = {"images": self.images, "skipped": self.skipped}
        (self.output_dir / "images.json").write_text(json.dumps(listing, indent=1))
        return {"num_images": len(self.images), "num_people": len(self.results),
                "num_skipped": len(self.skipped), "output_dir": str(self.output_dir)}


def _image_ids(paths: Sequence[Path]) -> list[int]:
    """COCO image ids: a file named by a number keeps it (`000000000785.jpg` -> 785), the others are numbered
    on from the largest; all are numbered 1..N when two files share a number."""
    numbers = [int(path.stem) if path.stem.isdigit() else None for path in paths]
    named = [number for number in numbers if number is not None]
    if len(set(named)) != len(named):
        numbers, named = [None] * len(paths), []
    fresh = itertools.count(max(named, default=0) + 1)
    return [number if number is not None else next(fresh) for number in numbers]


def _picture_names(paths: Sequence[Path]) -> list[str]:
    """`<stem>.png` per file, sub-folders kept (`trip/b.png`, see `relative_stems`); `<stem>_<suffix>.png`
    where two files share a stem (`a.jpg`, `a.png`)."""
    stems = relative_stems(paths)
    counts = Counter(stems)
    return [f"{stem}.png" if counts[stem] == 1 else f"{stem}_{path.suffix.lstrip('.')}.png"
            for stem, path in zip(stems, paths)]
