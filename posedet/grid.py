"""The one coordinate convention shared by the head, target assignment and decoding.

Feature location (i, j) on a level of stride s stands for image pixel (x, y) = (j·s, i·s)
(the mmdetection point-generator convention the authors' code uses). Offsets are (dy, dx)
per keypoint, interleaved as [dy_0, dx_0, dy_1, dx_1, …] in stride units, so keypoint k of
the candidate at (i, j) is at (x, y) = ((j + dx_k)·s, (i + dy_k)·s). The same offsets, read
in feature pixels, are where the pose embedding samples the feature map.
"""
from __future__ import annotations

import torch


def grid_points(height: int, width: int, stride: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """[H·W, 2] image-pixel (x, y) of every feature location, row-major (i, then j)."""
    ys = torch.arange(height, device=device, dtype=dtype) * stride
    xs = torch.arange(width, device=device, dtype=dtype) * stride
    yy, xx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([xx.reshape(-1), yy.reshape(-1)], dim=-1)


def offsets_to_keypoints(offsets: torch.Tensor, stride: int) -> torch.Tensor:
    """[B, 2K, H, W] (dy, dx) offsets in stride units → [B, H·W, K, 2] image (x, y)."""
    b, c, h, w = offsets.shape
    k = c // 2
    off = offsets.reshape(b, k, 2, h * w).permute(0, 3, 1, 2)                # [B, HW, K, (dy, dx)]
    pts = grid_points(h, w, stride, offsets.device, offsets.dtype)           # [HW, (x, y)]
    x = pts[None, :, None, 0] + off[..., 1] * stride
    y = pts[None, :, None, 1] + off[..., 0] * stride
    return torch.stack([x, y], dim=-1)


def keypoints_to_offsets(keypoints_xy: torch.Tensor, points_xy: torch.Tensor, stride: int) -> torch.Tensor:
    """Inverse of ``offsets_to_keypoints`` for matched pairs: [..., K, 2] image (x, y) and
    [..., 2] grid points → [..., 2K] (dy, dx) in stride units, interleaved."""
    d = (keypoints_xy - points_xy[..., None, :]) / stride                   # [..., K, (dx, dy)]
    return d.flip(-1).reshape(*d.shape[:-2], -1)
