"""A split on disk in COCO's format: one PNG per image and one annotation json, the input that
real COCO and CrowdPose data also come in, so both go through the same converter."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from ...skeletons import get_skeleton
from .config import GENERATOR_VERSION, SyntheticConfig
from .scene import SPLITS, generate_scene

IMAGE_ID_STRIDE = 100_000_000
"""Image ids are `split number * IMAGE_ID_STRIDE + index + 1`; annotation ids
`image id * 100 + person`."""


def coco_categories(skeleton_name: str) -> list[dict[str, Any]]:
    """The single `person` category with the skeleton's keypoint names and 1-based limbs."""
    return [get_skeleton(skeleton_name).coco_category()]


def write_coco_split(
    config: SyntheticConfig, split: str, image_root: str | Path, annotation_file: str | Path,
    *, show_progress: bool = True,
) -> Path:
    """Render every image of `split` to `image_root/{split}/{index:06d}.png`; write its COCO json.

    Returns:
        The annotation file.
    """
    image_root, annotation_file = Path(image_root), Path(annotation_file)
    (image_root / split).mkdir(parents=True, exist_ok=True)
    count = config.num_train if split == "train" else config.num_val
    images, annotations = [], []
    for index in tqdm(range(count), desc=f"Rendering synthetic {split}", unit="img",
                      disable=not show_progress):
        scene = generate_scene(config, split, index)
        image_id = SPLITS[split] * IMAGE_ID_STRIDE + index + 1
        file_name = f"{split}/{index:06d}.png"
        scene.image.save(image_root / file_name, compress_level=1)
        record = {"id": image_id, "file_name": file_name, "width": config.image_size,
                  "height": config.image_size}
        if scene.crowd_index is not None:
            record["crowdIndex"] = round(scene.crowd_index, 4)
        images.append(record)
        annotations += scene.coco_annotations(image_id)
    annotation_file.parent.mkdir(parents=True, exist_ok=True)
    annotation_file.write_text(json.dumps({
        "info": {"description": f"semipose synthetic people, {split} split",
                 "version": GENERATOR_VERSION, "synthetic_config": config.to_dict()},
        "images": images, "annotations": annotations,
        "categories": coco_categories(config.skeleton),
    }))
    return annotation_file
