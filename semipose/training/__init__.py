"""Semi-supervised training: the Trainer, its arguments, the EMA teacher, strong views and pseudo labels."""

from .arguments import SemiPoseTrainingArguments
from .trainer import NonFiniteTrainingError, SemiPoseTrainer

__all__ = ["NonFiniteTrainingError", "SemiPoseTrainer", "SemiPoseTrainingArguments"]
