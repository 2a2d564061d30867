"""The pose embedding: a 1×K deformable convolution whose taps sit on the K predicted keypoints.

What it computes (the authors' mmcv ``DeformConv2d`` with a 1×K kernel, any K here)::

    out[b, :, i, j] = bias + Σ_k  W[:, :, 0, k] · bilinear(F[b], (i + dy_k, j + dx_k))

``offsets`` are the head's (dy, dx) pairs, interleaved ``[dy_0, dx_0, dy_1, dx_1, …]``, in feature
pixels relative to the location (i, j) (``posedet/grid.py``). Bilinear sampling reads zeros
outside the map, exactly as ``torchvision.ops.deform_conv2d`` does (a corner outside contributes 0;
a point at distance ≥ 1 pixel outside reads 0).

Relation to ``torchvision.ops.deform_conv2d`` (the reference, :func:`pose_embedding_reference`):
with a 1×K kernel, stride 1, padding (0, p), tap k of output (i, j) samples
(i + δy_k, j − p + k + δx_k). With p = ⌊K/2⌋ the DCN offset of tap k is therefore
(δy_k, δx_k) = (dy_k, dx_k − (k − p)). For odd K the output is H×W. For even K (CrowdPose's 14)
no symmetric padding keeps the width: p = K/2 gives W + 1 output columns, of which the first W are
ours (column j still has base j − p + k), so the reference pads the offsets with one extra column
and drops the last output column. The authors padded K = 14 to a made-up 15th point instead; this
module needs no such trick.

Why this is fast, and why it is hand-written (no maintained library has a fast CPU DCN):
torchvision's CPU ``deform_conv2d`` fills an im2col buffer with one scalar bilinear interpolation
per (channel, tap, pixel) and scatters its gradients element by element. ``grid_sample`` (tried
first) samples channel by channel with strided gathers and did not scale with threads here;
re-measured as the formulation "grid_sample into [B, C·K, H, W] (grid [B, K·H, W, 2]), then one
1×1 conv over C·K": 315 ms forward at the shape below, 7× the 3×3 conv (grid_sample alone 160 ms).
Measured at 1×256×64×64, K = 17, 256 out, 1 thread, in one interleaved run (``posedet bench
embedding --threads 1``; a 2-core Xeon shared with a training job, load average 5.0, so ±20 %):
this module 101 / 318 ms forward / forward+backward (min; median 116 / 383), i.e. 2.9× / 2.9×
(median 2.7× / 2.5×) a dense 3×3 conv 256→256 (35 / 111 ms); the code before (int64 5-D corner
grids, a fresh P·K·C buffer for dS; ``bench.baselines.pose_embedding_v0``) 123 / 396 ms =
3.5× / 3.6×; ``deform_conv2d`` 508 / 3583 ms. The forward is bounded below by its GEMM at the
FLOP ratio (1.9×) plus the sampling (~0.45×: 71 MB of samples written, and every fresh buffer
page-faults at ~0.12 ms/MB on this machine). On an H200 the earlier version of this code agreed
with ``deform_conv2d`` to 4e-6 (float32, output and all gradients; same kernels, the GPU check
``bench embedding --check-cuda`` re-measures it). Instead:

* the feature map, zero-bordered and channels-last, is a [B·(H+2)·(W+2), C] table, so a bilinear
  sample is a weighted sum of 4 contiguous C-vectors; out-of-map corners are clamped onto the zero
  border (no masks). ``F.embedding_bag(mode='sum', per_sample_weights=…)`` computes all B·H·W·K
  samples in one multithreaded, vectorised call (FBGEMM on CPU, one kernel on CUDA);
* the linear map over (K, C) is one GEMM, [rows, K·C] × [K·C, O], whose long K·C reduction
  BLAS runs at full speed. That GEMM is the floor: 2·H·W·K·C·O FLOPs, ~1.9× a dense 3×3 conv
  with C→O channels (K = 17 vs 9 taps), and two thirds or more of the measured time;
* without gradients, rows are processed in blocks of ``CHUNK_BYTES`` (cache-sized on CPU; see
  there); with gradients S is built whole, kept, and its buffer reused for dS in the backward;
* the corner indices are int32 and computed on [B, H·W, K] planes (a few elementwise ops);
* the backward (custom autograd function) does the two GEMMs of the linear map plus: the feature
  gradient = the *adjoint* of the sparse sampling, computed as one more ``embedding_bag`` over the
  incoming-gradient rows grouped by target pixel (an int32 radix argsort, no atomics or serial
  scatter, deterministic); the bilinear-weight gradient = one dot product per corner
  (``torch.sparse.sampled_addmm`` on the CSR pattern of the corner indices); autograd then
  carries it through the closed-form bilinear weights to the offsets.

The other order, "project then sample" (W_k·F for all k as one GEMM to K·O channels, then a bag
of 4K weighted rows per location), has the same FLOPs, but its GEMM has a short (C) reduction and a
K·O-wide output that BLAS runs slower (8 % slower end to end on the Xeon, 50 % on the 2-core
EPYC dev box); it is kept as ``order='project_first'`` for the
benchmark (``posedet bench embedding`` times both).
"""
from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["PoseEmbedding", "pose_embedding", "pose_embedding_reference", "deform_conv_offsets",
           "bilinear_corners"]

ORDERS = ("sample_first", "project_first")

# Locations handled at once by the sample-first path without gradients (inference), as bytes of
# their [rows·K, C] sample buffer: a block stays in cache between the sampling and its GEMM.
# Swept at 1×256×64×64, K = 17, 1 thread (2-core Xeon, loaded): 64/256/1024 locations
# (1.1/4.4/17.8 MiB) → 3.5/2.9/3.1× a 3×3 conv. With gradients S is built whole (see
# _SampleProject). CUDA: one block unless huge.
CHUNK_BYTES = {"cpu": 4 << 20, "cuda": 1 << 30}


def bilinear_corners(offsets: torch.Tensor, height: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The 4 bilinear corners of every keypoint sample, as rows of a zero-bordered table.

    offsets: [B, 2K, H, W] (dy, dx) interleaved, feature pixels relative to each location.
    The table is the feature map padded by one zero pixel on every side and laid out
    channels-last, [B·(H+2)·(W+2), C] (:func:`padded_table`). A corner outside the map is
    clamped onto that zero border, so it reads 0 and gets a zero gradient: exactly the zero
    padding of ``deform_conv2d``, without a validity mask.
    Returns ``index`` [B, H, W, K, 4] (int32 while the table has < 2³¹ rows, else int64) and
    ``weight`` [B, H, W, K, 4] (differentiable in ``offsets``). Corner order: (y0, x0),
    (y0, x0+1), (y0+1, x0), (y0+1, x0+1). A handful of elementwise ops on [B, H·W, K] planes
    (the earlier int64 version built 5-D broadcast grids and cost 0.25× a 3×3 conv; this 0.05×).
    """
    b, c2, h, w = offsets.shape
    if (h, w) != (height, width) or c2 % 2:
        raise ValueError(f"offsets must be [B, 2K, {height}, {width}], got {tuple(offsets.shape)}")
    k = c2 // 2
    dev, dt = offsets.device, offsets.dtype
    itype = torch.int32 if b * (h + 2) * (w + 2) * max(k, 1) < 2 ** 31 else torch.int64
    o = offsets.reshape(b, k, 2, h * w)
    ys = torch.arange(h, device=dev, dtype=dt).repeat_interleave(w)          # location (i, j) → row i·W + j
    xs = torch.arange(w, device=dev, dtype=dt).repeat(h)
    py = (o[:, :, 0] + ys).transpose(1, 2)                                    # [B, HW, K] feature pixels
    px = (o[:, :, 1] + xs).transpose(1, 2)
    fy, fx = torch.floor(py.detach()), torch.floor(px.detach())
    ay, ax = py - fy, px - fx                                                 # gradient flows here
    # corner coordinates in the padded map (+1 for the border), clamped onto the zero border
    y0 = (fy + 1).clamp_(0, h + 1).to(itype)
    y1 = (fy + 2).clamp_(0, h + 1).to(itype)
    x0 = (fx + 1).clamp_(0, w + 1).to(itype)
    x1 = (fx + 2).clamp_(0, w + 1).to(itype)
    base = (torch.arange(b, device=dev, dtype=itype) * ((h + 2) * (w + 2))).view(b, 1, 1)
    r0, r1 = y0 * (w + 2) + base, y1 * (w + 2) + base
    index = torch.stack([r0 + x0, r0 + x1, r1 + x0, r1 + x1], dim=-1).view(b, h, w, k, 4)
    by, bx = 1 - ay, 1 - ax
    weight = torch.stack([by * bx, by * ax, ay * bx, ay * ax], dim=-1).view(b, h, w, k, 4)
    return index, weight


def padded_table(features: torch.Tensor) -> torch.Tensor:
    """[B, C, H, W] → [B·(H+2)·(W+2), C]: zero border of one pixel, channels-last, contiguous
    (``embedding_bag``'s vectorised path needs contiguous rows; for B = 1 the reshape alone
    would be a strided view and sample 5× slower)."""
    b, c = features.shape[:2]
    return F.pad(features, (1, 1, 1, 1)).permute(0, 2, 3, 1).reshape(-1, c).contiguous()


def _transposed_bag(grad_rows: torch.Tensor, index: torch.Tensor, weight: torch.Tensor, n: int) -> torch.Tensor:
    """Adjoint of ``embedding_bag(index [R, J], table [n, C], weight)``: [n, C] with row q =
    Σ over (r, j) with index[r, j] = q of weight[r, j] · grad_rows[r]. The (r, j) are grouped by q
    with one stable argsort (int32 keys take the fast radix path), then summed by one
    ``embedding_bag``: no atomics, no serial scatter, deterministic."""
    flat = index.reshape(-1)
    key = flat.to(torch.int32) if n < 2 ** 31 else flat.long()
    keys, order = torch.sort(key, stable=True)
    # bag q = positions [offsets[q], offsets[q+1]) of the sorted keys (searchsorted, unlike
    # bincount, needs no device→host sync on CUDA)
    offsets = torch.searchsorted(keys, torch.arange(n + 1, device=keys.device, dtype=keys.dtype))
    return F.embedding_bag(torch.div(order, index.shape[1], rounding_mode="floor"), grad_rows, offsets,
                           per_sample_weights=weight.reshape(-1)[order], mode="sum", include_last_offset=True)


def _row_dots(grad_rows: torch.Tensor, table: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """[R, J]: dot(grad_rows[r], table[index[r, j]]) — the gradient of the per-sample weights, as
    a sampled dense-dense product on the CSR pattern of ``index``."""
    rows, bag = index.shape
    n = table.shape[0]
    itype = torch.int32 if max(n, index.numel()) < 2 ** 31 else torch.int64
    crow = torch.arange(0, rows * bag + 1, bag, device=grad_rows.device, dtype=itype)
    with warnings.catch_warnings():                    # "sparse CSR support is in beta"
        warnings.simplefilter("ignore")
        pattern = torch.sparse_csr_tensor(crow, index.reshape(-1).to(itype),
                                          torch.ones(index.numel(), dtype=grad_rows.dtype, device=grad_rows.device),
                                          size=(rows, n))
        return torch.sparse.sampled_addmm(pattern, grad_rows, table.t(), beta=0.0).values().view(rows, bag)


class _WeightedRowSum(torch.autograd.Function):
    """out[r] = Σ_j w[r, j] · table[index[r, j]] (fixed bag size J); the project-first path."""

    @staticmethod
    def forward(ctx, table, index, weight):
        ctx.save_for_backward(table, index, weight)
        return F.embedding_bag(index, table, per_sample_weights=weight, mode="sum")

    @staticmethod
    def backward(ctx, grad):
        table, index, weight = ctx.saved_tensors
        grad = grad.contiguous()
        d_table = _transposed_bag(grad, index, weight, table.shape[0]) if ctx.needs_input_grad[0] else None
        d_weight = _row_dots(grad, table, index) if ctx.needs_input_grad[2] else None
        return d_table, None, d_weight


def _sample(table: torch.Tensor, index: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """[R, 4] corner rows and weights → [R, C] bilinear samples (one ``embedding_bag``)."""
    return F.embedding_bag(index, table, per_sample_weights=weight, mode="sum")


class _SampleProject(torch.autograd.Function):
    """Sample-first pose embedding of P locations: S = bilinear samples [P·K, C] (one
    embedding_bag), out = S.view(P, K·C) @ Wᵀ + b (one GEMM with the long K·C reduction).

    Without gradients (inference) the P locations go in blocks of ``chunk`` so S stays in cache.
    With gradients, S is built whole and kept (``save_memory``: blocks, S recomputed in the
    backward). Backward: dW = gᵀ S, then dS = g W is written *into S's buffer* (no second
    P·K·C allocation: fresh big buffers page-fault on every call, ~0.12 ms/MB here), then the
    feature gradient (adjoint sampling: one sort + one embedding_bag) and the corner-weight
    gradient (row dots) each in one call over all rows. Blocks (``save_memory``) do the same per
    block."""

    @staticmethod
    def forward(ctx, table, index, weight, wmat, bias, k, chunk, save_memory):
        p = index.shape[0]
        c = table.shape[1]
        grad_mode = any(ctx.needs_input_grad[:5])
        keep = grad_mode and ctx.needs_input_grad[3] and not save_memory     # only dW needs S
        if keep:
            chunk = p
        out = torch.empty(p, wmat.shape[0], dtype=table.dtype, device=table.device)
        wt_t = wmat.t()
        sampled = None
        for s in range(0, p, chunk):
            e = min(p, s + chunk)
            sampled = _sample(table, index[s:e].view(-1, 4), weight[s:e].view(-1, 4)).view(e - s, k * c)
            if bias is None:
                torch.mm(sampled, wt_t, out=out[s:e])
            else:
                torch.addmm(bias, sampled, wt_t, out=out[s:e])
        ctx.save_for_backward(table, index, weight, wmat)
        # S is held as a plain attribute, not a saved tensor: the backward overwrites it with dS
        # (autograd's version check would refuse that) and drops it; a second backward
        # (retain_graph) finds None and recomputes S.
        ctx.sampled = sampled if keep else None
        ctx.k, ctx.chunk, ctx.has_bias = k, (p if keep else chunk), bias is not None
        return out

    @staticmethod
    def backward(ctx, grad):
        table, index, weight, wmat = ctx.saved_tensors
        k, chunk = ctx.k, ctx.chunk
        kept, ctx.sampled = ctx.sampled, None
        grad = grad.contiguous()
        p = index.shape[0]
        n, c = table.shape
        need_table, _, need_weight, need_wmat, need_bias = ctx.needs_input_grad[:5]
        d_table = d_weight = d_wmat = None
        if need_weight:
            d_weight = torch.empty_like(weight)
        if need_wmat:
            d_wmat = torch.zeros_like(wmat)
        blocks = list(range(0, p, chunk))
        for s in blocks:
            e = min(p, s + chunk)
            g = grad[s:e]
            idx, wts = index[s:e].view(-1, 4), weight[s:e].view(-1, 4)
            buf = None
            if need_wmat:
                if kept is not None:
                    buf = kept
                else:
                    buf = _sample(table, idx, wts).view(e - s, k * c)
                d_wmat.addmm_(g.t(), buf)
            if need_table or need_weight:
                if buf is None:
                    d_sampled = torch.mm(g, wmat)
                else:                                   # reuse S's buffer for dS (S is no longer needed)
                    d_sampled = torch.mm(g, wmat, out=buf)
                d_sampled = d_sampled.view(-1, c)       # [(e−s)·K, C]
                if need_table:
                    part = _transposed_bag(d_sampled, idx, wts, n)
                    d_table = part if d_table is None else d_table.add_(part)
                if need_weight:
                    d_weight[s:e] = _row_dots(d_sampled, table, idx).view(e - s, -1)
        if need_table and d_table is None:
            d_table = torch.zeros_like(table)
        d_bias = grad.sum(0) if ctx.has_bias and need_bias else None
        return d_table, None, d_weight, d_wmat, d_bias, None, None, None


def pose_embedding(features: torch.Tensor, offsets: torch.Tensor, weight: torch.Tensor,
                   bias: torch.Tensor | None = None, order: str = "sample_first",
                   save_memory: bool = False, chunk_bytes: int | None = None) -> torch.Tensor:
    """Pose embedding of every location: see the module docstring.

    features [B, C, H, W]; offsets [B, 2K, H, W] (dy, dx interleaved, feature pixels);
    weight [O, C, 1, K] (the DCN weight layout; [O, C, K] also accepted); bias [O] or None.
    Returns [B, O, H, W] (channels-last in memory). Half / bfloat16 inputs are computed in
    float32 and cast back. ``order``: ``"sample_first"`` (sample K·C values per location, then
    one GEMM; blocked, see ``CHUNK_BYTES``) or ``"project_first"`` (one GEMM to K·O channels per
    location, then sample and sum over taps). ``save_memory`` (sample-first): recompute the
    samples in the backward instead of keeping B·H·W·K·C values for it.
    """
    if order not in ORDERS:
        raise ValueError(f"order must be one of {ORDERS}, got {order!r}")
    if features.dim() != 4 or offsets.dim() != 4:
        raise ValueError("features and offsets must be 4-D [B, C, H, W] / [B, 2K, H, W]")
    b, c, h, w = features.shape
    o, k = weight.shape[0], weight.shape[-1]
    if weight.dim() not in (3, 4) or weight.shape[1] != c or weight.numel() != o * c * k:
        raise ValueError(f"weight {tuple(weight.shape)} must be [O, {c}, 1, K] for {c} input channels")
    if offsets.shape != (b, 2 * k, h, w):
        raise ValueError(f"offsets {tuple(offsets.shape)} != {(b, 2 * k, h, w)} for K = {k}")
    if bias is not None and bias.shape != (o,):
        raise ValueError(f"bias {tuple(bias.shape)} != ({o},)")
    out_dtype = features.dtype
    compute = torch.float32 if out_dtype in (torch.float16, torch.bfloat16) else out_dtype
    with torch.autocast(features.device.type, enabled=False):
        feats, offs, wt = features.to(compute), offsets.to(compute), weight.to(compute).reshape(o, c, k)
        bias_c = None if bias is None else bias.to(compute)
        index, wts = bilinear_corners(offs, h, w)                           # [B, H, W, K, 4]
        table = padded_table(feats)
        if order == "sample_first":
            wmat = wt.transpose(1, 2).reshape(o, k * c)                     # column k·C + c
            if chunk_bytes is None:
                chunk_bytes = CHUNK_BYTES.get(features.device.type, CHUNK_BYTES["cuda"])
            chunk = max(1, chunk_bytes // (k * c * table.element_size()))
            out = _SampleProject.apply(table, index.view(b * h * w, k * 4), wts.view(b * h * w, k * 4),
                                       wmat, bias_c, k, chunk, save_memory)
        else:
            wmat = wt.permute(1, 2, 0).reshape(c, k * o)                    # column k·O + o
            projected = (table @ wmat).view(-1, o)                          # row (table row)·K + k
            taps = torch.arange(k, device=features.device).view(1, 1, 1, k, 1)
            out = _WeightedRowSum.apply(projected, (index * k + taps).view(b * h * w, k * 4),
                                        wts.view(b * h * w, k * 4))
            if bias_c is not None:
                out = out + bias_c
    return out.view(b, h, w, o).permute(0, 3, 1, 2).to(out_dtype)


def deform_conv_offsets(offsets: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
    """Our (dy, dx) keypoint offsets → the offsets and padding of the equivalent
    ``torchvision.ops.deform_conv2d`` call with a 1×K kernel (module docstring). For even K the
    returned offsets have one extra (ignored) column and the DCN output has W + 1 columns."""
    b, c2, h, w = offsets.shape
    k = c2 // 2
    pad = k // 2
    base = (torch.arange(k, device=offsets.device, dtype=offsets.dtype) - pad).view(1, k, 1, 1)
    o = offsets.reshape(b, k, 2, h, w)
    dcn = torch.stack([o[:, :, 0], o[:, :, 1] - base], dim=2).reshape(b, 2 * k, h, w)
    if k % 2 == 0:
        dcn = torch.cat([dcn, dcn[..., -1:]], dim=-1)
    return dcn, (0, pad)


def pose_embedding_reference(features: torch.Tensor, offsets: torch.Tensor, weight: torch.Tensor,
                             bias: torch.Tensor | None = None) -> torch.Tensor:
    """The same function through ``torchvision.ops.deform_conv2d`` (slow; tests and benchmarks)."""
    from torchvision.ops import deform_conv2d

    k = weight.shape[-1]
    weight = weight.reshape(weight.shape[0], weight.shape[1], 1, k)
    dcn, padding = deform_conv_offsets(offsets)
    out = deform_conv2d(features, dcn, weight, bias, padding=padding)
    return out[..., : features.shape[-1]]


class PoseEmbedding(nn.Module):
    """``pose_embedding`` with its own weight [out, in, 1, K] (the mmcv DCN layout) and bias.

    ``forward(features [B, C, H, W], offsets [B, 2K, H, W]) -> [B, out, H, W]``.
    Initialised N(0, 0.01²), bias 0 (mmdetection's ``normal_init`` of the RepPoints DCNs).
    ``save_memory``: recompute the samples in the backward (see ``pose_embedding``).
    """

    def __init__(self, in_channels: int, out_channels: int, num_keypoints: int, bias: bool = True,
                 order: str = "sample_first", save_memory: bool = False):
        super().__init__()
        if order not in ORDERS:
            raise ValueError(f"order must be one of {ORDERS}, got {order!r}")
        self.in_channels, self.out_channels, self.num_keypoints = in_channels, out_channels, num_keypoints
        self.order, self.save_memory = order, save_memory
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, 1, num_keypoints))
        self.bias = nn.Parameter(torch.empty(out_channels)) if bias else None
        self.reset_parameters()

    def reset_parameters(self, std: float = 0.01) -> None:
        nn.init.normal_(self.weight, 0.0, std)
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def forward(self, features: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
        return pose_embedding(features, offsets, self.weight, self.bias, order=self.order,
                              save_memory=self.save_memory)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, num_keypoints={self.num_keypoints}, "
                f"bias={self.bias is not None}, order={self.order!r}")
