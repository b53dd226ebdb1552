"""`SeededSamples`: training items whose random augmentation depends only on (seed, epoch, index).

The data transforms draw from torch's global RNG, and accelerate's loader builds each batch one step
ahead of the step that uses it. So without this wrapper the view an image gets depends on the
trainer's own random draws, on the number of workers, and on where a run was resumed: a resumed run
rebuilds its first batch from an RNG state the uninterrupted run never had, and from there on both
diverge. `SeededSamples` draws every item under its own seed and puts the global RNG back after, so
the same seed gives the same views with 0 or 4 workers, on every rank, and after a resume; and the
global RNG (the strong views, cutout) is touched by the training step only, which the checkpoint's
RNG state restores exactly.

Illustration (not run: needs the paired training dataset):

```python
samples = SeededSamples(pairs, seed=42)
samples.set_epoch(3)
item = samples[0]  # the same augmentation every time for (42, 3, 0)
```
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset


def sample_seed(seed: int, epoch: int, index: int) -> int:
    """A well-mixed 64-bit seed for one item of one epoch (nearby inputs give unrelated seeds)."""
    return int(np.random.SeedSequence((seed, epoch, index)).generate_state(1, np.uint64)[0])


class SeededSamples(Dataset):
    """Wraps a map-style dataset: item `index` is drawn with torch's RNG seeded by `(seed, epoch, index)`.

    The epoch lives in a shared-memory tensor, so `set_epoch` in the main process reaches DataLoader
    workers, persistent ones included.

    Args:
        dataset: the training dataset (its transforms draw from torch's global RNG).
        seed: the run's seed (`TrainingArguments.seed`), >= 0.
    """

    def __init__(self, dataset: Sequence, seed: int):
        if seed < 0:
            raise ValueError(f"SeededSamples needs a seed >= 0, got {seed}.")
        self.dataset = dataset
        self.seed = seed
        self._epoch = torch.zeros((), dtype=torch.int64).share_memory_()

    def set_epoch(self, epoch: int) -> None:
        self._epoch.fill_(epoch)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> Any:
        generator = torch.default_generator  # the CPU RNG the transforms draw from; 100x cheaper than fork_rng
        saved = generator.get_state()
        generator.manual_seed(sample_seed(self.seed, int(self._epoch), index))
        try:
            return self.dataset[index]
        finally:
            generator.set_state(saved)
