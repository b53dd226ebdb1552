"""Shared test fixtures: the real COCO fixture (4 val2017 images, 14 people) lives in tests/fixtures."""

from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="session")
def coco_fixture_dir() -> Path:
    """Folder with `test_coco.json` and its four images (COCO val2017, see its README)."""
    return FIXTURES / "coco"
