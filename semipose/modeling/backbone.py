"""Backbone + neck: any timm feature extractor fused into one stride-4 (or stride-2) feature map.

Both model families read their heads from this one map. The timm model is built with
`features_only=True`; its `feature_info` contract (channels and reduction per level) sizes the
neck, so any CNN timm offers works unchanged. The neck is FPN-style: a 1x1 lateral conv per level,
top-down bilinear upsampling + add, a 3x3 fusion conv at stride 4; for `output_stride=2` a
HigherHRNet-style transposed-conv stage doubles the resolution.

Weights are random by default (no network at run time). `pretrained=True` asks timm (which may
download), `pretrained="path/to/weights.safetensors"` loads a local timm checkpoint through
`pretrained_cfg_overlay=dict(file=...)`.

Shapes: B images, 3 x H x W input pixels, C = `neck_channels`, s = output stride (4 or 2);
H and W must be multiples of the coarsest feature reduction (`PoseBackbone.size_divisor`, 32 for
most CNNs) so the output grid is exactly H/s x W/s.

Example:

```python
>>> import torch
>>> from semipose.modeling.backbone import PoseBackbone
>>> backbone = PoseBackbone("regnetx_002", neck_channels=32, output_stride=4)
>>> backbone(torch.zeros(1, 3, 64, 96)).shape
torch.Size([1, 32, 16, 24])

```
"""

from __future__ import annotations

from pathlib import Path

import timm
import torch
import torch.nn.functional as F
from torch import nn

from .configuration_pose import OUTPUT_STRIDES

NECK_STRIDE = 4


def default_out_indices(name: str) -> list[int]:
    """Indices of the timm feature levels with reduction >= 4 (the ones the neck fuses).

    The model is built on the meta device, so the probe allocates no weights.
    """
    with torch.device("meta"):
        probe = timm.create_model(name, features_only=True, pretrained=False)
    info = probe.feature_info
    return [index for index, reduction in zip(info.out_indices, info.reduction()) if reduction >= NECK_STRIDE]


def create_feature_extractor(
    name: str, *, out_indices: list[int] | None = None, pretrained: bool | str | Path = False
) -> nn.Module:
    """Build a timm `features_only` model; random weights unless `pretrained` says otherwise.

    Args:
        name: timm model name, e.g. `"resnet50"`, `"regnetx_002"`, `"hrnet_w32"`.
        out_indices: feature levels to return; default: every level of stride >= 4.
        pretrained: `False` (random init), `True` (timm's default weights, may download) or the path
            of a local timm checkpoint (`.safetensors` / `.pth`) for machines without network.
    """
    if not timm.is_model(name):
        raise ValueError(f"Unknown timm backbone {name!r}: expected a name from timm.list_models().")
    kwargs = {"features_only": True, "out_indices": tuple(out_indices or default_out_indices(name))}
    if isinstance(pretrained, (str, Path)):
        path = Path(pretrained)
        if not path.is_file():
            raise FileNotFoundError(f"Backbone weights file {path} not found (expected a timm checkpoint of {name!r}).")
        return timm.create_model(name, pretrained=True, pretrained_cfg_overlay={"file": str(path)}, **kwargs)
    return timm.create_model(name, pretrained=bool(pretrained), **kwargs)


def conv_bn_relu(in_channels: int, out_channels: int, kernel_size: int = 3) -> nn.Sequential:
    """Conv (same padding, no bias) + BatchNorm + ReLU: the neck's and heads' basic block."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class FeaturePyramidNeck(nn.Module):
    """Fuse feature levels top-down (FPN: lateral 1x1, upsample, add) into one map of stride `output_stride`.

    Args:
        in_channels: channels of each level, finest first.
        out_channels: channels C of the fused map.
        output_stride: 4, or 2 to add a transposed-conv stage (HigherHRNet's higher-resolution output).
    """

    def __init__(self, in_channels: list[int], out_channels: int, output_stride: int):
        super().__init__()
        self.laterals = nn.ModuleList(nn.Conv2d(channels, out_channels, 1) for channels in in_channels)
        self.fuse = conv_bn_relu(out_channels, out_channels)
        self.upsample = self._upsample_stage(out_channels) if output_stride == 2 else nn.Identity()

    @staticmethod
    def _upsample_stage(channels: int) -> nn.Sequential:
        return nn.Sequential(
            nn.ConvTranspose2d(channels, channels, kernel_size=4, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(channels),
            nn.ReLU(inplace=True),
            conv_bn_relu(channels, channels),
        )

    def forward(self, features: list[torch.Tensor], size: tuple[int, int]) -> torch.Tensor:
        """Fuse `features` (finest first) and return `[B, C, h, w]` with (h, w) = `size` x (4 / output_stride)."""
        fused = self.laterals[-1](features[-1])
        for lateral, feature in zip(reversed(self.laterals[:-1]), reversed(features[:-1])):
            fused = lateral(feature) + _resize(fused, feature.shape[-2:])
        return self.upsample(self.fuse(_resize(fused, size)))


def _resize(x: torch.Tensor, size: tuple[int, int] | torch.Size) -> torch.Tensor:
    """Bilinear resize (align_corners=False, consistent with pixel-center coordinates); no-op when equal."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=False)


class PoseBackbone(nn.Module):
    """timm feature extractor + `FeaturePyramidNeck`: `[B, 3, H, W]` -> `[B, C, H/s, W/s]`.

    Args:
        name: timm model name.
        neck_channels: channels C of the output map.
        output_stride: s, 4 or 2.
        out_indices: timm feature levels to fuse (each of stride >= 4); default: all of them.
        pretrained: see `create_feature_extractor`.
    """

    def __init__(
        self,
        name: str,
        *,
        neck_channels: int,
        output_stride: int,
        out_indices: list[int] | None = None,
        pretrained: bool | str | Path = False,
    ):
        super().__init__()
        if output_stride not in OUTPUT_STRIDES:
            raise ValueError(f"output_stride must be one of {OUTPUT_STRIDES}, got {output_stride}.")
        self.body = create_feature_extractor(name, out_indices=out_indices, pretrained=pretrained)
        reductions = self.body.feature_info.reduction()
        if min(reductions) < NECK_STRIDE:
            raise ValueError(
                f"Backbone levels must have stride >= {NECK_STRIDE}; out_indices={out_indices} of {name!r} "
                f"give strides {reductions}."
            )
        self.size_divisor = max(reductions)
        self.output_stride = output_stride
        self.neck = FeaturePyramidNeck(self.body.feature_info.channels(), neck_channels, output_stride)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """Args: pixel_values `[B, 3, H, W]`, H and W multiples of `size_divisor`. Returns `[B, C, H/s, W/s]`."""
        height, width = pixel_values.shape[-2:]
        features = self.body(pixel_values)
        return self.neck(features, (height // NECK_STRIDE, width // NECK_STRIDE))
