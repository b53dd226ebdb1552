"""Read a SLEAP `.slp` labels file into the COCO dicts of a semipose dataset folder.

Command (the frames of video-backed or embedded labels are written as PNG files to `data/mice_semi-frames/`):

    python datasets_scripts/prepare_sleap.py --slp labels.v001.slp --output data/mice_semi

The file is read with `sleap_io.load_slp` (the optional extra: `pip install 'semipose[sleap]'`). Decisions:

- Only user-labeled instances (`sleap_io.Instance`) are labels; predicted instances are dropped. Frames with a
  user instance, and frames marked negative (no animal), are the labeled images; frames with predictions only
  are not. A point that is NaN or marked not visible is an unlabeled keypoint (v = 0); SLEAP places integer
  coordinates at pixel centers, the convention of `semipose.skeletons`, so coordinates are kept as they are.
- The skeleton is the file's: its node names, its edges as limbs, its symmetries as flip pairs (without
  symmetries, flip pairs are inferred from the names). A file whose user instances use several skeletons is
  refused.
- Images: a video backed by a list of image files is referenced in place (frame i is its i-th file). The frames of
  any other video (a video file, or images embedded in the `.slp`) are decoded and written as PNG files to
  `frames_dir/{video index}_{video name}/frame{i:06d}.png`, created only when needed; the CLI puts that folder
  beside the output (`OUTPUT-frames`), or in a temporary folder deleted afterwards when the images are embedded
  in the dataset (`--embed-images`).
- The `file_name`s are relative to the deepest folder that holds every image (and the written frames' video
  folders: `0_mice/frame000012.png`); SLEAP files name no validation
  split, so a seeded fraction is held out (`semipose.data.label_conversion.hold_out_validation`).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ..skeletons import Skeleton
from .coco_format import read_image_size
from .label_conversion import DEFAULT_VAL_FRACTION, ConvertedLabels, LabeledImage, convert_labels, keypoints_from_xy


def load_sleap_labels(path: str | Path) -> Any:
    """`sleap_io.load_slp(path)`, with a clear error when sleap-io is not installed or the file is missing."""
    try:
        import sleap_io
    except ImportError as error:
        raise ImportError(
            "Reading SLEAP .slp files needs sleap-io: pip install 'semipose[sleap]'."
        ) from error
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"SLEAP labels file {path} does not exist.")
    return sleap_io.load_slp(str(path))


def sleap_skeleton(sleap_skeleton: Any, name: str | None = None, source: str = "slp") -> Skeleton:
    """The semipose skeleton of a `sleap_io.Skeleton`: node names, edges as limbs, symmetries as flip pairs.

    Args:
        sleap_skeleton: the file's skeleton.
        name: the skeleton's name; None: the SLEAP skeleton's name, else "custom".
        source: how errors name the file.

    Example:

    ```python
    >>> import sleap_io
    >>> mouse = sleap_io.Skeleton(["nose", "ear_l", "ear_r"], edges=[("nose", "ear_l"), ("nose", "ear_r")],
    ...                           symmetries=[("ear_l", "ear_r")], name="mouse")
    >>> skeleton = sleap_skeleton(mouse)
    >>> skeleton.name, skeleton.flip_index, skeleton.limbs
    ('mouse', (0, 2, 1), ((0, 1), (0, 2)))

    ```
    """
    data = {"name": name or sleap_skeleton.name or "custom", "keypoints": list(sleap_skeleton.node_names),
            "limbs": [list(edge) for edge in sleap_skeleton.edge_names]}
    if sleap_skeleton.symmetry_names:
        data["flip_pairs"] = [list(pair) for pair in sleap_skeleton.symmetry_names]
    return Skeleton.from_dict(data, source)


def convert_slp(
    slp_file: str | Path, frames_dir: str | Path, *, name: str | None = None,
    val_fraction: float = DEFAULT_VAL_FRACTION, seed: int = 0,
) -> ConvertedLabels:
    """Read a SLEAP labels file into training and validation COCO dicts (decisions in the module docstring).

    Args:
        slp_file: the `.slp` file.
        frames_dir: where frames that are not image files already are written as PNG files (created if needed).
        name: the skeleton's name; None: the SLEAP skeleton's.
        val_fraction, seed: the seeded validation hold-out (`hold_out_validation`).

    Returns:
        A `ConvertedLabels`; its `image_root` is the deepest folder holding every image (and `frames_dir`, if
        frames were written).

    Illustration (not run here; tests/data/test_sleap_format.py builds and converts small .slp files):

    ```python
    converted = convert_slp("labels.v001.slp", "data/mice_semi-frames", val_fraction=0.1, seed=0)
    prepare_dataset_folder(converted.train, converted.image_root, converted.validation, converted.image_root,
                           "data/mice_semi", skeleton=converted.skeleton, sources=converted.sources)
    ```
    """
    slp_file = Path(slp_file)
    labels = load_sleap_labels(slp_file)
    frames = [frame for frame in labels.labeled_frames if frame.user_instances or getattr(frame, "is_negative", False)]
    if not frames:
        raise ValueError(f"{slp_file}: no frame has a user-labeled instance (predictions are not labels); expected "
                         "at least one labeled frame.")
    skeleton = sleap_skeleton(_only_skeleton(frames, slp_file), name, str(slp_file))
    videos = {id(video): index for index, video in enumerate(labels.videos)}
    located = [_frame_image(frame, videos[id(frame.video)], Path(frames_dir), slp_file) for frame in frames]
    root = Path(os.path.commonpath([folder for _, _, folder in located]))
    images = [
        LabeledImage(path.relative_to(root).as_posix(), *size,
                     [keypoints_from_xy(instance.numpy()) for instance in frame.user_instances],
                     _frame_name(frame, slp_file))
        for frame, (path, size, _) in zip(frames, located)
    ]
    return convert_labels(images, root, skeleton, [slp_file], val_fraction=val_fraction, seed=seed)


def _only_skeleton(frames: list[Any], slp_file: Path) -> Any:
    """The one skeleton of the user instances."""
    skeletons = {id(instance.skeleton): instance.skeleton for frame in frames for instance in frame.user_instances}
    if len(skeletons) > 1:
        names = [skeleton.name for skeleton in skeletons.values()]
        raise ValueError(f"{slp_file}: user instances use {len(skeletons)} skeletons {names}; expected one keypoint "
                         "layout (split the file by skeleton).")
    if not skeletons:
        raise ValueError(f"{slp_file}: only negative frames; expected at least one user-labeled instance.")
    return next(iter(skeletons.values()))


def _frame_name(frame: Any, slp_file: Path) -> str:
    video = frame.video.filename
    return f"{slp_file}: frame {frame.frame_idx} of video {video if isinstance(video, str) else video[0] + ', ...'}"


def _frame_image(
    frame: Any, video_index: int, frames_dir: Path, slp_file: Path
) -> tuple[Path, tuple[int, int], Path]:
    """The frame's image file (an image-list video's own file, else a PNG written to `frames_dir`), its size and
    the folder its `file_name` must keep (the image's own folder, or `frames_dir` with the video's sub-folder)."""
    where = _frame_name(frame, slp_file)
    if isinstance(frame.video.filename, list):
        path = Path(frame.video.filename[frame.frame_idx]).resolve()
        return path, read_image_size(path, where), path.parent
    if not frame.video.exists():
        raise FileNotFoundError(f"{where}: the video file does not exist; expected it where the .slp says, or the "
                                "frames embedded in the .slp (sleap-io `save_slp(..., embed='user')`).")
    frames_dir = frames_dir.resolve()
    path = frames_dir / f"{video_index}_{Path(frame.video.filename).stem}" / f"frame{frame.frame_idx:06d}.png"
    pixels = np.asarray(frame.image)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels).save(path)
    return path, (pixels.shape[1], pixels.shape[0]), frames_dir


@contextmanager
def frames_folder(frames_dir: str | Path, *, temporary: bool = False, overwrite: bool = False) -> Iterator[Path]:
    """The folder that `convert_slp` writes frames to, for a conversion inside the `with` block.

    `temporary`: a temporary folder, deleted at the end (for a dataset that embeds its images). Otherwise
    `frames_dir`, which must not exist unless `overwrite` (its same-named frames are then rewritten); a folder this
    block creates is deleted again when the block raises, so a failed conversion leaves nothing behind.

    Illustration (not run: writes beside the output):

    ```python
    with frames_folder("data/mice_semi-frames") as frames:
        converted = convert_slp("labels.v001.slp", frames)
        prepare_dataset_folder(converted.train, converted.image_root, ...)
    ```
    """
    if temporary:
        with tempfile.TemporaryDirectory(prefix="semipose-frames-") as folder:
            yield Path(folder)
        return
    frames_dir = Path(frames_dir).resolve()
    existed = frames_dir.exists()
    if existed and not overwrite:
        raise FileExistsError(f"Frames folder {frames_dir} already exists; pass overwrite=True (--overwrite) to "
                              "rewrite its frames.")
    try:
        yield frames_dir
    except BaseException:
        if not existed:
            shutil.rmtree(frames_dir, ignore_errors=True)
        raise
