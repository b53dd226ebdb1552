"""Write and load the semipose dataset folder: configs per labeling ratio, for `load_dataset`.

`prepare_dataset_folder` turns COCO-format train/validation annotations (COCO, CrowdPose,
synthetic) into a folder that `datasets.load_dataset(folder, config, split=split)` reads through
the YAML `configs:` of its README.md (datasets 4+ has no loading scripts):

- configs `ratio_1`, `ratio_5`, `ratio_10` (one per ratio), `labeled_n` (one per labeled count, for
  the few-frames setting of animal labs: `labeled_10` labels 10 images) and `full`, each with splits
  `labeled`, `unlabeled` and `validation`;
- the labeled subset of `ratio_r` is the first `ceil(r * N / 100)` of a seeded shuffle of the N
  training images with at least one labeled person, that of `labeled_n` the first n, so subsets are
  nested (1 within 5 within 10);
- its unlabeled split is every other training image, annotations removed, plus the images of
  the extra unlabeled folders and the sampled frames of extra videos (`semipose.data.video_frames`, extracted
  into `video_frames/`); `full` labels all N and leaves only the extra images unlabeled.

Rows follow `semipose.data.coco_format.pose_features`. Configs share files, so that an embedded
dataset holds each image at most twice (with and without annotations) instead of once per config:
`data/labeled/draw_A-B.parquet` holds the images drawn between A% and B% of the shuffle (with labeled
counts, `draw_images_A-B.parquet` the A-th to B-th image),
`data/unlabeled/` the same images without annotations plus `no_labeled_person.parquet` (training
images no subset can draw) and `extra.parquet`. A config's split lists its files; its rows come
file by file, by image id within a file. Files and splits without rows are not written, because
`datasets` cannot load a split that has no rows: `load_pose_dataset` returns an empty dataset
with the row features for such a split (a plain `load_dataset` call reports it as unknown).

Illustration (not run: needs the COCO annotations and images):

```python
from semipose.data.dataset_folder import load_pose_dataset, prepare_dataset_folder
folder = prepare_dataset_folder(
    "coco/annotations/person_keypoints_train2017.json", "coco/train2017",
    "coco/annotations/person_keypoints_val2017.json", "coco/val2017", "data/coco_semi")
labeled = load_pose_dataset(folder, "ratio_10", "labeled")
```
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import math
import shutil
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

import datasets.config
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from datasets import Dataset, DatasetInfo, Features, Image, IterableDataset, load_dataset
from datasets.info import DatasetInfosDict
from huggingface_hub import DatasetCardData
from tqdm.auto import tqdm

from ..skeletons import Skeleton, resolve_skeleton
from ..video_io import VIDEO_SUFFIXES, is_video_file
from .coco_format import (
    coco_skeleton,
    load_coco_json,
    pose_features,
    read_coco_keypoints,
    read_image_size,
    unlabeled_row,
    without_annotations,
)
from .folder_files import IMAGE_EXTENSIONS, files_under
from .video_frames import (
    DEFAULT_VIDEO_EVERY,
    VIDEO_FRAMES_DIR,
    SampledVideo,
    VideoSampling,
    extract_video_frames,
    sample_video,
    split_media,
)

logger = logging.getLogger(__name__)

SPLITS = ("labeled", "unlabeled", "validation")
TASK_CATEGORY = "keypoint-detection"
"""The Hub's task for keypoint (pose) data, in the card's `task_categories`."""
FULL_CONFIG = "full"
METADATA_FILE = "semipose_dataset.json"
ROWS_PER_ROW_GROUP = 100
_VALIDATION_FILE = "data/validation.parquet"
_NO_PERSON_FILE = "data/unlabeled/no_labeled_person.parquet"
_EXTRA_FILE = "data/unlabeled/extra.parquet"
_CARD_LEAVES_OUT = ("extra_unlabeled_dirs", "video_sampling", "extra_unlabeled_videos")
_SOURCE_LABELS = {"train_annotations": "Training annotations", "val_annotations": "Validation annotations"}


@dataclass
class _FolderPlan:
    """What to write: rows per parquet file, files per config and split, labeled ids per config."""

    files: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    configs: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    labeled_image_ids: dict[str, list[int]] = field(default_factory=dict)
    num_eligible: int = 0

    def count(self, config: str, split: str) -> int:
        return sum(len(self.files[path]) for path in self.configs[config][split])


def prepare_dataset_folder(
    train_annotations: str | Path | Mapping[str, Any],
    train_images: str | Path,
    val_annotations: str | Path | Mapping[str, Any],
    val_images: str | Path,
    output_dir: str | Path,
    *,
    skeleton: str | Path | Skeleton | None = None,
    category: str | None = None,
    sources: Mapping[str, str] | None = None,
    seed: int = 0,
    ratios: Sequence[float] = (1, 5, 10),
    labeled_counts: Sequence[int] = (),
    embed_images: bool = False,
    extra_unlabeled_dirs: Sequence[str | Path] = (),
    video_sampling: VideoSampling | None = None,
    overwrite: bool = False,
    show_progress: bool = True,
    decode_images: bool = False,
    license: str | None = None,
    allow_outside_image_dir: bool = False,
) -> Path:
    """Validate COCO-format annotations and images, then write the dataset folder atomically.

    Everything is read and checked before anything is written; the folder is written under a
    temporary sibling name and renamed at the end, so a failure leaves no partial folder.

    Args:
        train_annotations, train_images: COCO-format json (or its contents) and the folder of its images.
        val_annotations, val_images: the same for the validation split.
        output_dir: folder to create; an existing one is replaced only with `overwrite=True`
            (and only if it is empty or a dataset folder written by this function).
        skeleton: a `Skeleton`, registered name (`"coco"`, `"crowdpose"`) or skeleton file; the categories that
            name keypoints must name its. None: the annotation files' category's (`coco_skeleton`). The folder's
            metadata holds it whole.
        category: keep only this category of the files (`read_coco_keypoints`); None: all of them.
        sources: what the annotations were made from, recorded in the metadata and card: at least
            `train_annotations` and `val_annotations` (default: the annotation files' paths).
        seed: seed of the shuffle that draws the labeled subsets.
        ratios: labeled percentages, one config `ratio_{r}` each, 0 < r <= 100.
        labeled_counts: labeled image counts, one config `labeled_{n}` each, 0 < n <= N; every subset (of
            `ratios` or counts) must label a different number of images.
        embed_images: store image bytes in the parquet files (portable, `push_to_hub`-ready)
            instead of absolute paths to the original files.
        extra_unlabeled_dirs: folders whose image files (sub-folders searched, hidden files and folders
            skipped, see `files_under`) join every unlabeled split; their ids continue after the largest
            json id. Video files, given here or found in the folders (`semipose.video.VIDEO_SUFFIXES`), give
            frames by `video_sampling`, extracted as PNG files into `<output_dir>/video_frames/` (see
            `semipose.data.video_frames`); their ids follow the images'. The metadata records the rule and
            each video's frame indices (`sources`), and per frame id its video, frame index and timestamp
            (`video_frames`: the row schema has no columns for them).
        video_sampling: the frames to take of each video; None: `VideoSampling()` (every 10th frame).
        overwrite: replace an existing `output_dir`.
        show_progress: tqdm bars on the long loops.
        decode_images: fully decode every image while checking (catches truncated files; slow).
        license: the data's license as a Hub license id (`cc-by-4.0`, ...) for the dataset card; None:
            `unknown`.
        allow_outside_image_dir: accept `file_name`s that leave their image folder (`../x.jpg`, absolute
            paths); by default the first such record raises ValueError naming it (`read_coco_keypoints`).

    Returns:
        The absolute path of the written folder.
    """
    output_dir = Path(output_dir).resolve()
    ratios = _check_ratios(ratios, allow_none=bool(labeled_counts))
    _check_output_dir(output_dir, overwrite)
    sources = dict(sources or {"train_annotations": _source_name(train_annotations, "training annotations"),
                               "val_annotations": _source_name(val_annotations, "validation annotations")})
    train_data, train_source = _annotations(train_annotations, sources["train_annotations"])
    skeleton_info = coco_skeleton(train_data, Path(train_source), skeleton, category)
    read = dict(skeleton=skeleton_info, category=category, decode_images=decode_images,
                show_progress=show_progress, allow_outside_image_dir=allow_outside_image_dir)
    train = read_coco_keypoints(train_data, train_images, source=train_source, **read)
    val_data, val_source = _annotations(val_annotations, sources["val_annotations"])
    validation = read_coco_keypoints(val_data, val_images, source=val_source, **read)
    first_extra_id = 1 + max(row["image_id"] for row in train + validation)
    video_sampling = video_sampling or VideoSampling()
    extra, videos = _extra_unlabeled_rows(extra_unlabeled_dirs, first_extra_id, show_progress, video_sampling,
                                          output_dir)
    warn_of_leaking_videos(videos, validation)
    plan = _plan_folder(train, validation, extra, ratios, tuple(labeled_counts), seed)
    metadata = _metadata(plan, skeleton_info, seed, ratios, embed_images, {
        **sources, "extra_unlabeled_dirs": [str(Path(d).resolve()) for d in extra_unlabeled_dirs],
        **_video_sources(videos, video_sampling),
    })
    if videos:
        metadata["video_frames"] = _video_frame_records(extra, videos)
    with _atomic_folder(output_dir, overwrite) as folder:
        extract_video_frames(videos, folder)
        files = _staged(plan.files, output_dir, folder) if embed_images else plan.files
        _write_files(folder, files, pose_features(skeleton_info.num_keypoints), embed_images, show_progress)
        (folder / "README.md").write_text(_readme(plan, metadata, output_dir.name, license))
        (folder / METADATA_FILE).write_text(json.dumps(metadata, indent=2) + "\n")
    return output_dir


def _source_name(annotations: str | Path | Mapping[str, Any], role: str) -> str:
    return role if isinstance(annotations, Mapping) else str(Path(annotations).resolve())


def _annotations(annotations: str | Path | Mapping[str, Any], source: str) -> tuple[Mapping[str, Any], str]:
    """The COCO-format contents and how errors name them (the path as given, or `source`)."""
    if isinstance(annotations, Mapping):
        return annotations, source
    return load_coco_json(annotations), str(annotations)


def read_dataset_skeleton(folder: str | Path) -> Skeleton:
    """The skeleton a dataset folder is labeled with (its metadata holds it whole; older folders, by name)."""
    return resolve_skeleton(read_dataset_metadata(folder)["skeleton"])


def read_dataset_metadata(folder: str | Path) -> dict[str, Any]:
    """The `semipose_dataset.json` of a dataset folder (skeleton, seed, counts, labeled ids)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"Dataset folder {folder} does not exist.")
    metadata_file = folder / METADATA_FILE
    if not metadata_file.is_file():
        raise FileNotFoundError(
            f"{folder} is not a semipose dataset folder: it has no {METADATA_FILE} "
            f"(write one with prepare_dataset_folder or datasets_scripts/prepare_*.py)."
        )
    return json.loads(metadata_file.read_text())


def load_pose_dataset(
    folder: str | Path, config: str, split: str, cache_dir: str | Path | None = None,
    **load_kwargs: Any,
) -> Dataset | IterableDataset:
    """Load one config/split of a dataset folder, with clear errors for unknown names.

    Args:
        folder: a folder written by `prepare_dataset_folder`.
        config: `ratio_{r}` or `full` (see the folder's `semipose_dataset.json`).
        split: `labeled`, `unlabeled` or `validation`.
        cache_dir: `datasets` cache folder (None: the default cache).
        load_kwargs: passed on to `datasets.load_dataset` (e.g. `streaming=True`).

    Returns:
        The split's rows; an empty dataset with the row features for a split without rows.

    Illustration (not run: needs a prepared dataset folder):

    ```python
    validation = load_pose_dataset("data/coco_semi", "full", "validation")
    validation[0]["keypoints"]  # [M][K][3]
    ```
    """
    metadata = read_dataset_metadata(folder)
    configs = metadata["configs"]
    if config not in configs:
        raise ValueError(f"{folder}: unknown config {config!r}; expected one of {list(configs)}.")
    if split not in SPLITS:
        raise ValueError(f"{folder}: unknown split {split!r}; expected one of {list(SPLITS)}.")
    if configs[config][split] == 0:
        features = pose_features(resolve_skeleton(metadata["skeleton"]).num_keypoints)
        empty = Dataset.from_dict({name: [] for name in features}, features=features)
        return empty.to_iterable_dataset() if load_kwargs.get("streaming") else empty
    cache = str(cache_dir) if cache_dir is not None else str(_folder_cache_dir(Path(folder)))
    return load_dataset(str(folder), config, split=split, cache_dir=cache, **load_kwargs)


def dataset_image_ids(
    folder: str | Path, config: str, split: str, paths: Sequence[str | Path], cache_dir: str | Path | None = None,
) -> list[int]:
    """The image id of each file in one config/split of a dataset folder, so that results on the files score
    against the split (`semipose predict --dataset`).

    A file matches a row that refers to the same file (images stored as paths), else a row whose `file_name`
    ends its path (`.../val/000000.png` for `val/000000.png`; images embedded, or copied elsewhere).

    Raises:
        ValueError: a file matches no row of the split; the message says what the split holds.
    """
    rows = load_pose_dataset(folder, config, split, cache_dir=cache_dir)
    rows = rows.select_columns(["image_id", "file_name", "image"]).cast_column("image", Image(decode=False))
    by_file, by_name = {}, {}
    for image_id, file_name, image in zip(rows["image_id"], rows["file_name"], rows["image"]):
        if image["bytes"] is None:
            by_file[Path(image["path"]).resolve()] = image_id
        by_name[file_name] = image_id
    ids = [by_file.get(Path(path).resolve(), _id_by_file_name(Path(path), by_name)) for path in paths]
    unmatched = [str(path) for path, image_id in zip(paths, ids) if image_id is None]
    if unmatched:
        examples = ", ".join(list(by_name)[:3]) or "no images"
        raise ValueError(
            f"{len(unmatched)} of {len(paths)} files are not images of {folder} {config}/{split}, e.g. {unmatched[0]} "
            f"(its {len(rows)} images: {examples}, ...). Predict that split's images to score them against it, or "
            f"leave out --dataset to number the images by file name."
        )
    return ids


def _id_by_file_name(path: Path, by_name: dict[str, int]) -> int | None:
    """The id of the longest `file_name` that ends `path`, or None."""
    for start in range(len(path.parts)):
        image_id = by_name.get(Path(*path.parts[start:]).as_posix())
        if image_id is not None:
            return image_id
    return None


def _folder_cache_dir(folder: Path) -> Path:
    """A `datasets` cache of this folder's own: rows hold absolute image paths, so two folders with the same
    parquet content in different places (a regenerated synthetic set, say) must not share cached rows."""
    digest = hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:16]
    return Path(datasets.config.HF_DATASETS_CACHE) / "semipose" / digest


def add_dataset_folder_arguments(parser: argparse.ArgumentParser, *, license: str | None = None) -> None:
    """Add the options of `prepare_dataset_folder` shared by the `datasets_scripts` converters; `license` is
    the source dataset's (the `--license` default)."""
    parser.add_argument("--output", type=Path, required=True, help="dataset folder to write")
    parser.add_argument("--license", default=license,
                        help=f"the data's license (a Hub license id) for the card (default: {license or 'unknown'})")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the labeled-subset draw (and of the validation hold-out, where a converter "
                             "draws one)")
    parser.add_argument("--ratios", type=float, nargs="+", default=[1, 5, 10],
                        help="labeled percentages, one config ratio_R each")
    parser.add_argument("--labeled-counts", type=int, nargs="+", default=[], metavar="N",
                        help="labeled image counts, one config labeled_N each (nested with the ratios' subsets)")
    parser.add_argument("--embed-images", action="store_true",
                        help="store image bytes (portable) instead of absolute paths")
    parser.add_argument("--extra-unlabeled", type=Path, nargs="+", default=[], metavar="PATH",
                        help="folders of extra unlabeled images and videos (searched recursively), or video files")
    rule = parser.add_mutually_exclusive_group()
    rule.add_argument("--video-every", type=int, metavar="N",
                      help=f"take every N-th frame of each extra video (default: {DEFAULT_VIDEO_EVERY})")
    rule.add_argument("--video-frames", type=int, metavar="K",
                      help="take K frames of each extra video, one per even stride, drawn with --seed")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an existing output folder")
    parser.add_argument("--decode-images", action="store_true",
                        help="fully decode every image while checking (catches truncated files)")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    parser.add_argument("--allow-outside-image-dir", action="store_true",
                        help="accept file_names that leave the image folder ('../x.jpg', absolute paths)")


def dataset_folder_options(args: argparse.Namespace) -> dict[str, Any]:
    """Keyword arguments of `prepare_dataset_folder` from `add_dataset_folder_arguments` options."""
    return {
        "output_dir": args.output, "seed": args.seed,
        "ratios": [int(ratio) if float(ratio).is_integer() else ratio for ratio in args.ratios],
        "labeled_counts": args.labeled_counts, "embed_images": args.embed_images,
        "extra_unlabeled_dirs": args.extra_unlabeled,
        "overwrite": args.overwrite, "decode_images": args.decode_images,
        "show_progress": not args.no_progress, "license": args.license,
        "allow_outside_image_dir": args.allow_outside_image_dir,
        "video_sampling": VideoSampling(every=args.video_every, frames=args.video_frames, seed=args.seed),
    }


def _metadata(
    plan: _FolderPlan, skeleton: Skeleton, seed: int, ratios: tuple[float, ...], embedded: bool,
    sources: dict[str, Any],
) -> dict[str, Any]:
    """Contents of `semipose_dataset.json`: how the folder was made and what each split holds."""
    return {
        "skeleton": skeleton.to_dict(), "seed": seed, "ratios": list(ratios),
        "labeled_counts": [int(name.removeprefix("labeled_")) for name in plan.configs if name.startswith("labeled_")],
        "embedded": embedded,
        "num_eligible_train_images": plan.num_eligible,
        "configs": {
            config: {split: plan.count(config, split) for split in SPLITS}
            for config in plan.configs
        },
        "labeled_image_ids": plan.labeled_image_ids,
        "sources": sources,
    }


def _check_ratios(ratios: Sequence[float], allow_none: bool = False) -> tuple[float, ...]:
    """Ratios sorted ascending; each a percentage in (0, 100], no duplicates (none only if `allow_none`)."""
    ratios = tuple(sorted(ratios))
    in_range = all(0 < ratio <= 100 for ratio in ratios)
    if not (ratios or allow_none) or not in_range or len(set(ratios)) < len(ratios):
        raise ValueError(
            f"ratios must be distinct labeled percentages in (0, 100], got {list(ratios)}."
        )
    return ratios


def _check_output_dir(output_dir: Path, overwrite: bool) -> None:
    """Refuse to clobber: an existing output needs `overwrite` and must be ours or empty."""
    if not output_dir.exists():
        return
    if not output_dir.is_dir():
        raise FileExistsError(f"Output {output_dir} exists and is not a folder.")
    if not overwrite:
        raise FileExistsError(
            f"Output folder {output_dir} already exists; pass overwrite=True (--overwrite) "
            "to replace it."
        )
    if any(output_dir.iterdir()) and not (output_dir / METADATA_FILE).is_file():
        raise ValueError(
            f"Refusing to overwrite {output_dir}: it is not empty and has no {METADATA_FILE}, "
            "so it is not a dataset folder written by prepare_dataset_folder."
        )


def _extra_unlabeled_rows(
    paths: Sequence[str | Path], first_id: int, show_progress: bool, sampling: VideoSampling, output_dir: Path,
) -> tuple[list[dict[str, Any]], list[SampledVideo]]:
    """Unlabeled rows for the image files under `paths` (folders), then for the sampled frames of their videos
    and of the video files among `paths`, with ids from `first_id` on; and the sampled videos."""
    images, video_files = [], []
    for path in (Path(path).resolve() for path in paths):
        found_images, found_videos = _extra_media(path)
        images += [(path, image) for image in found_images]
        video_files += [(path, video) for video in found_videos]
    rows = []
    for image_id, (folder, path) in enumerate(
        tqdm(images, desc="Checking extra unlabeled images", disable=not show_progress), first_id
    ):
        width, height = read_image_size(path, f"extra unlabeled folder {folder}")
        file_name = f"{folder.name}/{path.relative_to(folder).as_posix()}"
        rows.append(unlabeled_row(image_id, str(path), file_name, width, height))
    names = _video_names(video_files)
    videos = [sample_video(video, sampling, name=name) for (_, video), name in zip(
        tqdm(video_files, desc="Decoding extra videos", disable=not show_progress), names)]
    frames = [(video, index) for video in videos for index in video.indices]
    for image_id, (video, index) in enumerate(frames, first_id + len(rows)):
        file_name = video.frame_file(index)
        rows.append(unlabeled_row(image_id, str(output_dir / file_name), file_name, video.width, video.height))
    return rows, videos


def warn_of_leaking_videos(videos: Sequence[SampledVideo], validation: Sequence[dict[str, Any]]) -> list[str]:
    """Warn of each unlabeled video that the validation frames were taken from (a folder of the frame's path is
    named after the video, as DeepLabCut's `labeled-data/<video>/` and SLEAP's exports are): its frames would put
    the validation frames, or their neighbours, into training, and the validation error would read too low.

    Returns:
        The warnings given.
    """
    warnings = []
    for video in videos:
        stem = video.path.stem
        taken = [row["file_name"] for row in validation if stem in Path(row["file_name"]).parts[:-1]]
        if taken:
            warnings.append(
                f"The split leaks: {len(taken)} of the {len(validation)} validation frames (e.g. {taken[0]}) come "
                f"from video {video.path}, whose frames are unlabeled training data. Use another recording's video "
                "as unlabeled data, or validation frames from another video.")
            logger.warning(warnings[-1])
    return warnings


def extra_unlabeled_dataset(
    paths: Sequence[str | Path], sampling: VideoSampling, cache_root: str | Path, first_id: int, num_keypoints: int,
) -> Dataset:
    """Unlabeled rows for extra image folders, videos and folders of videos given to a training run rather than
    to the converter: the same rows `prepare_dataset_folder` writes for `extra_unlabeled_dirs`, ids from
    `first_id` on, video frames extracted once as PNG files into a folder under `cache_root` keyed by the paths,
    the videos' sizes and modification times and the sampling rule (extracting once is faster than decoding
    while training: PyAV decodes a whole video in order at ~900 frames/s, but a shuffled batch costs ~11/s)."""
    key = _extra_key(paths, sampling)
    folder = Path(cache_root) / "extra_unlabeled" / key
    rows, videos = _extra_unlabeled_rows(paths, first_id, False, sampling, folder)
    if videos and not (folder / _SAMPLED_VIDEOS_FILE).is_file():
        partial = folder.with_name(f".{key}.{uuid.uuid4().hex}.partial")
        extract_video_frames(videos, partial)
        (partial / _SAMPLED_VIDEOS_FILE).write_text(json.dumps(_video_sources(videos, sampling), indent=2) + "\n")
        shutil.rmtree(folder, ignore_errors=True)
        partial.rename(folder)
    return Dataset.from_list(rows, features=pose_features(num_keypoints))


_SAMPLED_VIDEOS_FILE = "sampled_videos.json"
"""Written last into a folder of frames extracted for a run: the videos and rule (its presence: extraction done)."""


def _extra_key(paths: Sequence[str | Path], sampling: VideoSampling) -> str:
    """What the extracted frames depend on: the resolved paths with each file's size and modification time."""
    facts = [sampling.to_dict()]
    for path in (Path(path).resolve() for path in paths):
        files = [path] if path.is_file() else sorted(files_under(path)) if path.is_dir() else []
        facts += [[str(file), file.stat().st_size, file.stat().st_mtime_ns] for file in files]
    return hashlib.sha256(json.dumps(facts).encode()).hexdigest()[:16]


def _extra_media(path: Path) -> tuple[list[Path], list[Path]]:
    """The image and video files of one `--extra-unlabeled` path: a folder (searched) or a video file."""
    if path.is_file() and is_video_file(path):
        return [], [path]
    if not path.is_dir():
        raise FileNotFoundError(f"Extra unlabeled path {path} does not exist or is neither a folder nor a video "
                                f"file ({', '.join(sorted(VIDEO_SUFFIXES))}).")
    images, videos = split_media(files_under(path), IMAGE_EXTENSIONS)
    if not images and not videos:
        raise ValueError(
            f"Extra unlabeled image folder {path} holds no image or video files "
            f"(searched with its sub-folders for {', '.join(IMAGE_EXTENSIONS)} and "
            f"{', '.join(sorted(VIDEO_SUFFIXES))})."
        )
    return images, videos


def _video_names(video_files: list[tuple[Path, Path]]) -> list[str]:
    """Each video's frames folder: `<folder name>/<path in it without suffix>`, or the stem of a video given as a
    file; ValueError when two videos would share one."""
    names = [video.stem if source == video else f"{source.name}/{video.relative_to(source).with_suffix('').as_posix()}"
             for source, video in video_files]
    seen = {}
    for name, (_, video) in zip(names, video_files):
        if name in seen:
            raise ValueError(f"Extra unlabeled videos {seen[name]} and {video} would both extract to "
                             f"{VIDEO_FRAMES_DIR}/{name}/; expected distinct names (rename or move one).")
        seen[name] = video
    return names


def _video_sources(videos: list[SampledVideo], sampling: VideoSampling) -> dict[str, Any]:
    """The `sources` entries of the extra videos (none without videos, so image-only folders keep theirs)."""
    if not videos:
        return {}
    return {"video_sampling": sampling.to_dict(), "extra_unlabeled_videos": [video.to_dict() for video in videos]}


def _video_frame_records(rows: list[dict[str, Any]], videos: list[SampledVideo]) -> dict[str, dict[str, Any]]:
    """Per extracted frame's image id (a json key): its video, frame index and timestamp in seconds. The frames'
    rows are the last of `rows`, in the order of `videos` and their indices."""
    frames = [(video, index, timestamp) for video in videos
              for index, timestamp in zip(video.indices, video.timestamps)]
    return {str(row["image_id"]): {"video": str(video.path), "frame_index": index, "timestamp": timestamp}
            for row, (video, index, timestamp) in zip(rows[len(rows) - len(frames):], frames, strict=True)}


def _staged(files: dict[str, list[dict[str, Any]]], output_dir: Path, folder: Path) -> dict[str, list[dict[str, Any]]]:
    """The rows, those whose image lies in `output_dir` (extracted video frames) read from `folder`, the folder
    being written, so that their bytes can be embedded before it is renamed to `output_dir`."""
    def staged(row: dict[str, Any]) -> dict[str, Any]:
        image = Path(row["image"])
        if not image.is_relative_to(output_dir):
            return row
        return {**row, "image": str(folder / image.relative_to(output_dir))}
    return {path: [staged(row) for row in rows] for path, rows in files.items()}


def _draw_order(train: list[dict[str, Any]], seed: int) -> list[int]:
    """Seeded shuffle of the ids of the training images with at least one labeled person."""
    eligible = sorted(row["image_id"] for row in train if row["annotation_ids"])
    if not eligible:
        raise ValueError(
            "No training image has a person with a labeled keypoint, so no labeled subset can "
            "be drawn; expected at least one non-crowd annotation with visibility > 0."
        )
    return [int(image_id) for image_id in np.random.default_rng(seed).permutation(eligible)]


def _labeled_subsets(
    ratios: tuple[float, ...], labeled_counts: tuple[int, ...], num_eligible: int
) -> list[tuple[str, int]]:
    """(config name, labeled images) per subset, smallest first."""
    subsets = [(f"ratio_{ratio:g}", math.ceil(ratio * num_eligible / 100)) for ratio in ratios]
    for count in labeled_counts:
        if not 0 < count <= num_eligible:
            raise ValueError(f"labeled_counts: {count} labeled images asked for, but the training split has "
                             f"{num_eligible} images with a labeled person; expected 1 to {num_eligible}.")
        subsets.append((f"labeled_{count}", count))
    return sorted(subsets, key=lambda subset: subset[1])


def _plan_folder(
    train: list[dict[str, Any]], validation: list[dict[str, Any]], extra: list[dict[str, Any]],
    ratios: tuple[float, ...], labeled_counts: tuple[int, ...], seed: int,
) -> _FolderPlan:
    """Cut the draw into parts between consecutive subset sizes and give each config its files."""
    order = _draw_order(train, seed)
    by_id = {row["image_id"]: row for row in train}
    subsets = _labeled_subsets(ratios, labeled_counts, len(order))
    stops = [0, *(stop for _, stop in subsets), len(order)]
    names = [f"images_{start}-{stop}" for start, stop in pairwise(stops)] if labeled_counts else [
        f"{low:g}-{high:g}" for low, high in pairwise((0, *ratios, 100))]
    plan = _FolderPlan(num_eligible=len(order))
    plan.files[_VALIDATION_FILE] = validation
    labeled, unlabeled = [], []
    for name, (start, stop) in zip(names, pairwise(stops), strict=True):
        rows = [by_id[image_id] for image_id in sorted(order[start:stop])]
        labeled.append(f"data/labeled/draw_{name}.parquet")
        unlabeled.append(f"data/unlabeled/draw_{name}.parquet")
        plan.files[labeled[-1]] = rows
        plan.files[unlabeled[-1]] = [without_annotations(row) for row in rows]
    plan.files[_NO_PERSON_FILE] = [
        without_annotations(row) for row in train if not row["annotation_ids"]
    ]
    plan.files[_EXTRA_FILE] = extra
    for index, (name, stop) in enumerate(subsets):
        plan.configs[name] = _config_files(plan, labeled[:index + 1],
                                           unlabeled[index + 1:] + [_NO_PERSON_FILE, _EXTRA_FILE])
        plan.labeled_image_ids[name] = sorted(order[:stop])
    plan.configs[FULL_CONFIG] = _config_files(plan, labeled, [_EXTRA_FILE])
    plan.labeled_image_ids[FULL_CONFIG] = sorted(order)
    plan.files = {path: rows for path, rows in plan.files.items() if rows}
    return plan


def _config_files(
    plan: _FolderPlan, labeled: list[str], unlabeled: list[str]
) -> dict[str, list[str]]:
    """A config's files per split, leaving out files without rows."""
    splits = {"labeled": labeled, "unlabeled": unlabeled, "validation": [_VALIDATION_FILE]}
    return {split: [path for path in paths if plan.files[path]] for split, paths in splits.items()}


@contextmanager
def _atomic_folder(output_dir: Path, overwrite: bool) -> Iterator[Path]:
    """Yield a temporary sibling folder; on success move it to `output_dir`, else delete it."""
    output_dir.parent.mkdir(parents=True, exist_ok=True)
    partial = output_dir.with_name(f".{output_dir.name}.partial-{uuid.uuid4().hex[:8]}")
    partial.mkdir()
    try:
        yield partial
        _check_output_dir(output_dir, overwrite)
        if output_dir.exists():
            previous = output_dir.with_name(f".{output_dir.name}.previous-{uuid.uuid4().hex[:8]}")
            output_dir.rename(previous)
            try:
                partial.rename(output_dir)
            except OSError:
                previous.rename(output_dir)
                raise
            shutil.rmtree(previous)
        else:
            partial.rename(output_dir)
    finally:
        shutil.rmtree(partial, ignore_errors=True)


def _write_files(
    folder: Path, files: dict[str, list[dict[str, Any]]], features: Features, embed: bool,
    show_progress: bool,
) -> None:
    """Write each file's rows as parquet (features in the schema metadata), in row groups."""
    schema = features.arrow_schema
    with tqdm(total=sum(map(len, files.values())), desc="Writing parquet", unit="rows",
              disable=not show_progress) as progress:
        for relative_path, rows in files.items():
            path = folder / relative_path
            path.parent.mkdir(parents=True, exist_ok=True)
            with pq.ParquetWriter(path, schema) as writer:
                for start in range(0, len(rows), ROWS_PER_ROW_GROUP):
                    chunk = rows[start:start + ROWS_PER_ROW_GROUP]
                    batch = [_encode(row, features, embed) for row in chunk]
                    writer.write_table(pa.Table.from_pylist(batch, schema=schema))
                    progress.update(len(batch))


def _encode(row: dict[str, Any], features: Features, embed: bool) -> dict[str, Any]:
    """Arrow-ready row: the image as an absolute path, or as bytes named by its file name."""
    if embed:
        row = {**row, "image": {"bytes": Path(row["image"]).read_bytes(), "path": row["file_name"]}}
    return features.encode_example(row)


def _readme(plan: _FolderPlan, metadata: dict[str, Any], name: str, license: str | None) -> str:
    """README.md: the YAML header (license, task, `configs:` for `load_dataset` with paths relative to the
    folder, the row features of every config), then the dataset card."""
    configs = [
        {"config_name": config, "data_files": [
            {"split": split, "path": paths} for split, paths in splits.items() if paths
        ]}
        for config, splits in plan.configs.items()
    ]
    header = DatasetCardData(license=license or "unknown", task_categories=[TASK_CATEGORY], pretty_name=name,
                             configs=configs)
    features = pose_features(len(metadata["skeleton"]["keypoints"]))
    infos = DatasetInfosDict({config: DatasetInfo(config_name=config, features=features) for config in plan.configs})
    infos.to_dataset_card_data(header)
    return f"---\n{header.to_yaml()}\n---\n\n{_card(metadata, name)}"


def _file_names(source: str) -> str:
    """The file names of a source (one path, or several joined by ", "), or its description as it is."""
    parts = source.split(", ")
    if not all(Path(part).is_absolute() for part in parts):
        return source
    return ", ".join(f"`{Path(part).name}`" for part in parts)


def _video_card_lines(sources: dict[str, Any]) -> list[str]:
    """The card's line on the extra videos' frames (none without videos)."""
    videos = sources.get("extra_unlabeled_videos", [])
    if not videos:
        return []
    rule = sources["video_sampling"]
    how = (f"every {rule['every']}-th frame" if "every" in rule
           else f"{rule['frames']} frames per video, one per even stride, seed {rule['seed']}")
    count = sum(len(video["frame_indices"]) for video in videos)
    return [f"- Video frames: {count} of {len(videos)} videos ({how}), extracted to `video_frames/`; "
            "their videos, frame indices and timestamps are in `semipose_dataset.json` (`video_frames`)."]


def _card(metadata: dict[str, Any], name: str) -> str:
    """The human part of README.md: sources, how subsets were drawn, counts, labeled ids."""
    sources = metadata["sources"]  # absolute paths of this machine: the card names the files only
    extra = ", ".join(f"`{Path(folder).name}{'' if is_video_file(folder) else '/'}`"
                      for folder in sources["extra_unlabeled_dirs"]) or "none"
    images = (
        "embedded in the parquet files (portable, ready for `push_to_hub`)" if metadata["embedded"]
        else "referenced by absolute path to the original files (not portable: they must stay)"
    )
    first_config = next(iter(metadata["configs"]))
    lines = [
        f"# {name}",
        "",
        f"Multi-instance keypoints (the {metadata['skeleton']['name']} skeleton: "
        f"{', '.join(metadata['skeleton']['keypoints'])}) with labeled/unlabeled "
        "configs for semi-supervised training, written by "
        "`semipose.data.dataset_folder.prepare_dataset_folder`.",
        "",
        *(f"- {_SOURCE_LABELS.get(key, key.replace('_', ' ').capitalize())}: {_file_names(value)}"
          for key, value in sources.items() if key not in _CARD_LEAVES_OUT),
        f"- Extra unlabeled image folders: {extra}",
        *_video_card_lines(sources),
        f"- Images: {images}.",
        f"- Labeled subsets: seed {metadata['seed']}; `numpy.random.default_rng(seed).permutation` "
        f"of the sorted ids of the N = {metadata['num_eligible_train_images']} training images "
        "with at least one labeled person; `ratio_r` labels the first `ceil(r * N / 100)`, "
        "`labeled_n` the first n (nested subsets); its unlabeled split holds every other training image (annotations "
        "removed) and the extra images.",
        "",
        "```python",
        "from datasets import load_dataset",
        f'labeled = load_dataset("path/to/{name}", "{first_config}", split="labeled")',
        "```",
        "",
        "| config | labeled | unlabeled | validation |",
        "|---|---|---|---|",
        *(f"| {config} | {c['labeled']} | {c['unlabeled']} | {c['validation']} |"
          for config, c in metadata["configs"].items()),
        "",
        "Splits with 0 rows are not declared above (`datasets` cannot load an empty split); "
        "`semipose.data.dataset_folder.load_pose_dataset` returns an empty dataset for them.",
        "",
        "## Labeled image ids",
        "",
    ]
    for config, ids in metadata["labeled_image_ids"].items():
        if config == FULL_CONFIG:
            lines += [f"- `{config}`: all {len(ids)} eligible training images."]
        else:
            lines += [f"- `{config}` ({len(ids)}): {', '.join(map(str, ids))}"]
    return "\n".join(lines) + "\n"
