"""From shapes to pixels and occlusion labels, both read from one label map.

Shapes are drawn, far to near, into a label map at `_SUPERSAMPLE` times the resolution; colors
come from a lookup table, edges between shapes are darkened, then the image is shrunk. Keypoint
visibility is read from the same label map, so "hidden" means hidden in the picture.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from .body import BODY_KEYPOINTS
from .config import SyntheticConfig
from .figures import Figures
from .parts import CARRIES

_SUPERSAMPLE = 2


def draw_label_map(
    size: int, distractors: np.ndarray, figures: Figures
) -> tuple[np.ndarray, np.ndarray]:
    """Draw distractors, then every person's parts far to near, into an int32 label map.

    Returns:
        The `[S, S]` label map at `_SUPERSAMPLE` times `size` (0 = background, 1..D distractors,
        then parts in drawing order) and `[N, P]` each part's label (0 if not drawn).
    """
    canvas = Image.new("I", (size * _SUPERSAMPLE,) * 2, 0)
    draw = ImageDraw.Draw(canvas)
    for label, polygon in enumerate(distractors, start=1):
        draw.polygon(_to_canvas(polygon), fill=label)
    part_labels = np.zeros(figures.depth.shape, dtype=np.int64)
    label = len(distractors)
    for person in range(len(figures.depth)):
        for part in np.argsort(figures.depth[person], kind="stable"):
            if figures.drawn[person, part]:
                label += 1
                part_labels[person, part] = label
                draw.polygon(_to_canvas(figures.polygons[person, part]), fill=label)
    return np.asarray(canvas), part_labels


def _to_canvas(polygon: np.ndarray) -> list[float]:
    """Flat PIL coordinates of a `[V, 2]` polygon at `_SUPERSAMPLE` times the resolution."""
    return (polygon * _SUPERSAMPLE + (_SUPERSAMPLE - 1) / 2).ravel().tolist()


def paint_picture(
    rng: np.random.Generator, labels: np.ndarray, background: np.ndarray, colors: np.ndarray,
    config: SyntheticConfig,
) -> Image.Image:
    """Color the label map, darken shape edges, shrink it over the background (anti-aliased),
    light the picture unevenly, blur it and add noise."""
    edge = np.zeros(labels.shape, dtype=bool)
    edge[1:] |= labels[1:] > labels[:-1]
    edge[:-1] |= labels[:-1] > labels[1:]
    edge[:, 1:] |= labels[:, 1:] > labels[:, :-1]
    edge[:, :-1] |= labels[:, :-1] > labels[:, 1:]
    lut = np.clip(np.concatenate([colors, colors * 0.65]), 0, 255).astype(np.uint8)
    shapes = np.take(lut, labels + edge * len(colors), axis=0)
    covered = Image.fromarray(((labels > 0) * 255).astype(np.uint8)).reduce(_SUPERSAMPLE)
    alpha = np.asarray(covered, dtype=np.float32)[..., None] / 255
    shapes = np.asarray(Image.fromarray(shapes).reduce(_SUPERSAMPLE), dtype=np.float32)
    image = shapes + (1 - alpha) * background
    light = Image.fromarray(rng.uniform(0.8, 1.2, (3, 3)).astype(np.float32), "F")
    image *= np.asarray(light.resize(image.shape[1::-1], Image.BILINEAR))[..., None]
    picture = Image.fromarray(np.clip(image, 0, 255).astype(np.uint8))
    if (radius := rng.uniform(0, config.blur)) > 0.1:
        picture = picture.filter(ImageFilter.GaussianBlur(radius))
    # The difference of two uniforms (triangular, standard deviation 1 / sqrt(6)) looks Gaussian
    # and costs a fifth of a Gaussian draw.
    sigma = np.float32(rng.uniform(0, config.noise) * 255 * np.sqrt(6))
    shape = (*picture.size[::-1], 3)
    noise = (rng.random(shape, dtype=np.float32) - rng.random(shape, dtype=np.float32)) * sigma
    return Image.fromarray(np.clip(np.asarray(picture) + noise, 0, 255).astype(np.uint8))


def keypoint_visibility(
    figures: Figures, labels: np.ndarray, part_labels: np.ndarray, size: int
) -> np.ndarray:
    """`[N, J]` COCO visibility of every body-model keypoint.

    0: outside the frame, or a face point turned away from the camera; 1: the label-map pixel
    under it belongs to a shape drawn after the first part that carries it and not carrying it
    (a nearer person or body part); 2: otherwise.
    """
    x, y = figures.keypoints[..., 0], figures.keypoints[..., 1]
    inside = (x >= -0.5) & (x < size - 0.5) & (y >= -0.5) & (y < size - 0.5)
    column = np.clip(np.floor((x + 0.5) * _SUPERSAMPLE), 0, labels.shape[1] - 1).astype(int)
    row = np.clip(np.floor((y + 0.5) * _SUPERSAMPLE), 0, labels.shape[0] - 1).astype(int)
    under = labels[row, column]
    num_labels = max(labels.max(), part_labels.max()) + 1
    owner = np.full(num_labels, -1)
    part = np.zeros(num_labels, dtype=int)
    drawn = part_labels > 0
    owner[part_labels[drawn]] = np.nonzero(drawn)[0]
    part[part_labels[drawn]] = np.nonzero(drawn)[1]
    people = np.arange(len(part_labels))[:, None]
    never = np.iinfo(np.int64).max
    carried = np.where(CARRIES[None] & drawn[:, None], part_labels[:, None], never)
    own = (owner[under] == people) & CARRIES[np.arange(len(BODY_KEYPOINTS))[None], part[under]]
    hidden = (under > carried.min(axis=2)) & ~own
    return np.where(inside & figures.labeled, np.where(hidden, 1, 2), 0)
