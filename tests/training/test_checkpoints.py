"""Checkpoint bookkeeping on plain folders: only marked folders count (skipped ones are logged), rotation keeps
what resume needs, and the evaluations' predictions rotate with the checkpoints."""

import logging

import pytest

from semipose.training.checkpoints import (
    COMPLETE_MARKER,
    begin_checkpoint,
    is_complete_checkpoint,
    latest_complete_checkpoint,
    mark_checkpoint_complete,
    require_complete_checkpoint,
    rotate_complete_checkpoints,
    rotate_predictions,
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


def test_skipped_incomplete_checkpoints_are_logged(tmp_path, caplog):
    _checkpoint(tmp_path, 2)
    _checkpoint(tmp_path, 4, complete=False)
    with caplog.at_level(logging.WARNING, logger="semipose.training.checkpoints"):
        assert latest_complete_checkpoint(tmp_path) == str(tmp_path / "checkpoint-2")
    assert [record.getMessage() for record in caplog.records] == [
        f"Skipping checkpoint {tmp_path / 'checkpoint-4'}: it has no {COMPLETE_MARKER}, so writing it was interrupted."]


def test_predictions_leave_with_their_checkpoints_and_the_newest_stays(tmp_path):
    for step in (2, 4, 6):
        _checkpoint(tmp_path, step)
    for step in (1, 2, 3, 4, 5, 6, 7):  # evaluated more often than saved; step 7 has no checkpoint yet
        (tmp_path / f"predictions_step{step}.json").write_text("[]")
    rotate_complete_checkpoints(tmp_path, limit=2)
    rotate_predictions(tmp_path)
    assert _remaining(tmp_path) == [4, 6]
    assert sorted(path.name for path in tmp_path.glob("predictions_step*.json")) == [
        "predictions_step4.json", "predictions_step6.json", "predictions_step7.json"]
