"""Configuration of the bottom-up associative-embedding model (HigherHRNet-style)."""

from .configuration_pose import PoseConfig


class AssociativeEmbeddingConfig(PoseConfig):
    r"""
    This is the configuration class to store the configuration of an
    [`AssociativeEmbeddingForPoseEstimation`]: a timm backbone + neck predicting K keypoint heatmaps and K
    associative-embedding tags, grouped into people at decoding time. Fields shared with the other
    family (backbone, neck, skeleton, heatmap loss, decoding) are documented on `PoseConfig`.

    Args:
        tag_pull_loss_weight (`float`, *optional*, defaults to 1e-2):
            weight of the pull term (tags of one person close to their mean).
        tag_push_loss_weight (`float`, *optional*, defaults to 1e-2):
            weight of the push term (mean tags of different people apart). At 1e-3 both, the tags of a
            5%-label teacher sat 0.25 apart (median) against a tag threshold of 1, so grouping merged
            people. At 1e-2 the 100%-label ceiling of the main job's setting (1500 steps) is 33.5 AP over
            seeds 0 and 1 (seed 0: 32.1 against 21.7 at 1e-3; `benchmarks/results/bench_ae_learner_*.md`).
        detection_threshold (`float`, *optional*, defaults to 0.1):
            heatmap peaks below this are not decoded.
        tag_threshold (`float`, *optional*, defaults to 1.0):
            largest tag distance at which a keypoint joins a person.
        fill_missing (`bool`, *optional*, defaults to `True`):
            fill keypoints a person lacks with the heatmap maximum nearest its tag.
        pseudo_person_threshold (`float`, *optional*, defaults to 0.3):
            person score from which a teacher's decoded person is taught as a pseudo label (the training
            arguments' `pseudo_person_threshold` overrides it). Scores are means of the K grouped keypoint
            scores; on the main job's validation split .3 keeps precision .69 at recall .47
            (`benchmarks/results/diagnose_pseudo_people.md`).

    Example:

    ```python
    >>> from semipose.modeling import AssociativeEmbeddingConfig, AssociativeEmbeddingForPoseEstimation
    >>> config = AssociativeEmbeddingConfig(backbone="regnetx_002", neck_channels=32, skeleton="crowdpose")
    >>> model = AssociativeEmbeddingForPoseEstimation(config)
    >>> config.num_keypoints, config.model_type
    (14, 'semipose_associative_embedding')

    ```
    """

    model_type = "semipose_associative_embedding"

    tag_pull_loss_weight: float = 1e-2
    tag_push_loss_weight: float = 1e-2
    detection_threshold: float = 0.1
    tag_threshold: float = 1.0
    fill_missing: bool = True
    pseudo_person_threshold: float = 0.3


__all__ = ["AssociativeEmbeddingConfig"]
