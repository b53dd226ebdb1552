"""The paper's claim on the built-in synthetic data: semi > consistency > supervised, at the same labels.

Every cell is one run of the main job (`examples/run_semi_pose.py`, one process, one torch thread,
`--jobs` runs side by side) with the same steps, batch size (B labeled, plus B unlabeled for the
semi-supervised modes), learning rate and schedule; only the mode, the labeled split, the labeled
images' augmentation and the seed differ. Validation AP is the student's (CrowdPose OKS AP, with
AP(E) / AP(M) / AP(H) per crowd bin), read from the run's `final_metrics.json`; the teacher's AP
is recorded too. Seeds change the network's initialization and the random views; the labeled
subsets are the dataset's fixed, nested ones. `--regime` picks the data (`ssl_grid.regimes`):
`default`, the main job's 64 px scenes of 1-2 people, or `crowd`, 96 px scenes of 2-6 overlapping
people spread over the easy / medium / hard crowd bins (the result json records how many
validation images fall in each).

Modes and the honest baselines:

- `supervised`, once with light and once with strong labeled augmentation (strong = the semi
  student's strong view: rotation 30, scale .75-1.25, color jitter, cutout, joint cutout).
- `consistency` and `semi` train on light labeled views and strong unlabeled views (the main job's
  defaults: burn-in 40%, EMA .995, ramp-up 10%, keypoint threshold .3), with the teacher's person
  threshold per family (`ssl_grid.cells.PSEUDO_PERSON_THRESHOLD`).
- The ceiling is `supervised` on 100% labels with light augmentation (with all labels, strong
  augmentation lost 13 AP in a pilot, AP .229 against .356 at 3000 steps and one seed, so light is the
  stronger ceiling and the gap below is, if anything, understated); the gap between it and the better
  supervised run at 5% shows whether labels limit the model at this budget (>= 15 AP).

Selection rule: no choice is made on the reported split in semi's favor. Which supervised
augmentation is better is not known in advance, so semi is compared with each (paired by seed, a
90% t interval over >= 3 seeds, `ssl_grid.paired`), and "semi beats the best supervised" holds only
if it beats both: each mean difference >= the target and each interval above 0. The headline
number is the smaller difference, against the variant with the higher mean AP; choosing that on
validation can only favor the baseline.

Targets at 5% and 10% labels, means over seeds: semi - best supervised >= +5 AP, semi - consistency
>= +2 AP, both with the 90% CI above 0, and (crowd) the hard bin gaining at least as much as the easy
one. For a failed claim each run records the diagnostics (`ssl_grid.runner`): pseudo-label precision /
recall per crowd bin, unsupervised vs supervised loss over training, teacher vs student AP over time.

Each finished run is written at once to `benchmarks/results/{stem}_runs/` (`ssl_grid.store`); a rerun
with the same settings trains only what is missing, so a grid killed halfway (or split across
sessions, e.g. with `--families`) continues. The report (`{stem}.json/.md/.png`) is rewritten after
every run (with `{stem}_pseudo_label_curves.png`); the semi runs also draw
`docs/images/{stem}_pseudo_people.png` (`ssl_grid.figure`).

Usage:

```bash
python -m benchmarks.bench_ssl --regime crowd --pilot              # is it label-bound? 96 and 128 px, both families
python -m benchmarks.bench_ssl --regime crowd --measure --dry-run  # seconds per step -> cell list and wall time
python -m benchmarks.bench_ssl --regime crowd --image_size 96 --steps 1000   # the grid: 54 runs, 3 seeds
python -m benchmarks.bench_ssl --regime crowd --report             # tables, plot, figure from finished runs
python -m benchmarks.bench_ssl                                     # the default regime's grid
python -m benchmarks.bench_ssl --quick                             # one family, 5%, one seed, 400 steps
```
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import tempfile
import time
from pathlib import Path

import transformers

from benchmarks.machine_info import machine_info
from benchmarks.ssl_grid.cells import Cell, grid, pilot_cells
from benchmarks.ssl_grid.estimate import MEASURE_STEPS, dry_run_text, estimate_seconds, fit_timing, kind, timing_cells
from benchmarks.ssl_grid.figure import save_pseudo_people_figure
from benchmarks.ssl_grid.paired import METHOD
from benchmarks.ssl_grid.regimes import REGIMES, Regime, data_record, prepare_regime_data
from benchmarks.ssl_grid.report import (
    TARGETS,
    bins_table,
    chosen_image_size,
    comparisons,
    curve_table,
    diagnostics_table,
    markdown_table,
    paired_table,
    pilot_rows,
    pilot_table,
    plot,
    plot_pseudo_label_curves,
    summarize,
)
from benchmarks.ssl_grid.runner import train_pending
from benchmarks.ssl_grid.store import RunStore

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
FIGURES = REPO / "docs" / "images"
TIMING_FILE = "timing.json"
FAMILIES = ("center_offset", "associative_embedding")
CONFIGS = ("ratio_5", "ratio_10")
SEEDS = (0, 1, 2)
PILOT_IMAGE_SIZES = (96, 128)
SELECTION_RULE = ("semi is compared with each supervised augmentation (paired by seed); the headline is the smaller "
                  "difference, against the variant with the higher mean AP, and the target needs both")


def store_for(args, regime: Regime, image_size: int) -> RunStore:
    """The runs of `regime` at `image_size` with the extra main-job arguments (the pilot's and the grid's)."""
    settings = {"regime": regime.name, "image_size": image_size, "data_flags": regime.main_job_flags(image_size),
                "extra_args": args.main_job_args}
    return RunStore(Path(args.runs_dir or RESULTS / f"{regime.output_stem}_runs"), settings)


def _relative(path: Path) -> str:
    """`path` from the repository root when inside it (results stay portable), else as it is."""
    path = path.resolve()
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


def write_grid_report(stem: Path, store: RunStore, cells: list[Cell], dataset_folder: Path, figure_path: Path,
                      context: dict) -> None:
    """`{stem}.json/.md/.png` from the finished runs among `cells`, and the pseudo-people figure."""
    runs = store.finished(cells, context["steps"])
    families = [family for family in context["families"] if any(run["family"] == family for run in runs)]
    if not runs:
        return
    configs, steps = context["configs"], context["steps"]
    summary = summarize(runs)
    rows = comparisons(summary, families, configs)
    tables = [markdown_table(summary, rows, families, configs, steps), bins_table(summary, families, configs),
              paired_table(rows), curve_table(runs, families, configs), diagnostics_table(runs, families, configs)]
    run_minutes = sum(run["seconds"] for run in runs) / 60
    wall_minutes = (time.perf_counter() - context.pop("start")) / 60
    footer = (f"\n{len(runs)} of {len(cells)} runs finished: {run_minutes:.0f} run-minutes, "
              f"{context['jobs']} at a time; this session {wall_minutes:.0f} min wall. Per-run records with "
              f"diagnostics: {_relative(store.folder)}.\n")
    result = {
        **context, "total_minutes": round(wall_minutes, 1), "run_minutes": round(run_minutes, 1),
        "confidence_interval": METHOD, "selection_rule": SELECTION_RULE, "targets": TARGETS,
        "runs_folder": _relative(store.folder), "comparisons": rows,
        "summary": [{"family": f, "dataset_config": c, "variant": v, **cell} for (f, c, v), cell in summary.items()],
        "runs": [{key: value for key, value in run.items() if key != "diagnostics"} for run in runs],
    }
    stem.with_suffix(".json").write_text(json.dumps(result, indent=2))
    stem.with_suffix(".md").write_text("\n".join(tables) + footer)
    plot(summary, families, configs, stem.with_suffix(".png"))
    plot_pseudo_label_curves(runs, families, configs, stem.with_name(f"{stem.name}_pseudo_label_curves.png"))
    figure = save_pseudo_people_figure(runs, dataset_folder, figure_path)
    print(f"wrote {stem}.json/.md/.png" + (f" and {figure}" if figure else ""), flush=True)


def grid_cells(args) -> list[Cell]:
    cells = grid(args.families, args.configs, args.seeds, args.ceiling_seeds)
    if args.quick:
        cells = [cell for cell in cells if cell.variant != "supervised (light)" or cell.dataset_config == "full"]
    return cells


def run_grid(args, regime: Regime) -> list[str]:
    """Train the grid's missing runs, rewriting the report after each; returns the failures."""
    size = args.image_size or regime.image_size
    store = store_for(args, regime, size)
    folder, data_args = prepare_regime_data(regime, size, args.cache_dir)
    cells = grid_cells(args)
    context = {"machine": machine_info(transformers), "regime": regime.name, "image_size": size,
               "steps": args.steps, "seeds": args.seeds, "jobs": args.jobs, "families": args.families,
               "configs": args.configs, "main_job_args": args.main_job_args,
               "data": data_record(regime, folder, data_args)}
    stem = Path(args.output or RESULTS / (f"{regime.output_stem}_quick" if args.quick else regime.output_stem))
    figure_path = stem.with_name(f"{stem.name}_pseudo_people.png") if args.output else (
        FIGURES / f"{stem.name}_pseudo_people.png")
    start = time.perf_counter()

    def report() -> None:
        write_grid_report(stem, store, cells, folder, figure_path, {**context, "start": start})

    failures = [] if args.report else train_pending([(store, cell) for cell in cells], args.steps, args, report)
    report()
    return failures


def run_pilot(args, regime: Regime) -> list[str]:
    """Supervised 5% and 100% at each candidate size, both families; the pilot report after every run."""
    sizes = sorted(args.image_sizes or PILOT_IMAGE_SIZES)
    stores = {size: store_for(args, regime, size) for size in sizes}
    data = {size: data_record(regime, *prepare_regime_data(regime, size, args.cache_dir)) for size in sizes}
    cells = pilot_cells(args.families, args.seeds)
    stem = Path(args.output or RESULTS / f"{regime.output_stem}_pilot")

    def report() -> None:
        rows = pilot_rows({size: summarize(stores[size].finished(cells, args.steps)) for size in sizes},
                          args.families)
        result = {"machine": machine_info(transformers), "regime": regime.name, "steps": args.steps,
                  "seeds": args.seeds, "main_job_args": args.main_job_args, "targets": TARGETS, "data": data,
                  "rows": rows, "chosen_image_size": chosen_image_size(rows),
                  "runs_folders": {size: _relative(store.folder) for size, store in stores.items()}}
        stem.with_suffix(".json").write_text(json.dumps(result, indent=2))
        stem.with_suffix(".md").write_text(pilot_table(rows, args.steps))

    tasks = [(stores[size], cell) for size in sizes for cell in cells]
    failures = [] if args.report else train_pending(tasks, args.steps, args, report)
    report()
    print(stem.with_suffix(".md").read_text())
    return failures


def measure_timing(args, regime: Regime, size: int) -> dict:
    """Per family, a supervised and a semi run at each of `MEASURE_STEPS` (records not kept) -> `fit_timing`."""
    prepare_regime_data(regime, size, args.cache_dir)
    seconds = {}
    with tempfile.TemporaryDirectory(prefix="bench_ssl_timing_") as folder:
        measure = RunStore(Path(folder), store_for(args, regime, size).settings)
        cells = timing_cells(args.families)
        for steps in MEASURE_STEPS:
            train_pending([(measure, cell) for cell in cells], steps, args, lambda: None)
            seconds |= {(run["family"], kind(Cell.from_run(run)), steps): run["seconds"]
                        for run in measure.finished(cells, steps)}
    return fit_timing(seconds)


def dry_run(args, regime: Regime) -> None:
    """Print the grid's cells and its estimated wall time; with --measure, time short runs first."""
    size = args.image_size or regime.image_size
    store = store_for(args, regime, size)
    timing_file = store.folder / TIMING_FILE
    if args.measure:
        timing = measure_timing(args, regime, size)
        store.folder.mkdir(parents=True, exist_ok=True)
        timing_file.write_text(json.dumps(timing, indent=2))
    else:
        timing = json.loads(timing_file.read_text()) if timing_file.is_file() else {}
    cells = grid_cells(args)
    finished = store.finished(cells, args.steps)
    estimates = estimate_seconds(cells, args.steps, timing, finished)
    print(f"regime {regime.name}, {size} px, {args.steps} steps, seeds {args.seeds}; runs in {store.folder}")
    print(dry_run_text(cells, {Cell.from_run(run) for run in finished}, estimates, args.jobs, timing))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--regime", choices=sorted(REGIMES), default="default", help="The data (ssl_grid.regimes).")
    parser.add_argument("--pilot", action="store_true", help="Label-bound check: supervised 5%% vs 100%% per size.")
    parser.add_argument("--dry-run", action="store_true", help="List the cells and estimate the wall time.")
    parser.add_argument("--measure", action="store_true", help="With --dry-run: time short runs for the estimate.")
    parser.add_argument("--report", action="store_true", help="Only rewrite the report from the finished runs.")
    parser.add_argument("--quick", action="store_true", help="center_offset, 5%%, seed 0, 400 steps.")
    parser.add_argument("--steps", type=int, default=None, help="Optimizer steps per run (default: the regime's).")
    parser.add_argument("--seeds", type=int, nargs="+", default=None, help="Training seeds (default 0 1 2).")
    parser.add_argument("--ceiling_seeds", type=int, nargs="+", default=None,
                        help="Seeds of the 100%% ceiling runs (default: --seeds).")
    parser.add_argument("--families", nargs="+", default=None, choices=FAMILIES, help="Default: both.")
    parser.add_argument("--configs", nargs="+", default=None, choices=CONFIGS, help="Label ratios (default: both).")
    parser.add_argument("--image_size", type=int, default=None, help="Image and input size of the grid.")
    parser.add_argument("--image_sizes", type=int, nargs="+", default=None, help="The pilot's sizes (96 128).")
    parser.add_argument("--jobs", type=int, default=os.cpu_count(), help="Runs side by side, one thread each.")
    parser.add_argument("--cache_dir", default=str(Path.home() / ".cache" / "semipose"), help="Synthetic data cache.")
    parser.add_argument("--main_job_args", type=shlex.split, default=[],
                        help="Extra flags for every run, e.g. '--bf16 true' (part of the run store's key).")
    parser.add_argument("--output", default=None, help="Output stem (default benchmarks/results/<regime stem>); "
                        "the figure goes beside it (default docs/images/).")
    parser.add_argument("--runs_dir", default=None, help="The run store (default benchmarks/results/<stem>_runs).")
    args = parser.parse_args()
    regime = REGIMES[args.regime]
    args.families = tuple(args.families or (("center_offset",) if args.quick else FAMILIES))
    args.configs = tuple(args.configs or (("ratio_5",) if args.quick else CONFIGS))
    args.seeds = list(args.seeds or ([0] if args.quick or args.pilot else SEEDS))
    args.steps = args.steps or (400 if args.quick else regime.steps)
    return args


def main() -> None:
    args = parse_args()
    regime = REGIMES[args.regime]
    if args.dry_run:
        dry_run(args, regime)
        return
    start = time.perf_counter()
    failures = run_pilot(args, regime) if args.pilot else run_grid(args, regime)
    print(f"done in {(time.perf_counter() - start) / 60:.1f} min", flush=True)
    if failures:
        raise SystemExit(f"{len(failures)} runs failed (rerun to retry them):\n" + "\n".join(failures))


if __name__ == "__main__":
    main()
