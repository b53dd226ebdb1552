"""Crash-safe checkpoints: a `checkpoint-N/` folder counts only once its completion marker exists.

transformers writes a checkpoint file by file (weights, optimizer, scheduler, RNG, trainer state)
and `SemiPoseTrainer` adds the teacher; a process killed in between leaves a folder that looks like
a checkpoint but holds a mix of old, missing and torn files. So the trainer flushes every file to
disk and then writes `COMPLETE_MARKER` last, by an atomic rename: resume only takes a folder that
has it (the newest such folder when asked for "the latest"), and old checkpoints are deleted only
after a newer one is complete. The evaluations' `predictions_stepN.json` files go with them.

Example:

```python
>>> import os, tempfile
>>> run = tempfile.mkdtemp()
>>> os.makedirs(f"{run}/checkpoint-1000")
>>> mark_checkpoint_complete(f"{run}/checkpoint-1000", {"global_step": 1000})
>>> os.makedirs(f"{run}/checkpoint-1500")  # the run was killed while writing it: no marker
>>> latest_complete_checkpoint(run) == f"{run}/checkpoint-1000"
True

```
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from collections.abc import Iterable
from pathlib import Path

from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

logger = logging.getLogger(__name__)

COMPLETE_MARKER = "checkpoint_complete.json"
PREDICTIONS_FILE = "predictions_step{step}.json"
"""The COCO results of the student's evaluation at a step, in the output folder (see `rotate_predictions`)."""
_CHECKPOINT_NAME = re.compile(rf"^{PREFIX_CHECKPOINT_DIR}-(\d+)$")
_PREDICTIONS_NAME = re.compile(r"^predictions_step(\d+)\.json$")


def is_complete_checkpoint(folder: str | os.PathLike) -> bool:
    """Whether `folder` was written to the end (its completion marker exists)."""
    return os.path.isfile(os.path.join(folder, COMPLETE_MARKER))


def checkpoint_folders(output_dir: str | os.PathLike) -> list[tuple[int, Path]]:
    """(step, folder) of every `checkpoint-N` folder in `output_dir`, complete or not, oldest step first."""
    if not os.path.isdir(output_dir):
        return []
    found = []
    for entry in Path(output_dir).iterdir():
        match = _CHECKPOINT_NAME.match(entry.name)
        if match and entry.is_dir():
            found.append((int(match.group(1)), entry))
    return sorted(found)


def latest_complete_checkpoint(output_dir: str | os.PathLike) -> str | None:
    """The complete checkpoint with the highest step in `output_dir`, or None; half-written ones newer than it
    are skipped with a warning."""
    latest = None
    for _, folder in reversed(checkpoint_folders(output_dir)):
        if is_complete_checkpoint(folder):
            latest = str(folder)
            break
        logger.warning("Skipping checkpoint %s: it has no %s, so writing it was interrupted.", folder, COMPLETE_MARKER)
    return latest


def require_complete_checkpoint(folder: str | os.PathLike) -> None:
    """Raises when `folder` is missing or was never finished (e.g. the run was killed while saving it)."""
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"No checkpoint folder {folder}.")
    if not is_complete_checkpoint(folder):
        raise ValueError(
            f"Checkpoint {folder} is incomplete: it has no {COMPLETE_MARKER}, so writing it was interrupted "
            f"(or another program wrote it). Resume from an earlier one, or pass resume_from_checkpoint='latest' "
            f"(--resume_from_checkpoint latest) for the newest complete checkpoint."
        )


def read_checkpoint_record(folder: str | os.PathLike) -> dict:
    """The JSON the trainer stored in the completion marker (step and its own counters)."""
    return json.loads(Path(folder, COMPLETE_MARKER).read_text())


def begin_checkpoint(folder: str | os.PathLike) -> None:
    """Before (re)writing `folder`: an earlier incomplete copy is deleted, a complete one loses its marker first."""
    if not os.path.isdir(folder):
        return
    if is_complete_checkpoint(folder):
        os.remove(os.path.join(folder, COMPLETE_MARKER))
        _fsync_directory(folder)
    else:
        shutil.rmtree(folder)


def mark_checkpoint_complete(folder: str | os.PathLike, record: dict) -> None:
    """Flush every file of `folder` to disk, then write the marker atomically (temporary file + rename)."""
    for root, _, files in os.walk(folder):
        for name in files:
            _fsync_file(os.path.join(root, name))
        _fsync_directory(root)
    temporary = os.path.join(folder, f".{COMPLETE_MARKER}.tmp")
    with open(temporary, "w") as handle:
        json.dump(record, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, os.path.join(folder, COMPLETE_MARKER))
    _fsync_directory(folder)


def rotate_complete_checkpoints(
    output_dir: str | os.PathLike, limit: int | None, keep: Iterable[str | os.PathLike | None] = ()
) -> None:
    """Keep at most `limit` complete checkpoints, never the newest nor those in `keep` (the one just written,
    the best one), as transformers' `rotate_checkpoints` does but by step and counting complete ones only;
    incomplete leftovers older than the newest complete checkpoint always go."""
    folders = checkpoint_folders(output_dir)
    complete = [(step, folder) for step, folder in folders if is_complete_checkpoint(folder)]
    if not complete:
        return
    newest_step, newest = complete[-1]
    doomed = [folder for step, folder in folders if step < newest_step and not is_complete_checkpoint(folder)]
    if limit is not None and limit > 0:
        protected = {os.path.abspath(folder) for folder in (newest, *keep) if folder is not None}
        surplus = len(complete) - max(limit, len(protected))
        older = [folder for _, folder in complete if os.path.abspath(folder) not in protected]
        doomed += older[:max(surplus, 0)]
    for folder in doomed:
        logger.info("Deleting checkpoint %s (save_total_limit=%s, or left incomplete).", folder, limit)
        shutil.rmtree(folder, ignore_errors=True)


def rotate_predictions(output_dir: str | os.PathLike) -> None:
    """Delete the `PREDICTIONS_FILE`s of steps whose checkpoint is gone (rotated out, or never saved), so they
    leave with their checkpoints; the newest stays, whether or not it has a checkpoint."""
    output_dir = Path(output_dir)
    if not output_dir.is_dir():
        return
    found = sorted((int(match.group(1)), entry) for entry in output_dir.iterdir()
                   if (match := _PREDICTIONS_NAME.match(entry.name)) and entry.is_file())
    checkpoint_steps = {step for step, _ in checkpoint_folders(output_dir)}
    for step, path in found[:-1]:
        if step not in checkpoint_steps:
            path.unlink(missing_ok=True)


def _fsync_file(path: str) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def _fsync_directory(path: str | os.PathLike) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
