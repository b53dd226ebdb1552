"""The tiny checkpoint tests share (the `checkpoint` fixture of conftest.py), importable by name from any test
folder: `from conftest import ...` would find whichever conftest.py was imported first."""

import torch

from semipose.modeling import CenterOffsetConfig, CenterOffsetForPoseEstimation, PoseImageProcessor

# A standing figure, (dx, dy) from the person center in heatmap pixels, COCO keypoint order.
TEMPLATE_OFFSETS = [
    (0, -3), (0.3, -3.3), (-0.3, -3.3), (0.6, -3.1), (-0.6, -3.1), (1, -2), (-1, -2), (1.5, -0.8), (-1.5, -0.8),
    (1.8, 0.3), (-1.8, 0.3), (0.7, 0.5), (-0.7, 0.5), (0.8, 2), (-0.8, 2), (0.9, 3.5), (-0.9, 3.5),
]


def save_tiny_checkpoint(folder) -> CenterOffsetForPoseEstimation:
    """A random-init center-offset model (regnetx_002, 16 neck channels, COCO) that finds people everywhere:
    its center and keypoint heatmaps are raised to 1.0 and 0.6 and its offsets draw `TEMPLATE_OFFSETS`, so
    decoding returns whole people, some of them centered in the padding beyond the image."""
    torch.manual_seed(0)
    model = CenterOffsetForPoseEstimation(CenterOffsetConfig(backbone="regnetx_002", neck_channels=16, skeleton="coco"))
    with torch.no_grad():
        model.heatmap_head[-1].bias[:-1] = 0.6
        model.heatmap_head[-1].bias[-1] = 1.0
        model.offset_head[-1].bias.copy_(torch.tensor(TEMPLATE_OFFSETS).flatten())
    model.save_pretrained(folder)
    PoseImageProcessor(size=64, output_stride=4).save_pretrained(folder)
    return model
