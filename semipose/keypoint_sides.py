"""Left/right from keypoint names: which keypoints mirror each other, and which sided names cannot be paired.

A name is split into words at separators (`_`, `-`, `.`, space), at case changes (`LeftEar` -> `Left`, `Ear`)
and at digits. A side word is `left`, `right`, `l` or `r` as a whole word, or `left`/`right` at the start of a
word glued to the rest (`leftear`, `Lefteye`, `LEFTEYE`); a word that merely ends in those letters (`upright`,
`cleft`) is not one. Swapping the side word for its opposite, in the same case, gives the mirror's name:
`left_ear` <-> `right_ear`, `LeftEar` <-> `RightEar`, `leftear` <-> `rightear`, `ear_l` <-> `ear_r`. Letters
inside a code (`paw1LH_top`: left hind) are never paired, but such a code word (two or three capitals starting
or ending with L or R) does mark the name as sided, so that a skeleton of them is not mirrored blindly.

Example:

```python
>>> mirror_candidates("LeftEar"), mirror_candidates("ear_l"), mirror_candidates("leftear")
(['RightEar'], ['ear_r'], ['rightear'])
>>> side_of("paw1LH_top"), mirror_candidates("paw1LH_top")
('sided code', [])

```
"""

from __future__ import annotations

import re

_WORD = re.compile(r"[A-Z]{2,}(?=[A-Z][a-z]|[^A-Za-z]|$)|[A-Z][a-z]*|[a-z]+|\d+")
_OPPOSITE = {"left": "right", "right": "left", "l": "r", "r": "l"}
_SIDE_CODE = re.compile(r"^(?:[LR][A-Z]{1,2}|[A-Z]{1,2}[LR])$")


def _words(name: str) -> list[re.Match]:
    return list(_WORD.finditer(name))


def _in_case_of(word: str, like: str) -> str:
    """`word` written in the case of `like` (upper, capitalized or lower)."""
    if like.isupper() and len(like) > 1 or like.isupper() and len(word) == 1:
        return word.upper()
    return word.capitalize() if like[:1].isupper() else word


def _side_swaps(word: str) -> list[tuple[str, str]]:
    """(side, the word with its side swapped) for each way `word` carries a side."""
    lower = word.lower()
    if lower in _OPPOSITE:
        return [(lower if len(lower) > 1 else {"l": "left", "r": "right"}[lower],
                 _in_case_of(_OPPOSITE[lower], word))]
    for side in ("left", "right"):
        if lower.startswith(side) and len(lower) > len(side):
            return [(side, _in_case_of(_OPPOSITE[side], word[: len(side)]) + word[len(side):])]
    return []


def mirror_candidates(name: str) -> list[str]:
    """Names the mirror of `name` would have: one per side word found (usually zero or one)."""
    candidates = []
    for match in _words(name):
        for _, swapped in _side_swaps(match.group()):
            candidates.append(name[: match.start()] + swapped + name[match.end():])
    return candidates


def side_of(name: str) -> str:
    """`"left"`, `"right"`, `"sided code"` (side letters inside a code word, never paired) or `"center"`."""
    for match in _words(name):
        swaps = _side_swaps(match.group())
        if swaps:
            return swaps[0][0]
    if any(_SIDE_CODE.match(match.group()) for match in _words(name)):
        return "sided code"
    return "center"


def infer_flip_index(names: tuple[str, ...] | list[str]) -> tuple[tuple[int, ...] | None, list[str]]:
    """The horizontal-flip permutation read off the names, or None with the sided names it could not pair.

    Each name whose mirror (`mirror_candidates`) is another name of the skeleton maps to it; every other
    name maps to itself, unless it is sided (`side_of`): then no permutation is safe and None is returned.
    """
    index = {name: k for k, name in enumerate(names)}
    flip, unpaired = [], []
    for k, name in enumerate(names):
        mirrors = [index[c] for c in mirror_candidates(name) if c in index and c != name]
        if len(mirrors) == 1:
            flip.append(mirrors[0])
        else:
            flip.append(k)
            if side_of(name) != "center":
                unpaired.append(name)
    if unpaired or any(flip[flip[k]] != k for k in range(len(flip))):
        return None, unpaired
    return tuple(flip), []
