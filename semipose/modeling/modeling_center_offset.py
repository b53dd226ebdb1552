"""Single-stage center + offset pose model (DEKR-style) on a timm backbone.

Two heads on the fused stride-s map: one predicts K keypoint heatmaps plus a person-center heatmap,
the other 2K center-to-keypoint offsets. The loss and the decoder live in `codec_center_offset`.

Shape letters: B images, M people, K keypoints, (H, W) input pixels, (h, w) = (H, W) / output_stride.
"""

from dataclasses import dataclass

import torch
from transformers.utils import ModelOutput

from .codec_center_offset import center_offset_loss, decode_center_offset
from .codec_common import DecodedPoses
from .configuration_center_offset import CenterOffsetConfig
from .modeling_pose_common import PosePreTrainedModel, flip_maps, prediction_head


@dataclass
class CenterOffsetOutput(ModelOutput):
    """Output of [`CenterOffsetForPoseEstimation`].

    Args:
        loss (`torch.Tensor` of shape `()`, *optional*, returned when `keypoints` is given):
            `heatmap_loss_weight * heatmap_loss + center_loss_weight * center_loss
            + offset_loss_weight * offset_loss`.
        heatmap_loss (`torch.Tensor` of shape `()`, *optional*): keypoint heatmap MSE, background down-weighted.
        center_loss (`torch.Tensor` of shape `()`, *optional*): center heatmap MSE, background down-weighted.
        offset_loss (`torch.Tensor` of shape `()`, *optional*): smooth-L1 offset error weighted by inverse person size.
        heatmaps (`torch.Tensor` of shape `(B, K, h, w)`): raw keypoint heatmaps (targets peak at 1).
        center_heatmap (`torch.Tensor` of shape `(B, 1, h, w)`): raw person-center heatmap.
        offsets (`torch.Tensor` of shape `(B, 2K, h, w)`): at each pixel, (dx, dy) to keypoint k in channels
            2k, 2k + 1, in heatmap pixels.
    """

    loss: torch.Tensor | None = None
    heatmap_loss: torch.Tensor | None = None
    center_loss: torch.Tensor | None = None
    offset_loss: torch.Tensor | None = None
    heatmaps: torch.Tensor | None = None
    center_heatmap: torch.Tensor | None = None
    offsets: torch.Tensor | None = None


def unflip_offsets(offsets: torch.Tensor, flip_index: list[int]) -> torch.Tensor:
    """Offsets predicted on a mirrored image -> offsets of the original: mirror, swap keypoints, negate dx.

    Args:
        offsets (`torch.Tensor` of shape `(B, 2K, h, w)`): (dx, dy) of keypoint k in channels 2k, 2k + 1.
        flip_index: K indices, the skeleton's left/right permutation.
    """
    batch, channels, height, width = offsets.shape
    pairs = offsets.flip(-1).reshape(batch, channels // 2, 2, height, width)[:, flip_index]
    sign = torch.tensor([-1.0, 1.0], device=offsets.device, dtype=offsets.dtype).view(1, 1, 2, 1, 1)
    return (pairs * sign).reshape(batch, channels, height, width)


class CenterOffsetForPoseEstimation(PosePreTrainedModel):
    """Multi-person pose estimation by person centers + center-to-keypoint offsets (single stage).

    With `flip_test=True` the mirrored images are run too; their maps are flipped back (keypoint
    channels swapped by `config.flip_index`, offset x components negated) and averaged with the
    original pass.

    Example:

    ```python
    >>> import torch
    >>> from semipose.modeling import CenterOffsetConfig, CenterOffsetForPoseEstimation
    >>> model = CenterOffsetForPoseEstimation(CenterOffsetConfig(backbone="regnetx_002", neck_channels=32)).eval()
    >>> outputs = model(torch.randn(1, 3, 128, 96), flip_test=True)
    >>> outputs.offsets.shape, model.decode(outputs).keypoints.shape[-2:]
    (torch.Size([1, 34, 32, 24]), torch.Size([17, 2]))

    ```
    """

    config_class = CenterOffsetConfig
    output_class = CenterOffsetOutput

    def __init__(self, config: CenterOffsetConfig, *, pretrained_backbone: bool | str = False):
        super().__init__(config, pretrained_backbone=pretrained_backbone)
        self.heatmap_head = prediction_head(config.neck_channels, config.num_keypoints + 1)
        self.offset_head = prediction_head(config.neck_channels, 2 * config.num_keypoints)
        self.post_init()

    def read_heads(self, features: torch.Tensor) -> dict[str, torch.Tensor]:
        """`[B, C, h, w]` features -> heatmaps `[B, K, h, w]`, center_heatmap `[B, 1, h, w]`, offsets
        `[B, 2K, h, w]`."""
        heatmaps = self.heatmap_head(features)
        return {"heatmaps": heatmaps[:, :-1], "center_heatmap": heatmaps[:, -1:], "offsets": self.offset_head(features)}

    def unflip(self, maps: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Mirror every map back; swap keypoint channels and negate offset x components."""
        return {
            "heatmaps": flip_maps(maps["heatmaps"], self.config.flip_index),
            "center_heatmap": flip_maps(maps["center_heatmap"], [0]),
            "offsets": unflip_offsets(maps["offsets"], self.config.flip_index),
        }

    def loss_terms(
        self, outputs: CenterOffsetOutput, keypoints: torch.Tensor, ignore_mask: torch.Tensor | None
    ) -> dict[str, torch.Tensor]:
        """Heatmap, center and offset losses (`codec_center_offset.center_offset_loss`)."""
        return center_offset_loss(
            outputs.heatmaps,
            outputs.center_heatmap,
            outputs.offsets,
            keypoints,
            ignore_mask,
            stride=self.config.output_stride,
            sigma=self.config.heatmap_sigma,
            background_weight=self.config.background_weight,
        )

    def loss_weights(self) -> dict[str, float]:
        return {
            "heatmap_loss": self.config.heatmap_loss_weight,
            "center_loss": self.config.center_loss_weight,
            "offset_loss": self.config.offset_loss_weight,
        }

    def decode(self, outputs: CenterOffsetOutput) -> DecodedPoses:
        """Read people out at center peaks, with the config's decoding settings.

        Returns:
            `DecodedPoses`: keypoints `[B, M, K, 2]` in input pixels, scores, mask.
        """
        config = self.config
        return decode_center_offset(
            outputs.heatmaps,
            outputs.center_heatmap,
            outputs.offsets,
            stride=config.output_stride,
            max_people=config.max_people,
            nms_kernel=config.nms_kernel,
            center_threshold=config.center_threshold,
            pose_nms_threshold=config.pose_nms_threshold,
            refine=config.refine,
        )


__all__ = ["CenterOffsetForPoseEstimation", "CenterOffsetOutput", "unflip_offsets"]
