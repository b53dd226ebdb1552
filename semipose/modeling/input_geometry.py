"""Where a photo sits in the model input: the one placement shared by the training views and the image processor.

The whole photo is resized so its LONGEST edge is S (one scale `S / max(H, W)` for both axes), placed at the
TOP-LEFT of the input, and the rest is padding of value 0 after normalization (the mean color). HigherHRNet and
DEKR evaluate this way, on the whole resized image. With integer coordinates at pixel centers (see
`semipose.skeletons`), the placement and its inverse are

    x_input = scale * (x_image + 0.5) - 0.5        x_image = (x_input + 0.5) / scale - 0.5

so the photo's extent `[-0.5, W - 0.5]` lands on `[-0.5, scale * W - 0.5]`. The training views
(`semipose.data.transforms.view_matrix`) augment about the center of the placed photo, so their identity view
IS this placement; the image processor renders the same matrix onto a canvas just large enough for the photo
(`input_canvas_size`), which it then pads at the bottom and right to a multiple of `size_divisor`.

Both sides render with `render_input`: an exact box reduction by the largest integer factor the view shrinks
by (PIL's `Image.reduce` arithmetic, on the uint8 image), rescale and normalize, then one bilinear resampling
through the matrix. The same photo therefore gives the same input pixels on both sides: the training canvas is
S x S, the processor's canvas is its top-left `input_canvas_size` part padded to the multiple of 32 (equal to
S x S only for a square photo with S a multiple of 32).

Example:

```python
>>> import torch
>>> from semipose.modeling.input_geometry import input_canvas_size, input_to_original, placement_matrix
>>> placement_matrix((480, 640), 256)[:2]
tensor([[ 0.4000,  0.0000, -0.3000],
        [ 0.0000,  0.4000, -0.3000]], dtype=torch.float64)
>>> input_canvas_size((480, 640), 256)
(192, 256)
>>> input_to_original(torch.tensor([[-0.3, -0.3], [255.5, 191.5]], dtype=torch.float64), (480, 640), 256)
tensor([[  0.0000,   0.0000],
        [639.5000, 479.5000]], dtype=torch.float64)

```
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as nnf
import torchvision.transforms.v2.functional as tvf


def fit_scale(image_size: tuple[int, int], input_size: int) -> float:
    """The one scale of the placement: `S / max(H, W)`, so the longest edge becomes S."""
    return input_size / max(image_size)


def placed_extent(image_size: tuple[int, int], input_size: int) -> tuple[float, float]:
    """`(height, width)` of the placed photo in input pixels (exactly S along the longest edge)."""
    height, width = image_size
    longest = max(height, width)
    return input_size * height / longest, input_size * width / longest


def placement_matrix(image_size: tuple[int, int], input_size: int) -> torch.Tensor:
    """`[3, 3]` float64 matrix from image pixels `(H, W)` to input pixels: resize the longest edge to S, top-left."""
    scale = fit_scale(image_size, input_size)
    return torch.tensor(
        [[scale, 0, (scale - 1) / 2], [0, scale, (scale - 1) / 2], [0, 0, 1]], dtype=torch.float64
    )


def input_canvas_size(image_size: tuple[int, int], input_size: int) -> tuple[int, int]:
    """`(h, w)`: the fewest input rows and columns that hold the placed photo (before padding to a multiple)."""
    return tuple(max(1, math.ceil(extent - 1e-9)) for extent in placed_extent(image_size, input_size))


def input_to_original(keypoints: torch.Tensor, image_size: tuple[int, int], input_size: int) -> torch.Tensor:
    """Invert the placement: `[..., 2]` (x, y) in input pixels -> pixels of the `(H, W)` photo."""
    return (keypoints + 0.5) / fit_scale(image_size, input_size) - 0.5


def pixel_to_normalized(
    width: int, height: int, dtype: torch.dtype = torch.float64, device: torch.device | str | None = None
) -> torch.Tensor:
    """3x3 matrix: pixel centers -> `grid_sample` coordinates (align_corners=False), `(2x + 1) / W - 1`."""
    return torch.tensor(
        [[2 / width, 0, 1 / width - 1], [0, 2 / height, 1 / height - 1], [0, 0, 1]],
        dtype=dtype, device=device,
    )


def warp_by_matrix(
    image: torch.Tensor, matrix: torch.Tensor, output_size: tuple[int, int], mode: str = "bilinear"
) -> torch.Tensor:
    """Resample `image` `[C, H, W]` (float) through `matrix` (image pixels -> output pixels) into `[C, h, w]`.

    Output pixels whose center maps outside the image are 0; inside, edges are sampled with border clamping, so
    a pure scaling equals a plain resize (bilinear, align_corners=False). `mode` is `"nearest"` for masks.
    """
    grid = _sampling_grid(matrix, tuple(image.shape[-2:]), output_size, image.device)
    return _sample(image, grid, mode) * _inside(grid)


def _sampling_grid(
    matrix: torch.Tensor, image_size: tuple[int, int], output_size: tuple[int, int], device: torch.device
) -> torch.Tensor:
    """`affine_grid` `[1, h, w, 2]`: for each output pixel, where it samples the `(H, W)` image (normalized)."""
    (height, width), (out_height, out_width) = image_size, output_size
    theta = (
        pixel_to_normalized(width, height)
        @ torch.linalg.inv(matrix)
        @ torch.linalg.inv(pixel_to_normalized(out_width, out_height))
    )
    theta = theta.to(device=device, dtype=torch.float32)
    return nnf.affine_grid(theta[None, :2], [1, 1, out_height, out_width], align_corners=False)


def _sample(image: torch.Tensor, grid: torch.Tensor, mode: str) -> torch.Tensor:
    return nnf.grid_sample(image[None], grid, mode=mode, padding_mode="border", align_corners=False)[0]


def _inside(grid: torch.Tensor) -> torch.Tensor:
    """`[h, w]` bool: the output pixel's center falls inside the image."""
    return (grid.abs() <= 1).all(dim=-1)[0]


def box_reduce(image: torch.Tensor, matrix: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Shrink a `[C, H, W]` image by the largest integer factor f <= 1 / zoom, against aliasing.

    For uint8 the arithmetic is PIL's `Image.reduce` (fixed point, `(sum + f^2 // 2) * (2^24 // f^2) >> 24`),
    a float image takes the plain block mean; both over the
    top-left `(H // f) * f` x `(W // f) * f` pixels, so reduced pixel x sits exactly at image pixel
    `f * x + (f - 1) / 2`; up to f - 1 border pixels (less than one input pixel) are left out, and
    `render_input` samples that strip by border clamping. Returns the reduced image and the matrix from its
    pixels to the output.
    """
    zoom = math.sqrt(abs(torch.linalg.det(matrix[:2, :2]).item()))
    channels, height, width = image.shape
    factor = min(int(1 / zoom + 1e-9), width, height)
    if factor < 2:
        return image, matrix
    rows, columns = height // factor, width // factor
    blocks = image[:, : rows * factor, : columns * factor].reshape(channels, rows, factor, columns, factor)
    if image.is_floating_point():
        reduced = blocks.mean(dim=(2, 4))
    else:
        count = factor * factor
        sums = blocks.sum(dim=(2, 4), dtype=torch.int64)
        reduced = (((sums + count // 2) * int(2**24 / count)) >> 24).to(image.dtype)
    to_image = torch.tensor(
        [[factor, 0, (factor - 1) / 2], [0, factor, (factor - 1) / 2], [0, 0, 1]], dtype=torch.float64
    )
    return reduced, matrix @ to_image


def render_input(
    image: torch.Tensor,
    matrix: torch.Tensor,
    output_size: tuple[int, int],
    image_mean: Sequence[float],
    image_std: Sequence[float],
    rescale_factor: float = 1 / 255,
) -> torch.Tensor:
    """Model input pixels `[3, h, w]` float32 of a `[3, H, W]` image (uint8, or float) seen through `matrix`.

    Box reduction (`box_reduce`), `x * rescale_factor`, normalization by `image_mean` / `image_std`, then
    bilinear resampling; output pixels whose center falls outside the (unreduced) image are 0, the mean
    color. The training views and the image processor both call this, so one photo gives them the same pixels.
    """
    reduced, reduced_matrix = box_reduce(image, matrix)
    pixels = tvf.normalize(reduced.to(torch.float32).mul(rescale_factor), list(image_mean), list(image_std))
    grid = _sampling_grid(reduced_matrix, tuple(reduced.shape[-2:]), output_size, image.device)
    frame = _sampling_grid(matrix, tuple(image.shape[-2:]), output_size, image.device)
    return _sample(pixels, grid, "bilinear") * _inside(frame)


__all__ = [
    "box_reduce",
    "fit_scale",
    "input_canvas_size",
    "input_to_original",
    "pixel_to_normalized",
    "placed_extent",
    "placement_matrix",
    "render_input",
    "warp_by_matrix",
]
