"""Seeded crowds of real COCO poses for decoding ideal maps: many people, tight overlaps, every person resolvable.

Shared by the codec tests of both model families (not a test module itself). Each person is one of
the fixture's labeled people, rescaled and placed at random; about half are placed a few pixels from
an earlier person (a tight overlap: boxes mostly shared). A placement is redrawn while any of its
keypoints lies within `MIN_SEPARATION` heatmap pixels of a same-type keypoint (or its center near
another center): closer than that, two Gaussians of the max-rendered target share the 3 x 3
neighbourhood that sub-pixel refinement reads, so no decoder could place both exactly.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from scipy.optimize import linear_sum_assignment

HEATMAP_SIZE = (64, 64)
STRIDE = 4
SIGMA = 2.0
MIN_SEPARATION = 4.5  # heatmap pixels; refinement reads up to 2.1 px from a keypoint, twice that is safe
PERSON_HEIGHTS = (12.0, 24.0)  # heatmap pixels
MAX_TRIES = 2000


def fixture_poses(fixture_dir: Path) -> list[torch.Tensor]:
    """The fixture's labeled people as `[17, 3]` (x, y, v), labeled keypoints in their box scaled to height 1."""
    annotations = json.loads((fixture_dir / "test_coco.json").read_text())["annotations"]
    poses = []
    for annotation in annotations:
        keypoints = torch.tensor(annotation["keypoints"], dtype=torch.float32).view(-1, 3)
        labeled = keypoints[:, 2] > 0
        if labeled.sum() < 2:
            continue
        corner = keypoints[labeled, :2].amin(dim=0)
        height = (keypoints[labeled, :2].amax(dim=0) - corner).max()
        keypoints[:, :2] = (keypoints[:, :2] - corner) / height * labeled.unsqueeze(1)
        poses.append(keypoints)
    return poses


def ideal_crowd(fixture_dir: Path, num_people: int, seed: int) -> torch.Tensor:
    """`[1, num_people, 17, 3]` keypoints in input pixels (v = 2 where labeled) of a resolvable crowd."""
    generator = torch.Generator().manual_seed(seed)
    poses = fixture_poses(fixture_dir)
    placed: list[torch.Tensor] = []  # heatmap coordinates, [17, 3]
    for _ in range(num_people):
        placed.append(_place_one(poses, placed, generator))
    keypoints = torch.stack(placed).unsqueeze(0)
    labeled = keypoints[..., 2:] > 0
    coords = ((keypoints[..., :2] + 0.5) * STRIDE - 0.5) * labeled
    return torch.cat([coords, 2.0 * labeled], dim=-1)


def _place_one(poses: list[torch.Tensor], placed: list[torch.Tensor], generator: torch.Generator) -> torch.Tensor:
    """A random pose at a random place (half the time beside an earlier person) clear of everyone placed."""
    for _ in range(MAX_TRIES):
        pose = poses[int(torch.randint(len(poses), (1,), generator=generator))].clone()
        height = PERSON_HEIGHTS[0] + (PERSON_HEIGHTS[1] - PERSON_HEIGHTS[0]) * float(torch.rand(1, generator=generator))
        labeled = pose[:, 2] > 0
        pose[:, :2] *= height
        extent = pose[labeled, :2].amax(dim=0)
        room = torch.tensor(HEATMAP_SIZE[::-1], dtype=torch.float32) - 3 - extent
        corner = 1 + room * torch.rand(2, generator=generator)
        if placed and float(torch.rand(1, generator=generator)) < 0.5:
            neighbour = placed[int(torch.randint(len(placed), (1,), generator=generator))]
            shift = (torch.rand(2, generator=generator) - 0.5) * 4 * MIN_SEPARATION
            corner = (_corner(neighbour) + shift).clamp(torch.ones(2), 1 + room)
        pose[labeled, :2] += corner
        if _clear_of(pose, placed):
            return pose
    raise RuntimeError(f"no clear place for person {len(placed) + 1} after {MAX_TRIES} tries")


def _corner(pose: torch.Tensor) -> torch.Tensor:
    return pose[pose[:, 2] > 0, :2].amin(dim=0)


def _center(pose: torch.Tensor) -> torch.Tensor:
    return pose[pose[:, 2] > 0, :2].mean(dim=0)


def _clear_of(pose: torch.Tensor, placed: list[torch.Tensor]) -> bool:
    """No same-type keypoint and no center within `MIN_SEPARATION` of `pose`'s."""
    for other in placed:
        both = (pose[:, 2] > 0) & (other[:, 2] > 0)
        if ((pose[both, :2] - other[both, :2]).norm(dim=-1) < MIN_SEPARATION).any():
            return False
        if (_center(pose) - _center(other)).norm() < MIN_SEPARATION:
            return False
    return True


def assert_decoded_exactly(poses, keypoints: torch.Tensor, atol: float = 1e-3) -> None:
    """`poses` (one image) holds exactly the people of `keypoints` `[1, M, K, 3]`: as many, and one-to-one each
    labeled keypoint within `atol` input pixels (people matched by total labeled-keypoint distance)."""
    found = poses.to_list()[0]["keypoints"]
    truth, labeled = keypoints[0, ..., :2], keypoints[0, ..., 2] > 0
    assert len(found) == len(truth), f"decoded {len(found)} people, expected {len(truth)}"
    distance = (found.unsqueeze(1) - truth.unsqueeze(0)).norm(dim=-1) * labeled  # [found, truth, K]
    rows, cols = linear_sum_assignment(distance.sum(dim=-1).numpy())
    worst = distance[rows, cols].max().item()
    assert worst <= atol, f"a labeled keypoint decoded {worst:.4f} px from the truth"
