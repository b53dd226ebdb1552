"""The teacher's pseudo people on crowded unlabeled images, early and late in training, next to the truth.

A byproduct of the grid: every semi run records its teacher's filtered people on the first hard-bin
unlabeled images at the end of the burn-in, the end of the ramp-up and the end (`teacher_readout`).
This draws, per family, the run at the fewest labels and the lowest seed: one row per image, the
ground truth first (the student never sees it: these images are unlabeled in training), then the
teacher's pseudo people at each snapshot with the number of people kept.

Illustration (not run: needs semi run records and their dataset folder):

```python
save_pseudo_people_figure(runs, dataset_folder, Path("docs/images/bench_ssl_crowd_pseudo_people.png"))
```
"""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from semipose.data.dataset_folder import load_pose_dataset, read_dataset_metadata  # noqa: E402
from semipose.skeletons import get_skeleton  # noqa: E402
from semipose.visualization import draw_people, enlarge  # noqa: E402

from .cells import LABEL_PERCENT, PSEUDO_KEYPOINT_THRESHOLD  # noqa: E402

TILE_SIZE = 224


def figure_runs(runs: list[dict]) -> list[dict]:
    """Per family, the semi run with teacher snapshots at the fewest labels and the lowest seed."""
    chosen: dict[str, dict] = {}
    for run in runs:
        if run["mode"] != "semi" or "teacher_snapshots" not in run.get("diagnostics", {}):
            continue
        rank = (LABEL_PERCENT[run["dataset_config"]], run["seed"])
        best = chosen.get(run["family"])
        if best is None or rank < (LABEL_PERCENT[best["dataset_config"]], best["seed"]):
            chosen[run["family"]] = run
    return [chosen[family] for family in sorted(chosen)]


def _drawn(image, keypoints, skeleton, threshold: float):
    """`image` enlarged to about TILE_SIZE with `keypoints` ([M, K, 3] in its own pixels) drawn."""
    large = enlarge(image.convert("RGB"), TILE_SIZE)
    factor = large.width / image.width
    points = np.asarray(keypoints, dtype=np.float64).reshape(-1, skeleton.num_keypoints, 3)
    points[..., :2] = (points[..., :2] + 0.5) * factor - 0.5  # pixel centers stay pixel centers
    return draw_people(large, points, skeleton, threshold=threshold)


def save_pseudo_people_figure(runs: list[dict], dataset_folder: Path, path: Path) -> Path | None:
    """Draw the figure of the module docstring to `path`; None (nothing written) if no run has snapshots
    (or no hard-bin unlabeled image to show them on)."""
    chosen = [run for run in figure_runs(runs) if run["diagnostics"]["teacher_snapshots"]["image_ids"]]
    if not chosen:
        return None
    skeleton = get_skeleton(read_dataset_metadata(dataset_folder)["skeleton"])
    truth = load_pose_dataset(dataset_folder, "full", "labeled")  # every training image, annotated
    index_of = {image_id: index for index, image_id in enumerate(list(truth["image_id"]))}
    rows = [(run, position, image_id) for run in chosen
            for position, image_id in enumerate(run["diagnostics"]["teacher_snapshots"]["image_ids"])]
    columns = 1 + max(len(run["diagnostics"]["teacher_snapshots"]["snapshots"]) for run in chosen)
    figure, axes = plt.subplots(len(rows), columns, figsize=(2.3 * columns, 2.5 * len(rows)), squeeze=False)
    for axis_row, (run, position, image_id) in zip(axes, rows):
        row = truth[index_of[image_id]]
        snapshots = run["diagnostics"]["teacher_snapshots"]["snapshots"]
        panels = [(f"truth: {len(row['keypoints'])} people", _drawn(row["image"], row["keypoints"], skeleton, 0.0))]
        for snapshot in snapshots:
            people = snapshot["people"][position]
            title = f"teacher, step {snapshot['step']}: {len(people['scores'])}"
            panels.append((title, _drawn(row["image"], people["keypoints"], skeleton, PSEUDO_KEYPOINT_THRESHOLD)))
        for axis, (title, picture) in zip(axis_row, panels):
            axis.imshow(picture)
            axis.set_title(title, fontsize=7)
        axis_row[0].set_ylabel(f"{run['family']}\n{LABEL_PERCENT[run['dataset_config']]}%, seed {run['seed']}",
                               fontsize=7)
    for axis in axes.flat:
        axis.set_xticks([])
        axis.set_yticks([])
    figure.suptitle("Teacher pseudo people on crowded unlabeled images (end of burn-in, end of ramp-up, end) "
                    "next to the ground truth the student never sees", fontsize=8)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=80)
    plt.close(figure)
    return path
