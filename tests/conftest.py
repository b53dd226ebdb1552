"""Shared test fixtures: the real COCO fixture (4 val2017 images, 14 people) lives in tests/fixtures."""

from pathlib import Path

import pytest
import torch
from tiny_checkpoint import save_tiny_checkpoint

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="session")
def coco_fixture_dir() -> Path:
    """Folder with `test_coco.json` and its four images (COCO val2017, see its README)."""
    return FIXTURES / "coco"


@pytest.fixture(autouse=True)
def _one_torch_thread_per_test_worker():
    """pytest-xdist already runs one worker per core; more torch threads per worker only contend. Set before every
    test, not once: a test that runs the main job in-process (`torch_threads="auto"`) or sets threads itself would
    otherwise leave them to the tests after it in its worker, and the thread count moves convolutions' last bits
    (the crash-safety test compares an in-process run with child processes, bit for bit)."""
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A saved tiny checkpoint that finds whole people everywhere (see `save_tiny_checkpoint`)."""
    folder = tmp_path_factory.mktemp("checkpoint")
    save_tiny_checkpoint(folder)
    return folder
