"""The README's COCO / CrowdPose recipe run for real on CPU: 512 px, `hrnet_w32`, sigma 2, semi mode, both families.

Nothing here reaches paper-scale numbers; it proves the recipe's code path works at its real resolution and
measures what it costs. The four real COCO photos (`tests/fixtures/coco`) become a dataset folder whose
`ratio_50` config labels two of them (train = validation, as in `bench_memorisation`). Per family, the main job
(`examples/run_semi_pose.py`, the README recipe's flags, 2 labeled + 2 unlabeled images a step, burn-in 2 of
4 steps, checkpoints at steps 2 and 4, evaluation at the end) runs twice:

1. `--max_steps 4` from scratch: 2 supervised steps, the teacher's birth, 2 semi steps, the final evaluation;
2. the same command with `--resume_from_checkpoint <run 1>/checkpoint-2`: the two semi steps again from the
   saved state, then the evaluation; their training losses are compared with run 1's at the same steps.

Recorded per run: the Trainer's `train_runtime` over its steps (the steps, the teacher's birth and the
checkpoints; the evaluation is timed apart by the trainer), and the process's peak resident memory
(`run_measuring_peak_memory`, one process: `--dataloader_num_workers 0`). The resumed run's seconds per step are
semi steps only. CPU memory is not GPU memory, but the activations are the same tensors: the README turns the
peak into a per-image figure for sizing GPUs, stated as that estimate.

Usage:

```bash
python -m benchmarks.bench_recipe_512            # both families, about 5-10 minutes on 2 cores
python -m benchmarks.bench_recipe_512 --families center_offset
```

Writes `benchmarks/results/bench_recipe_512.json`.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
from pathlib import Path

import transformers

from benchmarks.machine_info import machine_info, run_measuring_peak_memory
from semipose.data.dataset_folder import prepare_dataset_folder

REPO = Path(__file__).resolve().parents[1]
FIXTURE = REPO / "tests" / "fixtures" / "coco"
RESULTS = REPO / "benchmarks" / "results" / "bench_recipe_512.json"
FAMILIES = ("center_offset", "associative_embedding")
STEPS = 4
RECIPE_FLAGS = [  # the README's "Reproducing" command, on 2 + 2 images a step and a 4-step schedule
    "--dataset_config", "ratio_50", "--ssl_mode", "semi", "--backbone", "hrnet_w32", "--input_size", "512",
    "--heatmap_sigma", "2", "--labeled_augmentation", "higherhrnet", "--per_device_train_batch_size", "2",
    "--learning_rate", "1.5e-3", "--warmup_steps", "1", "--burn_in_steps", "2", "--max_steps", str(STEPS),
    "--save_strategy", "steps", "--save_steps", "2", "--eval_strategy", "no", "--logging_steps", "1",
    "--report_to", "none", "--dataloader_num_workers", "0", "--use_cpu", "--seed", "0",
]


def run_main_job(family: str, dataset: Path, output_dir: Path, cache: Path, extra: list[str]) -> dict:
    """One main-job process under `/usr/bin/time -v`: its train runtime, steps and peak resident memory."""
    command = [sys.executable, str(REPO / "examples" / "run_semi_pose.py"), "--dataset_dir", str(dataset),
               "--model_family", family, "--output_dir", str(output_dir), "--datasets_cache_dir", str(cache),
               *RECIPE_FLAGS, *extra]
    process, peak_mb = run_measuring_peak_memory(command, cwd=REPO)
    if process.returncode != 0:
        raise RuntimeError(f"{family} {' '.join(extra) or 'from scratch'} failed:\n{process.stderr[-4000:]}")
    runtime = float(re.findall(r"'train_runtime': '?([0-9.]+)", process.stdout + process.stderr)[-1])
    final = json.loads((output_dir / "final_metrics.json").read_text())
    history = json.loads((output_dir / f"checkpoint-{STEPS}" / "trainer_state.json").read_text())["log_history"]
    return {"train_runtime_seconds": round(runtime, 1), "peak_resident_gb": round(peak_mb / 1024, 2),
            "losses_by_step": {entry["step"]: entry["loss"] for entry in history if "loss" in entry},
            "final_metrics": {name: round(value, 4) for name, value in final["metrics"].items()
                              if isinstance(value, (int, float))}}


def measure_family(family: str, dataset: Path, workdir: Path) -> dict:
    """Run 1 (from scratch) and run 2 (resumed from checkpoint-2) of `family`, with seconds per step."""
    fresh = run_main_job(family, dataset, workdir / family, workdir / "cache", [])
    checkpoints = sorted(path.name for path in (workdir / family).glob("checkpoint-*"))
    resumed_dir = workdir / f"{family}_resumed"
    resumed = run_main_job(family, dataset, resumed_dir, workdir / "cache",
                           ["--resume_from_checkpoint", str(workdir / family / "checkpoint-2")])
    fresh["seconds_per_step"] = round(fresh["train_runtime_seconds"] / STEPS, 2)
    resumed["semi_seconds_per_step"] = round(resumed["train_runtime_seconds"] / (STEPS - 2), 2)
    after_resume = [step for step in fresh["losses_by_step"] if step > 2]
    worst = max(abs(resumed["losses_by_step"][step] - fresh["losses_by_step"][step]) for step in after_resume)
    print(f"{family}: {fresh['seconds_per_step']} s/step from scratch, {resumed['semi_seconds_per_step']} s per "
          f"semi step resumed, peak {max(fresh['peak_resident_gb'], resumed['peak_resident_gb'])} GB, "
          f"checkpoints {checkpoints}, losses of steps {after_resume} resumed vs uninterrupted differ by {worst:.2e}")
    return {"family": family, "from_scratch": fresh, "resumed_from_checkpoint_2": resumed,
            "checkpoints": checkpoints, "resumed_minus_uninterrupted_loss_max_abs": worst}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", nargs="+", choices=FAMILIES, default=list(FAMILIES))
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    report = {"benchmark": "bench_recipe_512", "machine": machine_info(transformers), "steps": STEPS,
              "images_per_step": {"labeled": 2, "unlabeled": 2}, "main_job_flags": RECIPE_FLAGS, "results": []}
    with tempfile.TemporaryDirectory() as folder:
        workdir = Path(folder)
        json_file = str(FIXTURE / "test_coco.json")
        dataset = prepare_dataset_folder(json_file, FIXTURE, json_file, FIXTURE, workdir / "fixture", ratios=(50,))
        for family in args.families:
            report["results"].append(measure_family(family, dataset, workdir))
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
