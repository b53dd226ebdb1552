"""Pieces shared by both pose codecs: coordinates, Gaussian targets, peak finding, the decoded-people container.

Shape letters, used by every codec module: B images, M people, K keypoints, N candidates per map,
(H, W) input pixels, (h, w) heatmap pixels, s = stride = H / h.

Coordinates follow the project convention (see `semipose.skeletons`): integer coordinates are pixel
centers, in the input and in the heatmap alike, so `u = (x + 0.5) / s - 0.5` and
`x = (u + 0.5) * s - 0.5`: heatmap pixel u covers the input pixels `u * s ... (u + 1) * s - 1`.

Sub-pixel refinement (`refine_peaks`) is the second-order Taylor step of DARK (Zhang et al., 2020)
on the log-heatmap around an integer peak: exact for a sampled Gaussian, clamped to half a pixel,
with the classic quarter-pixel shift toward the higher neighbour where the local log-heatmap is not
concave (flat or noisy peaks). No blurring is applied first.

This file is copied into checkpoints by `register_for_auto_class`: it imports nothing from semipose.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, fields

import torch
import torch.nn.functional as F


@dataclass
class DecodedPoses:
    """People decoded from one batch of network outputs, padded to a common count M.

    Rows are sorted by `scores`, best first; padded rows are zero and `mask` False.

    Attributes:
        keypoints (`torch.Tensor` of shape `(B, M, K, 2)`): (x, y) in INPUT pixels.
        keypoint_scores (`torch.Tensor` of shape `(B, M, K)`): per-keypoint confidence.
        scores (`torch.Tensor` of shape `(B, M)`): per-person confidence.
        mask (`torch.Tensor` of shape `(B, M)`, bool): True for real people.

    Example:

    ```python
    >>> poses = DecodedPoses.from_list([{"keypoints": torch.zeros(2, 17, 2),
    ...     "keypoint_scores": torch.ones(2, 17), "scores": torch.tensor([0.9, 0.5])}], num_keypoints=17)
    >>> poses.keypoints.shape, [len(image["scores"]) for image in poses.to_list()]
    (torch.Size([1, 2, 17, 2]), [2])

    ```
    """

    keypoints: torch.Tensor
    keypoint_scores: torch.Tensor
    scores: torch.Tensor
    mask: torch.Tensor

    def to_list(self) -> list[dict[str, torch.Tensor]]:
        """Per image, its real people: `keypoints [m, K, 2]`, `keypoint_scores [m, K]`, `scores [m]`."""
        return [
            {
                "keypoints": self.keypoints[b][self.mask[b]],
                "keypoint_scores": self.keypoint_scores[b][self.mask[b]],
                "scores": self.scores[b][self.mask[b]],
            }
            for b in range(self.mask.shape[0])
        ]

    @classmethod
    def from_list(
        cls, people: list[dict[str, torch.Tensor]], num_keypoints: int, device: torch.device | str | None = None
    ) -> DecodedPoses:
        """Pad per-image dicts (as written by `to_list`) into one batch; people keep their order."""
        max_people = max([len(image["scores"]) for image in people], default=0)
        batch = len(people)
        poses = cls(
            keypoints=torch.zeros(batch, max_people, num_keypoints, 2, device=device),
            keypoint_scores=torch.zeros(batch, max_people, num_keypoints, device=device),
            scores=torch.zeros(batch, max_people, device=device),
            mask=torch.zeros(batch, max_people, dtype=torch.bool, device=device),
        )
        for b, image in enumerate(people):
            count = len(image["scores"])
            for name in ("keypoints", "keypoint_scores", "scores"):
                getattr(poses, name)[b, :count] = torch.as_tensor(image[name]).to(poses.scores)
            poses.mask[b, :count] = True
        return poses

    def to(self, device: torch.device | str) -> DecodedPoses:
        """The same people with every tensor on `device`."""
        return DecodedPoses(**{f.name: getattr(self, f.name).to(device) for f in fields(self)})


def confident_people(scores, keypoint_scores, person_threshold, keypoint_threshold: float):
    """Which people become pseudo labels: score >= `person_threshold` and at least one keypoint scoring
    >= `keypoint_threshold`. The one predicate of training, its logs and the pseudo-label quality metrics; works
    on torch tensors and numpy arrays alike (`scores [..., M]`, `keypoint_scores [..., M, K]`)."""
    return (scores >= person_threshold) & (keypoint_scores >= keypoint_threshold).any(-1)


def input_to_heatmap(coords: torch.Tensor, stride: int) -> torch.Tensor:
    """Input-pixel coordinates -> heatmap coordinates, `u = (x + 0.5) / s - 0.5`."""
    return (coords + 0.5) / stride - 0.5


def heatmap_to_input(coords: torch.Tensor, stride: int) -> torch.Tensor:
    """Heatmap coordinates -> input-pixel coordinates, `x = (u + 0.5) * s - 0.5`."""
    return (coords + 0.5) * stride - 0.5


def mean_or_zero(values: torch.Tensor) -> torch.Tensor:
    """Mean of all elements, 0 (still differentiable) for an empty tensor such as a zero-image batch slice."""
    return values.sum() / max(values.numel(), 1)


def ordered_mean(values: torch.Tensor, dim: int) -> torch.Tensor:
    """Mean along `dim`, summed one slice after another in index order.

    torch's reductions choose their summation order by the tensor's shape and strides, so a person's mean
    keypoint score could differ in the last bit with the number of images and candidates decoded beside it;
    elementwise additions in a fixed order give every row the same bits whatever else the tensor holds.

    Example:

    ```python
    >>> ordered_mean(torch.tensor([[1.0, 2.0, 6.0], [0.5, 0.0, 1.0]]), dim=1)
    tensor([3.0000, 0.5000])

    ```
    """
    slices = values.unbind(dim)
    total = slices[0]
    for value in slices[1:]:
        total = total + value
    return total / len(slices)


def check_maps(heatmaps: torch.Tensor, **others: tuple[torch.Tensor, int]) -> None:
    """Raise ValueError unless `heatmaps` is [B, K, h, w] and each other map is [B, channels, h, w].

    Args:
        heatmaps (`torch.Tensor` of shape `(B, K, h, w)`): keypoint heatmaps.
        others: name -> (map, expected channel count).
    """
    if heatmaps.ndim != 4:
        raise ValueError(f"heatmaps: expected shape [B, K, h, w], got {tuple(heatmaps.shape)}.")
    batch, _, height, width = heatmaps.shape
    for name, (tensor, channels) in others.items():
        expected = (batch, channels, height, width)
        if tuple(tensor.shape) != expected:
            raise ValueError(f"{name}: expected shape {list(expected)}, got {list(tensor.shape)}.")


def check_keypoints(keypoints: torch.Tensor, batch_size: int, num_keypoints: int) -> None:
    """Raise ValueError unless `keypoints` is [batch_size, M, num_keypoints, 3]."""
    if keypoints.ndim != 4 or keypoints.shape[0] != batch_size or keypoints.shape[2:] != (num_keypoints, 3):
        raise ValueError(
            f"keypoints: expected shape [{batch_size}, M, {num_keypoints}, 3], got {list(keypoints.shape)}."
        )


def labeled_heatmap_keypoints(
    keypoints: torch.Tensor, heatmap_size: tuple[int, int], stride: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Keypoints in heatmap coordinates and whether each is labeled (v > 0) and inside the heatmap.

    Args:
        keypoints (`torch.Tensor` of shape `(B, M, K, 3)`): (x, y, v) in input pixels.
        heatmap_size: (h, w).

    Returns:
        coords `[B, M, K, 2]` (zero where not valid) and valid `[B, M, K]` bool.
    """
    height, width = heatmap_size
    coords = input_to_heatmap(keypoints[..., :2].float(), stride)
    inside = (coords >= -0.5) & (coords < torch.tensor([width, height], device=coords.device) - 0.5)
    valid = (keypoints[..., 2] > 0) & inside.all(dim=-1)
    return coords * valid.unsqueeze(-1), valid


def render_gaussian_heatmaps(
    keypoints: torch.Tensor, heatmap_size: tuple[int, int], *, stride: int, sigma: float
) -> torch.Tensor:
    """Target heatmaps: one unnormalized Gaussian (peak 1) per labeled in-frame keypoint, max over people.

    Each Gaussian is cut off outside the `(2r + 1)^2` window around its nearest pixel, r = ceil(3 sigma).

    Args:
        keypoints (`torch.Tensor` of shape `(B, M, K, 3)`): (x, y, v) in input pixels; v = 0 is skipped.
        heatmap_size: (h, w) of the output.
        stride: input pixels per heatmap pixel.
        sigma: standard deviation in heatmap pixels.

    Returns:
        `torch.Tensor` of shape `(B, K, h, w)`.

    Example:

    ```python
    >>> heatmaps = render_gaussian_heatmaps(torch.tensor([[[[9.5, 5.5, 2.0]]]]), (4, 4), stride=4, sigma=1.0)
    >>> heatmaps[0, 0, 1, 2].item()
    1.0

    ```
    """
    height, width = heatmap_size
    coords, valid = labeled_heatmap_keypoints(keypoints, heatmap_size, stride)
    radius = math.ceil(3 * sigma)
    steps = torch.arange(-radius, radius + 1, device=coords.device)
    nearest = torch.floor(coords + 0.5).long()
    xs = nearest[..., 0, None, None] + steps[None, :]  # [B, M, K, 1, P]
    ys = nearest[..., 1, None, None] + steps[:, None]  # [B, M, K, P, 1]
    values = torch.exp(
        -((xs - coords[..., 0, None, None]) ** 2 + (ys - coords[..., 1, None, None]) ** 2) / (2 * sigma**2)
    )
    inside = (xs >= 0) & (xs < width) & (ys >= 0) & (ys < height) & valid[..., None, None]
    index = ys.clamp(0, height - 1) * width + xs.clamp(0, width - 1)
    batch, _, num_keypoints = valid.shape
    heatmaps = torch.zeros(batch, num_keypoints, height * width, device=coords.device)
    heatmaps.scatter_reduce_(2, _channel_major(index, values), _channel_major(values * inside, values), reduce="amax")
    return heatmaps.view(batch, num_keypoints, height, width)


def _channel_major(tensor: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """[B, M, K, P, P] (broadcast to `like`) -> [B, K, M * P * P], the layout `scatter_reduce_` needs."""
    batch, people, num_keypoints, rows, columns = like.shape
    return tensor.expand_as(like).permute(0, 2, 1, 3, 4).reshape(batch, num_keypoints, people * rows * columns)


def downsample_ignore_mask(
    ignore_mask: torch.Tensor | None, heatmap_size: tuple[int, int], stride: int
) -> torch.Tensor | None:
    """Input-resolution ignore mask -> heatmap resolution: a heatmap pixel is ignored when at least
    half of the `stride x stride` input pixels it covers are.

    Args:
        ignore_mask (`torch.Tensor` of shape `(B, H, W)`, bool, or None): True = do not train here.
        heatmap_size: (h, w); the input may be smaller than `(h * stride, w * stride)` by less than a
            stride (the rest counts as not ignored).

    Returns:
        bool `torch.Tensor` of shape `(B, h, w)`, or None when `ignore_mask` is None.
    """
    if ignore_mask is None:
        return None
    height, width = heatmap_size
    in_height, in_width = ignore_mask.shape[-2:]
    fits = 0 <= height * stride - in_height < stride and 0 <= width * stride - in_width < stride
    if ignore_mask.ndim != 3 or not fits:
        raise ValueError(
            f"ignore_mask: expected shape [B, H, W] with H, W within one stride ({stride}) below "
            f"{height * stride}, {width * stride}; got {list(ignore_mask.shape)}."
        )
    padded = F.pad(ignore_mask.float(), (0, width * stride - in_width, 0, height * stride - in_height))
    return F.avg_pool2d(padded.unsqueeze(1), stride).squeeze(1) >= 0.5


def heatmap_nms(heatmaps: torch.Tensor, kernel: int) -> torch.Tensor:
    """Zero every pixel that is not the maximum of its `kernel x kernel` neighbourhood.

    Two maxima closer than the window are necessarily equal (a plateau); of those only the last in
    raster order survives (a maximum with another one later in its window is dropped), so a peak
    exactly between two pixels is reported once.

    Args:
        heatmaps (`torch.Tensor` of shape `(B, C, h, w)`).
        kernel: odd window size.
    """
    if kernel < 1 or kernel % 2 == 0:
        raise ValueError(f"nms_kernel: expected an odd positive size, got {kernel}.")
    maxima = heatmaps == max_filter(heatmaps, kernel)
    radius, (height, width) = kernel // 2, heatmaps.shape[-2:]
    padded = F.pad(maxima.to(torch.uint8), (radius, radius, radius, radius)).bool()
    later = torch.zeros_like(maxima)
    for dy, dx in itertools.product(range(radius + 1), range(-radius, radius + 1)):
        if dy > 0 or dx > 0:  # the half of the window that comes later in raster order
            later |= padded[..., radius + dy : radius + dy + height, radius + dx : radius + dx + width]
    return heatmaps * (maxima & ~later)


def max_filter(maps: torch.Tensor, kernel: int) -> torch.Tensor:
    """Maximum over each `kernel x kernel` window (same size out, the map padded with -inf), separably, by
    doubling runs (`running_max`): on CPU 2-3x faster than unfold + amax and ~10x faster than `F.max_pool2d`."""
    radius = kernel // 2
    padded = F.pad(maps, (radius, radius, radius, radius), value=float("-inf"))
    return running_max(running_max(padded, 3, kernel), 2, kernel)


def running_max(tensor: torch.Tensor, dim: int, kernel: int) -> torch.Tensor:
    """Entry i = max of entries i ... i + kernel - 1 along `dim` (kernel - 1 fewer entries), in about
    log2(kernel) elementwise maxima: runs of 1, 2, 4 ... entries, then two overlapping runs."""
    covered, result = 1, tensor
    while 2 * covered <= kernel:
        length = result.shape[dim] - covered
        result = torch.maximum(result.narrow(dim, 0, length), result.narrow(dim, covered, length))
        covered *= 2
    if covered < kernel:
        rest = kernel - covered  # runs from i and from i + rest overlap and end at i + kernel - 1
        length = result.shape[dim] - rest
        result = torch.maximum(result.narrow(dim, 0, length), result.narrow(dim, rest, length))
    return result


def topk_peaks(heatmaps: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The `k` highest pixels of each map (fewer if the map is smaller), best first.

    Args:
        heatmaps (`torch.Tensor` of shape `(B, C, h, w)`).

    Returns:
        scores `[B, C, N]`, xs `[B, C, N]` and ys `[B, C, N]` (long), N = min(k, h * w).
    """
    width = heatmaps.shape[-1]
    scores, index = heatmaps.flatten(2).topk(min(k, heatmaps.shape[-2] * width), dim=2)
    return scores, index % width, index // width


def gather_at(maps: torch.Tensor, xs: torch.Tensor, ys: torch.Tensor) -> torch.Tensor:
    """Values of `maps` at integer pixels.

    Args:
        maps (`torch.Tensor` of shape `(B, C, h, w)`).
        xs, ys (`torch.Tensor` of shape `(B, C, N)` for per-channel positions or `(B, N)` for the same
            positions in every channel), long.

    Returns:
        `torch.Tensor` of shape `(B, C, N)`.
    """
    batch, channels, _, width = maps.shape
    index = ys * width + xs
    if index.ndim == 2:
        index = index.unsqueeze(1).expand(batch, channels, -1)
    return maps.flatten(2).gather(2, index)


def sample_heatmaps(heatmaps: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
    """Bilinear value of heatmap k at each person's keypoint k (border values outside the map).

    Args:
        heatmaps (`torch.Tensor` of shape `(B, K, h, w)`).
        coords (`torch.Tensor` of shape `(B, M, K, 2)`): (u, v) in heatmap coordinates.

    Returns:
        `torch.Tensor` of shape `(B, M, K)`.
    """
    batch, num_keypoints, height, width = heatmaps.shape
    size = torch.tensor([width, height], device=coords.device, dtype=coords.dtype)
    people = coords.shape[1]
    grid = ((2 * coords + 1) / size - 1).permute(0, 2, 1, 3).reshape(batch * num_keypoints, 1, people, 2)
    values = F.grid_sample(
        heatmaps.reshape(batch * num_keypoints, 1, height, width).to(grid.dtype),
        grid,
        mode="bilinear",
        padding_mode="border",
        align_corners=False,
    )
    return values.view(batch, num_keypoints, people).transpose(1, 2)


def refine_peaks(heatmaps: torch.Tensor, xs: torch.Tensor, ys: torch.Tensor) -> torch.Tensor:
    """Sub-pixel peak positions: a Taylor (DARK) step on the log-heatmap, quarter-pixel fallback (`peak_offsets`).

    Peaks on the map border are not moved across that axis.

    Args:
        heatmaps (`torch.Tensor` of shape `(B, C, h, w)`).
        xs, ys (`torch.Tensor` of shape `(B, C, N)`, long): integer peak positions.

    Returns:
        `torch.Tensor` of shape `(B, C, N, 2)`: refined (u, v) in heatmap coordinates.
    """
    height, width = heatmaps.shape[-2:]
    centers = torch.stack([xs, ys], dim=-1).transpose(1, 2)  # [B, N, C, 2]: window k of map k
    neighbourhoods = windows_around(heatmaps.float(), centers, 1)[0].transpose(1, 2)  # [B, C, N, 3, 3]
    interior = torch.stack([(xs > 0) & (xs < width - 1), (ys > 0) & (ys < height - 1)], dim=-1)
    return torch.stack([xs, ys], dim=-1).float() + peak_offsets(neighbourhoods) * interior


def windows_around(maps: torch.Tensor, centers: torch.Tensor, half: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Square windows of map k around each center k, with the map's border pixels repeated beyond it.

    Args:
        maps (`torch.Tensor` of shape `(B, K, h, w)`).
        centers (`torch.Tensor` of shape `(B, N, K, 2)`, long): (x, y) pixel of each window's center.

    Returns:
        values and inside (bool), both `[B, N, K, 2 half + 1, 2 half + 1]`.
    """
    batch, num_keypoints, height, width = maps.shape
    people, size = centers.shape[1], 2 * half + 1
    steps = torch.arange(-half, half + 1, device=maps.device)
    xs = centers[..., 0, None, None] + steps  # [B, N, K, 1, size]
    ys = centers[..., 1, None, None] + steps[:, None]  # [B, N, K, size, 1]
    inside = (xs >= 0) & (xs < width) & (ys >= 0) & (ys < height)
    index = (ys.clamp(0, height - 1) * width + xs.clamp(0, width - 1)).expand(-1, -1, -1, size, size)
    index = index.transpose(1, 2).reshape(batch, num_keypoints, people * size * size)  # channel-major, for gather
    values = maps.flatten(2).gather(2, index).view(batch, num_keypoints, people, size, size).transpose(1, 2)
    return values, inside


# Finite differences of the log-heatmap over a flattened 3 x 3 neighbourhood (row = dy + 1, column = dx + 1):
# columns d/dx, d/dy, d2/dx2, d2/dy2, d2/dxdy (central differences).
_LOG_DERIVATIVES = torch.tensor([
    [0.0, 0.0, 0.0, 0.0, 0.25], [0.0, -0.5, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 0.0, -0.25],
    [-0.5, 0.0, 1.0, 0.0, 0.0], [0.0, 0.0, -2.0, -2.0, 0.0], [0.5, 0.0, 1.0, 0.0, 0.0],
    [0.0, 0.0, 0.0, 0.0, -0.25], [0.0, 0.5, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 0.0, 0.25],
])


def peak_offsets(neighbourhoods: torch.Tensor) -> torch.Tensor:
    """Sub-pixel (dx, dy) of a peak from its 3 x 3 neighbourhood: the DARK offset `-H^-1 g` of the log-heatmap.

    Used where the log-heatmap is strictly concave there, clamped to [-0.5, 0.5]; elsewhere each axis
    moves 0.25 toward its higher neighbour.

    Args:
        neighbourhoods (`torch.Tensor` of shape `(..., 3, 3)`): heatmap values around each peak, the peak
            in the middle, rows going down (y) and columns right (x).

    Returns:
        `torch.Tensor` of shape `(..., 2)`.
    """
    # an elementwise product and a sum, not a matmul: a GPU's TF32 matmuls would round the derivatives
    log = neighbourhoods.clamp_min(1e-10).log().flatten(-2).unsqueeze(-1)
    gx, gy, dxx, dyy, dxy = (log * _LOG_DERIVATIVES.to(log.device)).sum(dim=-2).unbind(-1)
    determinant = dxx * dyy - dxy**2
    concave = (dxx < 0) & (determinant > 1e-12)
    taylor = torch.stack([dyy * gx - dxy * gy, dxx * gy - dxy * gx], dim=-1) / -torch.where(
        concave, determinant, 1.0).unsqueeze(-1)
    row, column = neighbourhoods[..., 1, :], neighbourhoods[..., :, 1]  # through the peak along x, along y
    quarter = 0.25 * torch.stack([row[..., 2] - row[..., 0], column[..., 2] - column[..., 0]], dim=-1).sign()
    return torch.where(concave.unsqueeze(-1), taylor.clamp(-0.5, 0.5), quarter)
