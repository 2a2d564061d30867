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

import math

import numpy as np
import torch
from torchvision.ops import box_iou, nms as tv_nms

__all__ = [
    "keypoint_boxes", "keypoint_box_area", "oks_matrix", "oks_eval", "oks_train",
    "iou_matrix", "greedy_nms", "greedy_nms_lazy", "oks_nms", "iou_nms", "pose_oks_matrix", "pose_oks_nms",
]


def _vars(sigmas, like: torch.Tensor) -> torch.Tensor:
    s = torch.as_tensor(sigmas, dtype=like.dtype, device=like.device)
    return (2.0 * s) ** 2


# exp(−e) for e ≥ EXP_CUTOFF (float32: < 1.9e-35; float64 uses 700: < 1e-304) is taken as
# exactly 0, as underflow gives for the far poses: an OKS changes by < 2e-35 at most and distant
# poses still have OKS 0 (threshold 0 keeps them). torch's and NumPy's vectorised exp fall back to a ~100× slower path for
# arguments far below −87, which made the OKS of distant poses (e in the thousands) the
# dominant cost of NMS and of the OKS target assignment.
EXP_CUTOFF = 80.0


def _exp_neg(e: torch.Tensor) -> torch.Tensor:
    """exp(−e), exactly 0 for e ≥ ``EXP_CUTOFF`` (see there)."""
    cut = EXP_CUTOFF if e.dtype != torch.float64 else 700.0
    small = e < cut
    return torch.exp(-e.clamp(max=cut)) * small


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
    sim = _exp_neg(d2 / denom) * gt_visible[None].to(p.dtype)
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


def _visit_order(scores: torch.Tensor) -> torch.Tensor:
    return torch.sort(scores, descending=True, stable=True).indices


def greedy_nms(overlap: torch.Tensor, scores: torch.Tensor, threshold: float) -> torch.Tensor:
    """Greedy NMS on a precomputed [N, N] overlap matrix.

    Candidates are visited by descending score (ties: lower index first, a stable sort);
    a kept candidate suppresses every later one with overlap > threshold.
    Returns kept indices in visiting order.

    The pass runs on the boolean "suppresses" matrix in NumPy and touches only the rows of
    kept candidates (one vectorised AND each); the decision per candidate is the reference
    loop's (``tests/test_oks_nms.py`` keeps that loop as the oracle). 1,000 candidates: well
    under 1 ms (the earlier per-candidate tensor loop: ~20–500 ms).
    """
    n = scores.numel()
    if n == 0:
        return torch.zeros(0, dtype=torch.long, device=scores.device)
    order = _visit_order(scores)
    order_np = order.cpu().numpy()
    ov = (overlap > threshold).cpu().numpy()[np.ix_(order_np, order_np)]
    alive = np.ones(n, dtype=bool)
    keep = []
    i = 0
    while i < n:
        keep.append(i)
        alive &= ~ov[i]
        alive[: i + 1] = False
        nxt = alive.argmax()                       # first alive candidate after i (0 if none)
        if not alive[nxt]:
            break
        i = int(nxt)
    return order[torch.as_tensor(keep, dtype=torch.long, device=order.device)]


def greedy_nms_lazy(rows, scores: torch.Tensor, threshold: float) -> torch.Tensor:
    """Greedy NMS computing only the overlap rows it needs: ``rows(i, js)`` returns the overlap
    of candidate ``i`` with candidates ``js`` (original indices; ``js`` and the result are 1-D
    NumPy arrays). Same
    visiting order and rule as ``greedy_nms``; the rows of kept candidates are evaluated, each
    only against the still-alive later candidates, so the cost is O(kept · N · K) instead of
    O(N² · K) for the full matrix (1,000 candidates, 17 keypoints: the matrix alone is
    17 M exponentials and ~1 s here)."""
    n = scores.numel()
    if n == 0:
        return torch.zeros(0, dtype=torch.long, device=scores.device)
    order = _visit_order(scores)
    order_np = order.cpu().numpy()
    alive = np.ones(n, dtype=bool)
    keep = []
    i = 0
    while True:
        keep.append(i)
        alive[i] = False
        rest = np.flatnonzero(alive[i + 1:]) + (i + 1)
        if rest.size == 0:
            break
        sup = np.asarray(rows(int(order_np[i]), order_np[rest])) > threshold
        alive[rest[sup]] = False
        left = rest[~sup]
        if left.size == 0:
            break
        i = int(left[0])
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


def _pose_oks_block(x_a: np.ndarray, y_a: np.ndarray, area_a: np.ndarray, x_b: np.ndarray, y_b: np.ndarray,
                    area_b: np.ndarray, var: np.ndarray) -> np.ndarray:
    """Inference OKS (float32 NumPy; see ``pose_oks_matrix``) of A poses against B poses given as
    keypoint-major coordinates x, y [K, A] / [K, B] and areas [A] / [B] → [A, B].
    One code path for the full matrix and for the rows of the lazy NMS, so both see the same
    bits whatever A and B. NumPy, not torch: the NMS calls it once per kept pose on small arrays, where a NumPy
    op costs ~1.5 µs and a torch op ~5–10 µs of dispatch."""
    k = x_a.shape[0]
    inv = np.float32(2.0) / (area_a[:, None] + area_b[None, :])                   # 1 / pair area [A, B]
    dx = x_a[:, :, None] - x_b[:, None, :]                                         # [K, A, B]
    dy = y_a[:, :, None] - y_b[:, None, :]
    dx *= dx
    dy *= dy
    dx += dy
    dx *= inv
    dx *= (np.float32(1.0) / var)[:, None, None]
    far = dx >= np.float32(EXP_CUTOFF)                                           # exp → exactly 0
    np.minimum(dx, np.float32(EXP_CUTOFF), out=dx)
    np.negative(dx, out=dx)
    np.exp(dx, out=dx)
    dx[far] = 0
    # reducing the leading axis of a C-contiguous array is a sequential add over k (no pairwise
    # regrouping), so an entry's bits do not depend on A or B
    total = np.add.reduce(dx, axis=0)
    total /= np.float32(k)                      # a division: k ones give exactly 1.0
    return total


def _pose_arrays(keypoints: torch.Tensor, sigmas, min_area: float):
    xy = keypoints[..., :2].detach().float().cpu().numpy()                         # [N, K, 2]
    x, y = np.ascontiguousarray(xy[..., 0].T), np.ascontiguousarray(xy[..., 1].T)  # [K, N]
    box = np.stack([x.min(0), y.min(0), x.max(0), y.max(0)])                       # [4, N] keypoint box
    area = np.maximum((box[2] - box[0]) * (box[3] - box[1]), np.float32(min_area)).astype(np.float32)
    var = ((2.0 * np.asarray(sigmas, dtype=np.float64)) ** 2).astype(np.float32)
    return x, y, box, area, var


def pose_oks_matrix(keypoints: torch.Tensor, sigmas, min_area: float = 32.0 ** 2) -> torch.Tensor:
    """Symmetric OKS between predicted poses, as the authors' inference NMS defines it.

    Differs from the evaluation OKS: every keypoint counts (predictions have no visibility), the
    pair's area is the mean of the two keypoint-extent areas (each clamped ≥ ``min_area``), and
    there is no "/2": e_k = d_k² / ((2σ_k)² · (a_i + a_j)/2). Float32, computed on the CPU,
    returned on the keypoints' device.
    """
    x, y, _, area, var = _pose_arrays(keypoints, sigmas, min_area)
    return torch.from_numpy(_pose_oks_block(x, y, area, x, y, area, var)).to(keypoints.device)


def pose_oks_nms(keypoints: torch.Tensor, scores: torch.Tensor, threshold: float, sigmas,
                 min_area: float = 32.0 ** 2) -> torch.Tensor:
    """Greedy OKS-NMS of the model's inference (authors' formula, see ``pose_oks_matrix``),
    evaluated lazily (as ``greedy_nms_lazy``, specialised): only the rows of kept poses are
    computed, and in each row only the still-alive poses that *can* exceed the threshold.
    Every keypoint pair of two poses is at least the distance g between their keypoint boxes
    apart, so OKS ≤ exp(−g² / (max_k
    (2σ_k)² · pair area)); a pose whose bound exponent exceeds −ln(threshold) + 1e-3 (the
    margin covers rounding) cannot be suppressed and its entry is not computed. The keep-list
    is ``greedy_nms(pose_oks_matrix(...))``'s: same OKS code, same bits (property-tested
    against the reference loop, ties included)."""
    if scores.numel() == 0:
        return torch.zeros(0, dtype=torch.long, device=scores.device)
    order = _visit_order(scores)
    o = order.cpu().numpy()
    x, y, box, area, var = _pose_arrays(keypoints[order], sigmas, min_area)    # in visiting order
    n = o.size
    limit = np.inf if threshold <= 0 else max(0.0, -math.log(threshold)) + 1e-3
    x0, y0, x1, y1 = box
    # bound exponent ≥ g² / (max var · pair area); compare g² > limit · max var · (a_i + a_j) / 2
    prune = bool(np.isfinite(limit))
    lim_area = area * np.float32(limit * 0.5 * float(var.max())) if prune else area
    alive = np.ones(n, dtype=bool)
    keep = []
    i = 0
    while True:
        keep.append(i)
        s = slice(i + 1, n)
        gx = np.maximum(np.maximum(x0[s], x0[i]) - np.minimum(x1[s], x1[i]), 0)
        gy = np.maximum(np.maximum(y0[s], y0[i]) - np.minimum(y1[s], y1[i]), 0)
        gx *= gx
        gy *= gy
        gx += gy
        near = alive[s] & (gx <= lim_area[s] + lim_area[i]) if prune else alive[s]
        jn = np.flatnonzero(near) + (i + 1)
        if jn.size:
            ov = _pose_oks_block(x[:, i:i + 1], y[:, i:i + 1], area[i:i + 1], x[:, jn], y[:, jn], area[jn], var)[0]
            alive[jn[ov > threshold]] = False
        nxt = np.flatnonzero(alive[s])
        if nxt.size == 0:
            break
        i = int(nxt[0]) + i + 1
    return order[torch.as_tensor(keep, dtype=torch.long, device=order.device)]
