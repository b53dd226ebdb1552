"""Export a semipose network to ONNX: backbone, neck and heads in the graph; flip test and decoding stay in torch.

The graph maps `pixel_values [B, 3, H, W]` (any B; H and W multiples of the backbone's coarsest stride,
as `PoseImageProcessor` pads them) to the family's raw maps, named like the fields of its output class:
`heatmaps`, `tags` (associative embedding) or `heatmaps`, `center_heatmap`, `offsets` (center + offset).
Grouping people is data-dependent (peak counts, greedy matching), so, as in the deploy paths of RTMO and
mmpose, decoding runs after the graph, in the same torch code as for the torch model
(`semipose.onnx_runtime.OnnxRuntimePoseModel`).

The file's `metadata_props` record the model type, skeleton, keypoint count and output stride, so a file
exported from another model is refused by name. Needs the extra `semipose[deploy]` (onnx, onnxruntime,
onnxscript, which `torch.onnx.export` uses).

Illustration (not run: needs a trained model folder, e.g. the main job's output):

```python
from semipose.inference import load_checkpoint
from semipose.onnx_export import export_onnx, largest_difference_to_torch

model, _ = load_checkpoint("outputs/run_semi_pose")
export_onnx(model, "outputs/run_semi_pose/model.onnx")  # the path of the written file
largest_difference_to_torch(model, "outputs/run_semi_pose/model.onnx")  # max |torch - onnxruntime|, under 1e-4
```
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

METADATA_PREFIX = "semipose_"
METADATA_FIELDS = (
    "model_type", "skeleton", "num_keypoints", "output_stride",
    "keypoint_names", "flip_index", "sigmas", "limbs", "grouping_order",
)
"""Config fields stored (keys prefixed by `METADATA_PREFIX`; lists as JSON) in an exported file's metadata_props:
the file names its skeleton whole, for runtimes that read it without the checkpoint."""
INPUT_NAME = "pixel_values"
SAMPLE_BATCH = 2
"""Batch of the tracing sample: torch.export fixes a dimension whose sample size is 1, so it must not be 1."""


class _NetworkMaps(torch.nn.Module):
    """The part of a pose model that is exported: `pixel_values` -> its raw maps, as a tuple in head order."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, pixel_values: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(self.model.predict_maps(pixel_values).values())


def sample_pixel_values(model: torch.nn.Module, height_strides: int = 4, width_strides: int = 3) -> torch.Tensor:
    """A random `[SAMPLE_BATCH, 3, H, W]` input whose H and W are the given multiples of the backbone's stride."""
    divisor = model.backbone.size_divisor
    generator = torch.Generator().manual_seed(0)
    return torch.randn(SAMPLE_BATCH, 3, height_strides * divisor, width_strides * divisor, generator=generator)


def map_names(model: torch.nn.Module) -> list[str]:
    """The names of the model's raw maps, in the order `predict_maps` returns them."""
    with torch.no_grad():
        return list(model.predict_maps(sample_pixel_values(model, 1, 1)).keys())


def export_onnx(model: torch.nn.Module, output_file: str | Path, *, opset_version: int | None = None) -> Path:
    """Write the network of a semipose model (either family) as an ONNX file with dynamic batch and image size.

    Args:
        model: a semipose pose model; it is put in eval mode.
        output_file: the `.onnx` file to write (its folder is created); the weights are stored inside it.
        opset_version: ONNX opset; None takes the exporter's default.

    Returns:
        The written path.
    """
    import onnx

    output_file = Path(output_file)
    output_file.parent.mkdir(parents=True, exist_ok=True)
    model = model.eval()
    names = map_names(model)
    dynamic = {INPUT_NAME: {0: "batch", 2: "height", 3: "width"}}
    with torch.no_grad():
        torch.onnx.export(
            _NetworkMaps(model).eval(), (sample_pixel_values(model).to(model.device),), output_file,
            input_names=[INPUT_NAME],
            output_names=names, dynamic_shapes=dynamic, opset_version=opset_version, dynamo=True,
            external_data=False, verbose=False,
        )
    graph = onnx.load(output_file)
    onnx.helper.set_model_props(graph, metadata_for(model.config))
    onnx.save(graph, output_file)
    return output_file


def metadata_for(config) -> dict[str, str]:
    """The metadata_props an exported file of a model with `config` carries."""
    values = {field: getattr(config, field) for field in METADATA_FIELDS}
    return {f"{METADATA_PREFIX}{field}": json.dumps(value) if isinstance(value, list) or value is None else str(value)
            for field, value in values.items()}


def largest_difference_to_torch(model: torch.nn.Module, onnx_file: str | Path) -> float:
    """Max |torch - onnxruntime| over all maps, on random inputs of two sizes and batch sizes (float32, CPU).

    The second size differs from the tracing sample's, so a graph that fixed the image size fails here.
    """
    from .onnx_runtime import OnnxRuntimePoseModel

    runner = OnnxRuntimePoseModel(onnx_file, model.config)
    largest = 0.0
    for pixel_values in (sample_pixel_values(model), sample_pixel_values(model, 3, 5)[:1]):
        with torch.no_grad():
            expected = model.predict_maps(pixel_values.to(model.device, model.dtype))
        got = runner.predict_maps(pixel_values)
        largest = max([largest, *((got[name] - value.cpu()).abs().max().item() for name, value in expected.items())])
    return largest
