"""2D outlines with a fixed number of vertices, `VERTICES`, so that body parts and background
shapes of any kind stack into one `[..., VERTICES, 2]` array and are drawn the same way."""

from __future__ import annotations

import numpy as np

VERTICES = 12


def capsules(starts: np.ndarray, ends: np.ndarray, radii: np.ndarray) -> np.ndarray:
    """`[..., V, 2]` polygons of rounded segments (`starts`, `ends` `[..., 2]`, `radii` `[...]`)."""
    direction = ends - starts
    heading = np.arctan2(direction[..., 1], direction[..., 0])[..., None]
    arc = np.linspace(-np.pi / 2, np.pi / 2, VERTICES // 2)
    rings = []
    for center, angle in ((ends, heading + arc), (starts, heading + np.pi + arc)):
        offsets = np.stack([np.cos(angle), np.sin(angle)], -1)
        rings.append(center[..., None, :] + radii[..., None, None] * offsets)
    return np.concatenate(rings, axis=-2)


def ellipses(
    centers: np.ndarray, half_width: np.ndarray, half_height: np.ndarray, up: np.ndarray
) -> np.ndarray:
    """`[N, V, 2]` ellipses whose `half_height` axis points along the image vector `up` `[N, 2]`."""
    length = np.linalg.norm(up, axis=-1, keepdims=True)
    up = np.where(length > 1e-6, up / np.maximum(length, 1e-12), np.array([0.0, -1.0]))
    across = np.stack([-up[:, 1], up[:, 0]], -1)
    angle = np.linspace(0, 2 * np.pi, VERTICES, endpoint=False)[None, :, None]
    width = np.asarray(half_width)[:, None, None] * np.cos(angle) * across[:, None]
    height = np.asarray(half_height)[:, None, None] * np.sin(angle) * up[:, None]
    return centers[:, None] + width + height


def convex_hulls(points: np.ndarray) -> np.ndarray:
    """`[N, V, 2]` convex hulls of `[N, V, 2]` point sets (monotone chain, padded by repeating)."""
    hulls = np.empty_like(points)
    for index, cloud in enumerate(points):
        order = np.lexsort((cloud[:, 1], cloud[:, 0]))
        hull: list[np.ndarray] = []
        for sweep in (order, order[::-1]):
            chain: list[np.ndarray] = []
            for point in cloud[sweep]:
                while len(chain) >= 2 and _cross(chain[-2], chain[-1], point) <= 0:
                    chain.pop()
                chain.append(point)
            hull += chain[:-1]
        hulls[index] = pad_polygon(np.array(hull))
    return hulls


def _cross(origin: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    return (a[0] - origin[0]) * (b[1] - origin[1]) - (a[1] - origin[1]) * (b[0] - origin[0])


def pad_polygon(polygon: np.ndarray) -> np.ndarray:
    """A `[v, 2]` polygon with v <= V as `[V, 2]`, by repeating its last vertex."""
    return np.concatenate([polygon, np.repeat(polygon[-1:], VERTICES - len(polygon), 0)])
