"""Cost of the semi-supervised step: four ratios, each measured within one run of this script.

1. `semi` step time (B labeled + B unlabeled, teacher built, unsupervised weight 1) over a
   `supervised` step on 2B labeled images, same model and optimizer: forward + backward +
   optimizer step (+ the teacher's EMA update for `semi`). Floor about 1.17 (one teacher forward
   on B images), target <= 1.25.
2. Share of the `semi` step spent on pseudo labels (`SemiPoseTrainer._pseudo_keypoints`: decode,
   filter, map to the strong view), target <= 5%; with the share of every other part of the step.
3. Data pipeline images/s (the main job's train DataLoader: labeled + unlabeled transforms, 2
   workers) over the images/s the `semi` step consumes (2B per step), target >= 2.
4. Peak resident memory of a shortened default main job (`accelerate launch
   examples/run_semi_pose.py --max_steps 60`), target <= 3 GiB.

The model, data and trainer are the main job's defaults (center_offset, regnetx_002, neck 64,
64 px input, B = 16, synthetic CrowdPose data), built with the main job's own functions. Torch
threads are left at torch's default, as in the main job. Semi and supervised steps alternate so
machine noise hits both alike; every figure is a median over `--repeats` timed steps after
`--warmup` untimed ones. The teacher is a fresh copy of an untrained student, so it finds few
confident people; the JSON records how many pseudo people per image the timed steps had.

Usage:

```bash
python -m benchmarks.bench_speed --cache_dir /tmp/semicache           # a few minutes on 2 cores
python -m benchmarks.bench_speed --cache_dir /tmp/semicache --quick   # fewer repeats, no memory run
```
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
from collections import defaultdict
from contextlib import contextmanager
from pathlib import Path

import psutil
import transformers

from benchmarks.machine_info import machine_info
from semipose.data.collator import PoseDataCollator
from semipose.training import SemiPoseTrainer, SemiPoseTrainingArguments
from semipose.training.ema import build_teacher, update_teacher
from semipose.training.recipe import (
    DEFAULT_TRAINING_ARGUMENTS,
    DataArguments,
    ModelArguments,
    build_image_processor,
    build_model,
    build_trainer,
    build_training_data,
)

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "bench_speed.json"
TARGETS = {"semi_over_supervised_step": 1.25, "pseudo_label_share": 0.05,
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


def build_semi_trainer(cache_dir: str, output_dir: str) -> SemiPoseTrainer:
    """The default main job's semi trainer, with the teacher built and the unsupervised weight at 1."""
    model_args, data_args = ModelArguments(), DataArguments(cache_dir=cache_dir)
    arguments = {**DEFAULT_TRAINING_ARGUMENTS, "output_dir": output_dir, "report_to": "none",
                 "eval_strategy": "no"}
    training_args = SemiPoseTrainingArguments(**arguments)
    data = build_training_data(model_args, data_args, training_args)
    model = build_model(model_args, data.skeleton, seed=training_args.seed)
    trainer = build_trainer(model, build_image_processor(model_args, model.config), data, data_args, training_args)
    trainer.state.max_steps = training_args.max_steps
    trainer.state.global_step = training_args.max_steps - 1  # past burn-in and ramp-up: factor 1
    trainer.current_gradient_accumulation_steps = 1  # set by Trainer's loop, which this benchmark bypasses
    trainer.teacher = build_teacher(trainer.model)
    return trainer


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
    """Median step times of both modes (alternating) and the median share of each part of the semi step."""
    trainer._loss_sums.clear()
    trainer._loss_counts.clear()
    optimizer = trainer.create_optimizer()
    model = trainer.model
    semi_batch, supervised_batch = fixed_batches(trainer)

    def step(batch: dict, with_teacher: bool) -> tuple[float, dict[str, float]]:
        start = time.perf_counter()
        with timers.time("training_step"):
            trainer.training_step(model, batch)
        with timers.time("optimizer_step"):
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        trainer._commit_step_terms(keep=True)  # the Trainer's callback would, after its optimizer step
        if with_teacher:
            with timers.time("ema_update"):
                update_teacher(trainer.teacher, model, trainer.args.ema_decay)
        return time.perf_counter() - start, timers.pop()

    semi_times, supervised_times, parts = [], [], defaultdict(list)
    for index in range(warmup + repeats):
        semi_time, semi_parts = step(semi_batch, with_teacher=True)
        supervised_time, _ = step(supervised_batch, with_teacher=False)
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache_dir", default=DataArguments().cache_dir, help="synthetic data cache (main job's)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps of each mode")
    parser.add_argument("--repeats", type=int, default=30, help="timed steps of each mode (median kept)")
    parser.add_argument("--pipeline_batches", type=int, default=20, help="timed DataLoader batches per run")
    parser.add_argument("--main_job_steps", type=int, default=60, help="steps of the memory run; 0 skips it")
    parser.add_argument("--quick", action="store_true", help="3 warm-up, 8 timed steps, 10 batches, no memory run")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    if args.quick:
        args.warmup, args.repeats, args.pipeline_batches, args.main_job_steps = 3, 8, 10, 0
    machine = machine_info(transformers)
    with tempfile.TemporaryDirectory() as output_dir:
        trainer = build_semi_trainer(args.cache_dir, output_dir)
        timers = instrument(trainer)
        steps = measure_steps(trainer, timers, args.warmup, args.repeats)
        # An untrained teacher finds few confident people: repeat with every decoded person kept,
        # the upper bound of the pseudo-label cost (decode, filter, map, encode, joint cutout).
        trainer.args.pseudo_person_threshold = trainer.args.pseudo_keypoint_threshold = 0.0
        trainer.teacher.config.center_threshold = 0.0
        all_people = measure_steps(trainer, timers, args.warmup, args.repeats)
        pipeline = pipeline_images_per_second(trainer, args.pipeline_batches, repeats=3)
    batch_size = trainer.args.per_device_train_batch_size
    consumed = 2 * batch_size / steps["semi_step_seconds"]
    shares = steps["semi_step_shares"]
    figures = {
        "semi_over_supervised_step": figure(
            "semi_over_supervised_step", steps["semi_step_seconds"] / steps["supervised_step_seconds"]),
        "pseudo_label_share": figure("pseudo_label_share", shares["pseudo_labels"]),
        "pipeline_over_training_images_per_second": figure(
            "pipeline_over_training_images_per_second", pipeline / consumed),
    }
    memory = main_job_peak_rss(args.cache_dir, args.main_job_steps) if args.main_job_steps > 0 else None
    if memory is not None:
        figures["main_job_peak_rss_gib"] = figure("main_job_peak_rss_gib", memory["tree_peak_pss_gib"])
    report = {
        "benchmark": "bench_speed",
        "setup": {"model": "center_offset regnetx_002 neck 64", "input_size": 64, "batch_size": batch_size,
                  "device": str(trainer.args.device), "warmup": args.warmup, "repeats": args.repeats},
        "machine": machine,
        "figures": figures,
        "dominant": max(shares, key=shares.get),
        "semi_step_seconds": round(steps["semi_step_seconds"], 4),
        "supervised_step_seconds": round(steps["supervised_step_seconds"], 4),
        "semi_step_shares": shares,
        "pseudo_people_per_image": steps["pseudo_people_per_image"],
        "pipeline_images_per_second": round(pipeline, 1),
        "training_images_per_second": round(consumed, 1),
        "all_people_kept": {
            "semi_over_supervised_step": round(
                all_people["semi_step_seconds"] / all_people["supervised_step_seconds"], 4
            ),
            "semi_step_shares": all_people["semi_step_shares"],
            "pseudo_people_per_image": all_people["pseudo_people_per_image"],
        },
        "main_job_memory": memory,
    }
    shown = ("figures", "dominant", "semi_step_shares", "all_people_kept")
    print(json.dumps({key: report[key] for key in shown}, indent=2))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
