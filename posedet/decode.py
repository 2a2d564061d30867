"""Decoding PoseDet outputs into poses, NMS and the COCO results format (pure functions).

Three separate steps so that test-time augmentation can merge the candidates of several
scales/flips (after mapping them to one frame) before a single NMS:

1. ``decode_candidates`` — per image: sigmoid scores, top-k per level (before the threshold, as
   mmdetection's ``nms_pre``), offsets → image pixels (``grid.py`` convention), score > thr;
2. ``merge_candidates`` / ``rescale_candidates`` — TTA plumbing;
3. ``postprocess`` — greedy OKS-NMS (or IoU-NMS on keypoint boxes), at most ``max_dets`` poses;
4. ``to_coco_results`` — back to the original image, COCO results dicts.

The refined pose is the *detached coarse offsets + refine residual* (the model's ``refine``
output is the residual); with ``use_refine=False`` or ``refine=None`` the coarse pose is used.
"""
from __future__ import annotations

from typing import Sequence

import torch

from .grid import grid_points
from .oks_nms import iou_nms, keypoint_boxes, pose_oks_nms

__all__ = ["decode_candidates", "merge_candidates", "rescale_candidates", "postprocess",
           "to_coco_results"]


@torch.no_grad()
def decode_candidates(outputs: dict, score_thr: float = 0.05, topk_per_level: int = 500,
                      use_refine: bool = True,
                      image_sizes: Sequence[tuple[int, int]] | None = None) -> list[dict]:
    """Scored pose candidates of every image of the batch.

    ``outputs``: the model's dict (``strides``, ``coarse`` [B, 2K, H, W] per level, ``refine``
    residuals or None, ``cls`` [B, 1, H, W] logits). Per level the ``topk_per_level`` best
    locations by score are kept (≤ 0: all), then those with score > ``score_thr``.
    ``image_sizes`` (optional, per image (h, w) of the resized, unpadded input) clamps x to
    [0, w] and y to [0, h] as the authors' decoder does.

    Returns per image a dict: ``keypoints`` [N, K, 2] input-image px (x, y), ``scores`` [N]
    (sigmoid of the logit), ``levels`` long [N]; candidates level by level, by descending score
    within a level.
    """
    strides = [int(s) for s in outputs["strides"]]
    coarse, cls = outputs["coarse"], outputs["cls"]
    refine = outputs.get("refine") if use_refine else None
    batch = cls[0].shape[0]
    per_img: list[list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]] = [[] for _ in range(batch)]
    for l, s in enumerate(strides):
        b_, two_k, h, w = coarse[l].shape
        k_pts = two_k // 2
        scores = torch.sigmoid(cls[l].float().reshape(batch, h * w))
        k = h * w if topk_per_level is None or topk_per_level <= 0 else min(int(topk_per_level), h * w)
        top_s, top_i = scores.topk(k, dim=1)                                          # [B, k], sorted
        # gather the k selected locations first, then add the refine residual there (the same
        # values as adding over the whole map, at k/(H·W) of the cost)
        idx = top_i[:, None, :].expand(-1, two_k, -1)
        off = coarse[l].reshape(batch, two_k, h * w).gather(2, idx).float()           # [B, 2K, k]
        if refine is not None:
            off = off + refine[l].reshape(batch, two_k, h * w).gather(2, idx).float()
        off = off.reshape(batch, k_pts, 2, k).permute(0, 3, 1, 2)                     # [B, k, K, (dy, dx)]
        pts = grid_points(h, w, s, device=off.device, dtype=off.dtype)[top_i]          # [B, k, 2]
        xy = torch.stack([pts[..., None, 0] + off[..., 1] * s, pts[..., None, 1] + off[..., 0] * s], -1)
        for b in range(batch):
            keep = top_s[b] > score_thr
            per_img[b].append((xy[b][keep], top_s[b][keep],
                               torch.full((int(keep.sum()),), l, dtype=torch.long, device=xy.device)))
    result = []
    for b in range(batch):
        kp = torch.cat([t[0] for t in per_img[b]])
        sc = torch.cat([t[1] for t in per_img[b]])
        lv = torch.cat([t[2] for t in per_img[b]])
        if image_sizes is not None:
            h_img, w_img = image_sizes[b]
            kp = torch.stack([kp[..., 0].clamp(0, float(w_img)), kp[..., 1].clamp(0, float(h_img))], -1)
        result.append({"keypoints": kp, "scores": sc, "levels": lv})
    return result


def merge_candidates(candidates: Sequence[dict]) -> dict:
    """Concatenate the candidate dicts of one image (e.g. several TTA scales/flips, each already
    mapped to the same frame) into one, ready for a single ``postprocess``."""
    if not candidates:
        raise ValueError("merge_candidates needs at least one candidate dict")
    keys = set(candidates[0])
    for c in candidates[1:]:
        if set(c) != keys:
            raise ValueError(f"candidate dicts disagree on keys: {sorted(keys)} vs {sorted(c)}")
    return {k: torch.cat([c[k] for c in candidates]) for k in candidates[0]}


def _map_xy(xy: torch.Tensor, scale, offset) -> torch.Tensor:
    sx, sy = (scale, scale) if not isinstance(scale, (tuple, list)) else scale
    ox, oy = offset
    return torch.stack([(xy[..., 0] - ox) / sx, (xy[..., 1] - oy) / sy], -1)


def rescale_candidates(candidates: dict, scale=1.0, offset=(0.0, 0.0)) -> dict:
    """Map one image's candidates to the original image: original = (input − offset) / scale
    (``scale`` a float or (sx, sy); ``offset`` the input-pixel position of the original's origin,
    e.g. left/top padding). Other entries are kept."""
    out = dict(candidates)
    out["keypoints"] = _map_xy(candidates["keypoints"], scale, offset)
    return out


def postprocess(candidates: Sequence[dict], sigmas=None, nms: str = "oks", nms_thr: float = 0.2,
                max_dets: int = 100, min_area: float = 32.0 ** 2,
                pre_nms_topk: int | None = None) -> list[dict]:
    """Greedy NMS and the top ``max_dets`` poses of every image.

    ``nms='oks'``: ``pose_oks_nms`` (the authors' inference OKS: all keypoints, the pair's mean
    keypoint-extent area, each clamped ≥ ``min_area``, no /2)
    (needs ``sigmas``); ``nms='iou'``: IoU-NMS on the keypoint boxes. A candidate is suppressed by
    a kept, higher-scoring one when their overlap > ``nms_thr``. ``pre_nms_topk`` (optional) keeps
    only the best candidates before NMS (the OKS matrix is N²·K).

    Returns per image: ``keypoints`` [M, K, 3] (x, y, 1.0), ``scores`` [M], ``boxes`` [M, 4]
    keypoint boxes (xyxy); by descending score.
    """
    if nms not in ("oks", "iou"):
        raise ValueError(f"nms must be 'oks' or 'iou', got {nms!r}")
    if nms == "oks" and sigmas is None:
        raise ValueError("postprocess(nms='oks') needs the skeleton's sigmas")
    results = []
    for cand in candidates:
        kp, sc = cand["keypoints"].float(), cand["scores"].float()
        if pre_nms_topk is not None and sc.numel() > pre_nms_topk:
            top = torch.sort(sc, descending=True, stable=True).indices[:pre_nms_topk]
            kp, sc = kp[top], sc[top]
        if sc.numel() == 0:
            keep = torch.zeros(0, dtype=torch.long, device=sc.device)
        elif nms == "oks":
            keep = pose_oks_nms(kp, sc, nms_thr, sigmas, min_area=min_area)
        else:
            keep = iou_nms(keypoint_boxes(kp), sc, nms_thr)
        keep = keep[:max_dets]
        kp_k = kp[keep]
        results.append({
            "keypoints": torch.cat([kp_k, torch.ones_like(kp_k[..., :1])], -1),
            "scores": sc[keep],
            "boxes": keypoint_boxes(kp_k),
        })
    return results


def to_coco_results(poses: dict, image_id: int, scale=1.0, offset=(0.0, 0.0),
                    category_id: int = 1) -> list[dict]:
    """One image's ``postprocess`` output → COCO keypoint results.

    Coordinates go back to the original image as original = (input − offset) / scale (see
    ``rescale_candidates``; pass scale=1 if the poses are already in the original frame).
    Each entry: ``image_id``, ``category_id``, ``keypoints`` flat [x, y, s]·K (s = the keypoint
    score column, 1.0), ``score``.
    """
    kp = poses["keypoints"].detach().float().cpu()
    if kp.shape[0] == 0:
        return []
    xy = _map_xy(kp[..., :2], scale, offset)
    kscore = kp[..., 2:3] if kp.shape[-1] > 2 else torch.ones_like(kp[..., :1])
    flat = torch.cat([xy, kscore], -1).reshape(kp.shape[0], -1).tolist()
    scores = poses["scores"].detach().float().cpu().tolist()
    return [{"image_id": int(image_id), "category_id": int(category_id), "keypoints": k, "score": float(s)}
            for k, s in zip(flat, scores)]
