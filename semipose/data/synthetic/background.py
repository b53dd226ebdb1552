"""What stands behind the people: a gradient, with clutter a texture and stripes, and shapes and
limb-like sticks in the people's own colors and limb sizes, so that neither a color nor a limb
shape alone tells a model where a person is."""

from __future__ import annotations

import numpy as np
from PIL import Image

from .colors import distractor_colors
from .config import SyntheticConfig
from .outlines import VERTICES, capsules, ellipses, pad_polygon


def paint_background(rng: np.random.Generator, size: int, clutter: float) -> np.ndarray:
    """`[size, size, 3]` float32 background: a two-color gradient plus, with clutter, a smooth
    color texture and sometimes stripes."""
    axis = np.linspace(0, 1, size, dtype=np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    ramp = np.float32(np.cos(angle)) * axis[None, :] + np.float32(np.sin(angle)) * axis[:, None]
    ramp = (ramp - ramp.min()) / (np.ptp(ramp) + 1e-6)
    first, second = distractor_colors(rng, 2).astype(np.float32)
    image = first + (second - first) * ramp[..., None]
    if clutter > 0:
        cells = int(rng.integers(2, 12))
        small = Image.fromarray(rng.integers(0, 256, (cells, cells, 3), dtype=np.uint8))
        texture = np.asarray(small.resize((size, size), Image.BICUBIC), dtype=np.float32) - 128
        image += texture * np.float32(clutter * rng.uniform(0.2, 0.8))
    if rng.random() < 0.4 * clutter:
        direction = rng.uniform(0, 2 * np.pi)
        phase = (np.cos(direction) * axis[None, :] + np.sin(direction) * axis[:, None]) * size
        stripes = np.sin(phase * np.float32(2 * np.pi / rng.uniform(2, 12)))
        image += np.float32(rng.uniform(10, 40)) * stripes[..., None]
    return image


def sample_distractors(
    rng: np.random.Generator, config: SyntheticConfig
) -> tuple[np.ndarray, np.ndarray]:
    """Background shapes and limb-like sticks, as `[D, V, 2]` polygons in image pixels and
    `[D, 3]` colors (clothing and skin colors, like the people's)."""
    polygons = _shapes(rng, config) + _sticks(rng, config)
    stacked = np.stack(polygons) if polygons else np.zeros((0, VERTICES, 2))
    return stacked, distractor_colors(rng, len(polygons))


def _shapes(rng: np.random.Generator, config: SyntheticConfig) -> list[np.ndarray]:
    """About `5 * clutter` triangles, quadrilaterals and ellipses, 3-25% of the image across."""
    shapes = []
    for _ in range(rng.poisson(5 * config.clutter)):
        center = rng.uniform(0, config.image_size, (1, 2))
        radii = rng.uniform(0.03, 0.25, 2) * config.image_size
        angle = rng.uniform(0, 2 * np.pi)
        up = np.array([[np.cos(angle), np.sin(angle)]])
        ellipse = ellipses(center, radii[:1], radii[1:], up)
        corners = np.linspace(0, VERTICES, int(rng.choice([3, 4, VERTICES])), endpoint=False)
        shapes.append(pad_polygon(ellipse[0, corners.astype(int)]))
    return shapes


def _sticks(rng: np.random.Generator, config: SyntheticConfig) -> list[np.ndarray]:
    """About `6 * clutter` chains of 1-3 rounded segments, as long and thick as the limbs of a
    person of a height drawn from `height_range`."""
    sticks = []
    for _ in range(rng.poisson(6 * config.clutter)):
        height = rng.uniform(*config.height_range) * config.image_size
        point, heading = rng.uniform(0, config.image_size, 2), rng.uniform(0, 2 * np.pi)
        radius = np.array([rng.uniform(0.02, 0.045) * height])
        for _ in range(rng.integers(1, 4)):
            direction = np.array([np.cos(heading), np.sin(heading)])
            end = point + rng.uniform(0.12, 0.22) * height * direction
            sticks.append(capsules(point[None], end[None], radius)[0])
            point, heading = end, heading + rng.normal(0, 1.0)
    return sticks
