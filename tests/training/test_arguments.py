"""The unsupervised weight schedule w(step): 0 through the burn-in, a linear ramp, then 1 (values by hand); the
main job's command line; the defaults that keep runs quiet (no pinned memory on the CPU, no DDP search for unused
parameters)."""

import importlib.util
import runpy
from fractions import Fraction
from pathlib import Path

import PIL.Image
import pytest
import torch

from semipose.modeling import MODEL_FAMILIES
from semipose.skeletons import get_skeleton
from semipose.training import SemiPoseTrainingArguments
from semipose.training.recipe import parse_arguments

REPO = Path(__file__).resolve().parents[2]


def _arguments(tmp_path, **overrides) -> SemiPoseTrainingArguments:
    return SemiPoseTrainingArguments(output_dir=str(tmp_path), report_to="none", use_cpu=True, **overrides)


def test_burn_in_ramp_and_plateau_from_the_ratios(tmp_path):
    # 1000 steps: burn-in 0.4 * 1000 = 400 steps, ramp 0.1 * 1000 = 100 steps, w = (step - 400) / 100.
    args = _arguments(tmp_path, max_steps=1000, burn_in_ratio=0.4, ramp_up_ratio=0.1)
    assert args.resolved_burn_in_steps(1000) == 400
    expected = {0: 0.0, 399: 0.0, 400: 0.0, 401: 0.01, 425: 0.25, 450: 0.5, 499: 0.99, 500: 1.0, 501: 1.0, 1000: 1.0}
    actual = {step: args.unsupervised_weight_factor(step) for step in expected}
    assert actual == pytest.approx(expected, abs=1e-12)


def test_burn_in_steps_override_the_ratio_and_max_steps_comes_from_the_run(tmp_path):
    # burn_in_steps=10 wins over the ratio; the ramp is 0.2 of the run's 50 steps = 10 steps.
    args = _arguments(tmp_path, max_steps=1000, burn_in_steps=10, burn_in_ratio=0.4, ramp_up_ratio=0.2)
    assert args.resolved_burn_in_steps(50) == 10
    expected = {9: 0.0, 10: 0.0, 13: 0.3, 15: 0.5, 20: 1.0, 49: 1.0}
    actual = {step: args.unsupervised_weight_factor(step, max_steps=50) for step in expected}
    assert actual == pytest.approx(expected, abs=1e-12)


def test_no_ramp_switches_the_unsupervised_terms_on_at_the_end_of_burn_in(tmp_path):
    args = _arguments(tmp_path, max_steps=100, burn_in_ratio=0.25, ramp_up_ratio=0.0)
    assert [args.unsupervised_weight_factor(step) for step in (0, 24, 25, 26)] == [0.0, 0.0, 1.0, 1.0]


# ------------------------------------------------------------------------ the main job's command line


@pytest.mark.parametrize(("option", "value"), [("--ssl_mode", "semisupervised"), ("--model_family", "foo"),
                                               ("--synthetic_skeleton", "mpii")])
def test_the_main_job_rejects_unknown_names_while_parsing(tmp_path, capsys, option, value):
    with pytest.raises(SystemExit) as exit_:
        parse_arguments([option, value, "--output_dir", str(tmp_path)])
    assert exit_.value.code == 2 and f"argument {option}" in capsys.readouterr().err


def test_the_main_job_reports_a_bad_dataset_folder_in_one_line(tmp_path, monkeypatch, capsys):
    script = REPO / "examples" / "run_semi_pose.py"
    monkeypatch.setattr("sys.argv", [str(script), "--dataset_dir", str(tmp_path / "nowhere"),
                                     "--output_dir", str(tmp_path / "run"), "--report_to", "none", "--use_cpu"])
    with pytest.raises(SystemExit) as exit_:
        runpy.run_path(str(script), run_name="__main__")
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "Traceback" not in err
    assert err.endswith(f"run_semi_pose.py: error: Dataset folder {tmp_path / 'nowhere'} does not exist.\n")


def test_no_pinned_memory_without_an_accelerator_and_no_unused_parameter_search(tmp_path):
    args = _arguments(tmp_path)  # use_cpu
    assert (args.dataloader_pin_memory, args.ddp_find_unused_parameters) == (False, False)
    on_this_machine = SemiPoseTrainingArguments(output_dir=str(tmp_path), report_to="none")
    assert on_this_machine.dataloader_pin_memory == torch.accelerator.is_available()


@pytest.mark.parametrize("family", sorted(MODEL_FAMILIES))
@pytest.mark.parametrize("people", [0, 2])
def test_every_parameter_gets_a_gradient_so_ddp_need_not_look_for_unused_ones(family, people):
    """`ddp_find_unused_parameters=False` needs every parameter in every step's graph, with or without people."""
    config_class, model_class = MODEL_FAMILIES[family]
    model = model_class(config_class(backbone="regnetx_002", neck_channels=16, skeleton="crowdpose"))
    keypoints = torch.zeros(2, people, 14, 3)
    if people:
        keypoints[:, :, :, 0] = torch.linspace(8, 56, 14)
        keypoints[:, :, :, 1] = torch.linspace(4, 60, 14)
        keypoints[:, 1, :, 0] += 5
        keypoints[..., 2] = 2
    model(pixel_values=torch.randn(2, 3, 64, 64), keypoints=keypoints).loss.backward()
    assert [name for name, parameter in model.named_parameters() if parameter.grad is None] == []


def test_main_job_flip_test_is_on_for_real_photos_and_off_for_synthetic_data(tmp_path):
    from semipose.training.recipe import build_model, parse_arguments

    real = ["--output_dir", str(tmp_path), "--dataset_dir", str(tmp_path), "--backbone", "regnetx_002"]
    assert parse_arguments(real)[0].flip_test is True
    assert parse_arguments([*real, "--flip_test", "false"])[0].flip_test is False
    model_args = parse_arguments(["--output_dir", str(tmp_path), "--backbone", "regnetx_002"])[0]
    assert model_args.flip_test is False
    assert build_model(model_args, get_skeleton("coco"), seed=0).config.flip_test is False


def test_max_individuals_sets_how_many_people_the_model_decodes_and_refuses_crowded_labels(tiny_dataset_dir, tmp_path):
    from semipose.training.recipe import build_model, build_training_data

    model_args, data_args, training_args = parse_arguments([
        "--output_dir", str(tmp_path), "--dataset_dir", str(tiny_dataset_dir), "--dataset_config", "ratio_10",
        "--ssl_mode", "supervised", "--datasets_cache_dir", str(tmp_path / "cache"), "--max_individuals", "2"])
    data = build_training_data(model_args, data_args, training_args)  # the tiny set draws 1 or 2 people an image
    assert build_model(model_args, data.skeleton, seed=0).config.max_people == 2
    model_args.max_individuals = 1
    with pytest.raises(ValueError, match=r"--max_individuals 1: image \d+ \(.*\.png\) of .*tiny \(labeled\) has 2 "
                                         r"labeled individuals; expected at most 1"):
        build_training_data(model_args, data_args, training_args)
    model_args.max_individuals = 0
    with pytest.raises(ValueError, match="--max_individuals must be at least 1, got 0"):
        build_model(model_args, data.skeleton, seed=0)


@pytest.mark.skipif(importlib.util.find_spec("av") is None, reason="video frames are read with PyAV (semipose[video])")
def test_the_main_job_takes_videos_as_unlabeled_data_and_extracts_their_frames_once(tiny_dataset_dir, tmp_path):
    from semipose.training.recipe import build_training_data
    from semipose.video_io import VideoWriter

    video = tmp_path / "clips" / "clip.mp4"
    video.parent.mkdir()
    with VideoWriter(video, 32, 24, Fraction(10)) as writer:
        for value in range(9):
            writer.write(PIL.Image.new("RGB", (32, 24), (value * 25, 0, 0)))
    PIL.Image.new("RGB", (20, 10)).save(tmp_path / "clips" / "still.png")
    arguments = ["--output_dir", str(tmp_path), "--dataset_dir", str(tiny_dataset_dir), "--dataset_config", "ratio_10",
                 "--datasets_cache_dir", str(tmp_path / "hf"), "--cache_dir", str(tmp_path / "cache"),
                 "--extra_unlabeled", str(tmp_path / "clips"), "--video_every", "4"]
    model_args, data_args, training_args = parse_arguments(arguments)
    plain = build_training_data(*parse_arguments(arguments[:-4]))
    data = build_training_data(model_args, data_args, training_args)
    extra = len(data.train_dataset.unlabeled) - len(plain.train_dataset.unlabeled)
    assert extra == 1 + 3  # the still, and frames 0, 4 and 8 of the clip
    frames = sorted((tmp_path / "cache" / "extra_unlabeled").glob("*/video_frames/clips/clip/*.png"))
    assert [frame.name for frame in frames] == ["000000.png", "000004.png", "000008.png"]
    written = frames[0].stat().st_mtime_ns
    build_training_data(model_args, data_args, training_args)
    assert frames[0].stat().st_mtime_ns == written  # extracted once
