"""Draw people (keypoints and limbs) on images and tile images into grids.

Shared by the command line, the trainer's logged samples, the README figures and the synthetic
data's contact sheet, so every picture of the project colors bodies the same way: limbs of the
person's left side orange, right side blue, center (head, torso) green. People followed through a
video (`semipose predict --track`) are drawn whole in their track's color instead (`track_color`),
so that a person keeps one color from frame to frame.

Shapes: M people, K keypoints. Keypoints are `(x, y, v)` in pixels of the image they are drawn on,
integer coordinates at pixel centers (see `semipose.skeletons`); `v` is a visibility (0, 1, 2) or
a confidence score, and a keypoint is drawn when `v > threshold`.

Example:

```python
>>> import numpy as np
>>> from PIL import Image
>>> from semipose.skeletons import get_skeleton
>>> from semipose.visualization import draw_people, make_grid
>>> keypoints = np.zeros((1, 17, 3)); keypoints[0, 5:7] = [[40, 30, 2], [20, 30, 2]]
>>> drawn = draw_people(Image.new("RGB", (64, 64)), keypoints, get_skeleton("coco"), scores=[0.9])
>>> make_grid([drawn, drawn], columns=2).size
(130, 64)

```
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .skeletons import Skeleton

SIDE_COLORS: dict[str, tuple[int, int, int]] = {
    "left": (255, 140, 0),
    "right": (0, 160, 255),
    "center": (60, 220, 60),
}
"""Limb and keypoint color per body side (`Skeleton.side` / `Skeleton.limb_side`)."""
TRACK_COLORS: tuple[tuple[int, int, int], ...] = (
    (230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48),
    (145, 30, 180), (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212),
)
"""The colors of tracked people, one per track id in turn (`track_color`): ten that stay apart from each other
and from black and white backgrounds."""


def track_color(track_id: int) -> tuple[int, int, int]:
    """The color a track is drawn in: `TRACK_COLORS` indexed by the track id, repeating after ten ids.

    Example:

    ```python
    >>> track_color(0), track_color(13) == track_color(3)
    ((230, 25, 75), True)

    ```
    """
    return TRACK_COLORS[track_id % len(TRACK_COLORS)]


def draw_people(
    image: Image.Image,
    keypoints: np.ndarray | Sequence,
    skeleton: Skeleton,
    scores: np.ndarray | Sequence[float] | None = None,
    threshold: float = 0.3,
    line_width: int | None = None,
    track_ids: Sequence[int] | None = None,
) -> Image.Image:
    """Draw each person's limbs and keypoints, colored by body side (or by track), on a copy of `image`.

    Args:
        image: the picture the keypoints belong to (any PIL mode; drawn on as RGB).
        keypoints: `[M, K, 3]` array of `(x, y, v)` in `image` pixels; `v` is a visibility or a
            score. A keypoint is drawn when `v > threshold`, a limb when both of its ends are.
        skeleton: gives K, the limbs and each keypoint's side.
        scores: optional `[M]` person scores, written above each person's top-left keypoint.
        threshold: keypoints with `v <= threshold` are not drawn (0.3 hides unlabeled ground
            truth, `v = 0`, and low-confidence predictions).
        line_width: limb width in pixels; by default about 1/150 of the image's shorter side.
        track_ids: optional `[M]` track ids (`semipose.tracking`): each person is drawn whole in
            `track_color(track_id)`, and the label above it starts with `#<track id>` (`#3: 0.87`).

    Returns:
        A new RGB image.
    """
    keypoints = _check_keypoints(keypoints, skeleton)
    for name, values in (("scores", scores), ("track_ids", track_ids)):
        if values is not None and len(values) != len(keypoints):
            raise ValueError(f"{name} has {len(values)} entries, expected one per person ({len(keypoints)}).")
    canvas = image.convert("RGB")
    draw = ImageDraw.Draw(canvas)
    width = line_width or max(1, round(min(canvas.size) / 150))
    for person, points in enumerate(keypoints):
        shown = points[:, 2] > threshold
        color = None if track_ids is None else track_color(int(track_ids[person]))
        _draw_limbs(draw, points, shown, skeleton, width, color)
        _draw_keypoints(draw, points, shown, skeleton, width, color)
        label = _label(None if scores is None else scores[person], None if track_ids is None else track_ids[person])
        if label and shown.any():
            x, y = points[shown, :2].min(axis=0)
            draw.text((x, y - 11), label, fill=(255, 255, 255), font=ImageFont.load_default(), stroke_width=1,
                      stroke_fill=(0, 0, 0))
    return canvas


def _label(score: float | None, track_id: int | None) -> str:
    """The text above a person: `#<track id>` and the score with two decimals (`#3: 0.87`), each when given."""
    parts = ([] if track_id is None else [f"#{int(track_id)}"]) + ([] if score is None else [f"{float(score):.2f}"])
    return ": ".join(parts)


def make_grid(
    images: Sequence[Image.Image],
    columns: int,
    padding: int = 2,
    background: tuple[int, int, int] = (255, 255, 255),
) -> Image.Image:
    """Tile images row by row into one RGB picture (cells as large as the largest image).

    Args:
        images: the tiles, in reading order; sizes may differ (each sits at its cell's top-left).
        columns: tiles per row.
        padding: pixels between tiles.
        background: color of the padding and of empty cell space.
    """
    if not images:
        raise ValueError("make_grid needs at least one image, got none.")
    if columns < 1:
        raise ValueError(f"columns must be >= 1, got {columns}.")
    cell_width = max(image.width for image in images)
    cell_height = max(image.height for image in images)
    columns = min(columns, len(images))
    rows = -(-len(images) // columns)
    grid = Image.new("RGB", (columns * cell_width + (columns - 1) * padding,
                             rows * cell_height + (rows - 1) * padding), background)
    for index, image in enumerate(images):
        row, column = divmod(index, columns)
        corner = (column * (cell_width + padding), row * (cell_height + padding))
        grid.paste(image.convert("RGB"), corner)
    return grid


def enlarge(image: Image.Image, min_size: int) -> Image.Image:
    """`image` scaled up by a whole factor (nearest) until its longer side reaches `min_size`, so skeletons
    drawn on small (e.g. 64-pixel synthetic) images stay readable; larger images are returned as they are."""
    factor = int(np.ceil(min_size / max(image.size)))
    return image if factor <= 1 else image.resize((image.width * factor, image.height * factor), Image.NEAREST)


def _check_keypoints(keypoints: np.ndarray | Sequence, skeleton: Skeleton) -> np.ndarray:
    """Keypoints as a float `[M, K, 3]` array; ValueError naming the expected shape otherwise."""
    array = np.asarray(keypoints, dtype=np.float64)
    if array.size == 0:
        return array.reshape(0, skeleton.num_keypoints, 3)
    if array.ndim != 3 or array.shape[1:] != (skeleton.num_keypoints, 3):
        raise ValueError(
            f"keypoints must have shape [M, {skeleton.num_keypoints}, 3] for the {skeleton.name!r} "
            f"skeleton, got {list(array.shape)}."
        )
    return array


def _draw_limbs(
    draw: ImageDraw.ImageDraw, points: np.ndarray, shown: np.ndarray, skeleton: Skeleton, width: int,
    color: tuple[int, int, int] | None,
) -> None:
    """The limbs whose two ends are shown, in `color`, or colored by body side when it is None."""
    for limb in skeleton.limbs:
        if shown[limb[0]] and shown[limb[1]]:
            ends = [tuple(points[k, :2]) for k in limb]
            draw.line(ends, fill=color or SIDE_COLORS[skeleton.limb_side(limb)], width=width)


def _draw_keypoints(
    draw: ImageDraw.ImageDraw, points: np.ndarray, shown: np.ndarray, skeleton: Skeleton, width: int,
    color: tuple[int, int, int] | None,
) -> None:
    """The shown keypoints as dots, in `color`, or colored by body side when it is None."""
    radius = width + 0.5
    for k in np.flatnonzero(shown):
        x, y = points[k, :2]
        draw.ellipse((x - radius, y - radius, x + radius, y + radius),
                     fill=color or SIDE_COLORS[skeleton.side(k)], outline=(0, 0, 0) if width > 1 else None)
