"""Does bf16 autocast cost accuracy? The main job's setting in fp32 and in bf16, same seeds, both families.

Every cell is a `semi` run of the main job's default setting (5% labels, light labeled views, the
default regime's data) through `bench_ssl`'s machinery (`ssl_grid`: one process and one thread per
run, `--jobs` side by side), once with `--precision fp32` and once with `--precision bf16`; nothing
else differs. Each precision has its own run store (the flag is part of its key), so a comparison
killed halfway trains only what is missing when rerun. Seeds pair the runs (same initialization and
views), so the figure is the paired difference bf16 - fp32 of the student's validation AP, with a
90% t interval over the seeds (very wide with two: t = 6.31).

Verdict per family: bf16 keeps accuracy when the mean paired difference is no worse than minus the
seed spread of fp32 (the range of its AP over the seeds: what a change of seed alone moves).

Usage:

```bash
python -m benchmarks.bench_precision                          # 2 seeds x 2 families x 2 precisions, 500 steps
python -m benchmarks.bench_precision --seeds 0 1 2 --steps 1000
python -m benchmarks.bench_precision --report                 # tables from the finished runs only
```
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import transformers

from benchmarks.bench_ssl import FAMILIES, RESULTS, train_pending
from benchmarks.machine_info import machine_info
from benchmarks.ssl_grid.cells import Cell
from benchmarks.ssl_grid.paired import METHOD, paired_difference
from benchmarks.ssl_grid.regimes import REGIMES, prepare_regime_data
from benchmarks.ssl_grid.store import RunStore

PRECISIONS = ("fp32", "bf16")
MAIN_JOB_CELL = {"dataset_config": "ratio_5", "mode": "semi", "augmentation": "light"}
"""What the main job trains by default (`semipose.training.recipe`)."""


def cells(families, seeds) -> list[Cell]:
    """The main job's default cell for each family and seed."""
    return [Cell(family, seed=seed, **MAIN_JOB_CELL) for family in families for seed in seeds]


def precision_store(runs_dir: Path, image_size: int, precision: str) -> RunStore:
    """The runs of the default regime at `precision` (bench_ssl's store layout and key)."""
    regime = REGIMES["default"]
    settings = {"regime": regime.name, "image_size": image_size, "data_flags": regime.main_job_flags(image_size),
                "extra_args": ["--precision", precision]}
    return RunStore(runs_dir, settings)


def compare(runs: dict[str, list[dict]], families) -> list[dict]:
    """Per family: AP by seed at each precision, the paired difference bf16 - fp32, the fp32 seed spread, the
    verdict, and the median run time of each precision."""
    rows = []
    for family in families:
        ap = {precision: {run["seed"]: run["metrics"]["eval_AP"] for run in runs[precision] if run["family"] == family}
              for precision in PRECISIONS}
        seconds = {precision: [run["seconds"] for run in runs[precision] if run["family"] == family]
                   for precision in PRECISIONS}
        difference = paired_difference(ap["bf16"], ap["fp32"])
        if difference is None:
            continue
        spread = max(ap["fp32"].values()) - min(ap["fp32"].values())
        rows.append({
            "family": family, "ap_by_seed": ap, "bf16_minus_fp32": difference, "fp32_seed_spread": spread,
            "bf16_keeps_accuracy": difference["mean"] >= -spread,
            "median_run_seconds": {precision: statistics.median(values) for precision, values in seconds.items()
                                   if values},
        })
    return rows


def markdown(rows: list[dict], steps: int) -> str:
    lines = [f"# bf16 vs fp32: the main job's setting (semi, 5% labels), {steps} steps, one thread per run", "",
             "| family | seeds | fp32 AP | bf16 AP | bf16 - fp32 (paired) | fp32 seed spread | bf16 keeps accuracy "
             "| run s fp32 / bf16 |", "|---|---|---|---|---|---|---|---|"]
    for row in rows:
        difference, ap = row["bf16_minus_fp32"], row["ap_by_seed"]
        interval = "" if difference["ci"] is None else " [{:+.4f}, {:+.4f}]".format(*difference["ci"])
        seconds = row["median_run_seconds"]
        lines.append(
            f"| {row['family']} | {difference['seeds']} | {_mean(ap['fp32']):.4f} | {_mean(ap['bf16']):.4f} "
            f"| {difference['mean']:+.4f}{interval} | {row['fp32_seed_spread']:.4f} "
            f"| {'yes' if row['bf16_keeps_accuracy'] else 'NO'} "
            f"| {seconds.get('fp32', float('nan')):.0f} / {seconds.get('bf16', float('nan')):.0f} |"
        )
    return "\n".join(lines) + "\n"


def _mean(values: dict[int, float]) -> float:
    return statistics.fmean(values.values())


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=500, help="Optimizer steps per run (a multiple of 10).")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--families", nargs="+", default=list(FAMILIES), choices=FAMILIES)
    parser.add_argument("--jobs", type=int, default=os.cpu_count(), help="Runs side by side, one thread each.")
    parser.add_argument("--cache_dir", default=str(Path.home() / ".cache" / "semipose"), help="Synthetic data cache.")
    parser.add_argument("--runs_dir", type=Path, default=RESULTS / "bench_precision_runs")
    parser.add_argument("--output", type=Path, default=RESULTS / "bench_precision")
    parser.add_argument("--report", action="store_true", help="Only rewrite the report from the finished runs.")
    args = parser.parse_args()
    args.main_job_args = []  # train_pending's schedule: the main job's own burn-in and ramp-up
    return args


def main() -> None:
    args = parse_args()
    regime = REGIMES["default"]
    prepare_regime_data(regime, regime.image_size, args.cache_dir)
    stores = {precision: precision_store(args.runs_dir, regime.image_size, precision) for precision in PRECISIONS}
    grid = cells(args.families, args.seeds)
    context = {"machine": machine_info(transformers), "steps": args.steps, "seeds": args.seeds,
               "families": args.families, "jobs": args.jobs, "cell": MAIN_JOB_CELL, "confidence_interval": METHOD}
    start = time.perf_counter()

    def report() -> None:
        runs = {precision: store.finished(grid, args.steps) for precision, store in stores.items()}
        rows = compare(runs, args.families)
        result = {**context, "minutes": round((time.perf_counter() - start) / 60, 1),
                  "load_average_1min_at_end": round(os.getloadavg()[0], 2), "comparisons": rows,
                  "runs": {precision: [{key: value for key, value in run.items() if key != "diagnostics"}
                                       for run in found] for precision, found in runs.items()}}
        args.output.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
        args.output.with_suffix(".md").write_text(markdown(rows, args.steps))

    tasks = [(store, cell) for cell in grid for store in stores.values()]  # fp32 and bf16 of a cell together
    failures = [] if args.report else train_pending(tasks, args.steps, args, report)
    report()
    print(args.output.with_suffix(".md").read_text())
    if failures:
        raise SystemExit(f"{len(failures)} runs failed (rerun to retry them):\n" + "\n".join(failures))


if __name__ == "__main__":
    main()
