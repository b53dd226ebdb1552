"""Data pipeline speed: images/s of the labeled and unlabeled transforms through a torch DataLoader.

Each measurement is one function returning result records; `MEASUREMENTS` lists them, so a new
measurement (e.g. synthetic generation speed) is one more function added there. Results go to
`benchmarks/results/bench_data.json` with the machine and library versions.

The main process runs with `--torch-threads` (default 1, as in DataLoader workers): with more,
torch's intra-op threads fight for the cores and 0-worker throughput collapses (measured 34 vs
270 images/s on a busy 2-core machine). Each number is the median of `--repeats` runs.

Rows come from the real COCO fixture (tests/fixtures/coco: four val2017 images of 333-429 x
500-640 pixels, 12 people), read by `semipose.data.coco_format` and repeated to `--rows` rows.

Usage:

```bash
python -m benchmarks.bench_data                # full run, about a minute on 2 cores
python -m benchmarks.bench_data --images 64    # quick check
```
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import datasets
import PIL
import torch
import torchvision
from torch.utils.data import DataLoader

from benchmarks.machine_info import machine_info
from semipose.data.coco_format import pose_features, read_coco_keypoints
from semipose.data.collator import PoseDataCollator
from semipose.data.synthetic import SyntheticConfig, generate_scene
from semipose.data.transforms import (
    AugmentationConfig,
    LabeledTransform,
    UnlabeledTransform,
)

REPO = Path(__file__).resolve().parents[1]
FIXTURE = REPO / "tests" / "fixtures" / "coco"
RESULTS = REPO / "benchmarks" / "results" / "bench_data.json"
INPUT_SIZES = (256, 128)
NUM_WORKERS = (0, 2)


def fixture_dataset(num_rows: int) -> datasets.Dataset:
    """The COCO fixture's rows, repeated to `num_rows`, as a `datasets.Dataset` (images by path)."""
    rows = read_coco_keypoints(FIXTURE / "test_coco.json", FIXTURE, show_progress=False)
    repeated = [rows[index % len(rows)] for index in range(num_rows)]
    return datasets.Dataset.from_list(repeated, features=pose_features(17))


def images_per_second(
    dataset: datasets.Dataset, num_workers: int, batch_size: int, num_images: int
) -> float:
    """Images/s of iterating `dataset` in shuffled batches; the first batch is not timed."""
    loader = DataLoader(
        dataset, batch_size=batch_size, shuffle=True, num_workers=num_workers,
        collate_fn=PoseDataCollator(), drop_last=True,
    )
    num_batches = max(num_images // batch_size, 1)
    if len(loader) < num_batches + 1:
        raise ValueError(
            f"need {num_batches + 1} batches of {batch_size}, the dataset gives {len(loader)}."
        )
    batches = iter(loader)
    next(batches)
    start = time.perf_counter()
    for _ in range(num_batches):
        next(batches)
    return num_batches * batch_size / (time.perf_counter() - start)


def measure_pipelines(args: argparse.Namespace) -> list[dict]:
    """Labeled (strong augmentation) and unlabeled (weak view) pipelines, per size and workers."""
    dataset = fixture_dataset(args.rows)
    transforms: dict[str, Callable[[int], Callable]] = {
        "labeled": lambda size: LabeledTransform(size, AugmentationConfig.strong()),
        "unlabeled": lambda size: UnlabeledTransform(size, AugmentationConfig.light()),
    }
    records = []
    for name, make_transform in transforms.items():
        for size in INPUT_SIZES:
            for workers in NUM_WORKERS:
                transformed = dataset.with_transform(make_transform(size))
                runs = [
                    images_per_second(transformed, workers, args.batch_size, args.images)
                    for _ in range(args.repeats)
                ]
                speed = statistics.median(runs)
                records.append({
                    "measurement": f"{name}_pipeline", "input_size": size, "num_workers": workers,
                    "batch_size": args.batch_size, "images_per_second": round(speed, 1),
                    "runs": [round(run, 1) for run in runs],
                })
                print(f"{name:>9}  input {size:3d}  workers {workers}  {speed:7.1f} images/s")
    return records


def measure_synthetic_generation(args: argparse.Namespace) -> list[dict]:
    """Synthetic scenes rendered per second (one process, images + annotations, no PNG encoding)."""
    records = []
    for size, people in ((128, (1, 4)), (128, (8, 8))):
        config = SyntheticConfig(image_size=size, people=people)
        runs = []
        for repeat in range(args.repeats):
            start = time.perf_counter()
            for index in range(args.images):
                generate_scene(config, "train", repeat * args.images + index)
            runs.append(args.images / (time.perf_counter() - start))
        speed = statistics.median(runs)
        records.append({
            "measurement": "synthetic_generation", "image_size": size, "people": list(people),
            "images_per_second": round(speed, 1), "runs": [round(run, 1) for run in runs],
        })
        print(f"synthetic  size {size}  people {people}  {speed:7.1f} images/s")
    return records


MEASUREMENTS: list[Callable[[argparse.Namespace], list[dict]]] = [measure_pipelines, measure_synthetic_generation]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=256, help="timed images per measurement")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--rows", type=int, default=512, help="dataset rows (the fixture repeated)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per measurement (median kept)")
    parser.add_argument("--torch-threads", type=int, default=1, help="main-process torch threads")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    torch.set_num_threads(args.torch_threads)
    report = {
        "benchmark": "bench_data",
        "source": f"tests/fixtures/coco (4 COCO val2017 images) repeated to {args.rows} rows",
        "machine": machine_info(torchvision, datasets, PIL),
        "results": [record for measure in MEASUREMENTS for record in measure(args)],
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
