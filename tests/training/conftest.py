"""A tiny synthetic dataset folder shared by the training tests (generated once per test worker)."""

import pytest

from semipose.data.synthetic import SyntheticConfig, prepare_synthetic_dataset

TINY_SYNTHETIC = SyntheticConfig(
    image_size=64, people=(1, 2), height_range=(0.5, 0.95), clutter=0.0, skeleton="crowdpose",
    num_train=40, num_val=8, seed=3,
)


@pytest.fixture(scope="session")
def tiny_dataset_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("synthetic") / "tiny"
    return prepare_synthetic_dataset(folder, TINY_SYNTHETIC, ratios=(10,), show_progress=False)
