"""The pose embedding equals a 1×K deformable convolution (torchvision's deform_conv2d),
forward and all four gradients, for odd and even K, with keypoints inside and outside the map."""
from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import torch

from posedet.model.embedding import (PoseEmbedding, bilinear_corners, deform_conv_offsets, pose_embedding,
                                     pose_embedding_reference)


def _inputs(k, dtype, b=2, c=6, h=5, w=7, o=4, spread=4.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(b, c, h, w, generator=g, dtype=dtype)
    off = torch.randn(b, 2 * k, h, w, generator=g, dtype=dtype) * spread
    wt = torch.randn(o, c, 1, k, generator=g, dtype=dtype)
    bias = torch.randn(o, generator=g, dtype=dtype)
    grad = torch.randn(b, o, h, w, generator=g, dtype=dtype)
    return x, off, wt, bias, grad


def _outside_fraction(off, h, w):
    b, c2 = off.shape[:2]
    o = off.view(b, c2 // 2, 2, h, w)
    y = o[:, :, 0] + torch.arange(h, dtype=off.dtype).view(1, 1, h, 1)
    x = o[:, :, 1] + torch.arange(w, dtype=off.dtype).view(1, 1, 1, w)
    out = (y <= -1) | (y >= h) | (x <= -1) | (x >= w)
    return out.double().mean().item()


def _forward_and_grads(fn, x, off, wt, bias, grad):
    leaves = [t.detach().clone().requires_grad_(True) for t in (x, off, wt, bias)]
    y = fn(*leaves)
    return [y.detach(), *torch.autograd.grad(y, leaves, grad)]


def _rel(a, b):
    return ((a - b).abs().max() / b.abs().max().clamp_min(1e-30)).item()


@pytest.mark.parametrize("k", [14, 15, 17])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("order", ["sample_first", "project_first"])
def test_equals_deform_conv2d(k, dtype, order):
    x, off, wt, bias, grad = _inputs(k, dtype, seed=k)
    frac = _outside_fraction(off, 5, 7)
    assert 0.2 < frac < 0.9, frac                  # the test covers points outside the map
    ref = _forward_and_grads(pose_embedding_reference, x, off, wt, bias, grad)
    got = _forward_and_grads(lambda *a: pose_embedding(*a, order=order), x, off, wt, bias, grad)
    tol = 1e-10 if dtype == torch.float64 else 1e-4
    for name, a, r in zip(("out", "d_input", "d_offsets", "d_weight", "d_bias"), got, ref):
        assert a.shape == r.shape, name
        assert _rel(a, r) < tol, (name, _rel(a, r))


@pytest.mark.parametrize("save_memory", [False, True])
def test_blocked_path_and_save_memory(save_memory):
    """Many blocks (a few locations each), samples kept or recomputed: same as deform_conv2d."""
    k = 14
    x, off, wt, bias, grad = _inputs(k, torch.float64, b=2, c=8, h=6, w=5, o=3, seed=3)
    ref = _forward_and_grads(pose_embedding_reference, x, off, wt, bias, grad)
    chunk_bytes = 7 * k * 8 * 8                       # 7 locations per block: 60 locations → 9 blocks
    got = _forward_and_grads(lambda *a: pose_embedding(*a, save_memory=save_memory, chunk_bytes=chunk_bytes),
                             x, off, wt, bias, grad)
    for a, r in zip(got, ref):
        assert _rel(a, r) < 1e-10


def test_gradcheck_and_no_bias():
    x, off, wt, _, _ = _inputs(3, torch.float64, b=1, c=2, h=3, w=4, o=2, spread=2.0, seed=5)
    leaves = [t.requires_grad_(True) for t in (x, off, wt)]
    assert torch.autograd.gradcheck(lambda a, b, c: pose_embedding(a, b, c, None), leaves)
    ref = pose_embedding_reference(x, off, wt, None)
    assert _rel(pose_embedding(x, off, wt, None), ref) < 1e-12


def test_integer_offsets_read_exact_pixels():
    """K = 1, identity weight: the output is the feature map shifted by (dy, dx), zeros outside."""
    c, h, w = 3, 6, 5
    x = torch.randn(1, c, h, w)
    eye = torch.eye(c).view(c, c, 1, 1)
    for dy, dx in [(0, 0), (1, -2), (-3, 4), (6, 0), (-1, -1)]:
        off = torch.tensor([float(dy), float(dx)]).view(1, 2, 1, 1).expand(1, 2, h, w).contiguous()
        got = pose_embedding(x, off, eye)
        want = torch.zeros_like(x)
        for i in range(h):
            for j in range(w):
                if 0 <= i + dy < h and 0 <= j + dx < w:
                    want[0, :, i, j] = x[0, :, i + dy, j + dx]
        assert torch.equal(got, want), (dy, dx)


def test_module_equals_function_and_dcn_layout():
    k = 14
    x, off, wt, bias, _ = _inputs(k, torch.float32, c=6, o=4)
    mod = PoseEmbedding(6, 4, k)
    assert mod.weight.shape == (4, 6, 1, k) and mod.bias.shape == (4,)
    with torch.no_grad():
        mod.weight.copy_(wt)
        mod.bias.copy_(bias)
    assert torch.equal(mod(x, off), pose_embedding(x, off, wt, bias))
    # the documented DCN offsets: (dy, dx − (k − ⌊K/2⌋)), one spare column for even K
    dcn, pad = deform_conv_offsets(off)
    assert pad == (0, k // 2) and dcn.shape[-1] == off.shape[-1] + 1
    assert torch.equal(dcn[:, 1::2, :, :7], off[:, 1::2] - (torch.arange(k) - k // 2).view(1, k, 1, 1).float())
    assert torch.equal(dcn[:, 0::2, :, :7], off[:, 0::2])


def test_corner_weights_sum_to_one_and_border_rows():
    off = torch.randn(1, 2 * 5, 4, 4) * 3
    index, weight = bilinear_corners(off, 4, 4)
    assert torch.allclose(weight.sum(-1), torch.ones(1, 4, 4, 5))
    assert index.min() >= 0 and index.max() < 6 * 6


def test_half_input_and_bad_shapes():
    x, off, wt, bias, _ = _inputs(5, torch.float32)
    out = pose_embedding(x.half(), off.half(), wt.half(), bias.half())
    assert out.dtype == torch.float16
    ref = pose_embedding(x.half().float(), off.half().float(), wt.half().float(), bias.half().float())
    assert torch.allclose(out.float(), ref, rtol=1e-2, atol=1e-2)
    with pytest.raises(ValueError, match="offsets"):
        pose_embedding(x, off[:, :-2], wt, bias)
    with pytest.raises(ValueError, match="order"):
        pose_embedding(x, off, wt, bias, order="sideways")


def test_bench_runs_and_writes_json(tmp_path):
    from posedet.bench.embedding import check_embedding_cuda, main, run_embedding_bench

    res = run_embedding_bench(threads=1, size=6, channels=4, k=5, repeats=2, slow_repeats=1)
    assert set(res["results"]) == {"pose_embedding", "pose_embedding_v0", "pose_embedding_project_first",
                                   "deform_conv2d", "conv3x3"}
    assert set(res["ratio_to_conv3x3"]["pose_embedding"]) == {"forward", "forward_backward"}
    assert res["manifest"]["loadavg_at_start"] is not None and "loadavg_at_end" in res["manifest"]
    for r in res["results"].values():
        assert r["forward"]["min_ms"] > 0 and r["forward_backward"]["median_ms"] >= r["forward_backward"]["min_ms"]
    assert len(res["results"]["deform_conv2d"]["forward"]["runs_ms"]) == 1
    assert res["manifest"]["threads"] == 1 and res["manifest"]["num_keypoints"] == 5 and res["manifest"]["cpu"]
    assert max(res["check_vs_deform_conv2d"].values()) < 1e-4
    out = tmp_path / "emb.json"
    args = SimpleNamespace(out=str(out), device="cpu", threads=1, size=6, channels=4, num_keypoints=5,
                           batch=1, repeats=1, slow_repeats=1, check_cuda=False)
    assert main(args) == 0
    assert json.loads(out.read_text())["manifest"]["size"] == 6
    if not torch.cuda.is_available():
        assert check_embedding_cuda()["skipped"] is True


def test_backward_is_deterministic():
    x, off, wt, bias, grad = _inputs(17, torch.float32, b=1, c=16, h=12, w=12, o=8, spread=3.0, seed=9)
    first = _forward_and_grads(lambda *a: pose_embedding(*a, chunk_bytes=4096), x, off, wt, bias, grad)
    again = _forward_and_grads(lambda *a: pose_embedding(*a, chunk_bytes=4096), x, off, wt, bias, grad)
    assert all(torch.equal(a, b) for a, b in zip(first, again))


def test_backward_twice_with_retained_graph_recomputes_the_samples():
    """The backward writes dS into the kept samples' buffer; a second backward must recompute them."""
    x, off, wt, bias, grad = _inputs(5, torch.float64, b=1, c=4, h=5, w=6, o=3, seed=4)
    leaves = [t.detach().clone().requires_grad_(True) for t in (x, off, wt, bias)]
    y = pose_embedding(*leaves)
    first = torch.autograd.grad(y, leaves, grad, retain_graph=True)
    second = torch.autograd.grad(y, leaves, grad)
    ref = _forward_and_grads(pose_embedding_reference, x, off, wt, bias, grad)[1:]
    for a, b, r in zip(first, second, ref):
        assert torch.equal(a, b) and _rel(a, r) < 1e-10


def test_before_after_paths_agree():
    from posedet.bench.baselines import pose_embedding_v0

    x, off, wt, bias, grad = _inputs(17, torch.float64, b=1, c=8, h=7, w=6, o=5, seed=6)
    assert _rel(pose_embedding(x, off, wt, bias), pose_embedding_v0(x, off, wt, bias)) < 1e-12
    with torch.no_grad():                                     # the blocked inference path
        assert _rel(pose_embedding(x, off, wt, bias, chunk_bytes=3 * 17 * 8 * 8),
                    pose_embedding_reference(x, off, wt, bias)) < 1e-12
