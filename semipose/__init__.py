"""semipose: semi-supervised training of detector-free multi-person pose estimators.

Importing it registers both model families and the image processor with the transformers Auto
classes, so `AutoModelForPoseEstimation.from_pretrained(folder)` loads a semipose checkpoint.

The `semipose` command is the one exception: it leaves torch and transformers unimported until a
subcommand needs them (each imports, and so registers, what it uses), so that `semipose --help`,
`--version` and argument errors answer at once.
"""

import sys
from pathlib import Path

__version__ = "0.1.0"

COMMAND_FILES = ("semipose", "semipose.exe")
"""The console script (pyproject.toml `[project.scripts]`) as the installer writes it, on POSIX and Windows."""


def _started_as_the_command() -> bool:
    arguments = getattr(sys, "argv", None) or [""]
    return Path(arguments[0]).name in COMMAND_FILES


if not _started_as_the_command():
    from .modeling import register_auto_classes

    register_auto_classes()
