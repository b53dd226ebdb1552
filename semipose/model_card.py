"""The README.md model card saved beside a trained model: what it is, how it was trained, how well it does.

Written with `huggingface_hub.ModelCard`, so the YAML header (library, tags, metrics) is what the Hub
reads, and the same card goes up with `push_to_hub`.

Example:

```python
>>> import tempfile
>>> from semipose.modeling import CenterOffsetConfig
>>> card = write_model_card(tempfile.mkdtemp(), CenterOffsetConfig(), {
...     "ssl_mode": "semi", "dataset_config": "ratio_5", "final_model": "teacher", "metrics": {"eval_AP": 0.41}})
>>> card.name, ModelCard.load(card).data.library_name
('README.md', 'semipose')

```
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from huggingface_hub import ModelCard, ModelCardData

FAMILY_DESCRIPTIONS = {
    "semipose_associative_embedding": "bottom-up: keypoint heatmaps + associative-embedding tags (HigherHRNet-style)",
    "semipose_center_offset": "single-stage: keypoint heatmaps + person-center heatmap + center-to-keypoint "
    "offsets (DEKR-style)",
}


def model_card(config, summary: Mapping[str, Any]) -> ModelCard:
    """A card for a model of `config` trained as `summary` says (ssl_mode, dataset, dataset_config,
    final_model, metrics)."""
    metrics = {name.removeprefix("eval_"): value for name, value in summary.get("metrics", {}).items()}
    card_data = ModelCardData(
        library_name="semipose",
        license="apache-2.0",
        pipeline_tag="keypoint-detection",
        tags=["pose-estimation", "semi-supervised", config.model_type, config.skeleton],
    )
    metric_lines = "\n".join(f"| {name} | {value:.4f} |" for name, value in sorted(metrics.items())
                             if isinstance(value, (int, float)))
    content = f"""---
{card_data.to_yaml()}
---

# {config.model_type.removeprefix("semipose_").replace("_", " ").title()} pose estimator ({config.skeleton})

Multi-person 2D human pose estimation without a person detector, trained with
the `semipose` library.

- **Model family**: {FAMILY_DESCRIPTIONS.get(config.model_type, config.model_type)}
- **Backbone**: timm `{config.backbone}`, output stride {config.output_stride}
- **Skeleton**: {config.skeleton} ({config.num_keypoints} keypoints)
- **Training data**: {summary.get("dataset", "unknown")}, config `{summary.get("dataset_config", "unknown")}`
  (the config name gives the labeled percentage)
- **Semi-supervised mode**: {summary.get("ssl_mode", "unknown")}; saved network: {summary.get("final_model", "student")}

## Validation metrics (OKS)

| metric | value |
|---|---|
{metric_lines}

## Use

```python
import semipose  # registers the model classes
from PIL import Image
from transformers import AutoImageProcessor, AutoModelForPoseEstimation

model = AutoModelForPoseEstimation.from_pretrained("PATH_OR_HUB_ID")
processor = AutoImageProcessor.from_pretrained("PATH_OR_HUB_ID")
image = Image.open("people.jpg").convert("RGB")
outputs = model(**processor([image], return_tensors="pt"))
people = processor.post_process_pose_estimation(model.decode(outputs), target_sizes=[(image.height, image.width)])
```

Without semipose installed, pass `trust_remote_code=True` to both `from_pretrained` calls.

## Intended use and limits

For research on multi-person pose estimation. The numbers above hold for the validation split
named here; a model trained on synthetic figures does not transfer to photographs. Pose estimates
must not be used to identify people or to make decisions about them.
"""
    return ModelCard(content)


def write_model_card(output_dir: str | Path, config, summary: Mapping[str, Any]) -> Path:
    """Save the card as `output_dir/README.md`."""
    path = Path(output_dir) / "README.md"
    model_card(config, summary).save(path)
    return path
