"""semipose models: two pose families on timm backbones, their codecs and the image processor.

Importing this package registers both families with the transformers Auto classes (see
`register_auto_classes`), so `AutoModelForPoseEstimation.from_pretrained(folder)` loads a saved
checkpoint, and `save_pretrained` copies the defining files into the checkpoint, so it also loads
with `trust_remote_code=True` where semipose is not installed.

Example:

```python
>>> import tempfile
>>> from transformers import AutoModelForPoseEstimation
>>> from semipose.modeling import CenterOffsetConfig, CenterOffsetForPoseEstimation, PoseImageProcessor
>>> model = CenterOffsetForPoseEstimation(CenterOffsetConfig(backbone="regnetx_002", neck_channels=32))
>>> with tempfile.TemporaryDirectory() as checkpoint:
...     model.save_pretrained(checkpoint)
...     _ = PoseImageProcessor().save_pretrained(checkpoint)
...     loaded = AutoModelForPoseEstimation.from_pretrained(checkpoint)
>>> type(loaded).__name__
'CenterOffsetForPoseEstimation'

```
"""

from transformers import AutoConfig, AutoImageProcessor, AutoModel, AutoModelForPoseEstimation

from .backbone import PoseBackbone
from .codec_common import DecodedPoses
from .configuration_associative_embedding import AssociativeEmbeddingConfig
from .configuration_center_offset import CenterOffsetConfig
from .configuration_pose import PoseConfig
from .image_processing_pose import PoseImageProcessor, check_decoding_settings
from .modeling_associative_embedding import AssociativeEmbeddingForPoseEstimation, AssociativeEmbeddingOutput
from .modeling_center_offset import CenterOffsetForPoseEstimation, CenterOffsetOutput
from .modeling_pose_common import PosePreTrainedModel, select_images
from .pipeline_pose_estimation import PoseEstimationPipeline, register_pipeline, to_coco_results

MODEL_FAMILIES = {
    "associative_embedding": (AssociativeEmbeddingConfig, AssociativeEmbeddingForPoseEstimation),
    "center_offset": (CenterOffsetConfig, CenterOffsetForPoseEstimation),
}
"""Family name -> (config class, model class), the names the main job's `--model_family` takes."""


def register_auto_classes() -> None:
    """Register configs, models and the image processor with the transformers Auto classes, and the
    `pose-estimation` pipeline with its registry (idempotent).

    Also marks each class with `register_for_auto_class`, so `save_pretrained` copies its code into the
    checkpoint and writes the `auto_map` (and `custom_pipelines`) that `trust_remote_code=True` loading reads.
    """
    for config_class, model_class in MODEL_FAMILIES.values():
        AutoConfig.register(config_class.model_type, config_class, exist_ok=True)
        AutoModel.register(config_class, model_class, exist_ok=True)
        AutoModelForPoseEstimation.register(config_class, model_class, exist_ok=True)
        AutoImageProcessor.register(
            config_class, image_processor_classes={"torchvision": PoseImageProcessor}, exist_ok=True
        )
        config_class.register_for_auto_class("AutoConfig")
        model_class.register_for_auto_class("AutoModelForPoseEstimation")
    PoseImageProcessor.register_for_auto_class("AutoImageProcessor")
    register_pipeline()


register_auto_classes()

__all__ = [
    "AssociativeEmbeddingConfig",
    "AssociativeEmbeddingForPoseEstimation",
    "AssociativeEmbeddingOutput",
    "CenterOffsetConfig",
    "CenterOffsetForPoseEstimation",
    "CenterOffsetOutput",
    "DecodedPoses",
    "MODEL_FAMILIES",
    "PoseBackbone",
    "PoseConfig",
    "PoseEstimationPipeline",
    "PoseImageProcessor",
    "PosePreTrainedModel",
    "check_decoding_settings",
    "register_auto_classes",
    "select_images",
    "to_coco_results",
]
