"""The files a folder offers, and names for what is written about them: one rule for `semipose predict` and
for the converters' `--extra-unlabeled` folders.

Both search sub-folders, leave out hidden files and folders (`.git/`, `.DS_Store`, `.ipynb_checkpoints/`)
and take the files sorted by path; symbolic links to folders are not followed.

Example:

```python
>>> import tempfile
>>> photos = Path(tempfile.mkdtemp())
>>> for name in ("a.jpg", "trip/b.jpg", "trip/c.mp4", ".git/x.jpg"):
...     (photos / name).parent.mkdir(exist_ok=True)
...     (photos / name).touch()
>>> relative_stems(files_under(photos))
['a', 'trip/b', 'trip/c']

```
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")
"""Suffixes (lower case) the converters take for images; `semipose predict` tries every file."""


def files_under(folder: str | Path, *, exclude: str | Path | None = None) -> list[Path]:
    """Every file under `folder` and its sub-folders, hidden ones left out, sorted by path.

    Args:
        folder: the folder to search.
        exclude: a folder whose files are left out, e.g. an output folder inside `folder` (so a second run
            does not read what the first one wrote).
    """
    folder = Path(folder)
    excluded = Path(exclude).resolve() if exclude is not None else None
    found = []
    for root, folders, files in os.walk(folder):
        folders[:] = [name for name in folders
                      if not name.startswith(".") and (Path(root, name).resolve() != excluded)]
        found += [Path(root, name) for name in files if not name.startswith(".")]
    return sorted(found)


def relative_stems(paths: Sequence[Path]) -> list[str]:
    """Each path without its suffix, relative to the deepest folder holding them all (posix separators), so
    outputs named by them keep the sub-folders apart: `trip/b` for `photos/trip/b.jpg` beside `photos/a.jpg`."""
    if not paths:
        return []
    root = Path(os.path.commonpath([path.parent for path in paths]))
    return [path.relative_to(root).with_suffix("").as_posix() for path in paths]
