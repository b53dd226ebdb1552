"""`SeededSamples`: an item's random draws depend on (seed, epoch, index) only, wherever it is loaded, and the
global RNG the training step draws from is left as it was."""

import torch
from torch.utils.data import DataLoader

from semipose.training.seeded_samples import SeededSamples


class _RandomItems:
    """Item i is torch.rand(3) from the global RNG, like the data transforms' draws."""

    def __len__(self):
        return 4

    def __getitem__(self, index):
        return torch.rand(3)


def _epoch_items(samples, loader=None):
    return torch.stack([samples[index] for index in range(len(samples))] if loader is None else list(loader))


def test_items_depend_on_seed_epoch_and_index_only_and_leave_the_global_rng_alone():
    samples = SeededSamples(_RandomItems(), seed=7)
    state = torch.get_rng_state()
    first = _epoch_items(samples)
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(_epoch_items(samples), first)
    assert len({tuple(item.tolist()) for item in first}) == 4
    samples.set_epoch(1)
    assert not torch.equal(_epoch_items(samples), first)
    assert not torch.equal(_epoch_items(SeededSamples(_RandomItems(), seed=8)), first)


def test_persistent_workers_see_the_epoch_set_in_the_main_process():
    samples = SeededSamples(_RandomItems(), seed=7)
    loader = DataLoader(samples, batch_size=None, num_workers=1, persistent_workers=True)
    for epoch in range(2):
        samples.set_epoch(epoch)
        assert torch.equal(_epoch_items(samples, loader), _epoch_items(samples)), f"epoch {epoch}"
