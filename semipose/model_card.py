"""The README.md model card saved beside a trained model: what it is, how it was trained, how well it does.

Written with `huggingface_hub.ModelCard`, so the YAML header is what the Hub reads (library, tags, the
training dataset, and a `model-index` with the saved network's OKS AP), and the same card goes up with
`push_to_hub`. Its usage snippet is the transformers `pose-estimation` pipeline. `pipeline_tag` is the
Hub's task for pose models, `keypoint-detection`, which `import semipose` registers as a transformers
pipeline too (the same `PoseEstimationPipeline`), so the tag names a pipeline that runs the model.

Example:

```python
>>> import tempfile
>>> from semipose.modeling import CenterOffsetConfig
>>> card = write_model_card(tempfile.mkdtemp(), CenterOffsetConfig(), {"ssl_mode": "semi", "dataset": "/data/coco_semi",
...     "dataset_config": "ratio_5", "final_model": "teacher", "metrics": {"eval_AP": 0.41}})
>>> card.name, ModelCard.load(card).data.datasets
('README.md', ['coco_semi'])

```
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from .evaluation import COCO_STAT_NAMES, CROWDPOSE_STAT_NAMES, PIXEL_STAT_NAMES
from .modeling.pipeline_pose_estimation import HUB_TASK

FAMILY_DESCRIPTIONS = {
    "semipose_associative_embedding": "bottom-up: keypoint heatmaps + associative-embedding tags (HigherHRNet-style)",
    "semipose_center_offset": "single-stage: keypoint heatmaps + person-center heatmap + center-to-keypoint "
    "offsets (DEKR-style)",
}
CARD_STAT_NAMES = tuple(dict.fromkeys(COCO_STAT_NAMES + CROWDPOSE_STAT_NAMES + PIXEL_STAT_NAMES))
"""The metrics a card reports (of the student, and with a `teacher_` prefix of the teacher); run bookkeeping
such as `epoch`, `step` or `num_images` is left out."""
VALIDATION_SPLIT = "validation"


def model_card(config, summary: Mapping[str, Any]) -> ModelCard:
    """A card for a model of `config` trained as `summary` says (ssl_mode, dataset, dataset_config,
    final_model, metrics as `Trainer.evaluate` returns them)."""
    metrics = card_metrics(summary.get("metrics", {}))
    dataset = dataset_id(summary.get("dataset", "unknown"))
    dataset_config = summary.get("dataset_config", "unknown")
    final_model = summary.get("final_model", "student")
    title = _title(config)
    card_data = card_metadata(config, summary)
    metric_lines = _metric_rows(metrics)
    content = f"""---
{card_data.to_yaml()}
---

# {title}

Multi-instance 2D pose estimation (people, animals, any keypoint set) without a detector, trained with
the `semipose` library.

- **Model family**: {FAMILY_DESCRIPTIONS.get(config.model_type, config.model_type)}
- **Backbone**: timm `{config.backbone}`, output stride {config.output_stride}
- **Skeleton**: {config.skeleton} ({config.num_keypoints} keypoints: {", ".join(config.keypoint_names or [])})
- **Training data**: {dataset}, config `{dataset_config}`
  (the config name gives the labeled percentage)
- **Semi-supervised mode**: {summary.get("ssl_mode", "unknown")}; saved network: {final_model}

## Validation metrics (OKS AP with the skeleton's sigmas; pixel error and PCK of matched instances)

Student and teacher are scored separately; the saved network was fixed before training (`--final_model`),
not chosen by these numbers.

| metric | student | teacher |
|---|---|---|
{metric_lines}

## Use

```python
import semipose  # registers the "pose-estimation" task
from transformers import pipeline

estimator = pipeline("pose-estimation", model="PATH_OR_HUB_ID")
people = estimator("people.jpg")  # per person: score, keypoints [K, 2] as (x, y) pixels, keypoint_scores [K]
```

Without semipose installed, the checkpoint brings its own code:
`pipeline(model="PATH_OR_HUB_ID", trust_remote_code=True)`.

## Intended use and limits

For research on multi-instance pose estimation. The numbers above hold for the validation split
named here; a model trained on synthetic figures does not transfer to photographs. Pose estimates
must not be used to identify people or to make decisions about them.
"""
    return ModelCard(content)


def _metric_rows(metrics: Mapping[str, float]) -> str:
    """One table row per OKS stat: the student's value and the teacher's (a dash where there is none)."""
    def cell(name: str) -> str:
        return "-" if name not in metrics else f"{metrics[name]:.4f}"

    names = sorted({name.removeprefix("teacher_") for name in metrics})
    return "\n".join(f"| {name} | {cell(name)} | {cell('teacher_' + name)} |" for name in names)


def card_metadata(config, summary: Mapping[str, Any]) -> ModelCardData:
    """The YAML header: library, license, tags, the training dataset and a `model-index` with the OKS stats of
    the saved network (`summary["final_model"]`) on the dataset's validation split (the defined ones: COCO's
    -1 says a split has no person of that size)."""
    dataset = dataset_id(summary.get("dataset", "unknown"))
    teacher_saved = summary.get("final_model", "student") == "teacher"
    saved = {name.removeprefix("teacher_"): value for name, value in card_metrics(summary.get("metrics", {})).items()
             if name.startswith("teacher_") == teacher_saved and value >= 0}
    results = [
        EvalResult(task_type=HUB_TASK, task_name="Multi-person pose estimation", dataset_type=dataset,
                   dataset_name=dataset, dataset_config=summary.get("dataset_config"), dataset_split=VALIDATION_SPLIT,
                   metric_type=name, metric_name=f"OKS {name}", metric_value=value)
        for name, value in saved.items()
    ]
    return ModelCardData(
        library_name="semipose", license="apache-2.0", pipeline_tag=HUB_TASK,
        tags=["pose-estimation", "semi-supervised", config.model_type, config.skeleton],
        datasets=[dataset], model_name=_title(config), eval_results=results or None,
    )


def _title(config) -> str:
    family = config.model_type.removeprefix("semipose_").replace("_", " ").title()
    return f"{family} pose estimator ({config.skeleton})"


def card_metrics(metrics: Mapping[str, Any]) -> dict[str, float]:
    """The OKS and pixel stats of `Trainer.evaluate` metrics (`eval_` prefix dropped), student's and `teacher_`
    ones."""
    found = {}
    for name, value in metrics.items():
        name = name.removeprefix("eval_")
        if name.removeprefix("teacher_") in CARD_STAT_NAMES and isinstance(value, (int, float)):
            found[name] = float(value)
    return found


def dataset_id(dataset: str) -> str:
    """The training data as the Hub's `datasets:` names it: a local folder by its name (never a path of the
    machine that trained), anything else as given (a Hub dataset id)."""
    path = Path(dataset).expanduser()
    if path.is_absolute() or path.exists() or dataset.startswith("."):
        return path.resolve().name
    return dataset


def write_model_card(output_dir: str | Path, config, summary: Mapping[str, Any]) -> Path:
    """Save the card as `output_dir/README.md`."""
    path = Path(output_dir) / "README.md"
    model_card(config, summary).save(path)
    return path
