"""ONNX export and the onnxruntime backend: maps equal to torch's at new batch and image sizes, the same people
through `PoseEstimator` and `semipose predict`, for both families; files from another model refused by name."""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import onnx
import pytest
import torch
from test_cli import run
from tiny_checkpoint import save_tiny_checkpoint

from semipose.inference import PoseEstimator
from semipose.modeling import (
    AssociativeEmbeddingConfig,
    AssociativeEmbeddingForPoseEstimation,
    CenterOffsetConfig,
    PoseImageProcessor,
)
from semipose.onnx_runtime import OnnxRuntimePoseModel, load_onnx_checkpoint
from semipose.skeletons import get_skeleton

FAMILIES = ("associative_embedding", "center_offset")
NEW_INPUTS = [(3, 3, 64, 96), (1, 3, 160, 128)]
"""Batch and image sizes other than the tracing sample's (2 x 128 x 96)."""


def save_associative_embedding_checkpoint(folder) -> None:
    """A random AE model with strong, varied maps (heatmaps around 0.6), so decoding finds people to compare."""
    torch.manual_seed(0)
    config = AssociativeEmbeddingConfig(backbone="regnetx_002", neck_channels=16, skeleton="coco")
    model = AssociativeEmbeddingForPoseEstimation(config)
    with torch.no_grad():
        model.head[-1].weight.normal_(std=0.05)
        model.head[-1].bias[: config.num_keypoints] = 0.6
    model.save_pretrained(folder)
    processor = PoseImageProcessor(size=64, output_stride=config.output_stride, grouping_order=config.grouping_order)
    processor.save_pretrained(folder)


@pytest.fixture(scope="module")
def export_family(tmp_path_factory):
    """family -> (family, checkpoint folder with model.onnx written by `semipose export`, the command's output),
    each family exported once per module."""
    done = {}

    def export(family: str):
        if family not in done:
            folder = tmp_path_factory.mktemp(family)
            if family == "center_offset":
                save_tiny_checkpoint(folder)
            else:
                save_associative_embedding_checkpoint(folder)
            status, out, err = run_main(["export", "--model", folder, "--output", folder / "model.onnx"])
            assert status == 0, err
            done[family] = family, folder, out
        return done[family]

    return export


@pytest.fixture(params=FAMILIES)
def exported(request, export_family):
    return export_family(request.param)


@pytest.fixture
def center_offset_onnx(export_family):
    return export_family("center_offset")[1] / "model.onnx"


def run_main(arguments: list) -> tuple[int, str, str]:
    """`semipose` in-process, with its printed output (capsys is function-scoped, the export fixture is not)."""
    import contextlib
    import io

    from semipose.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            status = main([str(argument) for argument in arguments])
        except SystemExit as exit_:
            status = exit_.code
    return status, out.getvalue(), err.getvalue()


def test_export_command_reports_the_file_and_its_difference_to_torch(exported):
    family, folder, out = exported
    graph = onnx.load(folder / "model.onnx")
    metadata = {prop.key: prop.value for prop in graph.metadata_props}
    coco = get_skeleton("coco")
    assert metadata == {"semipose_model_type": f"semipose_{family}", "semipose_skeleton": "coco",
                        "semipose_num_keypoints": "17", "semipose_output_stride": "4",
                        "semipose_keypoint_names": json.dumps(list(coco.keypoint_names)),
                        "semipose_flip_index": json.dumps(list(coco.flip_index)),
                        "semipose_sigmas": json.dumps(list(coco.sigmas)),
                        "semipose_limbs": json.dumps([list(limb) for limb in coco.limbs]),
                        "semipose_grouping_order": json.dumps(list(coco.grouping_order))}
    input_dims = graph.graph.input[0].type.tensor_type.shape.dim
    assert [dim.dim_param for dim in input_dims] == ["batch", "", "height", "width"]
    difference = float(re.search(r"max \|torch - onnxruntime\| = (\S+)", out).group(1))
    assert f"-> {folder / 'model.onnx'}" in out and difference <= 1e-4


def test_onnxruntime_maps_equal_torch_maps_at_new_batch_and_image_sizes(exported):
    _, folder, _ = exported
    model = PoseEstimator.from_pretrained(folder, device="cpu").model
    runner, _ = load_onnx_checkpoint(folder)
    generator = torch.Generator().manual_seed(1)
    for shape in NEW_INPUTS:
        pixel_values = torch.randn(*shape, generator=generator)
        with torch.no_grad():
            expected = model(pixel_values, flip_test=True)
        got = runner(pixel_values, flip_test=True)
        assert type(got) is type(expected)
        for name, value in expected.items():
            assert got[name].shape == value.shape
            assert (got[name] - value).abs().max().item() <= 1e-4, name


def test_onnxruntime_backend_finds_the_same_people(exported, coco_fixture_dir):
    _, folder, _ = exported
    photos = sorted(coco_fixture_dir.glob("*.jpg"))
    for flip_test in (False, True):
        torch_people = PoseEstimator.from_pretrained(folder, device="cpu", flip_test=flip_test, batch_size=3)(photos)
        onnx_people = PoseEstimator.from_pretrained(folder, backend="onnxruntime", flip_test=flip_test,
                                                    batch_size=3)(photos)
        assert [len(people) for people in onnx_people] == [len(people) for people in torch_people]
        assert sum(map(len, torch_people)) > 4
        for expected, got in zip(torch_people, onnx_people):
            np.testing.assert_allclose([p["score"] for p in got], [p["score"] for p in expected], atol=1e-5)
            np.testing.assert_allclose(np.stack([p["keypoints"] for p in got]),
                                       np.stack([p["keypoints"] for p in expected]), atol=0.01)  # pixels


def test_predict_command_with_the_onnxruntime_backend(tmp_path, capsys, exported, coco_fixture_dir):
    _, folder, _ = exported
    photo = next(coco_fixture_dir.glob("*.jpg"))
    results = {}
    for backend in ("torch", "onnxruntime"):
        status, _, err = run(["predict", photo, "--model", folder, "--output", tmp_path / backend,
                              "--backend", backend, "--device", "cpu"], capsys)
        assert status == 0, err
        results[backend] = json.loads((tmp_path / backend / "predictions.json").read_text())
    assert len(results["onnxruntime"]) == len(results["torch"]) > 0
    for got, expected in zip(results["onnxruntime"], results["torch"]):
        np.testing.assert_allclose(got["keypoints"], expected["keypoints"], atol=0.01)  # pixels and scores


def test_onnx_file_of_another_family_or_keypoint_count_is_refused(tmp_path, center_offset_onnx):
    save_associative_embedding_checkpoint(tmp_path / "ae")
    with pytest.raises(ValueError, match=re.escape(
        f"{center_offset_onnx}: exported from another model (model_type=semipose_center_offset in the file, "
        "semipose_associative_embedding in the checkpoint); export this checkpoint")):
        PoseEstimator.from_pretrained(tmp_path / "ae", backend="onnxruntime", onnx_file=center_offset_onnx)
    crowdpose = CenterOffsetConfig(backbone="regnetx_002", neck_channels=16, skeleton="crowdpose")  # 14 keypoints
    with pytest.raises(ValueError, match=r"num_keypoints=17 in the file, 14 in the checkpoint; skeleton=coco in the "
                                         "file, crowdpose in the checkpoint"):
        OnnxRuntimePoseModel(center_offset_onnx, crowdpose)


def test_files_that_are_not_semipose_exports_say_what_was_expected(tmp_path, capsys, center_offset_onnx):
    folder = center_offset_onnx.parent
    graph = onnx.load(center_offset_onnx)
    del graph.metadata_props[:]
    onnx.save(graph, tmp_path / "plain.onnx")
    config = PoseEstimator.from_pretrained(folder, device="cpu").model.config
    with pytest.raises(ValueError, match=r"plain.onnx: not exported by semipose \(no semipose_\* metadata\), expected "
                                         "a network with model_type=semipose_center_offset, num_keypoints=17"):
        OnnxRuntimePoseModel(tmp_path / "plain.onnx", config)
    (tmp_path / "notes.onnx").write_text("not a model")
    with pytest.raises(ValueError, match="notes.onnx: not an ONNX model ONNX Runtime can load"):
        OnnxRuntimePoseModel(tmp_path / "notes.onnx", config)
    bare = tmp_path / "bare"
    shutil.copytree(folder, bare, ignore=shutil.ignore_patterns("model.onnx"))
    status, _, err = run(["predict", folder / "config.json", "--model", bare, "--output", tmp_path / "out",
                          "--backend", "onnxruntime"], capsys)
    assert status == 2 and f"{bare}: no model.onnx; write it with `semipose export --model {bare}" in err
    with pytest.raises(ValueError, match="the onnxruntime backend runs on the CPU"):
        PoseEstimator.from_pretrained(folder, backend="onnxruntime", device="cuda:0")
