"""Checkpoint bookkeeping on plain folders: only marked folders count, and rotation keeps what resume needs."""

import pytest

from semipose.training.checkpoints import (
    begin_checkpoint,
    is_complete_checkpoint,
    latest_complete_checkpoint,
    mark_checkpoint_complete,
    require_complete_checkpoint,
    rotate_complete_checkpoints,
)


def _checkpoint(output_dir, step, complete=True):
    folder = output_dir / f"checkpoint-{step}"
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(b"weights")
    if complete:
        mark_checkpoint_complete(folder, {"global_step": step})
    return folder


def _remaining(output_dir):
    return sorted(int(path.name.split("-")[1]) for path in output_dir.glob("checkpoint-*"))


def test_the_newest_complete_checkpoint_wins_over_newer_incomplete_ones(tmp_path):
    assert latest_complete_checkpoint(tmp_path) is None
    _checkpoint(tmp_path, 2)
    _checkpoint(tmp_path, 10)  # step order, not name order
    torn = _checkpoint(tmp_path, 12, complete=False)
    assert latest_complete_checkpoint(tmp_path) == str(tmp_path / "checkpoint-10")
    with pytest.raises(ValueError, match="checkpoint-12 is incomplete"):
        require_complete_checkpoint(torn)


def test_rotation_keeps_the_newest_the_best_and_newer_leftovers(tmp_path):
    for step in (2, 4, 6, 8):
        _checkpoint(tmp_path, step)
    _checkpoint(tmp_path, 5, complete=False)
    _checkpoint(tmp_path, 10, complete=False)
    rotate_complete_checkpoints(tmp_path, limit=2, keep=[tmp_path / "checkpoint-2"])
    assert _remaining(tmp_path) == [2, 8, 10]  # 10 is being written (or will be rewritten on resume)


def test_rewriting_a_checkpoint_hides_it_until_marked_again(tmp_path):
    complete = _checkpoint(tmp_path, 2)
    begin_checkpoint(complete)
    assert complete.is_dir() and not is_complete_checkpoint(complete)
    begin_checkpoint(complete)  # now an incomplete leftover: its stale files go
    assert not complete.exists()
