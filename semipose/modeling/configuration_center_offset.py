"""Configuration of the single-stage center + offset model (DEKR-style)."""

from .configuration_pose import PoseConfig


class CenterOffsetConfig(PoseConfig):
    r"""
    This is the configuration class to store the configuration of a [`CenterOffsetForPoseEstimation`]:
    a timm backbone + neck predicting K keypoint heatmaps, a person-center heatmap and 2K center-to-keypoint
    offset maps. Fields shared with the other family (backbone, neck, skeleton, heatmap loss, decoding)
    are documented on `PoseConfig`.

    Args:
        center_loss_weight (`float`, *optional*, defaults to 1.0):
            weight of the center heatmap MSE.
        offset_loss_weight (`float`, *optional*, defaults to 0.03):
            weight of the smooth-L1 offset loss (weighted by inverse person size), as in DEKR.
        background_weight (`float`, *optional*, defaults to 0.1):
            weight of background heatmap pixels relative to pixels near a keypoint or center.
        center_threshold (`float`, *optional*, defaults to 0.1):
            center peaks below this are not decoded.
        pose_nms_threshold (`float`, *optional*, defaults to 0.5):
            a decoded person is dropped when at least this fraction of its keypoints coincide with those
            of a better-scored person (pose NMS).
        pseudo_person_threshold (`float`, *optional*, defaults to 0.2):
            person score from which a teacher's decoded person is taught as a pseudo label (the training
            arguments' `pseudo_person_threshold` overrides it). Scores are center score times mean keypoint
            score, so they run low: .2 kept precision .76 at recall .53 in `benchmarks/bench_ssl.py`.

    Example:

    ```python
    >>> from semipose.modeling import CenterOffsetConfig, CenterOffsetForPoseEstimation
    >>> config = CenterOffsetConfig(backbone="regnetx_002", neck_channels=32, output_stride=2)
    >>> model = CenterOffsetForPoseEstimation(config)
    >>> config.num_keypoints, config.model_type
    (17, 'semipose_center_offset')

    ```
    """

    model_type = "semipose_center_offset"

    center_loss_weight: float = 1.0
    offset_loss_weight: float = 0.03
    background_weight: float = 0.1
    center_threshold: float = 0.1
    pose_nms_threshold: float = 0.5
    pseudo_person_threshold: float = 0.2


__all__ = ["CenterOffsetConfig"]
