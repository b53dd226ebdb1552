"""Finished runs on disk, one json each, so a grid killed halfway (or split across sessions) continues.

Layout: `{root}/{image_size}px-{key}/` holds the runs of one data and main-job setting (`key` hashes
the regime's data flags, the image size and any extra main-job arguments; `settings.json` there says
what they are) and one `{cell}-{steps}steps.json` per finished run, written atomically as the run
ends. A rerun with the same settings finds them and trains only the cells still missing; the pilot
and the grid share a folder, so the pilot's runs count in the grid at the same resolution and steps.

Illustration (not run: reads the results folder):

```python
store = RunStore(Path("benchmarks/results/bench_ssl_crowd_runs"), {"regime": "crowd", "image_size": 96})
store.load(cell, steps=1000)  # None until the cell has finished
```
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path
from typing import Any

from .cells import Cell

SETTINGS_FILE = "settings.json"


class RunStore:
    """The finished runs of one setting (see the module docstring).

    Args:
        root: the store of a regime, e.g. `benchmarks/results/bench_ssl_crowd_runs`.
        settings: json-able description of what the runs share; needs `image_size`.
    """

    def __init__(self, root: Path, settings: dict[str, Any]):
        key = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:10]
        self.folder = Path(root) / f"{settings['image_size']}px-{key}"
        self.settings = settings

    def path(self, cell: Cell, steps: int) -> Path:
        return self.folder / f"{cell.name}-{steps}steps.json"

    def load(self, cell: Cell, steps: int) -> dict[str, Any] | None:
        """The finished run of `cell` at `steps`, or None if it has not finished."""
        path = self.path(cell, steps)
        if not path.is_file():
            return None
        try:
            return json.loads(path.read_text())
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}: not a json run record ({error}); delete it to train the cell again.") from error

    def save(self, cell: Cell, steps: int, run: dict[str, Any]) -> Path:
        """Write `run` atomically (a run killed while writing leaves no half file)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        settings = self.folder / SETTINGS_FILE
        if not settings.is_file():
            _write_atomically(settings, self.settings)
        path = self.path(cell, steps)
        _write_atomically(path, run)
        return path

    def finished(self, cells: list[Cell], steps: int) -> list[dict[str, Any]]:
        """The finished runs among `cells`, in their order."""
        return [run for run in (self.load(cell, steps) for cell in cells) if run is not None]


def _write_atomically(path: Path, record: Any) -> None:
    partial = path.with_name(f".{path.name}.{os.getpid()}-{threading.get_ident()}.partial")
    partial.write_text(json.dumps(record, indent=1))
    os.replace(partial, path)
