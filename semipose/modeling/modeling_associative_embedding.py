"""Bottom-up associative-embedding pose model (HigherHRNet-style) on a timm backbone.

One head on the fused stride-s map predicts K keypoint heatmaps and K tags (tag dimension 1); the
loss and the grouping decoder live in `codec_associative_embedding`.

Shape letters: B images, M people, K keypoints, (H, W) input pixels, (h, w) = (H, W) / output_stride.
"""

from dataclasses import dataclass

import torch
from transformers.utils import ModelOutput

from .codec_associative_embedding import associative_embedding_loss, decode_associative_embedding
from .codec_common import DecodedPoses
from .configuration_associative_embedding import AssociativeEmbeddingConfig
from .modeling_pose_common import PosePreTrainedModel, flip_maps, prediction_head


@dataclass
class AssociativeEmbeddingOutput(ModelOutput):
    """Output of [`AssociativeEmbeddingForPoseEstimation`].

    Args:
        loss (`torch.Tensor` of shape `()`, *optional*, returned when `keypoints` is given):
            `heatmap_loss_weight * heatmap_loss + tag_pull_loss_weight * tag_pull_loss
            + tag_push_loss_weight * tag_push_loss`.
        heatmap_loss (`torch.Tensor` of shape `()`, *optional*): heatmap MSE outside `ignore_mask`.
        tag_pull_loss (`torch.Tensor` of shape `()`, *optional*): spread of each person's tags.
        tag_push_loss (`torch.Tensor` of shape `()`, *optional*): closeness of different people's tags.
        heatmaps (`torch.Tensor` of shape `(B, K, h, w)`): raw keypoint heatmaps (targets peak at 1).
        tags (`torch.Tensor` of shape `(B, K, h, w)`): associative-embedding tag of keypoint k at each pixel.
    """

    loss: torch.Tensor | None = None
    heatmap_loss: torch.Tensor | None = None
    tag_pull_loss: torch.Tensor | None = None
    tag_push_loss: torch.Tensor | None = None
    heatmaps: torch.Tensor | None = None
    tags: torch.Tensor | None = None


class AssociativeEmbeddingForPoseEstimation(PosePreTrainedModel):
    """Multi-person pose estimation by keypoint heatmaps + associative-embedding tags (bottom-up).

    With `flip_test=True` the mirrored images are run too; heatmaps and tags of both passes are
    flipped back (channels swapped by `config.flip_index`) and averaged. Averaging keeps the tags
    one-dimensional, which is what the decoder groups; the tags of one person stay consistent
    because each pass's tags are consistent within that person.

    Example:

    ```python
    >>> import torch
    >>> from semipose.modeling import AssociativeEmbeddingConfig, AssociativeEmbeddingForPoseEstimation
    >>> model = AssociativeEmbeddingForPoseEstimation(
    ...     AssociativeEmbeddingConfig(backbone="regnetx_002", neck_channels=32)).eval()
    >>> outputs = model(torch.randn(1, 3, 128, 96), flip_test=True)
    >>> outputs.heatmaps.shape, model.decode(outputs).keypoints.shape[-2:]
    (torch.Size([1, 17, 32, 24]), torch.Size([17, 2]))

    ```
    """

    config_class = AssociativeEmbeddingConfig
    output_class = AssociativeEmbeddingOutput

    def __init__(self, config: AssociativeEmbeddingConfig, *, pretrained_backbone: bool | str = False):
        super().__init__(config, pretrained_backbone=pretrained_backbone)
        self.head = prediction_head(config.neck_channels, 2 * config.num_keypoints)
        self.post_init()

    def read_heads(self, features: torch.Tensor) -> dict[str, torch.Tensor]:
        """`[B, C, h, w]` features -> heatmaps and tags, each `[B, K, h, w]`."""
        heatmaps, tags = self.head(features).chunk(2, dim=1)
        return {"heatmaps": heatmaps, "tags": tags}

    def unflip(self, maps: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Mirror heatmaps and tags back and swap left/right channels."""
        return {name: flip_maps(value, self.config.flip_index) for name, value in maps.items()}

    def loss_terms(
        self, outputs: AssociativeEmbeddingOutput, keypoints: torch.Tensor, ignore_mask: torch.Tensor | None
    ) -> dict[str, torch.Tensor]:
        """Heatmap MSE and tag pull/push losses (`codec_associative_embedding.associative_embedding_loss`)."""
        return associative_embedding_loss(
            outputs.heatmaps,
            outputs.tags,
            keypoints,
            ignore_mask,
            stride=self.config.output_stride,
            sigma=self.config.heatmap_sigma,
        )

    def loss_weights(self) -> dict[str, float]:
        return {
            "heatmap_loss": self.config.heatmap_loss_weight,
            "tag_pull_loss": self.config.tag_pull_loss_weight,
            "tag_push_loss": self.config.tag_push_loss_weight,
        }

    def decode(self, outputs: AssociativeEmbeddingOutput) -> DecodedPoses:
        """Group heatmap peaks into people by tag, with the config's decoding settings.

        Returns:
            `DecodedPoses`: keypoints `[B, M, K, 2]` in input pixels, scores, mask.
        """
        config = self.config
        return decode_associative_embedding(
            outputs.heatmaps,
            outputs.tags,
            stride=config.output_stride,
            grouping_order=config.grouping_order,
            max_people=config.max_people,
            nms_kernel=config.nms_kernel,
            detection_threshold=config.detection_threshold,
            tag_threshold=config.tag_threshold,
            refine=config.refine,
            fill_missing=config.fill_missing,
        )


__all__ = ["AssociativeEmbeddingForPoseEstimation", "AssociativeEmbeddingOutput"]
