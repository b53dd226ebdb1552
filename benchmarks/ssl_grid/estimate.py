"""What a grid will cost: seconds per run from measured runs, and the wall time with `--jobs` at a time.

A run costs a fixed part (start-up, data loading, the evaluations of its schedule, which are as many
at any length, the teacher readout) plus a part per optimizer step. `timing_cells` are, per family,
one supervised and one semi run; trained at two short lengths (`MEASURE_STEPS`, two at a time like
the grid) they give both parts (`fit_timing`: the line through the two). Consistency runs are priced
as semi runs (they only skip decoding the pseudo people). A finished run of the grid itself is the
better estimate for its (family, kind) and replaces the fitted one.

Example:

```python
>>> timing = fit_timing({("center_offset", "supervised", 30): 60.0, ("center_offset", "supervised", 60): 75.0})
>>> timing["center_offset"]["supervised"]
{'fixed_seconds': 45.0, 'seconds_per_step': 0.5}
>>> makespan([10, 10, 10], jobs=2)
20.0

```
"""

from __future__ import annotations

import heapq
import statistics
from typing import Any

from .cells import Cell

MEASURE_STEPS = (50, 200)  # far enough apart that the per-step part stands out of the fixed one


def kind(cell: Cell) -> str:
    """How a cell is priced: "supervised", or "semi" (with an unlabeled stream and a teacher)."""
    return "supervised" if cell.mode == "supervised" else "semi"


def timing_cells(families) -> list[Cell]:
    return [Cell(family, "ratio_5", mode, "light", 0) for family in families for mode in ("semi", "supervised")]


def fit_timing(seconds: dict[tuple[str, str, int], float]) -> dict[str, dict[str, dict[str, float]]]:
    """{(family, kind, steps): wall seconds} at two lengths -> fixed seconds and seconds per step per family, kind."""
    timing: dict[str, dict[str, dict[str, float]]] = {}
    for family, run_kind in sorted({(family, run_kind) for family, run_kind, _ in seconds}):
        (short, short_seconds), (long, long_seconds) = sorted(
            (steps, value) for (f, k, steps), value in seconds.items() if (f, k) == (family, run_kind)
        )
        per_step = (long_seconds - short_seconds) / (long - short)
        timing.setdefault(family, {})[run_kind] = {
            "fixed_seconds": round(short_seconds - per_step * short, 1), "seconds_per_step": round(per_step, 4)
        }
    return timing


def estimate_seconds(cells: list[Cell], steps: int, timing: dict, finished: list[dict]) -> list[float | None]:
    """Seconds of each cell: its own if finished, else the mean of finished runs of its (family, kind), else
    the fitted line, else None."""
    own = {Cell.from_run(run): run["seconds"] for run in finished}
    measured: dict[tuple[str, str], list[float]] = {}
    for cell, seconds in own.items():
        measured.setdefault((cell.family, kind(cell)), []).append(seconds)
    estimates = []
    for cell in cells:
        if cell in own:
            estimates.append(own[cell])
        elif (cell.family, kind(cell)) in measured:
            estimates.append(statistics.fmean(measured[(cell.family, kind(cell))]))
        elif cell.family in timing and kind(cell) in timing[cell.family]:
            line = timing[cell.family][kind(cell)]
            estimates.append(line["fixed_seconds"] + line["seconds_per_step"] * steps)
        else:
            estimates.append(None)
    return estimates


def makespan(durations: list[float], jobs: int) -> float:
    """Wall time of running `durations` in order on `jobs` workers, each taking the next when it is free."""
    workers = [0.0] * max(1, jobs)
    for duration in durations:
        heapq.heappush(workers, heapq.heappop(workers) + duration)
    return max(workers)


def dry_run_text(cells: list[Cell], done: set[Cell], estimates: list[float | None], jobs: int,
                 timing: dict[str, Any]) -> str:
    """The cell list (done / pending, estimated minutes) and the estimated wall time of the pending ones."""
    lines = [f"{'status':8} {'est. min':>8}  cell"]
    for cell, seconds in zip(cells, estimates):
        status = "done" if cell in done else "pending"
        lines.append(f"{status:8} {'?' if seconds is None else f'{seconds / 60:.1f}':>8}  {cell.name}")
    pending = [seconds for cell, seconds in zip(cells, estimates) if cell not in done]
    lines.append("")
    for family, kinds in timing.items():
        for run_kind, line in kinds.items():
            per_step = line["seconds_per_step"]
            lines.append(f"measured {family} {run_kind}: {line['fixed_seconds']:.0f} s fixed + {per_step:.3f} s/step "
                         f"({1 / max(per_step, 1e-9):.2f} steps/s)")
    if None in pending:
        lines.append(f"{len(pending)} pending runs; no timing yet for some: run with --measure first.")
    else:
        lines.append(f"{len(pending)} pending runs, {sum(pending) / 60:.0f} run-minutes: about "
                     f"{makespan(pending, jobs) / 60:.0f} min wall with {jobs} at a time.")
    return "\n".join(lines)
