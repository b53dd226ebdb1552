"""Torch threads per process, the precision `auto` picks (by the CPU's flags) and how it reaches the Trainer, the
main job's fast defaults, and a bf16 semi step whose losses, EMA and weights stay fp32."""

import pytest
import torch
from tiny_training import make_trainer

from semipose.training import SemiPoseTrainingArguments, hardware
from semipose.training.recipe import parse_arguments


def test_auto_threads_share_the_usable_cores_among_the_local_processes(monkeypatch):
    monkeypatch.setattr(hardware, "usable_cores", lambda: 8)
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "3")
    assert hardware.resolve_torch_threads("auto") == 2
    monkeypatch.delenv("LOCAL_WORLD_SIZE")
    assert hardware.resolve_torch_threads("auto") == 8
    assert hardware.resolve_torch_threads("auto", loader_workers=2) == 6  # the loader's workers keep their cores
    monkeypatch.setattr(hardware, "usable_cores", lambda: 2)
    assert hardware.resolve_torch_threads("auto", loader_workers=2) == 1  # the main job here: never below one
    assert hardware.resolve_torch_threads("5", loader_workers=2) == 5


@pytest.mark.parametrize("setting", ["0", "-1", "two", ""])
def test_bad_thread_counts_name_the_option(setting):
    with pytest.raises(ValueError, match="--torch_threads must be 'auto' or a positive integer"):
        hardware.resolve_torch_threads(setting)


@pytest.mark.parametrize(("capability", "flags", "expected"), [
    ("AVX512", {"avx512f", "avx512_bf16"}, ("bf16", "auto: the CPU has avx512_bf16")),
    ("AVX512", {"avx512f", "amx_bf16", "avx512_bf16"}, ("bf16", "auto: the CPU has amx_bf16")),
    ("AVX512", {"avx512f"}, ("fp32", "auto: this CPU has no native bf16 (avx512_bf16 / amx_bf16)")),
    ("AVX2", {"avx2", "avx512_bf16"}, ("fp32", "auto: this CPU has no native bf16 (avx512_bf16 / amx_bf16)")),
])
def test_auto_precision_is_bf16_only_where_the_cpu_computes_it(monkeypatch, capability, flags, expected):
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: capability)
    monkeypatch.setattr(hardware, "cpu_flags", lambda: frozenset(flags))
    assert hardware.resolve_precision("auto", on_cpu=True) == expected


def test_precision_reaches_the_trainers_bf16_flag(tmp_path, monkeypatch):
    monkeypatch.setattr(hardware, "native_cpu_bf16", lambda: "avx512_bf16")
    common = dict(output_dir=str(tmp_path), report_to="none", use_cpu=True)
    assert SemiPoseTrainingArguments(**common).bf16 is False  # the library follows transformers: fp32
    auto = SemiPoseTrainingArguments(**common, precision="auto")
    assert (auto.bf16, auto.resolved_precision) == (True, "bf16")
    assert auto.precision_reason == "auto: the CPU has avx512_bf16"
    assert SemiPoseTrainingArguments(**common, bf16=True).precision_reason == "--bf16"  # the Trainer's flag wins
    with pytest.raises(ValueError, match="--torch_threads must be"):
        SemiPoseTrainingArguments(**common, torch_threads="many")


def test_the_main_job_defaults_to_the_fast_settings(tmp_path):
    _, _, training_args = parse_arguments(["--output_dir", str(tmp_path)])
    assert (training_args.torch_threads, training_args.precision, training_args.channels_last) == ("auto", "auto", True)
    _, _, pinned = parse_arguments(["--output_dir", str(tmp_path), "--precision", "fp32", "--torch_threads", "1",
                                    "--channels_last", "false"])
    assert (pinned.bf16, pinned.torch_threads, pinned.channels_last) == (False, "1", False)


def test_a_bf16_semi_step_keeps_losses_ema_and_weights_in_fp32(tiny_dataset_dir, tmp_path):
    threads = torch.get_num_threads()
    trainer = make_trainer(tiny_dataset_dir, tmp_path, precision="bf16", channels_last=True, torch_threads="1",
                           max_steps=3, burn_in_steps=1)
    try:
        trainer.train()
    finally:
        torch.set_num_threads(threads)
    assert trainer.teacher is not None and trainer.args.bf16
    tensors = [*trainer.model.parameters(), *trainer.teacher.parameters(), *trainer.teacher.buffers()]
    assert {tensor.dtype for tensor in tensors if tensor.is_floating_point()} == {torch.float32}
    kernels = [weight for weight in trainer.teacher.parameters() if weight.dim() == 4]
    assert kernels and all(weight.is_contiguous(memory_format=torch.channels_last) for weight in kernels)
    logged = [entry for entry in trainer.state.log_history if "train/consistency_loss" in entry]
    assert logged and all(torch.isfinite(torch.tensor(entry["loss"])) for entry in logged)
