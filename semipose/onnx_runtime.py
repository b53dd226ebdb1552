"""Run an exported semipose network with ONNX Runtime: the same people as the torch model, without its weights.

`OnnxRuntimePoseModel` stands where the torch model stands in `PoseEstimator` (and in `predict_people`):
the ONNX file (see `semipose.onnx_export`) computes the raw maps on the CPU; flip test, decoding with
the config's settings and the mapping to image pixels are the torch model's own code, taken from a
weightless copy of the model on the `meta` device. A checkpoint folder for this backend needs
`config.json`, `preprocessor_config.json` and the ONNX file, not `model.safetensors`.

Illustration (not run: needs a trained model folder with an exported `model.onnx`):

```python
from semipose.inference import PoseEstimator

estimator = PoseEstimator.from_pretrained("outputs/run_semi_pose", backend="onnxruntime")  # reads model.onnx
people = estimator("photo.jpg")
```
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from transformers import AutoConfig, AutoImageProcessor
from transformers.utils import cached_file

from .inference import check_local_checkpoint_name
from .modeling import MODEL_FAMILIES
from .onnx_export import INPUT_NAME, METADATA_PREFIX, metadata_for

ONNX_FILE = "model.onnx"
"""Where `semipose export` and this backend look for the ONNX file of a checkpoint folder by default."""
MODEL_CLASSES = {config_class.model_type: model_class for config_class, model_class in MODEL_FAMILIES.values()}


def import_onnxruntime():
    """The `onnxruntime` module, or ImportError saying how to install it."""
    try:
        import onnxruntime
    except ImportError as error:
        raise ImportError("The onnxruntime backend needs ONNX Runtime: pip install 'semipose[deploy]'.") from error
    return onnxruntime


class OnnxRuntimePoseModel(torch.nn.Module):
    """A semipose model whose network runs in ONNX Runtime (CPU, float32); flip test and decoding stay in torch.

    Args:
        onnx_file: a file written by `semipose export` / `export_onnx`.
        config: the checkpoint's config; the file's metadata must name the same model type, skeleton,
            keypoint count and output stride.
        num_threads: ONNX Runtime intra-op threads; None keeps its default (one per physical core). They do
            not spin-wait after a run (ONNX Runtime's default), which would take the cores from the decoder.

    Raises:
        FileNotFoundError: no such file.
        ValueError: not an ONNX file, not exported by semipose, or exported from another model (the
            message names the file, what it holds and what the config expects).
    """

    def __init__(self, onnx_file: str | Path, config, *, num_threads: int | None = None):
        super().__init__()
        self.onnx_file = Path(onnx_file)
        self.config = config
        self.session = _open_session(self.onnx_file, num_threads)
        check_metadata(self.onnx_file, self.session.get_modelmeta().custom_metadata_map, config)
        self.map_names = [output.name for output in self.session.get_outputs()]
        with torch.device("meta"):
            torch_model = MODEL_CLASSES[config.model_type](config).eval()
        torch_model.predict_maps = self.predict_maps
        # Kept out of the module tree: its parameters are weightless meta tensors, never moved or listed.
        object.__setattr__(self, "_torch_model", torch_model)

    @property
    def device(self) -> torch.device:
        """Where inputs go: ONNX Runtime reads CPU arrays."""
        return torch.device("cpu")

    @property
    def dtype(self) -> torch.dtype:
        return torch.float32

    def predict_maps(self, pixel_values: torch.Tensor) -> dict[str, torch.Tensor]:
        """The network on `[B, 3, H, W]` pixel values: the named raw maps, each `[B, C, h, w]` (CPU tensors)."""
        inputs = {INPUT_NAME: pixel_values.detach().to("cpu", torch.float32).contiguous().numpy()}
        return {name: torch.from_numpy(maps) for name, maps in zip(self.map_names, self.session.run(None, inputs))}

    def forward(self, pixel_values: torch.Tensor, flip_test: bool = False, return_dict: bool = True):
        """The torch model's forward (input checks, flip test, output class) around `predict_maps`."""
        return self._torch_model(pixel_values, flip_test=flip_test, return_dict=return_dict)

    def decode(self, outputs):
        """The family's decoder with the config's settings (`DecodedPoses` in input pixels)."""
        return self._torch_model.decode(outputs)


def _open_session(onnx_file: Path, num_threads: int | None):
    onnxruntime = import_onnxruntime()
    from onnxruntime.capi.onnxruntime_pybind11_state import Fail, InvalidArgument, InvalidGraph, InvalidProtobuf

    if not onnx_file.is_file():
        raise FileNotFoundError(f"{onnx_file}: no such ONNX file; write one with `semipose export`.")
    options = onnxruntime.SessionOptions()
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")  # torch decodes next, on these cores
    if num_threads is not None:
        options.intra_op_num_threads = num_threads
    try:
        return onnxruntime.InferenceSession(str(onnx_file), options, providers=["CPUExecutionProvider"])
    except (Fail, InvalidArgument, InvalidGraph, InvalidProtobuf) as error:
        raise ValueError(f"{onnx_file}: not an ONNX model ONNX Runtime can load ({error}).") from error


def check_metadata(onnx_file: Path, metadata: dict[str, str], config) -> None:
    """ValueError unless the file's semipose metadata equals what `config` expects."""
    expected = metadata_for(config)
    found = {key: value for key, value in metadata.items() if key.startswith(METADATA_PREFIX)}
    if not found:
        raise ValueError(
            f"{onnx_file}: not exported by semipose (no {METADATA_PREFIX}* metadata), expected a network with "
            f"{_describe(expected)}; export the checkpoint with `semipose export`."
        )
    if found != expected:
        raise ValueError(
            f"{onnx_file}: exported from another model ({_differences(found, expected)}); export this checkpoint "
            "with `semipose export`."
        )


def _differences(found: dict[str, str], expected: dict[str, str]) -> str:
    """The fields that differ: the scalar ones (model type, skeleton, ...), else the first per-keypoint list."""
    keys = [key for key in sorted({*found, *expected}) if found.get(key) != expected.get(key)]
    scalar = [key for key in keys if not expected.get(key, "[").startswith(("[", "null"))]
    return "; ".join(
        f"{key.removeprefix(METADATA_PREFIX)}={found.get(key, 'none'):.80} in the file, "
        f"{expected.get(key, 'none'):.80} in the checkpoint" for key in scalar or keys[:1]
    )


def _describe(metadata: dict[str, str]) -> str:
    """The model type, skeleton and map geometry of a metadata dict (its per-keypoint lists left out)."""
    return ", ".join(f"{key.removeprefix(METADATA_PREFIX)}={value}" for key, value in sorted(metadata.items())
                     if not value.startswith(("[", "null")))


def load_onnx_checkpoint(
    model_name_or_path: str | Path, onnx_file: str | Path | None = None, *, num_threads: int | None = None,
    **hub_kwargs,
) -> tuple[OnnxRuntimePoseModel, Any]:
    """The ONNX Runtime model and the image processor of a checkpoint folder or Hub id.

    Args:
        model_name_or_path: holds `config.json` and `preprocessor_config.json` (and, by default, the ONNX file).
        onnx_file: the exported network; default `model.onnx` of the checkpoint.
        num_threads: ONNX Runtime intra-op threads (see `OnnxRuntimePoseModel`).
        hub_kwargs: `revision`, `token`, `cache_dir`, `local_files_only`, ... for the Hub.
    """
    name = str(model_name_or_path)
    check_local_checkpoint_name(name)
    config = AutoConfig.from_pretrained(name, **hub_kwargs)
    if config.model_type not in MODEL_CLASSES:
        raise ValueError(f"{name}: a {config.model_type!r} model, expected one of {sorted(MODEL_CLASSES)}.")
    if onnx_file is None:
        onnx_file = cached_file(name, ONNX_FILE, _raise_exceptions_for_missing_entries=False, **hub_kwargs)
        if onnx_file is None:
            raise FileNotFoundError(
                f"{name}: no {ONNX_FILE}; write it with `semipose export --model {name} --output "
                f"{Path(name) / ONNX_FILE}` or pass the file's path."
            )
    model = OnnxRuntimePoseModel(onnx_file, config, num_threads=num_threads)
    return model, AutoImageProcessor.from_pretrained(name, **hub_kwargs)
