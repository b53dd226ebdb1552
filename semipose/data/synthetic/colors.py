"""Colors of people and clutter. Clothing colors come from the whole color space, and background
shapes and sticks are drawn from the same colors (and skin tones), so no color marks a body part
or a side."""

from __future__ import annotations

import numpy as np

from .parts import COLOR_SLOTS, PART_SLOTS, PARTS

_SKIN_TONES = np.array([
    (255, 222, 196), (234, 182, 140), (198, 134, 88), (141, 85, 54), (80, 50, 33),
])
_HAIR_COLORS = np.array([
    (22, 18, 16), (62, 40, 26), (112, 74, 42), (196, 164, 104), (168, 166, 160), (142, 64, 32),
])
_EYE_COLOR = (30, 24, 24)
_HAT_PROBABILITY = 0.15


def _clothing_colors(rng: np.random.Generator, count: int) -> np.ndarray:
    """`[count, 3]` RGB colors: any hue, any saturation, mostly mid to bright values."""
    rgb = rng.uniform(0, 255, (count, 3))
    gray = rgb.mean(axis=1, keepdims=True)
    saturation = rng.uniform(0, 1.3, (count, 1))
    value = rng.uniform(0.3, 1.15, (count, 1))
    return np.clip((gray + (rgb - gray) * saturation) * value, 0, 255)


def _skin_colors(rng: np.random.Generator, count: int) -> np.ndarray:
    """`[count, 3]` skin tones interpolated between light and dark anchors, slightly jittered."""
    position = rng.uniform(0, len(_SKIN_TONES) - 1, count)
    anchors = np.arange(len(_SKIN_TONES))
    tones = np.stack([np.interp(position, anchors, _SKIN_TONES[:, c]) for c in range(3)], -1)
    return np.clip(tones + rng.normal(0, 6, (count, 3)), 0, 255)


def sample_part_colors(rng: np.random.Generator, count: int) -> np.ndarray:
    """`[count, P, 3]` part colors: a palette per person (top, bottom, skin, shoes, hair, sleeves
    and lower legs either clothed or bare) with a little per-part shading."""
    top, bottom = _clothing_colors(rng, count), _clothing_colors(rng, count)
    skin = _skin_colors(rng, count)
    hair = _HAIR_COLORS[rng.integers(len(_HAIR_COLORS), size=count)]
    hair = hair * rng.uniform(0.85, 1.15, (count, 1))
    hair = np.where(rng.random((count, 1)) < _HAT_PROBABILITY, _clothing_colors(rng, count), hair)
    palette = {
        "top": top, "bottom": bottom, "skin": skin, "hair": hair,
        "shoes": _clothing_colors(rng, count) * rng.uniform(0.2, 0.7, (count, 1)),
        "sleeve": np.where(rng.random((count, 1)) < 0.5, top, skin),
        "leg": np.where(rng.random((count, 1)) < 0.7, bottom, skin),
        "eye": np.broadcast_to(np.array(_EYE_COLOR, dtype=np.float64), (count, 3)),
    }
    slots = np.stack([palette[slot] for slot in COLOR_SLOTS], axis=1)
    shade = rng.uniform(0.9, 1.1, (count, len(PARTS), 1))
    return np.clip(slots[:, PART_SLOTS] * shade, 0, 255)


def distractor_colors(rng: np.random.Generator, count: int) -> np.ndarray:
    """`[count, 3]` colors of background shapes: skin tones 30% of the time, else clothing."""
    skin = rng.random((count, 1)) < 0.3
    return np.where(skin, _skin_colors(rng, count), _clothing_colors(rng, count))
