"""Pose-embedding micro-benchmark (``posedet bench embedding``).

Times, on one [B, C, S, S] map with K keypoints, forward (``inference_mode``) and forward +
backward (a random output gradient w.r.t. input, offsets, weight, bias):

* ``pose_embedding``              the harness's fast path (``posedet.model.embedding``), *after*;
* ``pose_embedding_v0``           the same function before the fast path (``bench.baselines``);
* ``pose_embedding_project_first`` the other contraction order;
* ``deform_conv2d``               torchvision's DCN with a 1×K kernel (the reference; seconds per
                                  call on CPU, so only ``slow_repeats`` rounds);
* ``conv3x3``                     a dense 3×3 convolution C→O: an ordinary head layer, the yardstick.

Interleaved rounds (every variant once per round, so load spikes hit all alike), one warm-up
call each; min and median per variant, and the ratios to ``conv3x3`` (the FLOP ratio is K/9).
The fast path is checked against ``deform_conv2d`` once (output and the four gradients, max
relative difference) and the check is stored beside the timings.
"""
from __future__ import annotations

import json
import statistics

import torch
import torch.nn.functional as F

from posedet.bench.baselines import pose_embedding_v0
from posedet.bench.protocol import finish_manifest, manifest, time_interleaved, write_json
from posedet.model.embedding import pose_embedding, pose_embedding_reference

VARIANTS = ("pose_embedding", "pose_embedding_v0", "pose_embedding_project_first", "deform_conv2d", "conv3x3")


def _inputs(batch, channels, out_channels, k, size, device, dtype, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, channels, size, size, generator=g, dtype=dtype)
    # keypoints spread over ±size/4 around each location, some outside the map
    off = torch.randn(batch, 2 * k, size, size, generator=g, dtype=dtype) * (size / 8)
    w = torch.randn(out_channels, channels, 1, k, generator=g, dtype=dtype) * 0.01
    b = torch.randn(out_channels, generator=g, dtype=dtype)
    w3 = torch.randn(out_channels, channels, 3, 3, generator=g, dtype=dtype) * 0.01
    grad = torch.randn(batch, out_channels, size, size, generator=g, dtype=dtype)
    return [t.to(device) for t in (x, off, w, b, w3, grad)]


def _variant_fn(name):
    if name == "pose_embedding":
        return lambda x, off, w, b, w3: pose_embedding(x, off, w, b)
    if name == "pose_embedding_v0":
        return lambda x, off, w, b, w3: pose_embedding_v0(x, off, w, b)
    if name == "pose_embedding_project_first":
        return lambda x, off, w, b, w3: pose_embedding(x, off, w, b, order="project_first")
    if name == "deform_conv2d":
        return lambda x, off, w, b, w3: pose_embedding_reference(x, off, w, b)
    if name == "conv3x3":
        return lambda x, off, w, b, w3: F.conv2d(x, w3, b, padding=1)
    raise ValueError(f"unknown variant {name!r}; choose from {VARIANTS}")


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-12))


def compare_with_deform_conv(x, off, w, b, grad, order: str = "sample_first") -> dict:
    """Max relative difference (÷ max |reference|) of the output and of the input, offset,
    weight and bias gradients against ``deform_conv2d``."""
    outs = []
    for fn in (lambda *a: pose_embedding(*a, order=order), pose_embedding_reference):
        leaves = [t.detach().clone().requires_grad_(True) for t in (x, off, w, b)]
        y = fn(*leaves)
        grads = torch.autograd.grad(y, leaves, grad)
        outs.append([y.detach(), *grads])
    return {name: _rel(a, r) for name, a, r in
            zip(("output", "grad_input", "grad_offsets", "grad_weight", "grad_bias"), *outs)}


def run_embedding_bench(threads: int = 1, size: int = 64, channels: int = 256, k: int = 17,
                        out_channels: int | None = None, batch: int = 1, repeats: int = 10,
                        slow_repeats: int = 2, device: str = "cpu", variants=VARIANTS, seed: int = 0,
                        check: bool = True) -> dict:
    """Time ``variants`` and return a JSON-able dict: ``manifest``, ``results[variant][kind]``
    (kind ``forward`` | ``forward_backward``: ``min_ms``, ``median_ms``, ``runs_ms``),
    ``ratio_to_conv3x3[variant][kind]`` (``min``, ``median``), ``check_vs_deform_conv2d``."""
    from posedet.bench.protocol import threads as fixed_threads

    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("run_embedding_bench: device 'cuda' asked for but CUDA is not available")
    with fixed_threads(threads if dev.type == "cpu" else None) as nthreads:
        out_channels = out_channels or channels
        x, off, w, b, w3, grad = _inputs(batch, channels, out_channels, k, size, dev, torch.float32, seed)
        leaves = [t.clone().requires_grad_(True) for t in (x, off, w, b, w3)]
        fns = {}
        for name in variants:
            fn = _variant_fn(name)

            def fwd(fn=fn):
                with torch.inference_mode():
                    fn(x, off, w, b, w3)

            def fwd_bwd(fn=fn):
                for t in leaves:
                    t.grad = None
                fn(*leaves).backward(grad)

            fns[(name, "forward")] = fwd
            fns[(name, "forward_backward")] = fwd_bwd
        slow = {key: slow_repeats for key in fns if key[0] == "deform_conv2d" and dev.type == "cpu"}
        m = manifest(dev, nthreads, what="pose embedding micro-benchmark (forward under inference_mode; "
                                        "forward+backward w.r.t. input, offsets, weight, bias)",
                     batch=batch, channels=channels, out_channels=out_channels, num_keypoints=k, size=size,
                     dtype="float32", repeats=repeats, slow_repeats=slow_repeats, warmup=1, interleaved=True,
                     flop_ratio_to_conv3x3=k / 9.0,
                     before="pose_embedding_v0 (posedet.bench.baselines: the code before the fast path)",
                     after="pose_embedding (posedet.model.embedding)")
        runs = time_interleaved(fns, repeats, warmup=1, device=device, repeats_for=slow)
    results: dict = {}
    for (name, kind), r in runs.items():
        ms = [t * 1e3 for t in r]
        results.setdefault(name, {})[kind] = {"min_ms": min(ms), "median_ms": statistics.median(ms), "runs_ms": ms}
    result = {"manifest": finish_manifest(m), "results": results}
    if "conv3x3" in results:
        base = results["conv3x3"]
        result["ratio_to_conv3x3"] = {
            name: {kind: {"min": r[kind]["min_ms"] / base[kind]["min_ms"],
                          "median": r[kind]["median_ms"] / base[kind]["median_ms"]} for kind in r}
            for name, r in results.items() if name != "conv3x3"}
    if check:
        result["check_vs_deform_conv2d"] = compare_with_deform_conv(x, off, w, b, grad)
    return result


def check_embedding_cuda(size: int = 64, channels: int = 256, k: int = 17, repeats: int = 20,
                         tolerance: float = 1e-4) -> dict:
    """On CUDA: compare ``pose_embedding`` with ``deform_conv2d`` (float64 at K = 14, 15, 17 on
    small maps; float32 at the benchmark shape), then time every variant. Returns a dict with
    ``ok``; without CUDA returns ``{"skipped": True, "reason": ...}``."""
    if not torch.cuda.is_available():
        return {"skipped": True, "reason": "CUDA is not available"}
    dev = torch.device("cuda")
    checks = {}
    for kk in (14, 15, 17):
        x, off, w, b, _, grad = _inputs(2, 16, 8, kk, 9, dev, torch.float64, seed=kk)
        for order in ("sample_first", "project_first"):
            checks[f"float64_k{kk}_{order}"] = compare_with_deform_conv(x, off, w, b, grad, order)
    x, off, w, b, _, grad = _inputs(1, channels, channels, k, size, dev, torch.float32, seed=0)
    checks[f"float32_k{k}_{size}x{size}"] = compare_with_deform_conv(x, off, w, b, grad)
    worst = max(v for c in checks.values() for v in c.values())
    timing = run_embedding_bench(threads=torch.get_num_threads(), size=size, channels=channels, k=k,
                                 repeats=repeats, slow_repeats=repeats, device="cuda", check=False)
    return {"skipped": False, "ok": worst <= tolerance, "max_rel_diff": worst, "tolerance": tolerance,
            "checks": checks, **timing}


def add_arguments(parser) -> None:
    parser.add_argument("--out", required=True, help="JSON file to write")
    parser.add_argument("--device", default="cpu", help="cpu | cuda (default cpu)")
    parser.add_argument("--threads", type=int, default=1, help="intra-op CPU threads (default 1)")
    parser.add_argument("--size", type=int, default=64, help="feature map side (default 64)")
    parser.add_argument("--channels", type=int, default=256, help="input = output channels (default 256)")
    parser.add_argument("--num-keypoints", type=int, default=17, help="K (default 17)")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=10, help="timed rounds (default 10)")
    parser.add_argument("--slow-repeats", type=int, default=2,
                        help="rounds for deform_conv2d on CPU (seconds per call; default 2)")
    parser.add_argument("--check-cuda", action="store_true",
                        help="run check_embedding_cuda() instead (skips gracefully without CUDA)")


def main(args) -> int:
    if args.check_cuda:
        result = check_embedding_cuda(size=args.size, channels=args.channels, k=args.num_keypoints,
                                      repeats=args.repeats)
    else:
        result = run_embedding_bench(threads=args.threads, size=args.size, channels=args.channels,
                                     k=args.num_keypoints, batch=args.batch, repeats=args.repeats,
                                     slow_repeats=args.slow_repeats, device=args.device)
    write_json(result, args.out)
    summary = {name: {kind: round(s["min_ms"], 1) for kind, s in r.items()}
               for name, r in result.get("results", {}).items()}
    ratios = {name: {kind: round(v["min"], 2) for kind, v in r.items()}
              for name, r in result.get("ratio_to_conv3x3", {}).items()}
    print(json.dumps({"min_ms": summary, "ratio_to_conv3x3_min": ratios,
                      "check": result.get("check_vs_deform_conv2d", result.get("max_rel_diff")),
                      "loadavg": result.get("manifest", {}).get("loadavg_at_start")}))
    return 0 if result.get("ok", True) else 1
