"""Run a trained pose model on PIL images: people in original image pixels, and pictures of them.

The one path from images to people that the main job's prediction picture, the trainer's image
logs and the `predict` command share: the image processor's letterbox, one forward pass (optionally
with flip test), the model's own decoder with its config settings, and the mapping back to the
original pixels.

Example:

```python
>>> from PIL import Image
>>> people = predict_people(model, image_processor, [Image.open("photo.jpg")])
>>> people[0]["keypoints"].shape  # [M, K, 2] in photo pixels
```
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import PIL.Image
import torch

from .skeletons import get_skeleton
from .visualization import draw_people, make_grid


@torch.no_grad()
def predict_people(
    model, image_processor, images: Sequence[PIL.Image.Image], flip_test: bool = False
) -> list[dict[str, torch.Tensor]]:
    """People per image: `keypoints [M, K, 2]`, `keypoint_scores [M, K]`, `scores [M]` in original pixels."""
    images = [image.convert("RGB") for image in images]
    device = next(model.parameters()).device
    pixel_values = image_processor(images, return_tensors="pt")["pixel_values"].to(device)
    was_training = model.training
    model.eval()
    outputs = model(pixel_values=pixel_values, flip_test=flip_test)
    model.train(was_training)
    target_sizes = [(image.height, image.width) for image in images]
    return image_processor.post_process_pose_estimation(model.decode(outputs), target_sizes=target_sizes)


def draw_predictions(
    images: Sequence[PIL.Image.Image], people: Sequence[dict[str, torch.Tensor]], skeleton: str, threshold: float = 0.3
) -> list[PIL.Image.Image]:
    """Each image with its predicted people drawn (keypoints below `threshold` left out)."""
    drawn = []
    for image, found in zip(images, people):
        keypoints = torch.cat([found["keypoints"], found["keypoint_scores"].unsqueeze(-1)], dim=-1)
        drawn.append(draw_people(image, keypoints.cpu().numpy(), get_skeleton(skeleton),
                                 scores=found["scores"].cpu().numpy(), threshold=threshold))
    return drawn


def save_prediction_grid(
    path: str | Path, model, image_processor, rows, skeleton: str, num_images: int = 16, columns: int = 4,
    min_size: int = 256,
) -> Path:
    """Write a PNG grid of predictions on the first `num_images` rows (images upscaled to `min_size`)."""
    images = [rows[index]["image"].convert("RGB") for index in range(min(num_images, len(rows)))]
    if not images:
        raise ValueError("save_prediction_grid: no images to draw.")
    images = [_at_least(image, min_size) for image in images]
    drawn = draw_predictions(images, predict_people(model, image_processor, images), skeleton)
    path = Path(path)
    make_grid(drawn, columns=columns).save(path)
    return path


def _at_least(image: PIL.Image.Image, min_size: int) -> PIL.Image.Image:
    """Small images are enlarged (nearest) so the drawn skeletons stay readable."""
    factor = int(np.ceil(min_size / max(image.size)))
    return image if factor <= 1 else image.resize((image.width * factor, image.height * factor), PIL.Image.NEAREST)
