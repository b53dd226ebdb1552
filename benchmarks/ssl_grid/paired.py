"""Paired differences over training seeds and their confidence intervals.

Runs with the same seed start from the same network initialization, so `semi` and a baseline are
compared seed by seed: d_s = AP(semi, s) - AP(baseline, s). The interval is Student's t over the
seeds, mean(d) +- t(0.95, n - 1) * sd(d) / sqrt(n) for 90% (`scipy.stats.t`), which assumes the
per-seed differences are roughly normal; with 3 seeds it is wide (t = 2.92), as it should be.

Example:

```python
>>> difference = paired_difference({0: 0.31, 1: 0.32, 2: 0.33}, {0: 0.30, 1: 0.30, 2: 0.30})
>>> round(difference["mean"], 4), [round(bound, 4) for bound in difference["ci"]]
(0.02, [0.0031, 0.0369])

```
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from typing import Any

from scipy import stats

CONFIDENCE = 0.90
METHOD = (f"{CONFIDENCE:.0%} Student t interval over seeds of the paired (same-seed) differences, "
          "mean +- t(n - 1) * sd / sqrt(n) (scipy.stats.t)")


def t_interval(values: Sequence[float], confidence: float = CONFIDENCE) -> list[float] | None:
    """[low, high] of the t confidence interval of the mean of `values`; None for fewer than 2 values."""
    if len(values) < 2:
        return None
    mean, n = statistics.fmean(values), len(values)
    half = float(stats.t.ppf((1 + confidence) / 2, n - 1)) * statistics.stdev(values) / math.sqrt(n)
    return [mean - half, mean + half]


def paired_difference(minuend: Mapping[int, float], subtrahend: Mapping[int, float]) -> dict[str, Any] | None:
    """Per-seed differences on the seeds both have, their mean and t interval; None if they share no seed."""
    seeds = sorted(minuend.keys() & subtrahend.keys())
    if not seeds:
        return None
    differences = [minuend[seed] - subtrahend[seed] for seed in seeds]
    return {"seeds": seeds, "differences": differences, "mean": statistics.fmean(differences),
            "ci": t_interval(differences)}
