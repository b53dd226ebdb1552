"""What every benchmark JSON records about the machine it ran on (timings mean little without it), and the
peak memory of a benchmark's child process."""

from __future__ import annotations

import os
import platform
import re
import subprocess
from collections.abc import Sequence
from types import ModuleType

import torch


def machine_info(*libraries: ModuleType) -> dict:
    """Platform, cores, torch threads, the load left by other jobs, and the versions of `libraries`."""
    info = {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "load_average_1min_at_start": round(os.getloadavg()[0], 2),
        "python": platform.python_version(),
        "torch": torch.__version__,
    }
    info.update({library.__name__: library.__version__ for library in libraries})
    return info


def run_measuring_peak_memory(command: Sequence[str], **run_kwargs) -> tuple[subprocess.CompletedProcess, float]:
    """Run `command` (text output captured) under GNU `/usr/bin/time -v`; the process and its peak resident
    memory in MB (the kernel's maximum RSS of the command's process, its own children not included)."""
    process = subprocess.run(["/usr/bin/time", "-v", *map(str, command)], capture_output=True, text=True,
                             **run_kwargs)
    peak = re.search(r"Maximum resident set size \(kbytes\): (\d+)", process.stderr)
    return process, (int(peak.group(1)) / 1024 if peak else float("nan"))
