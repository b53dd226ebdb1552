"""Labeled and unlabeled streams of different lengths as one map-style dataset.

Item ``i`` pairs labeled example ``i mod L`` with unlabeled examples ``i * r + j mod U`` for
``j < r`` (``r`` unlabeled images per labeled one); the dataset is as long as the longer stream
needs, so the shorter one cycles. Being one ordinary dataset, it gets the Trainer's sampler,
DDP sharding, worker processes and mid-epoch resume for free.

Example:

```python
>>> pairs = SemiSupervisedDataset(["L0", "L1"], ["U0", "U1", "U2", "U3", "U4"], unlabeled_ratio=2)
>>> len(pairs)  # ceil(5 / 2) pairs use every unlabeled example once
3
>>> pairs[2]  # labeled 2 mod 2, unlabeled 4 and 5 mod 5
{'labeled': 'L0', 'unlabeled': ['U4', 'U0']}

```
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch.utils.data import Dataset

from .unreadable import UNREADABLE_KEY


class SemiSupervisedDataset(Dataset):
    """Pairs every labeled example with `unlabeled_ratio` unlabeled ones.

    Args:
        labeled: indexable dataset of transformed labeled examples (dicts).
        unlabeled: indexable dataset of transformed unlabeled examples (dicts).
        unlabeled_ratio: unlabeled examples per labeled example.
    """

    def __init__(self, labeled: Sequence, unlabeled: Sequence, unlabeled_ratio: int = 1):
        if len(labeled) == 0:
            raise ValueError("The labeled split is empty: semi-supervised training needs at least one labeled image.")
        if len(unlabeled) == 0:
            raise ValueError("The unlabeled split is empty: use ssl_mode='supervised' or add unlabeled images.")
        if unlabeled_ratio < 1:
            raise ValueError(f"unlabeled_ratio must be >= 1, got {unlabeled_ratio}.")
        self.labeled = labeled
        self.unlabeled = unlabeled
        self.unlabeled_ratio = unlabeled_ratio

    @property
    def num_images(self) -> int:
        """Images in both streams (what a fraction of unreadable images is a fraction of)."""
        return len(self.labeled) + len(self.unlabeled)

    def __len__(self) -> int:
        return max(len(self.labeled), math.ceil(len(self.unlabeled) / self.unlabeled_ratio))

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} pairs")
        unlabeled = [
            self.unlabeled[(index * self.unlabeled_ratio + j) % len(self.unlabeled)]
            for j in range(self.unlabeled_ratio)
        ]
        return {"labeled": self.labeled[index % len(self.labeled)], "unlabeled": unlabeled}


class SemiSupervisedCollator:
    """Collates `SemiSupervisedDataset` items: labeled keys as usual, unlabeled pixels as `unlabeled_pixel_values`,
    and the unreadable image ids skipped by either stream together under `unreadable_image_ids`.

    Args:
        labeled_collator: collates a list of labeled examples (pads people).
        unlabeled_collator: collates a list of unlabeled examples.
    """

    def __init__(self, labeled_collator: Callable, unlabeled_collator: Callable):
        self.labeled_collator = labeled_collator
        self.unlabeled_collator = unlabeled_collator

    def __call__(self, items: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        batch = dict(self.labeled_collator([item["labeled"] for item in items]))
        unlabeled = self.unlabeled_collator([example for item in items for example in item["unlabeled"]])
        batch["unlabeled_pixel_values"] = unlabeled["pixel_values"]
        skipped = [part[UNREADABLE_KEY] for part in (batch, unlabeled) if UNREADABLE_KEY in part]
        if skipped:
            batch[UNREADABLE_KEY] = torch.cat(skipped)
        return batch
