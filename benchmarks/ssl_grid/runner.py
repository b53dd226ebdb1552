"""Train one cell in a subprocess and turn what it leaves into one run record (see `cells` for the schedule).

The record holds the cell, its wall time and final metrics (student and teacher AP, AP(E) / AP(M) /
AP(H), pseudo-label precision and recall at the training threshold) and the diagnostics a failed
claim needs, read without rerunning anything:

- `train_log`: the loss terms over training (`loss` the whole objective, `train/loss` the supervised
  term, `train/consistency_loss` and `train/pseudo_loss` the unsupervised ones, the weight ramp);
- `evaluations`: student and teacher AP (per crowd bin too) and pseudo-label quality at each evaluation;
- semi runs: `pseudo_label_curves` and `teacher_snapshots` (`teacher_readout`).

The run's own folder (checkpoints, predictions) is deleted once the record is made.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict
from pathlib import Path
from typing import Any

from .cells import PSEUDO_KEYPOINT_THRESHOLD, PSEUDO_PERSON_THRESHOLD, REPO, Cell, Schedule, main_job_command, schedule
from .store import RunStore

Readout = Callable[[Cell, Schedule, Path, str], dict[str, Any]]
"""What a semi run's saved teachers are read for: (cell, schedule, run folder, dataset folder) -> diagnostics."""

ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false",
              "HF_DATASETS_DISABLE_PROGRESS_BARS": "1"}
EVALUATION_KEYS = (
    "eval_AP", "eval_AP(E)", "eval_AP(M)", "eval_AP(H)", "eval_teacher_AP", "eval_teacher_AP(E)",
    "eval_teacher_AP(M)", "eval_teacher_AP(H)", "eval_pseudo_precision", "eval_pseudo_recall",
    "eval_pseudo_people_per_image",
)


def run_cell(cell: Cell, plan: Schedule, data_flags: list[str], extra_args: list[str], cache_dir: str,
             work_dir: Path, readout: Readout | None = None) -> dict[str, Any]:
    """Train `cell` for `plan.steps` steps and return its run record (RuntimeError if the job fails); a semi run's
    teachers are read by `readout` (default: the crowd grid's `teacher_readout`)."""
    output_dir = work_dir / f"{cell.name}-{plan.steps}steps"
    shutil.rmtree(output_dir, ignore_errors=True)  # a run killed before is started over
    command = main_job_command(cell, plan, data_flags, extra_args, cache_dir, output_dir)
    start = time.perf_counter()
    run_subprocess(command, cell.name)
    summary = json.loads((output_dir / "final_metrics.json").read_text())
    state = json.loads((output_dir / f"checkpoint-{plan.steps}" / "trainer_state.json").read_text())
    diagnostics = {"train_log": train_log(state["log_history"]), "evaluations": evaluations(state["log_history"])}
    if cell.mode == "semi":
        diagnostics |= (readout or _read_teacher)(cell, plan, output_dir, summary["dataset"])
    seconds = time.perf_counter() - start
    shutil.rmtree(output_dir, ignore_errors=True)
    print(f"{cell.name}: AP {summary['metrics']['eval_AP']:.3f} in {seconds:.0f} s", flush=True)
    return {**asdict(cell), "variant": cell.variant, "steps": plan.steps, "seconds": round(seconds, 1),
            "metrics": summary["metrics"],
            "diagnostics": diagnostics}


def train_pending(tasks: list[tuple[RunStore, Cell]], steps: int, args, on_finished,
                  readout: Readout | None = None) -> list[str]:
    """Train the tasks whose run is not in their store yet, `args.jobs` at a time (the data flags from each store's
    settings, `args.cache_dir`, `args.main_job_args`); `readout` as for `run_cell`. Returns the failures."""
    pending = [(store, cell) for store, cell in tasks if store.load(cell, steps) is None]
    print(f"{len(tasks) - len(pending)} of {len(tasks)} runs already finished; training {len(pending)}.", flush=True)
    plan, failures = schedule(steps, args.main_job_args), []
    with tempfile.TemporaryDirectory(prefix="bench_ssl_") as work_dir:
        pool = ThreadPoolExecutor(max_workers=max(1, args.jobs))
        try:
            futures = {
                pool.submit(run_cell, cell, plan, store.settings["data_flags"], store.settings["extra_args"],
                            args.cache_dir, Path(work_dir) / store.folder.name,  # stores share cells
                            readout): (store, cell)
                for store, cell in pending
            }
            for future in as_completed(futures):
                store, cell = futures[future]
                try:
                    store.save(cell, steps, future.result())
                except RuntimeError as error:  # the others go on; a rerun retries this one
                    failures.append(str(error))
                    print(error, flush=True)
                    continue
                on_finished()
        finally:  # interrupted: the queued runs are dropped, not started
            pool.shutdown(wait=True, cancel_futures=True)
    return failures


def run_subprocess(command: list[str], name: str) -> None:
    completed = subprocess.run(command, env=dict(os.environ, **ONE_THREAD), capture_output=True, text=True, cwd=REPO)
    if completed.returncode != 0:
        raise RuntimeError(f"{name} failed ({completed.returncode}): {' '.join(command)}\n{completed.stderr[-3000:]}")


def _read_teacher(cell: Cell, plan: Schedule, output_dir: Path, dataset: str) -> dict[str, Any]:
    readout_file = output_dir / "teacher_readout.json"
    command = [
        sys.executable, "-m", "benchmarks.ssl_grid.teacher_readout", str(output_dir), "--dataset_folder", dataset,
        "--dataset_config", cell.dataset_config, "--person_threshold", str(PSEUDO_PERSON_THRESHOLD[cell.family]),
        "--keypoint_threshold", str(PSEUDO_KEYPOINT_THRESHOLD), "--output", str(readout_file),
        "--snapshot_steps", *map(str, plan.snapshot_steps),
    ]
    run_subprocess(command, f"{cell.name} (teacher readout)")
    return json.loads(readout_file.read_text())


def train_log(log_history: list[dict[str, Any]]) -> list[dict[str, float]]:
    """The training logs (loss terms, learning rate, unsupervised weight), 4 significant digits."""
    return [
        {key: _rounded(value) for key, value in entry.items() if key in ("step", "loss", "learning_rate")
         or key.startswith("train/")}
        for entry in log_history if "loss" in entry
    ]


def evaluations(log_history: list[dict[str, Any]]) -> list[dict[str, float]]:
    """Student and teacher AP and pseudo-label quality at each evaluation during training."""
    return [
        {"step": entry["step"], **{key: _rounded(entry[key]) for key in EVALUATION_KEYS if key in entry}}
        for entry in log_history if "eval_AP" in entry
    ]


def _rounded(value: Any) -> Any:
    return float(f"{value:.4g}") if isinstance(value, float) else value
