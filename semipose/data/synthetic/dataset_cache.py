"""Render each setting once: a synthetic dataset folder named by the hash of its settings, with
its PNGs and COCO json beside it and a record that makes the pair a cache.

`semipose.data.dataset_folder` (and with it `datasets`) is imported only when a folder is
written, so rendering scenes does not load it.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

from .coco_files import write_coco_split
from .config import GENERATOR_VERSION, SyntheticConfig
from .scene import SPLITS

_RECORD_FILE = "synthetic_config.json"
SYNTHETIC_LICENSE = "apache-2.0"
"""The dataset card's license: the images are rendered by semipose, from nothing but its own code."""


def synthetic_dataset_dir(
    cache_root: str | Path, config: SyntheticConfig, *, ratios: tuple[float, ...] = (1, 5, 10)
) -> Path:
    """Dataset folder for `config` (and the labeled `ratios`) under `cache_root`, named by their
    hash, so a job renders each setting once.

    Illustration (not run: renders and writes a whole dataset):

    ```python
    root = synthetic_dataset_dir("~/.cache/semipose", config)
    folder = prepare_synthetic_dataset(root, config)  # == root
    ```
    """
    key = hashlib.sha256(json.dumps(_record(config, ratios, False)["key"], sort_keys=True).encode())
    name = f"synthetic-{config.skeleton}-{config.image_size}px-{key.hexdigest()[:12]}"
    return Path(cache_root).expanduser() / name


def synthetic_source_dir(output_dir: str | Path) -> Path:
    """The folder beside a synthetic dataset folder that holds its PNGs and COCO json."""
    output_dir = Path(output_dir).expanduser().resolve()
    return output_dir.with_name(f"{output_dir.name}-source")


def prepare_synthetic_dataset(
    output_dir: str | Path,
    config: SyntheticConfig,
    *,
    ratios: tuple[float, ...] = (1, 5, 10),
    overwrite: bool = False,
    show_progress: bool = True,
    embed_images: bool = False,
) -> Path:
    """Render the synthetic images, write COCO json, and convert them into a dataset folder.

    `output_dir` becomes a dataset folder written by
    `semipose.data.dataset_folder.prepare_dataset_folder`, the converter real COCO goes through
    (it appears at once, when complete). Its rows refer by path to the PNGs in the sibling
    `{output_dir}-source/` (`images/{train,val}/`, COCO json in `annotations/`), unless
    `embed_images`. `{output_dir}-source/synthetic_config.json` records the settings, which makes
    the pair a cache: called again with the same config, ratios and embedding, this returns at once.

    Args:
        output_dir: the dataset folder to create (see `synthetic_dataset_dir` for a keyed one).
        config: what to render.
        ratios: labeled percentages, one config `ratio_{r}` each, drawn with `config.seed`.
        overwrite: replace a finished dataset made with other settings (one left unfinished by
            an interrupted run is always replaced; folders not made here never are).
        show_progress: tqdm bars.
        embed_images: store the PNG bytes inside the parquet files (portable).

    Returns:
        `output_dir`, ready for `datasets.load_dataset(output_dir, "ratio_10", split="labeled")`.

    Illustration (not run: renders and writes a whole dataset):

    ```python
    folder = prepare_synthetic_dataset("data/synthetic", SyntheticConfig(skeleton="crowdpose"))
    ```
    """
    from ..dataset_folder import prepare_dataset_folder

    output_dir = Path(output_dir).expanduser().resolve()
    source = synthetic_source_dir(output_dir)
    record = _record(config, ratios, embed_images)
    if _reusable(output_dir, source, record, overwrite):
        return output_dir
    shutil.rmtree(source, ignore_errors=True)
    source.mkdir(parents=True)
    (source / _RECORD_FILE).write_text(json.dumps(record, indent=2))
    annotations = {split: source / "annotations" / f"{split}.json" for split in SPLITS}
    for split, annotation_file in annotations.items():
        write_coco_split(config, split, source / "images", annotation_file,
                         show_progress=show_progress)
    prepare_dataset_folder(
        annotations["train"], source / "images", annotations["val"], source / "images", output_dir,
        skeleton=config.skeleton, seed=config.seed, ratios=ratios, embed_images=embed_images,
        overwrite=True, show_progress=show_progress, license=SYNTHETIC_LICENSE,
    )
    (source / _RECORD_FILE).write_text(json.dumps({**record, "complete": True}, indent=2))
    return output_dir


def _record(
    config: SyntheticConfig, ratios: tuple[float, ...], embed_images: bool
) -> dict[str, Any]:
    """What `synthetic_config.json` holds; `key` is what the cache folder name hashes."""
    key = {"generator_version": GENERATOR_VERSION, "config": config.to_dict(),
           "ratios": [float(ratio) for ratio in ratios]}
    return json.loads(json.dumps({"key": key, "embed_images": embed_images, "complete": False}))


def _reusable(output_dir: Path, source: Path, record: dict[str, Any], overwrite: bool) -> bool:
    """True if the folders already hold this dataset; raise if they hold what we may not replace."""
    from ..dataset_folder import METADATA_FILE

    found = _read_record(source)
    dataset_exists = output_dir.exists() and (not output_dir.is_dir() or any(output_dir.iterdir()))
    if dataset_exists and not (output_dir / METADATA_FILE).is_file():
        raise FileExistsError(
            f"Refusing to write {output_dir}: it exists and is not a dataset folder (no "
            f"{METADATA_FILE}); choose a new or empty folder."
        )
    if found is None and dataset_exists and not overwrite:
        raise FileExistsError(
            f"Output folder {output_dir} already exists; pass overwrite=True to replace it."
        )
    if found is None or not found.get("complete") or not dataset_exists:
        return False
    if found == {**record, "complete": True}:
        return not overwrite
    if not overwrite:
        raise FileExistsError(
            f"{output_dir} holds a synthetic dataset made with other settings ({found['key']}, "
            f"embed_images={found['embed_images']}); expected {record['key']}, "
            f"embed_images={record['embed_images']}. Pass overwrite=True to replace it."
        )
    return False


def _read_record(source: Path) -> dict[str, Any] | None:
    """The settings recorded in a source folder; None if there is none (or it is empty)."""
    if not source.exists() or (source.is_dir() and not any(source.iterdir())):
        return None
    if not (source / _RECORD_FILE).is_file():
        raise FileExistsError(
            f"Refusing to write into {source}: it exists and has no {_RECORD_FILE}, so it was not "
            "made by prepare_synthetic_dataset; move it or choose another output folder."
        )
    return json.loads((source / _RECORD_FILE).read_text())
