"""How a training process uses its CPU: torch threads, bf16 autocast where the CPU has it, channels_last.

`accelerate launch` sets ``OMP_NUM_THREADS=1`` when it is unset, so a CPU job it starts trains on one
thread however many cores it has; ``torch_threads="auto"`` gives each process on the machine an even
share of the cores its data loader's worker processes leave (``LOCAL_WORLD_SIZE`` processes, at least one
thread each): on 2 cores with 2 workers, 2 torch threads made the main job's steps slower than one
(supervised 3.8 against 4.8 steps/s, semi 2.95 against 3.07), since oversubscribed OpenMP threads wait
on each other while the workers run. bf16 autocast pays only where the
CPU computes bf16 natively (AVX512-BF16 or AMX); elsewhere it is emulated and slower than fp32, so
``precision="auto"`` picks bf16 there and fp32 everywhere else (other devices included: pass ``--bf16``).
Autocast wraps only the networks' forwards (the Trainer's mixed precision); the losses, the optimizer,
the EMA and every weight stay fp32.

Example:

```python
>>> resolve_torch_threads("3")
3
>>> resolve_precision("fp32", on_cpu=True)
('fp32', 'asked for')
>>> resolve_precision("auto", on_cpu=False)
('fp32', 'auto: not a CPU run; pass --bf16 for mixed precision on an accelerator')

```
"""

from __future__ import annotations

import os
from functools import cache

import torch

PRECISIONS = ("auto", "fp32", "bf16")
NATIVE_BF16_CPU_FLAGS = ("amx_bf16", "avx512_bf16")
"""`/proc/cpuinfo` flags of the instructions oneDNN runs bf16 convolutions and matmuls on."""


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity, which containers and `taskset` narrow)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def local_processes() -> int:
    """Training processes on this machine (`LOCAL_WORLD_SIZE`, set by `accelerate launch` and torchrun)."""
    return max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))


def resolve_torch_threads(setting: str, loader_workers: int = 0) -> int:
    """'auto': the usable cores less each process's `loader_workers`, shared evenly by this machine's
    training processes (at least 1); else a positive integer."""
    if setting == "auto":
        return max(1, usable_cores() // local_processes() - loader_workers)
    threads = int(setting) if setting.isdigit() else 0
    if threads < 1:
        raise ValueError(f"--torch_threads must be 'auto' or a positive integer, got {setting!r}.")
    return threads


@cache
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags from `/proc/cpuinfo` (empty where there is none, e.g. macOS)."""
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def native_cpu_bf16() -> str | None:
    """The CPU flag that computes bf16 natively ('amx_bf16' or 'avx512_bf16'), or None."""
    if torch.backends.cpu.get_cpu_capability() != "AVX512":  # torch's own kernels around oneDNN's
        return None
    return next((flag for flag in NATIVE_BF16_CPU_FLAGS if flag in cpu_flags()), None)


def resolve_precision(setting: str, on_cpu: bool) -> tuple[str, str]:
    """('fp32' or 'bf16', why) for `--precision` `setting` ('auto', 'fp32' or 'bf16')."""
    if setting not in PRECISIONS:
        raise ValueError(f"--precision must be one of {PRECISIONS}, got {setting!r}.")
    if setting != "auto":
        return setting, "asked for"
    if not on_cpu:
        return "fp32", "auto: not a CPU run; pass --bf16 for mixed precision on an accelerator"
    flag = native_cpu_bf16()
    if flag is None:
        return "fp32", "auto: this CPU has no native bf16 (avx512_bf16 / amx_bf16)"
    return "bf16", f"auto: the CPU has {flag}"
