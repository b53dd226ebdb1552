"""Speed of the main job and of its semi-supervised step, measured on the job's own trainer.

1. The job: the main job's trainer (`semipose.training.recipe`, the main job's defaults: its torch
   threads, precision and memory format, its loader and 2 workers, callbacks and logging) trains
   `--job_steps` semi steps (`--burn_in_steps 0 --ramp_up_ratio 0`, no evaluation or checkpoint);
   a callback clocks every optimizer step as the Trainer's loop sees it and the part of it spent
   outside the step (the next batch from the loader, logging).
2. The isolated step on the same trainer (fixed batches, no loader): `semi` (B labeled + B
   unlabeled, unsupervised weight 1) and `supervised` (2B labeled) steps alternate, each the job's
   full step: buffer snapshot, forward + losses + backward, gradient clipping, the non-finite
   guard, optimizer step (+ EMA for `semi`). The job's step and the isolated `semi` step should
   agree within 15%; the gap is split into the loader/logging part and the rest.
3. The semi/supervised step ratio (floor about 1.17 = one teacher forward on B images, target <=
   1.25), the share of each part of the semi step, pseudo labels (target <= 5%).
4. The main job's loader images/s (2 workers, its transforms) over the images/s the job's step
   consumes (target >= 2), and, unless `--quick`, peak memory of a shortened main job (<= 3 GiB).
5. `--torch_compile`: the job of (1) again with the Trainer's `--torch_compile true`, compile time
   included and paid from a cold inductor cache, as a first run pays it (`torch_compile` in the JSON).

The teacher is a copy of an untrained student, so it finds few confident people; the isolated steps
are repeated with every decoded person kept (the upper bound of the pseudo-label cost). Each median is
over `--repeats` timed steps after `--warmup` untimed ones; the JSON records the load average, since
the machine's other jobs move every figure.

Usage:

```bash
python -m benchmarks.bench_speed --cache_dir /tmp/semicache           # a few minutes on 2 cores
python -m benchmarks.bench_speed --cache_dir /tmp/semicache --quick   # fewer steps, no memory run
python -m benchmarks.bench_speed --torch_compile                      # + the job with torch.compile
```
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Sequence
from contextlib import contextmanager
from pathlib import Path

import psutil
import torch
import transformers
from transformers import TrainerCallback

from benchmarks.machine_info import machine_info
from semipose.data.collator import PoseDataCollator
from semipose.training import SemiPoseTrainer
from semipose.training.recipe import (
    DataArguments,
    build_image_processor,
    build_model,
    build_trainer,
    build_training_data,
    parse_arguments,
)

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "bench_speed.json"
TARGETS = {"semi_over_supervised_step": 1.25, "job_over_isolated_step": 1.15, "pseudo_label_share": 0.05,
           "pipeline_over_training_images_per_second": 2.0, "main_job_peak_rss_gib": 3.0}
HIGHER_IS_BETTER = {"pipeline_over_training_images_per_second"}


class StepTimers:
    """Seconds spent inside named calls during the current step; `wrap` replaces a bound method."""

    def __init__(self):
        self.current: dict[str, float] = defaultdict(float)

    @contextmanager
    def time(self, name: str):
        start = time.perf_counter()
        try:
            yield
        finally:
            self.current[name] += time.perf_counter() - start

    def wrap(self, owner, method: str, name: str) -> None:
        original = getattr(owner, method)

        def timed(*args, **kwargs):
            with self.time(name):
                return original(*args, **kwargs)

        setattr(owner, method, timed)

    def pop(self) -> dict[str, float]:
        step, self.current = dict(self.current), defaultdict(float)
        return step


class StepClock(TrainerCallback):
    """When each optimizer step of the Trainer's loop begins and ends."""

    def __init__(self):
        self.begins: list[float] = []
        self.ends: list[float] = []

    def on_step_begin(self, args, state, control, **kwargs):
        self.begins.append(time.perf_counter())

    def on_step_end(self, args, state, control, **kwargs):
        self.ends.append(time.perf_counter())

    def summary(self, warmup: int) -> dict:
        """Median step (end to end) and median part outside it (end to the next begin), after `warmup` steps."""
        ends, begins = self.ends[warmup:], self.begins[warmup + 1:]
        steps = [later - earlier for earlier, later in zip(ends, ends[1:])]
        outside = [begin - end for end, begin in zip(ends, begins)]
        return {"steps_timed": len(steps), "step_seconds": statistics.median(steps),
                "outside_step_seconds": statistics.median(outside), "steps_per_second": 1 / statistics.median(steps)}


def job_arguments(cache_dir: str, output_dir: str, steps: int, extra: Sequence[str] = ()) -> list[str]:
    """The main job's command line for a short semi run on its default data (no evaluation, no checkpoint)."""
    return ["--output_dir", output_dir, "--cache_dir", cache_dir, "--max_steps", str(steps), "--burn_in_steps", "0",
            "--ramp_up_ratio", "0", "--eval_strategy", "no", "--save_strategy", "no", "--report_to", "none",
            "--disable_tqdm", "true", *extra]


def build_job_trainer(argv: Sequence[str]) -> SemiPoseTrainer:
    """The main job's trainer for `argv`, built as `examples/run_semi_pose.py` builds it."""
    model_args, data_args, training_args = parse_arguments(list(argv))
    data = build_training_data(model_args, data_args, training_args)
    model = build_model(model_args, data.skeleton, seed=training_args.seed)
    return build_trainer(model, build_image_processor(model_args, model.config), data, data_args, training_args)


def run_job(trainer: SemiPoseTrainer, warmup: int) -> dict:
    """Train `trainer` (its whole run) with a `StepClock`; the clock's summary and the run's wall time."""
    clock = StepClock()
    trainer.add_callback(clock)
    start = time.perf_counter()
    trainer.train()
    wall = time.perf_counter() - start
    trainer.remove_callback(clock)
    args = trainer.args
    return {**clock.summary(warmup), "train_wall_seconds": round(wall, 2), "torch_threads": torch.get_num_threads(),
            "precision": args.resolved_precision, "channels_last": args.channels_last,
            "torch_compile": args.torch_compile, "dataloader_num_workers": args.dataloader_num_workers}


def fixed_batches(trainer: SemiPoseTrainer) -> tuple[dict, dict]:
    """One semi batch (B labeled + B unlabeled) and one supervised batch of the 2B labeled images."""
    batch_size = trainer.args.per_device_train_batch_size
    pairs = trainer.train_dataset
    semi = trainer.data_collator([pairs[index] for index in range(batch_size)])
    labeled = [pairs.labeled[index % len(pairs.labeled)] for index in range(2 * batch_size)]
    supervised = dict(PoseDataCollator()(labeled))
    device = trainer.args.device
    move = lambda batch: {key: value.to(device) for key, value in batch.items()}  # noqa: E731
    return move(semi), move(supervised)


def instrument(trainer: SemiPoseTrainer) -> StepTimers:
    """Timers around the parts of the semi step (call once: wrapping twice would count twice)."""
    timers = StepTimers()
    timers.wrap(trainer, "compute_loss", "compute_loss")
    timers.wrap(trainer.teacher, "forward", "teacher_forward")
    timers.wrap(trainer, "_pseudo_keypoints", "pseudo_labels")
    timers.wrap(trainer, "strong_view", "strong_view")
    return timers


def measure_steps(trainer: SemiPoseTrainer, timers: StepTimers, warmup: int, repeats: int) -> dict:
    """Median step times of both modes (alternating) and the median share of each part of the semi step.

    `trainer` has trained (its optimizer exists, its model is prepared: autocast as in the job)."""
    trainer._loss_sums.clear()
    trainer._loss_counts.clear()
    model, optimizer = trainer.model_wrapped, trainer.optimizer
    semi_batch, supervised_batch = fixed_batches(trainer)

    def step(batch: dict, semi: bool) -> tuple[float, dict[str, float]]:
        """One optimizer step as the Trainer's loop and `_TeacherCallback` run it."""
        start = time.perf_counter()
        with timers.time("guard"):
            trainer._snapshot_buffers()
        with timers.time("training_step"):
            trainer.training_step(model, batch)
        with timers.time("optimizer_step"):
            trainer._get_grad_norm(model, grad_norm=trainer._clip_grad_norm(model))
        with timers.time("guard"):
            trainer._skip_non_finite_step()
        with timers.time("optimizer_step"):
            optimizer.step()
            model.zero_grad()
        with timers.time("ema_update"):
            trainer._after_optimizer_step() if semi else trainer._commit_step_terms(keep=True)
        return time.perf_counter() - start, timers.pop()

    semi_times, supervised_times, parts = [], [], defaultdict(list)
    for index in range(warmup + repeats):
        semi_time, semi_parts = step(semi_batch, semi=True)
        supervised_time, _ = step(supervised_batch, semi=False)
        if index < warmup:
            continue
        semi_times.append(semi_time)
        supervised_times.append(supervised_time)
        for name, share in semi_step_shares(semi_time, semi_parts).items():
            parts[name].append(share)
    pseudo_people = float(trainer._loss_sums.get("pseudo_people_per_image", 0.0)) / max(
        trainer._loss_counts.get("pseudo_people_per_image", 0), 1)
    return {
        "semi_step_seconds": statistics.median(semi_times),
        "supervised_step_seconds": statistics.median(supervised_times),
        "semi_step_shares": {name: round(statistics.median(values), 4) for name, values in parts.items()},
        "pseudo_people_per_image": round(pseudo_people, 2),
    }


def semi_step_shares(total: float, parts: dict[str, float]) -> dict[str, float]:
    """Disjoint parts of one semi step as fractions of it (student = forward + losses, no backward)."""
    inside_loss = parts["teacher_forward"] + parts["pseudo_labels"] + parts["strong_view"]
    seconds = {
        "teacher_forward": parts["teacher_forward"],
        "pseudo_labels": parts["pseudo_labels"],
        "strong_view": parts["strong_view"],
        "student_forward_and_losses": parts["compute_loss"] - inside_loss,
        "backward": parts["training_step"] - parts["compute_loss"],
        "optimizer_step": parts["optimizer_step"],
        "ema_update": parts["ema_update"],
        "non_finite_guard": parts["guard"],
    }
    seconds["other"] = total - sum(seconds.values())
    return {name: value / total for name, value in seconds.items()}


def pipeline_images_per_second(trainer: SemiPoseTrainer, num_batches: int, repeats: int) -> float:
    """Images/s (labeled + unlabeled) of the main job's train DataLoader; the first batch is not timed."""
    batch_images = 2 * trainer.args.per_device_train_batch_size
    runs = []
    for _ in range(repeats):
        batches = iter(trainer.get_train_dataloader())
        next(batches)
        start = time.perf_counter()
        for _ in range(num_batches):
            next(batches)
        runs.append(num_batches * batch_images / (time.perf_counter() - start))
    return statistics.median(runs)


def main_job_peak_rss(cache_dir: str, max_steps: int) -> dict:
    """Peak memory of a shortened default main job: proportional set size summed over its process
    tree (launcher, trainer, DataLoader workers; polled every 0.2 s) and, from `/usr/bin/time -v`
    where present, the max RSS of its largest single process."""
    output_dir = tempfile.mkdtemp(prefix="bench_speed_")
    command = ["accelerate", "launch", str(REPO / "examples" / "run_semi_pose.py"), "--max_steps", str(max_steps),
               "--eval_steps", str(max_steps // 2), "--save_steps", str(max_steps // 2),
               "--output_dir", output_dir, "--cache_dir", cache_dir]
    gnu_time = Path("/usr/bin/time").exists()
    if gnu_time:
        command = ["/usr/bin/time", "-v", *command]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=REPO)
    peak = [0]
    stop = threading.Event()
    threading.Thread(target=_poll_tree_rss, args=(process.pid, peak, stop), daemon=True).start()
    _, stderr = process.communicate()
    stop.set()
    shutil.rmtree(output_dir, ignore_errors=True)
    if process.returncode != 0:
        raise RuntimeError(f"the main job failed (exit {process.returncode}):\n{stderr[-3000:]}")
    result = {"command": " ".join(command[2:] if gnu_time else command), "max_steps": max_steps,
              "tree_peak_pss_gib": round(peak[0] / 2**30, 3)}
    for line in stderr.splitlines():
        if "Maximum resident set size" in line:
            result["largest_process_max_rss_gib"] = round(int(line.split(":")[-1]) * 1024 / 2**30, 3)
    return result


def _poll_tree_rss(pid: int, peak: list[int], stop: threading.Event) -> None:
    root = psutil.Process(pid)
    while not stop.is_set():
        total = 0
        try:
            for process in [root, *root.children(recursive=True)]:
                total += process.memory_full_info().pss  # shared pages split, not counted per worker
        except psutil.Error:
            pass
        peak[0] = max(peak[0], total)
        time.sleep(0.2)


def figure(name: str, value: float) -> dict:
    target = TARGETS[name]
    passed = value >= target if name in HIGHER_IS_BETTER else value <= target
    return {"value": round(value, 4), "target": f"{'>=' if name in HIGHER_IS_BETTER else '<='} {target}",
            "pass": passed}


def measure_job_and_steps(args, output_dir: str) -> dict:
    """The job's steps/s, then the isolated steps on its trainer (as trained, then with every person kept)."""
    trainer = build_job_trainer(job_arguments(args.cache_dir, output_dir, args.job_steps))
    job = run_job(trainer, args.warmup)
    timers = instrument(trainer)
    steps = measure_steps(trainer, timers, args.warmup, args.repeats)
    # An untrained teacher finds few confident people: repeat with every decoded person kept,
    # the upper bound of the pseudo-label cost (decode, filter, map, encode, joint cutout).
    trainer.args.pseudo_person_threshold = trainer.args.pseudo_keypoint_threshold = 0.0
    trainer.teacher.config.center_threshold = 0.0
    all_people = measure_steps(trainer, timers, args.warmup, args.repeats)
    pipeline = pipeline_images_per_second(trainer, args.pipeline_batches, repeats=3)
    return {"trainer": trainer, "job": job, "steps": steps, "all_people": all_people, "pipeline": pipeline}


def job_versus_step(job: dict, isolated_semi_seconds: float) -> dict:
    """How far the job's step is from the isolated semi step, and how much of that is outside the step."""
    gap = job["step_seconds"] - isolated_semi_seconds
    return {"job_over_isolated_step": round(job["step_seconds"] / isolated_semi_seconds, 4),
            "gap_seconds": round(gap, 4), "of_which_loader_and_logging_seconds": round(job["outside_step_seconds"], 4),
            "of_which_inside_the_step_seconds": round(gap - job["outside_step_seconds"], 4)}


def compile_comparison(args, output_dir: str, eager: dict) -> dict:
    """The same job with the Trainer's `--torch_compile true`: wall time of the whole run, compile included.

    Inductor compiles into a fresh cache folder, so the run pays what a first run on a machine pays (a
    warm cache from an earlier run cut the compile time from minutes to seconds here)."""
    with tempfile.TemporaryDirectory(prefix="inductor_") as cache, _environment(TORCHINDUCTOR_CACHE_DIR=cache):
        trainer = build_job_trainer(
            job_arguments(args.cache_dir, output_dir, args.job_steps, ["--torch_compile", "true"]))
        compiled = run_job(trainer, args.warmup)
    return {"eager": eager, "compiled": compiled, "inductor_cache": "cold (a fresh TORCHINDUCTOR_CACHE_DIR)",
            "compiled_over_eager_step": round(compiled["step_seconds"] / eager["step_seconds"], 4),
            "compiled_over_eager_train_wall": round(compiled["train_wall_seconds"] / eager["train_wall_seconds"], 4),
            "keep": compiled["train_wall_seconds"] < eager["train_wall_seconds"]}


@contextmanager
def _environment(**variables: str):
    """Environment variables set for the block, restored after it."""
    saved = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache_dir", default=DataArguments().cache_dir, help="synthetic data cache (main job's)")
    parser.add_argument("--job_steps", type=int, default=150, help="semi steps of the job measurement")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps of each mode (and of the job)")
    parser.add_argument("--repeats", type=int, default=30, help="timed steps of each mode (median kept)")
    parser.add_argument("--pipeline_batches", type=int, default=20, help="timed DataLoader batches per run")
    parser.add_argument("--main_job_steps", type=int, default=60, help="steps of the memory run; 0 skips it")
    parser.add_argument("--torch_compile", action="store_true", help="also time the job with torch.compile")
    parser.add_argument("--quick", action="store_true", help="60 job steps, 3 warm-up, 8 timed, 10 batches, no memory")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    if args.quick:
        args.job_steps, args.warmup, args.repeats, args.pipeline_batches, args.main_job_steps = 60, 3, 8, 10, 0
    machine = machine_info(transformers)
    with tempfile.TemporaryDirectory() as output_dir:
        measured = measure_job_and_steps(args, output_dir)
        compiled = compile_comparison(args, output_dir, measured["job"]) if args.torch_compile else None
    trainer, job, steps, all_people = (measured[key] for key in ("trainer", "job", "steps", "all_people"))
    batch_size = trainer.args.per_device_train_batch_size
    consumed = 2 * batch_size / job["step_seconds"]
    shares = steps["semi_step_shares"]
    figures = {
        "semi_over_supervised_step": figure(
            "semi_over_supervised_step", steps["semi_step_seconds"] / steps["supervised_step_seconds"]),
        "job_over_isolated_step": figure(
            "job_over_isolated_step", job["step_seconds"] / steps["semi_step_seconds"]),
        "pseudo_label_share": figure("pseudo_label_share", shares["pseudo_labels"]),
        "pipeline_over_training_images_per_second": figure(
            "pipeline_over_training_images_per_second", measured["pipeline"] / consumed),
    }
    memory = main_job_peak_rss(args.cache_dir, args.main_job_steps) if args.main_job_steps > 0 else None
    if memory is not None:
        figures["main_job_peak_rss_gib"] = figure("main_job_peak_rss_gib", memory["tree_peak_pss_gib"])
    report = {
        "benchmark": "bench_speed",
        "setup": {"model": "center_offset regnetx_002 neck 64", "input_size": 64, "batch_size": batch_size,
                  "device": str(trainer.args.device), "job_steps": args.job_steps, "warmup": args.warmup,
                  "repeats": args.repeats},
        "machine": {**machine, "load_average_1min_at_end": round(os.getloadavg()[0], 2)},
        "figures": figures,
        "job": {**{key: round(value, 4) if isinstance(value, float) else value for key, value in job.items()},
                "versus_isolated_step": job_versus_step(job, steps["semi_step_seconds"])},
        "dominant": max(shares, key=shares.get),
        "semi_step_seconds": round(steps["semi_step_seconds"], 4),
        "supervised_step_seconds": round(steps["supervised_step_seconds"], 4),
        "semi_step_shares": shares,
        "pseudo_people_per_image": steps["pseudo_people_per_image"],
        "pipeline_images_per_second": round(measured["pipeline"], 1),
        "training_images_per_second": round(consumed, 1),
        "all_people_kept": {
            "semi_over_supervised_step": round(
                all_people["semi_step_seconds"] / all_people["supervised_step_seconds"], 4
            ),
            "semi_step_shares": all_people["semi_step_shares"],
            "pseudo_people_per_image": all_people["pseudo_people_per_image"],
        },
        "torch_compile": compiled,
        "main_job_memory": memory,
    }
    shown = ("figures", "job", "dominant", "semi_step_shares", "all_people_kept", "torch_compile")
    print(json.dumps({key: report[key] for key in shown}, indent=2))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
