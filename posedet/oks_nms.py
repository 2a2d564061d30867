"""OKS and NMS as pure tensor functions.

Two OKS definitions live here, both vectorised over all pairs:

* ``oks_eval``   – the COCO evaluation OKS (pycocotools ``computeOks``):
  e = d² / (2 · area · (2σ)²), averaged over the GT's labelled keypoints (v > 0).
* ``oks_train``  – the training OKS of the authors' code (DESIGN.md): same form, but
  the area is the annotated box w·h and there is no "/2": e = d² / (area · (2σ)²).

Greedy NMS keeps the highest-scoring candidate and suppresses every remaining one whose
overlap with it is *strictly greater* than the threshold, so a threshold of 1.0 suppresses
nothing. IoU-NMS delegates to ``torchvision.ops.nms`` (same rule); OKS-NMS has no maintained
library implementation on tensors (xtcocotools/mmpose ship numpy loops), so it is written
here: one vectorised OKS matrix, then the greedy pass.
"""
from __future__ import annotations

import torch
from torchvision.ops import box_iou, nms as tv_nms

__all__ = [
    "keypoint_boxes", "keypoint_box_area", "oks_matrix", "oks_eval", "oks_train",
    "iou_matrix", "greedy_nms", "oks_nms", "iou_nms", "pose_oks_matrix", "pose_oks_nms",
]


def _vars(sigmas, like: torch.Tensor) -> torch.Tensor:
    s = torch.as_tensor(sigmas, dtype=like.dtype, device=like.device)
    return (2.0 * s) ** 2


def keypoint_boxes(keypoints: torch.Tensor, visible: torch.Tensor | None = None) -> torch.Tensor:
    """[N, K, 2|3] keypoints → [N, 4] xyxy box of the visible (or all) keypoints.

    ``visible`` defaults to v > 0 when a third column is present, else all points.
    A pose with no visible keypoint gets a degenerate zero box.
    """
    xy = keypoints[..., :2]
    if visible is None:
        visible = keypoints[..., 2] > 0 if keypoints.shape[-1] > 2 else torch.ones_like(xy[..., 0], dtype=torch.bool)
    big = torch.finfo(xy.dtype).max
    lo = torch.where(visible[..., None], xy, torch.full_like(xy, big)).amin(dim=-2)
    hi = torch.where(visible[..., None], xy, torch.full_like(xy, -big)).amax(dim=-2)
    any_vis = visible.any(dim=-1, keepdim=True)
    lo = torch.where(any_vis, lo, torch.zeros_like(lo))
    hi = torch.where(any_vis, hi, torch.zeros_like(hi))
    return torch.cat([lo, hi], dim=-1)


def keypoint_box_area(keypoints: torch.Tensor, visible: torch.Tensor | None = None) -> torch.Tensor:
    b = keypoint_boxes(keypoints, visible)
    return (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])


def oks_matrix(pred: torch.Tensor, gt: torch.Tensor, gt_areas: torch.Tensor, sigmas,
               gt_visible: torch.Tensor | None = None, scale: float = 2.0) -> torch.Tensor:
    """OKS of every pred against every GT: [N, K, ≥2] × [M, K, ≥2] → [N, M].

    e_k = d_k² / (scale · area · (2σ_k)²); OKS = mean over the GT's visible keypoints of exp(−e_k).
    ``scale=2`` is the COCO evaluation, ``scale=1`` the authors' training OKS.
    A GT with no visible keypoint has OKS 0 with everything.
    """
    if gt_visible is None:
        gt_visible = gt[..., 2] > 0 if gt.shape[-1] > 2 else torch.ones_like(gt[..., 0], dtype=torch.bool)
    p = pred[..., :2].to(torch.float64 if pred.dtype == torch.float64 else torch.float32)
    g = gt[..., :2].to(p.dtype)
    d2 = ((p[:, None] - g[None]) ** 2).sum(-1)                                # [N, M, K]
    denom = scale * gt_areas.to(p.dtype).clamp_min(torch.finfo(p.dtype).eps)[None, :, None] * _vars(sigmas, p)
    sim = torch.exp(-d2 / denom) * gt_visible[None].to(p.dtype)
    n_vis = gt_visible.sum(-1).to(p.dtype)[None]                              # [1, M]
    return torch.where(n_vis > 0, sim.sum(-1) / n_vis.clamp_min(1), torch.zeros_like(n_vis))


def oks_eval(pred, gt, gt_areas, sigmas, gt_visible=None):
    """COCO-evaluation OKS (with the /2): see ``oks_matrix``."""
    return oks_matrix(pred, gt, gt_areas, sigmas, gt_visible, scale=2.0)


def oks_train(pred, gt, gt_box_areas, sigmas, gt_visible=None):
    """Training OKS of the authors' code: annotated box area w·h, no /2."""
    return oks_matrix(pred, gt, gt_box_areas, sigmas, gt_visible, scale=1.0)


def iou_matrix(boxes_a: torch.Tensor, boxes_b: torch.Tensor) -> torch.Tensor:
    """IoU of xyxy boxes; degenerate (zero-area) pairs give 0, not NaN."""
    return torch.nan_to_num(box_iou(boxes_a, boxes_b), nan=0.0)


def greedy_nms(overlap: torch.Tensor, scores: torch.Tensor, threshold: float) -> torch.Tensor:
    """Greedy NMS on a precomputed [N, N] overlap matrix.

    Candidates are visited by descending score (ties: lower index first, a stable sort);
    a kept candidate suppresses every later one with overlap > threshold.
    Returns kept indices in visiting order.
    """
    n = scores.numel()
    if n == 0:
        return torch.zeros(0, dtype=torch.long, device=scores.device)
    order = torch.sort(scores, descending=True, stable=True).indices
    ov = (overlap[order][:, order] > threshold).cpu()
    alive = torch.ones(n, dtype=torch.bool)
    keep = []
    for i in range(n):
        if alive[i]:
            keep.append(i)
            alive &= ~ov[i]
            alive[i] = False
    return order[torch.as_tensor(keep, dtype=torch.long, device=order.device)]


def oks_nms(keypoints: torch.Tensor, scores: torch.Tensor, threshold: float, sigmas,
            areas: torch.Tensor | None = None, visible: torch.Tensor | None = None,
            min_area: float = 0.0) -> torch.Tensor:
    """Greedy OKS-NMS (evaluation OKS). ``areas`` default to the keypoint-box area,
    clamped below at ``min_area`` (the model uses 32²; the GT study uses 0)."""
    if areas is None:
        areas = keypoint_box_area(keypoints, visible)
    areas = areas.clamp_min(min_area)
    if visible is None:
        visible = keypoints[..., 2] > 0 if keypoints.shape[-1] > 2 else torch.ones_like(keypoints[..., 0], dtype=torch.bool)
    ov = oks_eval(keypoints, keypoints, areas, sigmas, gt_visible=visible)
    return greedy_nms(ov, scores, threshold)


def iou_nms(boxes: torch.Tensor, scores: torch.Tensor, threshold: float) -> torch.Tensor:
    """Greedy IoU-NMS on xyxy boxes, via torchvision (suppress IoU > threshold).

    torchvision's kernel breaks score ties by its own sort; to give the same keep-list as
    ``greedy_nms`` we pass stable-sorted ranks as scores.
    """
    if boxes.numel() == 0:
        return torch.zeros(0, dtype=torch.long, device=boxes.device)
    order = torch.sort(scores, descending=True, stable=True).indices
    rank_score = torch.empty_like(scores, dtype=torch.float32)
    rank_score[order] = torch.arange(order.numel(), 0, -1, dtype=torch.float32, device=scores.device)
    return tv_nms(boxes.float(), rank_score, threshold)


def pose_oks_matrix(keypoints: torch.Tensor, sigmas, min_area: float = 32.0 ** 2) -> torch.Tensor:
    """Symmetric OKS between predicted poses, as the authors' inference NMS defines it.

    Differs from the evaluation OKS: every keypoint counts (predictions have no visibility), the
    pair's area is the mean of the two keypoint-extent areas (each clamped ≥ ``min_area``), and
    there is no "/2": e_k = d_k² / ((2σ_k)² · (a_i + a_j)/2).
    """
    xy = keypoints[..., :2].float()
    a = keypoint_box_area(xy).clamp_min(min_area)
    pair_area = (a[:, None] + a[None, :]) / 2                                 # [N, N]
    d2 = ((xy[:, None] - xy[None]) ** 2).sum(-1)                              # [N, N, K]
    return torch.exp(-d2 / (_vars(sigmas, xy) * pair_area[..., None])).mean(-1)


def pose_oks_nms(keypoints: torch.Tensor, scores: torch.Tensor, threshold: float, sigmas,
                 min_area: float = 32.0 ** 2) -> torch.Tensor:
    """Greedy OKS-NMS of the model's inference (authors' formula, see ``pose_oks_matrix``)."""
    if scores.numel() == 0:
        return torch.zeros(0, dtype=torch.long, device=scores.device)
    return greedy_nms(pose_oks_matrix(keypoints, sigmas, min_area), scores, threshold)
