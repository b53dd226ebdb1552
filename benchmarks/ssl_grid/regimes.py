"""The data regimes of the benchmark: which built-in synthetic data every run of a grid trains on.

A regime is a set of the main job's `synthetic_*` flags (so the runs build their dataset exactly as
`examples/run_semi_pose.py` does) plus the benchmark's defaults for it:

- `default`: the main job's own data (64 px, CrowdPose-14, 1-2 large people, no clutter), the
  setting of the first benchmark (`benchmarks/results/bench_ssl.*`);
- `crowd`: CrowdPose-14 scenes of 2-6 people of 35-80% of the image height, which overlap and
  occlude each other, light clutter, 2000 training images (5% = 100 labeled) and 300 validation
  images spread over CrowdPose's easy / medium / hard crowd-index bins. 96 px is the smallest
  resolution the pilot (`bench_ssl --regime crowd --pilot`) tries, and both families learn it. Its
  default 1500 steps are those of the committed grid (`benchmarks/results/bench_ssl_crowd.*`): fewer
  would fit a 100-minute grid, but the pilots (`bench_ssl_crowd_pilot*.md`) show the gap between 5%
  and 100% labels shrinking with the schedule, so a shorter grid would measure a regime that labels
  barely help.

Example:

```python
>>> regime = REGIMES["crowd"]
>>> regime.main_job_flags(128)[:4]
['--synthetic_image_size', '128', '--input_size', '128']

```
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from semipose.data.dataset_folder import load_pose_dataset, read_dataset_skeleton
from semipose.evaluation import ground_truth_from_rows
from semipose.evaluation.protocols import crowd_index_bins
from semipose.training.recipe import DataArguments, parse_arguments, resolve_dataset_folder

CROWD_BINS = ("easy", "medium", "hard")
"""CrowdPose's crowd-index bins, in the order of `crowd_index_bins` and of AP(E), AP(M), AP(H)."""


@dataclass(frozen=True)
class Regime:
    """One data regime of the benchmark.

    Attributes:
        name: what `--regime` calls it.
        image_size: default side of the synthetic images and of the network input, in pixels.
        data_flags: the main job's flags that make the data (besides its size).
        steps: default optimizer steps per run.
        output_stem: file stem of its results under `benchmarks/results/`.
    """

    name: str
    image_size: int
    data_flags: tuple[str, ...]
    steps: int
    output_stem: str

    def main_job_flags(self, image_size: int | None = None) -> list[str]:
        """The main job's flags for this regime's data at `image_size` (default: the regime's)."""
        size = str(image_size or self.image_size)
        return ["--synthetic_image_size", size, "--input_size", size, *self.data_flags]


REGIMES = {
    "default": Regime("default", DataArguments.synthetic_image_size, (), 1500, "bench_ssl"),
    "crowd": Regime(
        "crowd", 96,
        ("--synthetic_min_people", "2", "--synthetic_max_people", "6", "--synthetic_min_height", "0.35",
         "--synthetic_max_height", "0.8", "--synthetic_clutter", "0.2", "--synthetic_max_yaw", "60",
         "--synthetic_num_train", "2000", "--synthetic_num_val", "300"),
        1500, "bench_ssl_crowd",
    ),
}


def prepare_regime_data(regime: Regime, image_size: int, cache_dir: str) -> tuple[Path, DataArguments]:
    """Render the regime's dataset once, as the main job would (before runs could race to write it).

    Returns:
        The dataset folder and the `DataArguments` the main job parses from the regime's flags.
    """
    _, data_args, training_args = parse_arguments([*regime.main_job_flags(image_size), "--cache_dir", cache_dir])
    return resolve_dataset_folder(data_args, training_args), data_args


def describe_validation(folder: Path) -> dict[str, Any]:
    """Validation images per crowd bin (from `crowdIndex`, CrowdPose's bin edges) and people per image."""
    rows = load_pose_dataset(folder, "full", "validation").remove_columns("image")
    ground_truth = ground_truth_from_rows(rows, read_dataset_skeleton(folder))
    bins = crowd_index_bins(ground_truth["images"])
    people = sum(1 for annotation in ground_truth["annotations"] if annotation["num_keypoints"] > 0)
    return {
        "images": len(ground_truth["images"]),
        "images_per_crowd_bin": {name: len(ids) for name, ids in zip(CROWD_BINS, bins)},
        "people_per_image": round(people / max(1, len(ground_truth["images"])), 3),
    }


def data_record(regime: Regime, folder: Path, data_args: DataArguments) -> dict[str, Any]:
    """What a result json records about the data: the regime, the main job's data settings, the validation."""
    settings = {name: value for name, value in asdict(data_args).items() if name.startswith("synthetic_")}
    return {"regime": regime.name, "synthetic": settings, "validation": describe_validation(folder)}
