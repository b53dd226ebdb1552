"""semipose: semi-supervised training of detector-free multi-person pose estimators.

Importing it registers both model families and the image processor with the transformers Auto
classes, so `AutoModelForPoseEstimation.from_pretrained(folder)` loads a semipose checkpoint.
"""

from .modeling import register_auto_classes

__version__ = "0.1.0"

register_auto_classes()
