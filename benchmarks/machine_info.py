"""What every benchmark JSON records about the machine it ran on: timings mean little without it."""

from __future__ import annotations

import os
import platform
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
