"""Target assignment for PoseDet, as pure functions on tensors (kept apart from the head).

Layout
------
Every per-candidate quantity is *flattened across pyramid levels*: candidate ``p`` of an
image is one feature location of one level, levels in the order of ``strides`` and, within a
level, row-major (i, then j) as in ``grid.grid_points``. With feature sizes (H_l, W_l) the
candidate count is P = Σ_l H_l·W_l, and level l occupies ``[start_l, start_l + H_l·W_l)``.
Tensors are [B, P, …]. ``decode.py`` and ``losses.py`` use the same order (``flatten_levels``,
``candidate_keypoints``, ``candidate_strides``).

Ground truth per image is given in input-image pixels: ``keypoints`` [N, K, 3] (x, y, v; v = 0
not labelled), ``boxes`` [N, 4] xyxy (the annotated box after the transform) and optionally
``box_areas`` [N] (the annotated box's w·h before clipping to the crop; preferred over the
clipped ``boxes`` when present, as the authors' crop never clips boxes).

Rules (DESIGN.md, "PoseDet, as the paper and the authors' code define it"):

* coarse ("init") assignment — ``assign_coarse``: one positive per person on one level;
* refine and classification assignment — ``assign_refine_cls``: training OKS of the detached
  coarse poses against every GT;
* intermediate supervision — ``heatmap_targets`` (and ``heatmap_weights``).

The assigners are hand-written: they are PoseDet-specific (no library ships keypoint-centroid or
OKS-threshold assignment on tensors); the OKS itself comes from ``oks_nms.oks_train``.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch

from .grid import grid_points, offsets_to_keypoints
from .oks_nms import keypoint_boxes, oks_train

__all__ = [
    "level_starts", "candidate_strides", "candidate_levels", "flatten_levels",
    "candidate_keypoints", "assign_coarse", "assign_refine_cls", "heatmap_targets",
    "heatmap_weights", "gt_box_areas",
]


# ----------------------------------------------------------------------------- layout helpers


def _sizes(feat_sizes) -> list[tuple[int, int]]:
    return [(int(h), int(w)) for h, w in feat_sizes]


def level_starts(feat_sizes: Sequence[tuple[int, int]]) -> list[int]:
    """Start offset of each level in the flattened candidate axis, plus the total P at the end."""
    starts = [0]
    for h, w in _sizes(feat_sizes):
        starts.append(starts[-1] + h * w)
    return starts


def candidate_strides(strides: Sequence[int], feat_sizes, device=None,
                      dtype=torch.float32) -> torch.Tensor:
    """[P] stride of every flattened candidate."""
    parts = [torch.full((h * w,), float(s), device=device, dtype=dtype)
             for s, (h, w) in zip(strides, _sizes(feat_sizes))]
    return torch.cat(parts) if parts else torch.zeros(0, device=device, dtype=dtype)


def candidate_levels(feat_sizes, device=None) -> torch.Tensor:
    """[P] level index of every flattened candidate."""
    parts = [torch.full((h * w,), l, device=device, dtype=torch.long)
             for l, (h, w) in enumerate(_sizes(feat_sizes))]
    return torch.cat(parts) if parts else torch.zeros(0, device=device, dtype=torch.long)


def flatten_levels(maps: Sequence[torch.Tensor]) -> torch.Tensor:
    """list of [B, C, H_l, W_l] → [B, P, C] in the flattened candidate order."""
    return torch.cat([m.flatten(2).transpose(1, 2) for m in maps], dim=1)


def candidate_keypoints(offsets: Sequence[torch.Tensor], strides: Sequence[int]) -> torch.Tensor:
    """list of [B, 2K, H_l, W_l] (dy, dx) offsets in stride units → [B, P, K, 2] image (x, y)."""
    return torch.cat([offsets_to_keypoints(o, int(s)) for o, s in zip(offsets, strides)], dim=1)


def gt_box_areas(gt: dict) -> torch.Tensor:
    """[N] training-OKS area of one image's GT: ``box_areas`` if given, else w·h of ``boxes``."""
    if gt.get("box_areas") is not None:
        return torch.as_tensor(gt["box_areas"]).reshape(-1)
    b = torch.as_tensor(gt["boxes"]).reshape(-1, 4)
    return (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])


def _check_levels(strides, feat_sizes) -> None:
    if len(strides) != len(feat_sizes):
        raise ValueError(f"{len(strides)} strides for {len(feat_sizes)} feature sizes")
    for s in strides:
        if int(s) <= 0 or (int(s) & (int(s) - 1)) != 0:
            raise ValueError(f"stride {s} is not a positive power of two (strides {list(strides)})")


# ------------------------------------------------------------------------- coarse assignment


def assign_coarse(gt_keypoints: Sequence[torch.Tensor], strides: Sequence[int], feat_sizes,
                  centroid: str = "keypoints", min_keypoints: int = 3,
                  max_level_stride: int | None = None, base_scale: float = 4.0,
                  pos_num: int = 1) -> dict:
    """Coarse (bypass) assignment: at most ``pos_num`` positive candidates per person (1 in the
    authors' config: mmdetection's ``PointAssigner(pos_num=1)``).

    Per image and person with ≥ ``min_keypoints`` labelled keypoints (v > 0):

    * box = extent of the labelled keypoints, w and h clamped ≥ 1;
    * level: log2(stride) = ⌊(log2(w/4) + log2(h/4)) / 2⌋ (4 = ``base_scale``), clamped to the
      levels available (strides ≤ ``max_level_stride`` when given) — with strides 8…64:
      √(wh) < 64 → 8, [64, 128) → 16, [128, 256) → 32, ≥ 256 → 64;
    * centre: mean of the labelled keypoints (``centroid='keypoints'``) or the keypoint box's
      centre (``'box'``, the ablation);
    * positive: the grid point (j·s, i·s) nearest to the centre, i.e. (round(cy/s), round(cx/s))
      clamped inside the map; with ``pos_num`` = n > 1, the n grid points of that level nearest
      to the centre (PointAssigner's ``pos_num``; ties broken by row-major order of the window);
    * two persons on one grid point: the nearer one wins, distance measured as in the authors'
      code, ‖(grid − centre) / (w, h)‖ (ties: the earlier person).

    Returns (flattened layout, see the module docstring), for a batch of B images:
    ``pos`` bool [B, P]; ``target_xy`` [B, P, K, 2] image px (zeros off the positives);
    ``weight`` [B, P, K] (1 for the labelled keypoints of a positive's person, else 0);
    ``gt_index`` long [B, P] (index into that image's GT list, −1 for none);
    ``strides`` [P] float (stride of each candidate); ``level_starts`` list[int] (length L+1).
    """
    if centroid not in ("keypoints", "box"):
        raise ValueError(f"centroid must be 'keypoints' or 'box', got {centroid!r}")
    _check_levels(strides, feat_sizes)
    sizes = _sizes(feat_sizes)
    starts = level_starts(sizes)
    num_cand = starts[-1]
    avail = [l for l, s in enumerate(strides) if max_level_stride is None or int(s) <= max_level_stride]
    if not avail:
        raise ValueError(f"no level with stride ≤ max_level_stride={max_level_stride} in {list(strides)}")

    batch = len(gt_keypoints)
    first = next((g for g in gt_keypoints if g.numel()), None)
    device = first.device if first is not None else torch.device("cpu")
    num_kp = int(first.shape[1]) if first is not None else (int(gt_keypoints[0].shape[1]) if batch else 0)
    dtype = first.dtype if first is not None and first.is_floating_point() else torch.float32

    pos = torch.zeros(batch, num_cand, dtype=torch.bool, device=device)
    target = torch.zeros(batch, num_cand, num_kp, 2, dtype=dtype, device=device)
    weight = torch.zeros(batch, num_cand, num_kp, dtype=dtype, device=device)
    gt_index = torch.full((batch, num_cand), -1, dtype=torch.long, device=device)

    avail_t = torch.as_tensor(avail, device=device)
    log_s = torch.as_tensor([math.log2(int(strides[l])) for l in avail], device=device, dtype=torch.float64)
    s_all = torch.as_tensor([float(s) for s in strides], device=device, dtype=torch.float64)
    h_all = torch.as_tensor([h for h, _ in sizes], device=device)
    w_all = torch.as_tensor([w for _, w in sizes], device=device)
    start_all = torch.as_tensor(starts[:-1], device=device)

    for b, kps in enumerate(gt_keypoints):
        if kps.numel() == 0:
            continue
        kps = kps.to(device)
        vis = kps[..., 2] > 0                                                  # [N, K]
        keep = vis.sum(-1) >= min_keypoints
        if not keep.any():
            continue
        idx = torch.nonzero(keep).squeeze(1)                                   # persons kept
        kp, vi = kps[idx].to(torch.float64), vis[idx]
        box = keypoint_boxes(kp, vi)                                           # [n, 4]
        w = (box[:, 2] - box[:, 0]).clamp_min(1.0)
        h = (box[:, 3] - box[:, 1]).clamp_min(1.0)
        lvl = torch.floor((torch.log2(w / base_scale) + torch.log2(h / base_scale)) / 2)
        lvl = lvl.clamp(log_s.min(), log_s.max())
        li = avail_t[(lvl[:, None] - log_s[None]).abs().argmin(1)]            # level index [n]
        if centroid == "keypoints":
            vf = vi.to(kp.dtype)[..., None]
            centre = (kp[..., :2] * vf).sum(1) / vf.sum(1)
        else:
            centre = (box[:, :2] + box[:, 2:]) / 2
        s = s_all[li]
        j = torch.floor(centre[:, 0] / s + 0.5).long().clamp(min=0)
        i = torch.floor(centre[:, 1] / s + 0.5).long().clamp(min=0)
        j = torch.minimum(j, w_all[li] - 1)
        i = torch.minimum(i, h_all[li] - 1)
        if pos_num > 1:
            # the pos_num grid points nearest to the centre: search a window around the nearest one
            r = int(math.ceil(math.sqrt(pos_num))) + 1
            dd = torch.arange(-r, r + 1, device=device)
            wi = (i[:, None, None] + dd[None, :, None]).expand(-1, -1, dd.numel()).reshape(i.numel(), -1)
            wj = (j[:, None, None] + dd[None, None, :]).expand(-1, dd.numel(), -1).reshape(j.numel(), -1)
            inside = (wi >= 0) & (wj >= 0) & (wi < h_all[li][:, None]) & (wj < w_all[li][:, None])
            gd = ((wj * s[:, None] - centre[:, :1]) ** 2 + (wi * s[:, None] - centre[:, 1:]) ** 2)
            gd = torch.where(inside, gd, torch.full_like(gd, float("inf")))
            k_near = min(int(pos_num), gd.shape[1])
            near = torch.sort(gd, dim=1, stable=True).indices[:, :k_near]
            ok = torch.gather(inside, 1, near)
            i = torch.gather(wi, 1, near)[ok]
            j = torch.gather(wj, 1, near)[ok]
            rep = ok.sum(1)
            idx, li, s = idx.repeat_interleave(rep), li.repeat_interleave(rep), s.repeat_interleave(rep)
            centre = centre.repeat_interleave(rep, dim=0)
            w, h = w.repeat_interleave(rep), h.repeat_interleave(rep)
        flat = start_all[li] + i * w_all[li] + j                               # [n]
        dist = torch.stack([(j * s - centre[:, 0]) / w, (i * s - centre[:, 1]) / h], -1).norm(dim=-1)
        # conflicts: the smallest normalised distance wins, ties to the earlier person
        order = torch.sort(dist, stable=True).indices
        rank = torch.empty_like(order)
        rank[order] = torch.arange(order.numel(), device=device)
        best = torch.full((num_cand,), order.numel(), dtype=torch.long, device=device)
        best = best.scatter_reduce(0, flat, rank, reduce="amin")
        win = rank == best[flat]
        cells, persons = flat[win], idx[win]
        pos[b, cells] = True
        target[b, cells] = kps[persons, :, :2].to(dtype)
        weight[b, cells] = vis[persons].to(dtype)
        gt_index[b, cells] = persons
    return {
        "pos": pos, "target_xy": target, "weight": weight, "gt_index": gt_index,
        "strides": candidate_strides(strides, sizes, device=device, dtype=dtype),
        "level_starts": starts,
    }


# ------------------------------------------------------------- refine / classification assignment


def assign_refine_cls(coarse_xy_detached: torch.Tensor, gts: Sequence[dict], sigmas,
                      refine_pos_thr: float = 0.7, cls_pos_thr: float = 0.6,
                      cls_neg_thr: float = 0.5, min_keypoints: int = 3,
                      refine_low_quality_thr: float | None = 0.52) -> dict:
    """OKS-based assignment of every candidate for the refine and classification branches.

    ``coarse_xy_detached`` [B, P, K, 2]: every candidate's coarse pose (image px), detached.
    ``gts``: per image a dict with ``keypoints`` [N, K, 3] and ``boxes`` [N, 4] (``box_areas``
    [N] preferred when present). OKS is ``oks_train`` (area = annotated box w·h, no /2) between
    each candidate and each GT with ≥ ``min_keypoints`` labelled keypoints (the authors' OKS
    assigners use 3; the rest take no part), and each candidate takes its best GT:

    * refine: positive when OKS ≥ ``refine_pos_thr``; and, as the authors' refine assigner
      (``match_low_quality``, ``min_pos_iou=0.52``), every GT's best candidate(s) become positives
      of that GT when that best OKS ≥ ``refine_low_quality_thr`` (None: off);
    * classification: positive OKS ≥ ``cls_pos_thr``, negative OKS < ``cls_neg_thr``, the band
      between ignored. An image without any usable GT has only negatives.

    Vectorised per image: one [P, M] OKS matrix (memory P·M·K).

    Returns: ``refine_pos`` bool [B, P]; ``refine_target_xy`` [B, P, K, 2];
    ``refine_weight`` [B, P, K] (labelled keypoints of the assigned GT); ``refine_gt_index`` long
    [B, P] (−1 none); ``cls_label`` float [B, P] (1 pos, 0 otherwise); ``cls_weight`` float
    [B, P] (0 in the ignored band, else 1); ``cls_ignore`` bool [B, P]; ``max_oks`` [B, P]
    (best OKS, 0 without GT); ``cls_gt_index`` long [B, P] (best GT of the positives, else −1).
    """
    if coarse_xy_detached.dim() != 4:
        raise ValueError(f"coarse_xy_detached must be [B, P, K, 2], got {tuple(coarse_xy_detached.shape)}")
    if len(gts) != coarse_xy_detached.shape[0]:
        raise ValueError(f"{len(gts)} GT entries for a batch of {coarse_xy_detached.shape[0]}")
    coarse = coarse_xy_detached.detach()
    batch, num_cand, num_kp, _ = coarse.shape
    device, dtype = coarse.device, coarse.dtype if coarse.is_floating_point() else torch.float32

    refine_pos = torch.zeros(batch, num_cand, dtype=torch.bool, device=device)
    refine_target = torch.zeros(batch, num_cand, num_kp, 2, dtype=dtype, device=device)
    refine_weight = torch.zeros(batch, num_cand, num_kp, dtype=dtype, device=device)
    refine_gt = torch.full((batch, num_cand), -1, dtype=torch.long, device=device)
    max_oks = torch.zeros(batch, num_cand, dtype=torch.float32, device=device)
    best_gt = torch.full((batch, num_cand), -1, dtype=torch.long, device=device)

    for b, gt in enumerate(gts):
        kps = torch.as_tensor(gt["keypoints"]).to(device)
        if kps.numel() == 0:
            continue
        if kps.shape[-2] != num_kp:
            raise ValueError(f"image {b}: GT has {kps.shape[-2]} keypoints, predictions {num_kp}")
        vis = kps[..., 2] > 0
        usable = torch.nonzero(vis.sum(-1) >= min_keypoints).squeeze(1)
        if usable.numel() == 0:
            continue
        areas = gt_box_areas(gt).to(device)[usable]
        oks = oks_train(coarse[b].float(), kps[usable].float(), areas.float(), sigmas)   # [P, M]
        m_oks, m_arg = oks.max(dim=1)
        max_oks[b] = m_oks
        best_gt[b] = usable[m_arg]
        rpos = m_oks >= refine_pos_thr
        rgt = usable[m_arg]
        if refine_low_quality_thr is not None:
            gt_max = oks.max(dim=0).values                                             # [M]
            lq = (oks == gt_max[None]) & (gt_max[None] >= refine_low_quality_thr) & (gt_max[None] > 0)
            has_lq = lq.any(dim=1)
            # the authors' loop over GTs lets the last matching GT win
            last = lq.shape[1] - 1 - lq.flip(1).to(torch.uint8).argmax(dim=1)
            rgt = torch.where(has_lq, usable[last], rgt)
            rpos = rpos | has_lq
        refine_pos[b] = rpos
        refine_gt[b] = torch.where(rpos, rgt, torch.full_like(rgt, -1))
        sel = torch.nonzero(rpos).squeeze(1)
        refine_target[b, sel] = kps[rgt[sel], :, :2].to(dtype)
        refine_weight[b, sel] = vis[rgt[sel]].to(dtype)

    cls_pos = max_oks >= cls_pos_thr
    cls_neg = max_oks < cls_neg_thr
    cls_ignore = ~(cls_pos | cls_neg)
    return {
        "refine_pos": refine_pos, "refine_target_xy": refine_target, "refine_weight": refine_weight,
        "refine_gt_index": refine_gt,
        "cls_label": cls_pos.to(dtype), "cls_weight": (~cls_ignore).to(dtype), "cls_ignore": cls_ignore,
        "max_oks": max_oks, "cls_gt_index": torch.where(cls_pos, best_gt, torch.full_like(best_gt, -1)),
    }


# -------------------------------------------------------------------- intermediate supervision


def heatmap_targets(gt_keypoints: Sequence[torch.Tensor], strides: Sequence[int], feat_sizes,
                    sigma: float = 2.0) -> list[torch.Tensor]:
    """Gaussian keypoint heatmaps per level: list of [B, K, H_l, W_l].

    Each labelled keypoint (v > 0) puts exp(−d²/(2σ²)) (σ in feature pixels) around its nearest
    grid point (round(y/s), round(x/s)) — the peak there is exactly 1 — inside a square window of
    half-width 3σ + 1 (as the authors' ``GaussianMap``); persons are merged by max (CornerNet).
    Keypoints whose grid point falls outside the map are skipped. The authors truncate x/s to an
    integer (a half-cell shift against the grid convention); here the nearest grid point is used.
    """
    _check_levels(strides, feat_sizes)
    sizes = _sizes(feat_sizes)
    first = next((g for g in gt_keypoints if g.numel()), None)
    device = first.device if first is not None else torch.device("cpu")
    num_kp = int(first.shape[1]) if first is not None else (int(gt_keypoints[0].shape[1]) if len(gt_keypoints) else 0)
    r = int(math.floor(3 * sigma + 1))
    d = torch.arange(-r, r + 1, device=device)
    g1 = torch.exp(-(d.float() ** 2) / (2 * sigma ** 2))
    win = g1[:, None] * g1[None, :]                                              # [2r+1, 2r+1]
    batch = len(gt_keypoints)
    kps_all = [torch.as_tensor(g).to(device).float().reshape(-1, num_kp, 3) for g in gt_keypoints]
    bidx = torch.cat([torch.full((g.shape[0],), b, dtype=torch.long, device=device)
                      for b, g in enumerate(kps_all)]) if batch else torch.zeros(0, dtype=torch.long, device=device)
    kps_cat = torch.cat(kps_all) if batch else torch.zeros(0, num_kp, 3, device=device)
    out = []
    # scatter each keypoint's (2r+1)² window with a max-reduction: O(N·K·r²) instead of N·K·H·W
    for s, (h, w) in zip(strides, sizes):
        hm = torch.zeros(batch * num_kp * h * w, device=device)
        if kps_cat.shape[0]:
            cx = torch.floor(kps_cat[..., 0] / s + 0.5).long()                       # [N, K]
            cy = torch.floor(kps_cat[..., 1] / s + 0.5).long()
            ok = (kps_cat[..., 2] > 0) & (cx >= 0) & (cx < w) & (cy >= 0) & (cy < h)
            n_i, k_i = torch.nonzero(ok, as_tuple=True)                               # labelled, on the map
            yy = cy[n_i, k_i][:, None, None] + d[:, None]                            # [n, 2r+1, 1]
            xx = cx[n_i, k_i][:, None, None] + d[None, :]                            # [n, 1, 2r+1]
            inside = (yy >= 0) & (yy < h) & (xx >= 0) & (xx < w)
            plane = (bidx[n_i] * num_kp + k_i) * (h * w)                             # [n]
            flat = plane[:, None, None] + yy * w + xx
            vals = win.expand_as(flat)
            hm = hm.scatter_reduce(0, flat[inside], vals[inside], reduce="amax", include_self=True)
        out.append(hm.reshape(batch, num_kp, h, w))
    return out


def heatmap_weights(gt_keypoints: Sequence[torch.Tensor], gt_boxes: Sequence[torch.Tensor],
                    strides: Sequence[int], feat_sizes) -> list[torch.Tensor]:
    """Heatmap loss weights per level: list of [B, 1, H_l, W_l], 0 on grid points (j·s, i·s)
    inside the box of a person with no labelled keypoint (an unlabelled person must not be
    taught "no joint here"; the authors' ``GaussianMap`` does the same), 1 elsewhere."""
    _check_levels(strides, feat_sizes)
    sizes = _sizes(feat_sizes)
    first = next((g for g in gt_keypoints if g.numel()), None)
    device = first.device if first is not None else torch.device("cpu")
    out = []
    for s, (h, w) in zip(strides, sizes):
        wt = torch.ones(len(gt_keypoints), 1, h, w, device=device)
        pts = grid_points(h, w, int(s), device=device)                          # [HW, 2]
        for b, (kps, boxes) in enumerate(zip(gt_keypoints, gt_boxes)):
            if kps.numel() == 0:
                continue
            empty = ~(kps.to(device)[..., 2] > 0).any(-1)
            if not empty.any():
                continue
            bx = torch.as_tensor(boxes).to(device).float().reshape(-1, 4)[empty]
            inside = ((pts[None, :, 0] >= bx[:, None, 0]) & (pts[None, :, 0] <= bx[:, None, 2])
                      & (pts[None, :, 1] >= bx[:, None, 1]) & (pts[None, :, 1] <= bx[:, None, 3]))
            wt[b, 0] = (~inside.any(0)).float().reshape(h, w)
        out.append(wt)
    return out
