"""Frozen copies of the code paths that ``posedet bench`` speeds up, as they were before the fast
paths (commit b9e3e07), so that every timing file shows *before* and *after* measured in the
same run on the same inputs. Not used by the model; do not optimise.

* ``pose_embedding_v0``: the sample-first pose embedding with the int64 5-D corner grids and
  16 MiB blocks (forward, and the backward that allocates a fresh P·K·C buffer for dS);
* ``greedy_nms_v0``: the per-candidate tensor loop over the precomputed matrix;
* ``pose_oks_matrix_v0`` / ``pose_oks_nms_v0``: the full [N, N, K] torch OKS matrix, then that
  loop;
* ``decode_candidates_v0``: the decode that added the refine residual over the whole maps
  before gathering the top-k.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

from posedet.grid import grid_points
from posedet.model.embedding import _row_dots, _transposed_bag

__all__ = ["pose_embedding_v0", "greedy_nms_v0", "pose_oks_matrix_v0", "pose_oks_nms_v0", "decode_candidates_v0"]

CHUNK_BYTES_V0 = 16 << 20


def bilinear_corners_v0(offsets: torch.Tensor, height: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The 4 bilinear corners of every keypoint sample, as rows of a zero-bordered table.

    offsets: [B, 2K, H, W] (dy, dx) interleaved, feature pixels relative to each location.
    The table is the feature map padded by one zero pixel on every side and laid out
    channels-last, [B·(H+2)·(W+2), C] (:func:`padded_table`). A corner outside the map is
    clamped onto that zero border, so it reads 0 and gets a zero gradient: exactly the zero
    padding of ``deform_conv2d``, without a validity mask.
    Returns ``index`` [B, H, W, K, 4] (int64) and ``weight`` [B, H, W, K, 4] (differentiable
    in ``offsets``). Corner order: (y0, x0), (y0, x0+1), (y0+1, x0), (y0+1, x0+1).
    """
    b, c2, h, w = offsets.shape
    if (h, w) != (height, width) or c2 % 2:
        raise ValueError(f"offsets must be [B, 2K, {height}, {width}], got {tuple(offsets.shape)}")
    k = c2 // 2
    dev, dt = offsets.device, offsets.dtype
    o = offsets.reshape(b, k, 2, h, w).permute(0, 3, 4, 1, 2).contiguous()   # [B, H, W, K, (dy, dx)]
    grid = torch.stack(torch.meshgrid(torch.arange(h, device=dev, dtype=dt),
                                      torch.arange(w, device=dev, dtype=dt), indexing="ij"), dim=-1)
    pos = o + grid[:, :, None, :]                                            # (y, x) feature pixels
    p0 = torch.floor(pos.detach())
    frac = pos - p0                                                          # gradient flows here
    # corner coordinates y0, y0 + 1 (x0, x0 + 1) in the padded map (+1 for the border), clamped
    # onto the zero border; arange on the device, not a Python list (no host→device copy / sync)
    near = p0.long().unsqueeze(-1) + torch.arange(1, 3, device=dev)         # [..., (y, x), 2]
    ys = near[..., 0, :].clamp_(0, h + 1)
    xs = near[..., 1, :].clamp_(0, w + 1)
    rows = ys * (w + 2) + (torch.arange(b, device=dev) * ((h + 2) * (w + 2))).view(b, 1, 1, 1, 1)
    index = (rows.unsqueeze(-1) + xs.unsqueeze(-2)).reshape(b, h, w, k, 4)
    lin = torch.stack([1 - frac, frac], dim=-1)                              # [..., (y, x), (lo, hi)]
    weight = (lin[..., 0, :, None] * lin[..., 1, None, :]).reshape(b, h, w, k, 4)
    return index, weight


def _padded_table_v0(features: torch.Tensor) -> torch.Tensor:
    """[B, C, H, W] → [B·(H+2)·(W+2), C]: zero border of one pixel, channels-last, contiguous
    (``embedding_bag``'s vectorised path needs contiguous rows)."""
    b, c = features.shape[:2]
    return F.pad(features, (1, 1, 1, 1)).permute(0, 2, 3, 1).reshape(-1, c).contiguous()


class _SampleProjectV0(torch.autograd.Function):
    """Sample-first pose embedding of P locations, in blocks of ``chunk`` locations:

        S = bilinear samples [chunk·K, C] (one embedding_bag),  out[block] = S.view(chunk, K·C) @ Wᵀ + b.

    Backward per block: dW += g_blockᵀ S,  dS = g_block W,  d table += adjoint sampling of dS,
    d weights = row dots of dS with the corner rows. ``save_memory`` recomputes S in the
    backward instead of keeping it (P·K·C values per embedding)."""

    @staticmethod
    def forward(ctx, table, index, weight, wmat, bias, k, chunk, save_memory):
        p = index.shape[0]
        c = table.shape[1]
        out = torch.empty(p, wmat.shape[0], dtype=table.dtype, device=table.device)
        keep = ctx.needs_input_grad[3] and not save_memory          # only dW needs the samples
        saved = []
        for s in range(0, p, chunk):
            e = min(p, s + chunk)
            sampled = F.embedding_bag(index[s:e].view(-1, 4), table, per_sample_weights=weight[s:e].view(-1, 4),
                                      mode="sum").view(e - s, k * c)
            if bias is None:
                torch.mm(sampled, wmat.t(), out=out[s:e])
            else:
                torch.addmm(bias, sampled, wmat.t(), out=out[s:e])
            if keep:
                saved.append(sampled)
        ctx.save_for_backward(table, index, weight, wmat, *saved)
        ctx.k, ctx.chunk, ctx.has_bias, ctx.kept = k, chunk, bias is not None, keep
        return out

    @staticmethod
    def backward(ctx, grad):
        table, index, weight, wmat, *saved = ctx.saved_tensors
        k, chunk = ctx.k, ctx.chunk
        grad = grad.contiguous()
        p = index.shape[0]
        n, c = table.shape
        need_table, _, need_weight, need_wmat, need_bias = ctx.needs_input_grad[:5]
        d_table = torch.zeros_like(table) if need_table else None
        d_weight = torch.empty_like(weight) if need_weight else None
        d_wmat = torch.zeros_like(wmat) if need_wmat else None
        for i, s in enumerate(range(0, p, chunk)):
            e = min(p, s + chunk)
            g = grad[s:e]
            idx, wts = index[s:e].view(-1, 4), weight[s:e].view(-1, 4)
            if need_wmat:
                sampled = saved[i] if ctx.kept else F.embedding_bag(idx, table, per_sample_weights=wts,
                                                                 mode="sum").view(e - s, k * c)
                d_wmat.addmm_(g.t(), sampled)
            if need_table or need_weight:
                d_sampled = torch.mm(g, wmat).view(-1, c)                     # [(e−s)·K, C]
                if need_table:
                    d_table += _transposed_bag(d_sampled, idx, wts, n)
                if need_weight:
                    d_weight[s:e] = _row_dots(d_sampled, table, idx).view(e - s, -1)
        d_bias = grad.sum(0) if ctx.has_bias and need_bias else None
        return d_table, None, d_weight, d_wmat, d_bias, None, None, None


def pose_embedding_v0(features, offsets, weight, bias=None):
    """The pre-fast-path sample-first pose embedding (float32/float64 inputs)."""
    b, c, h, w = features.shape
    o, k = weight.shape[0], weight.shape[-1]
    wt = weight.reshape(o, c, k)
    index, wts = bilinear_corners_v0(offsets, h, w)
    table = _padded_table_v0(features)
    wmat = wt.transpose(1, 2).reshape(o, k * c)
    chunk = max(1, CHUNK_BYTES_V0 // (k * c * table.element_size()))
    out = _SampleProjectV0.apply(table, index.view(b * h * w, k * 4), wts.view(b * h * w, k * 4),
                                 wmat, bias, k, chunk, False)
    return out.view(b, h, w, o).permute(0, 3, 1, 2)


def greedy_nms_v0(overlap: torch.Tensor, scores: torch.Tensor, threshold: float) -> torch.Tensor:
    """The original greedy loop (one tensor op per candidate)."""
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


def _box_area_v0(xy):
    lo, hi = xy.amin(dim=-2), xy.amax(dim=-2)
    return (hi[:, 0] - lo[:, 0]) * (hi[:, 1] - lo[:, 1])


def pose_oks_matrix_v0(keypoints, sigmas, min_area: float = 32.0 ** 2):
    xy = keypoints[..., :2].float()
    a = _box_area_v0(xy).clamp_min(min_area)
    pair_area = (a[:, None] + a[None, :]) / 2
    d2 = ((xy[:, None] - xy[None]) ** 2).sum(-1)
    var = (2.0 * torch.as_tensor(sigmas, dtype=xy.dtype)) ** 2
    return torch.exp(-d2 / (var * pair_area[..., None])).mean(-1)


def pose_oks_nms_v0(keypoints, scores, threshold, sigmas, min_area: float = 32.0 ** 2):
    if scores.numel() == 0:
        return torch.zeros(0, dtype=torch.long, device=scores.device)
    return greedy_nms_v0(pose_oks_matrix_v0(keypoints, sigmas, min_area), scores, threshold)


@torch.no_grad()
def decode_candidates_v0(outputs: dict, score_thr: float = 0.05, topk_per_level: int = 500,
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
        off = coarse[l].float().reshape(batch, two_k, h * w)
        if refine is not None:
            off = off + refine[l].float().reshape(batch, two_k, h * w)
        off = off.gather(2, top_i[:, None, :].expand(-1, two_k, -1))                  # [B, 2K, k]
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
