"""A picture of what the generator makes: the first images of a split with their ground truth
drawn, to judge a setting by eye before rendering thousands of images with it."""

from __future__ import annotations

from PIL import Image

from ...skeletons import get_skeleton
from ...visualization import draw_people, make_grid
from .config import SyntheticConfig
from .scene import generate_scene


def render_contact_sheet(
    config: SyntheticConfig, count: int = 16, columns: int = 4, split: str = "train", scale: int = 2
) -> Image.Image:
    """A grid of the first `count` images of `split`, enlarged `scale` times, with their
    ground-truth skeletons drawn (occluded keypoints too; unlabeled ones are not)."""
    skeleton = get_skeleton(config.skeleton)
    tiles = []
    for index in range(count):
        scene = generate_scene(config, split, index)
        image = scene.image.resize((config.image_size * scale,) * 2, Image.BICUBIC)
        keypoints = scene.keypoints.copy()
        keypoints[..., :2] = (keypoints[..., :2] + 0.5) * scale - 0.5
        tiles.append(draw_people(image, keypoints, skeleton, threshold=0, line_width=scale))
    return make_grid(tiles, columns)
