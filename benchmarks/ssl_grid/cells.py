"""The runs of a grid: one `Cell` per (family, labels, mode, augmentation, seed), and each one's command.

Every cell is one run of the main job with the same steps, batch size, learning rate and schedule;
only the mode, the labeled split, the labeled augmentation and the seed differ. Besides its final
metrics a run leaves what the diagnostics read (see `runner`):

- the Trainer's log history (`trainer_state.json` of its last checkpoint): the supervised and the
  unsupervised loss terms every `steps / 20` steps, and the evaluations;
- consistency and semi runs evaluate student and teacher at the end of the burn-in and then every
  `(steps - burn-in) / 3` steps (4 evaluations: teacher vs student AP over time, pseudo-label
  precision and recall), supervised runs only at the end;
- semi runs save their teacher at the end of the burn-in, at the end of the ramp-up and at the end
  (weights only), for the pseudo-label curves and the figure.

Example:

```python
>>> cells = grid(("center_offset",), ("ratio_5",), [0])
>>> [cell.variant for cell in cells]
['consistency', 'semi', 'supervised (light)', 'supervised (strong)', 'supervised (light)']
>>> schedule(1000).snapshot_steps, schedule(1000).eval_steps
((400, 500, 1000), 200)

```
"""

from __future__ import annotations

import itertools
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from semipose.modeling import MODEL_FAMILIES
from semipose.training.recipe import parse_arguments

REPO = Path(__file__).resolve().parents[2]
MAIN_JOB = REPO / "examples" / "run_semi_pose.py"

LABEL_PERCENT = {"ratio_1": 1, "ratio_5": 5, "ratio_10": 10, "full": 100}
PSEUDO_PERSON_THRESHOLD = {
    family: config_class().pseudo_person_threshold for family, (config_class, _) in MODEL_FAMILIES.items()
}
"""The teacher's person-score threshold per family: each model config's default (the main job's too), chosen
from pseudo-label precision/recall curves (see the family's config docstring)."""
PSEUDO_KEYPOINT_THRESHOLD = 0.3
LOG_POINTS = 20
EVALUATIONS_AFTER_BURN_IN = 3
MAX_SAVES = 20
GRID_NUMERICS = ("--torch_threads", "1", "--precision", "fp32")
"""One thread per run (runs go side by side) and fp32, whatever the main job's defaults: the stored runs are
comparable. `extra_args` come last, so `--main_job_args '--precision bf16'` overrides (and keys the store)."""


@dataclass(frozen=True)
class Cell:
    """One training run of the grid."""

    family: str
    dataset_config: str
    mode: str
    augmentation: str
    seed: int

    @classmethod
    def from_run(cls, run: dict) -> Cell:
        """The cell a run record was trained for."""
        return cls(run["family"], run["dataset_config"], run["mode"], run["augmentation"], run["seed"])

    @property
    def name(self) -> str:
        return f"{self.family}-{self.dataset_config}-{self.mode}-{self.augmentation}-seed{self.seed}"

    @property
    def variant(self) -> str:
        """Mode plus, for supervised runs, the augmentation they were trained with."""
        return f"supervised ({self.augmentation})" if self.mode == "supervised" else self.mode


def grid(families, configs, seeds, ceiling_seeds=None) -> list[Cell]:
    """Every mode at every ratio, both supervised augmentations, plus the 100% ceiling (light) at `ceiling_seeds`
    (default: `seeds`; the paired differences need every seed, the ceiling is a reference point)."""
    cells = []
    for family, seed in itertools.product(families, seeds):
        for config in configs:
            cells += [Cell(family, config, "supervised", augmentation, seed) for augmentation in ("light", "strong")]
            cells += [Cell(family, config, mode, "light", seed) for mode in ("consistency", "semi")]
    for family, seed in itertools.product(families, seeds if ceiling_seeds is None else ceiling_seeds):
        cells.append(Cell(family, "full", "supervised", "light", seed))
    # Slowest first, so the last runs to finish are short ones and the workers stay busy.
    return sorted(cells, key=lambda cell: cell.mode == "supervised")


def pilot_cells(families, seeds) -> list[Cell]:
    """What decides whether a regime is label-bound: supervised on 5% (both augmentations) and on 100%."""
    return [
        Cell(family, config, "supervised", augmentation, seed)
        for family, seed in itertools.product(families, seeds)
        for config, augmentation in (("ratio_5", "light"), ("ratio_5", "strong"), ("full", "light"))
    ]


@dataclass(frozen=True)
class Schedule:
    """When a run of `steps` steps logs, evaluates and saves (see the module docstring)."""

    steps: int
    burn_in_steps: int
    snapshot_steps: tuple[int, int, int]
    save_steps: int
    eval_steps: int

    @property
    def logging_steps(self) -> int:
        return max(1, self.steps // LOG_POINTS)


def schedule(steps: int, extra_args: Sequence[str] = ()) -> Schedule:
    """The schedule of the main job's burn-in and ramp-up (as `extra_args` may set them) for `steps` steps."""
    _, _, training_args = parse_arguments(["--max_steps", str(steps), *extra_args])
    burn_in = training_args.resolved_burn_in_steps(steps)
    ramp_end = burn_in + round(training_args.ramp_up_ratio * steps)
    if not 0 < burn_in < ramp_end <= steps:
        raise ValueError(f"--steps {steps}: expected 0 < burn-in ({burn_in}) < ramp-up end ({ramp_end}) <= steps.")
    save_steps = math.gcd(burn_in, ramp_end, steps)
    eval_steps = math.gcd(burn_in, (steps - burn_in) // EVALUATIONS_AFTER_BURN_IN)
    if steps // save_steps > MAX_SAVES or (steps - burn_in) // max(1, eval_steps) > 2 * EVALUATIONS_AFTER_BURN_IN:
        raise ValueError(
            f"--steps {steps}: burn-in end {burn_in} and ramp-up end {ramp_end} need a checkpoint every "
            f"{save_steps} steps and an evaluation every {eval_steps}; choose a multiple of 10."
        )
    return Schedule(steps, burn_in, (burn_in, ramp_end, steps), save_steps, eval_steps)


def main_job_command(cell: Cell, plan: Schedule, data_flags: list[str], extra_args: list[str],
                     cache_dir: str, output_dir: Path) -> list[str]:
    """The main job's command line for `cell`, one run of `plan.steps` steps."""
    command = [
        sys.executable, str(MAIN_JOB),
        "--model_family", cell.family, "--ssl_mode", cell.mode, "--labeled_augmentation", cell.augmentation,
        "--dataset_config", cell.dataset_config, "--seed", str(cell.seed), "--max_steps", str(plan.steps),
        "--pseudo_person_threshold", str(PSEUDO_PERSON_THRESHOLD[cell.family]),
        "--pseudo_keypoint_threshold", str(PSEUDO_KEYPOINT_THRESHOLD),
        *data_flags, "--cache_dir", cache_dir, "--output_dir", str(output_dir),
        "--report_to", "none", "--logging_steps", str(plan.logging_steps), "--dataloader_num_workers", "1",
        "--disable_tqdm", "true", "--save_strategy", "steps", "--save_only_model", "true",
        *GRID_NUMERICS,
        "--save_steps", str(plan.save_steps if cell.mode == "semi" else plan.steps), "--save_total_limit", "1000",
    ]
    if cell.mode == "supervised":
        command += ["--eval_strategy", "no"]
    else:
        command += ["--eval_strategy", "steps", "--eval_steps", str(plan.eval_steps),
                    "--eval_delay", str(plan.burn_in_steps)]
    return command + extra_args
