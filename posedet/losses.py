"""PoseDet losses as pure functions on tensors.

Candidates use the flattened layout of ``targets.py`` ([B, P, …], levels in order, row-major
within a level). ``posedet_loss`` ties model outputs, assignment and the individual losses
together; every ``loss_*`` entry it returns is already weighted and normalised, and ``loss`` is
their sum.

Refinement off (``refine=False``, the model returns ``refine=None``): there is no refine
branch, the refined pose *is* the coarse pose (so decoding falls back to the coarse offsets),
``loss_refine`` and ``num_refine_pos`` are absent. The classification assignment always uses
the detached *coarse* poses (as the authors' code, with or without refinement).
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torchvision.ops import sigmoid_focal_loss as tv_sigmoid_focal_loss

from .targets import (assign_coarse, assign_refine_cls, candidate_keypoints, candidate_strides,
                      flatten_levels, heatmap_targets, heatmap_weights)

__all__ = [
    "keypoint_distance_loss", "sigmoid_focal_loss", "heatmap_focal_loss", "heatmap_l2_loss",
    "posedet_loss", "DEFAULT_WEIGHTS",
]

DEFAULT_WEIGHTS = dict(coarse=0.1, refine=0.2, cls=1.0, heatmap=0.1)


def keypoint_distance_loss(pred_xy: torch.Tensor, target_xy: torch.Tensor, weight: torch.Tensor,
                           stride_per_candidate: torch.Tensor | float, clamp: float = 5.0,
                           base_scale: float = 4.0) -> torch.Tensor:
    """Σ over candidates and keypoints of weight · min(‖pred − target‖ / (base_scale·stride), clamp).

    ``pred_xy``/``target_xy`` [..., K, 2] image px, ``weight`` [..., K] (0 for unlabelled
    keypoints), ``stride_per_candidate`` [...] (or a scalar). Returns the *sum*; the caller
    normalises. The clamp stops the gradient of points more than ``clamp``·4·stride away (as the
    authors' ``KeypointsLoss``); the Euclidean norm has a zero (sub)gradient at distance 0.
    """
    stride = torch.as_tensor(stride_per_candidate, dtype=pred_xy.dtype, device=pred_xy.device)
    d = torch.linalg.vector_norm(pred_xy - target_xy, dim=-1)                   # [..., K]
    d = (d / (base_scale * stride[..., None])).clamp(max=clamp)
    w = weight.to(d.dtype)
    return torch.where(w > 0, d * w, torch.zeros_like(d)).sum()


def sigmoid_focal_loss(logits: torch.Tensor, labels: torch.Tensor, valid: torch.Tensor | None = None,
                       num_pos: torch.Tensor | float | None = None, alpha: float = 0.25,
                       gamma: float = 2.0) -> torch.Tensor:
    """Sigmoid focal loss (torchvision's, γ = 2, α = 0.25) summed over the non-ignored entries
    (``valid`` bool or float weight, None: all) and divided by ``num_pos`` clamped ≥ 1
    (default: the number of valid positives)."""
    labels = labels.to(logits.dtype)
    per = tv_sigmoid_focal_loss(logits, labels, alpha=alpha, gamma=gamma, reduction="none")
    if valid is not None:
        v = valid.to(per.dtype)
        per = torch.where(v > 0, per * v, torch.zeros_like(per))
    if num_pos is None:
        pos = labels > 0.5
        num_pos = (pos & (valid > 0) if valid is not None else pos).sum()
    denom = torch.as_tensor(num_pos, dtype=per.dtype, device=per.device).clamp_min(1.0)
    return per.sum() / denom


def heatmap_focal_loss(pred_logits: torch.Tensor, target: torch.Tensor,
                       weight: torch.Tensor | None = None, alpha: float = 2.0,
                       beta: float = 4.0) -> torch.Tensor:
    """CornerNet-style focal loss on heatmaps (the authors' ``HeatmapLoss``), logits in.

    Positives are the peaks (target == 1); negatives are down-weighted by (1 − target)^β.
    −[Σ_pos (1−p)^α log p + Σ_neg p^α (1−t)^β log(1−p)] / max(#peaks, 1), with log p computed as
    logsigmoid for stability. ``weight`` (broadcastable, e.g. [B, 1, H, W]) masks pixels out.
    """
    x = pred_logits.float()
    t = target.to(x.dtype)
    w = torch.ones_like(t) if weight is None else weight.to(x.dtype).expand_as(t)
    pos = (t >= 1.0 - 1e-6).to(x.dtype) * w
    neg = (t < 1.0 - 1e-6).to(x.dtype) * w
    p = torch.sigmoid(x)
    pos_term = F.logsigmoid(x) * (1 - p) ** alpha * pos
    neg_term = F.logsigmoid(-x) * p ** alpha * (1 - t) ** beta * neg
    return -(pos_term.sum() + neg_term.sum()) / pos.sum().clamp_min(1.0)


def heatmap_l2_loss(pred_logits: torch.Tensor, target: torch.Tensor,
                    weight: torch.Tensor | None = None) -> torch.Tensor:
    """The paper's intermediate supervision: mean squared error between sigmoid(pred) and the
    Gaussian target, averaged over the (weighted) pixels."""
    x = pred_logits.float()
    t = target.to(x.dtype)
    se = (torch.sigmoid(x) - t) ** 2
    if weight is None:
        return se.mean()
    w = weight.to(x.dtype).expand_as(t)
    return (se * w).sum() / w.sum().clamp_min(1.0)


def _level_sizes(maps: Sequence[torch.Tensor]) -> list[tuple[int, int]]:
    return [(int(m.shape[-2]), int(m.shape[-1])) for m in maps]


def posedet_loss(outputs: dict, gts: Sequence[dict], sigmas, centroid: str = "keypoints",
                 heatmap_loss: str = "focal", refine: bool = True,
                 intermediate_supervision: bool = True, weights: dict | None = None,
                 refine_pos_thr: float = 0.7, cls_pos_thr: float = 0.6, cls_neg_thr: float = 0.5,
                 refine_low_quality_thr: float | None = 0.52, min_keypoints: int = 3,
                 heatmap_sigma: float = 2.0, max_level_stride: int | None = None,
                 pos_num: int = 1, level_scale: float = 4.0) -> dict[str, torch.Tensor]:
    """The full PoseDet training loss.

    ``outputs``: the model's dict (``strides``, ``coarse``, ``refine`` or None, ``cls``,
    ``heatmaps`` or None); ``gts``: per image a dict with ``keypoints`` [N, K, 3] and ``boxes``
    [N, 4] (``box_areas`` used when present), input-image pixels.

    * coarse: ``assign_coarse`` positives (``pos_num`` per person), keypoint distance loss of the coarse pose,
      ÷ #coarse positives (≥ 1) · ``weights['coarse']``;
    * refine: ``assign_refine_cls`` on the detached coarse poses; the refined pose
      (detached coarse + residual) at refine positives, ÷ #refine positives (≥ 1) · ``weights['refine']``;
    * cls: sigmoid focal loss (band [cls_neg_thr, cls_pos_thr) ignored) ÷ #cls positives (≥ 1);
    * heatmap (``intermediate_supervision``): ``'focal'`` (the code, default) or ``'l2'`` (the
      paper) per level, averaged over levels (as the authors), · ``weights['heatmap']``.

    Positive counts are totals over the batch. Returns ``loss_coarse``, ``loss_refine`` (refine
    only), ``loss_cls``, ``loss_heatmap`` (IS only), ``loss`` (the sum) and detached float counts
    ``num_coarse_pos``, ``num_refine_pos`` (refine only), ``num_cls_pos``.
    """
    if heatmap_loss not in ("focal", "l2"):
        raise ValueError(f"heatmap_loss must be 'focal' or 'l2', got {heatmap_loss!r}")
    wts = dict(DEFAULT_WEIGHTS)
    wts.update(weights or {})
    strides = [int(s) for s in outputs["strides"]]
    coarse_maps, cls_maps = outputs["coarse"], outputs["cls"]
    if len(coarse_maps) != len(strides) or len(cls_maps) != len(strides):
        raise ValueError("outputs: 'coarse', 'cls' and 'strides' must have one entry per level")
    if len(gts) != coarse_maps[0].shape[0]:
        raise ValueError(f"{len(gts)} GT entries for a batch of {coarse_maps[0].shape[0]}")
    refine_maps = outputs.get("refine")
    if refine and refine_maps is None:
        raise ValueError("posedet_loss(refine=True) but outputs['refine'] is None")
    heat_maps = outputs.get("heatmaps")
    if intermediate_supervision and heat_maps is None:
        raise ValueError("posedet_loss(intermediate_supervision=True) but outputs['heatmaps'] is None")

    sizes = _level_sizes(coarse_maps)
    device = coarse_maps[0].device
    gt_kps = [torch.as_tensor(g["keypoints"]).to(device).float() for g in gts]

    coarse_xy = candidate_keypoints([m.float() for m in coarse_maps], strides)          # [B, P, K, 2]
    cand_stride = candidate_strides(strides, sizes, device=device)                      # [P]
    stride_bp = cand_stride[None].expand(coarse_xy.shape[0], -1)                        # [B, P]
    out: dict[str, torch.Tensor] = {}

    # coarse (bypass)
    ca = assign_coarse(gt_kps, strides, sizes, centroid=centroid, min_keypoints=min_keypoints,
                       max_level_stride=max_level_stride, pos_num=pos_num, base_scale=level_scale)
    pos = ca["pos"]
    n_coarse = pos.sum().float()
    l_coarse = keypoint_distance_loss(coarse_xy[pos], ca["target_xy"][pos].float(), ca["weight"][pos],
                                      stride_bp[pos])
    out["loss_coarse"] = wts["coarse"] * l_coarse / n_coarse.clamp_min(1.0)

    # refine and classification assignment, on the detached coarse poses
    ra = assign_refine_cls(coarse_xy.detach(), gts, sigmas, refine_pos_thr=refine_pos_thr,
                           cls_pos_thr=cls_pos_thr, cls_neg_thr=cls_neg_thr,
                           min_keypoints=min_keypoints, refine_low_quality_thr=refine_low_quality_thr)
    if refine:
        refined = [c.detach().float() + r.float() for c, r in zip(coarse_maps, refine_maps)]
        refine_xy = candidate_keypoints(refined, strides)
        rpos = ra["refine_pos"]
        n_refine = rpos.sum().float()
        l_refine = keypoint_distance_loss(refine_xy[rpos], ra["refine_target_xy"][rpos].float(),
                                          ra["refine_weight"][rpos], stride_bp[rpos])
        out["loss_refine"] = wts["refine"] * l_refine / n_refine.clamp_min(1.0)

    logits = flatten_levels(cls_maps).squeeze(-1).float()                               # [B, P]
    n_cls = (ra["cls_label"] > 0).sum().float()
    out["loss_cls"] = wts["cls"] * sigmoid_focal_loss(logits, ra["cls_label"], ra["cls_weight"], n_cls)

    if intermediate_supervision:
        hm_sizes = _level_sizes(heat_maps)
        targets = heatmap_targets(gt_kps, strides, hm_sizes, sigma=heatmap_sigma)
        hm_w = None
        if all(g.get("boxes") is not None for g in gts):
            hm_w = heatmap_weights(gt_kps, [torch.as_tensor(g["boxes"]) for g in gts], strides, hm_sizes)
        fn = heatmap_focal_loss if heatmap_loss == "focal" else heatmap_l2_loss
        per_level = [fn(p, t, None if hm_w is None else hm_w[l])
                     for l, (p, t) in enumerate(zip(heat_maps, targets))]
        out["loss_heatmap"] = wts["heatmap"] * torch.stack(per_level).mean()

    out["loss"] = sum(v for k, v in out.items() if k.startswith("loss_"))
    out["num_coarse_pos"] = n_coarse.detach()
    if refine:
        out["num_refine_pos"] = n_refine.detach()
    out["num_cls_pos"] = n_cls.detach()
    return out
