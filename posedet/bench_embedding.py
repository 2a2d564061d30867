"""Pose-embedding micro-benchmark: ``posedet.model.embedding.pose_embedding`` beside
``torchvision.ops.deform_conv2d`` (the same function, 1×K kernel) and a dense 3×3 convolution
with the same channel counts (the cost of an ordinary layer of the head), forward and
forward + backward, on one [B, C, S, S] map.

Protocol: fixed thread count (recorded), one untimed warm-up call per variant, then ``repeats``
rounds in which every variant runs once in turn (interleaved, so a load spike from another
process hits all variants alike); each figure is reported as min and median over the rounds.
On CUDA every timed call is bracketed by ``torch.cuda.synchronize()``. The result is checked
against ``deform_conv2d`` once (forward and all four gradients) and the check is stored beside
the timings with a manifest (torch/torchvision versions, CPU/GPU model, threads, shapes, load).
"""
from __future__ import annotations

import json
import os
import statistics
import time

import torch
import torch.nn.functional as F

from posedet.atomic import write_json_atomic
from posedet.bench import manifest as bench_manifest
from posedet.model.embedding import pose_embedding, pose_embedding_reference

VARIANTS = ("pose_embedding", "pose_embedding_project_first", "deform_conv2d", "conv3x3")


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
    if name == "pose_embedding_project_first":
        return lambda x, off, w, b, w3: pose_embedding(x, off, w, b, order="project_first")
    if name == "deform_conv2d":
        return lambda x, off, w, b, w3: pose_embedding_reference(x, off, w, b)
    if name == "conv3x3":
        return lambda x, off, w, b, w3: F.conv2d(x, w3, b, padding=1)
    raise ValueError(f"unknown variant {name!r}; choose from {VARIANTS}")


def _stats(runs: list[float]) -> dict:
    ms = [r * 1e3 for r in runs]
    return {"min_ms": min(ms), "median_ms": statistics.median(ms), "runs_ms": ms}


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-12))


def compare_with_deform_conv(x, off, w, b, grad, order: str = "sample_first") -> dict:
    """Max relative difference (÷ max |reference|) of the output and of the input, offset,
    weight and bias gradients against ``deform_conv2d``."""
    res = {}
    outs = []
    for fn in (lambda *a: pose_embedding(*a, order=order), pose_embedding_reference):
        leaves = [t.detach().clone().requires_grad_(True) for t in (x, off, w, b)]
        y = fn(*leaves)
        grads = torch.autograd.grad(y, leaves, grad)
        outs.append([y.detach(), *grads])
    for name, a, r in zip(("output", "grad_input", "grad_offsets", "grad_weight", "grad_bias"), *outs):
        res[name] = _rel(a, r)
    return res


def run_embedding_bench(threads: int = 2, size: int = 64, channels: int = 256, k: int = 17,
                        out_channels: int | None = None, batch: int = 1, repeats: int = 10,
                        slow_repeats: int = 3, device: str = "cpu", variants=VARIANTS, seed: int = 0,
                        check: bool = True) -> dict:
    """Time ``variants`` (forward under ``no_grad``; forward + backward of a random output
    gradient w.r.t. input, offsets, weight and bias) and return a JSON-able dict.
    ``deform_conv2d`` (seconds per call on CPU) runs only ``slow_repeats`` rounds."""
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("run_embedding_bench: device 'cuda' asked for but CUDA is not available")
    old_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        out_channels = out_channels or channels
        x, off, w, b, w3, grad = _inputs(batch, channels, out_channels, k, size, dev, torch.float32, seed)
        sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
        fns = {name: _variant_fn(name) for name in variants}
        leaves = [t.clone().requires_grad_(True) for t in (x, off, w, b, w3)]

        def fwd(fn):
            with torch.no_grad():
                fn(x, off, w, b, w3)

        def fwd_bwd(fn):
            for t in leaves:
                t.grad = None
            fn(*leaves).backward(grad)

        def timed(call, fn):
            sync()
            t0 = time.perf_counter()
            call(fn)
            sync()
            return time.perf_counter() - t0

        runs = {name: {"forward": [], "forward_backward": []} for name in variants}
        for name, fn in fns.items():                      # warm-up
            fwd(fn)
            fwd_bwd(fn)
        for r in range(repeats):
            for name, fn in fns.items():
                if name == "deform_conv2d" and dev.type == "cpu" and r >= slow_repeats:
                    continue
                runs[name]["forward"].append(timed(fwd, fn))
                runs[name]["forward_backward"].append(timed(fwd_bwd, fn))
        result = {
            "manifest": bench_manifest(dev, threads, what="pose embedding micro-benchmark (forward; forward+backward)",
                                     batch=batch, channels=channels, out_channels=out_channels,
                                 num_keypoints=k, size=size, dtype="float32", repeats=repeats,
                                 slow_repeats=slow_repeats, warmup=1, interleaved=True),
            "results": {name: {kind: _stats(v) for kind, v in rr.items()} for name, rr in runs.items()},
        }
        if hasattr(os, "getloadavg"):
            result["manifest"]["loadavg_at_end"] = list(os.getloadavg())
        if check:
            result["check_vs_deform_conv2d"] = compare_with_deform_conv(x, off, w, b, grad)
        return result
    finally:
        torch.set_num_threads(old_threads)


def check_embedding_cuda(size: int = 64, channels: int = 256, k: int = 17, repeats: int = 20,
                         tolerance: float = 1e-4) -> dict:
    """On CUDA: compare ``pose_embedding`` with ``deform_conv2d`` (float64 at K = 14, 15, 17 on
    small maps; float32 at the benchmark shape), then time both. Returns a dict with ``ok``;
    without CUDA returns ``{"skipped": True, "reason": ...}``."""
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
                                 repeats=repeats, device="cuda", check=False)
    return {"skipped": False, "ok": worst <= tolerance, "max_rel_diff": worst, "tolerance": tolerance,
            "checks": checks, **timing}


def add_arguments(parser) -> None:
    parser.add_argument("--out", required=True, help="JSON file to write")
    parser.add_argument("--device", default="cpu", help="cpu | cuda (default cpu)")
    parser.add_argument("--threads", type=int, default=2, help="intra-op CPU threads (default 2)")
    parser.add_argument("--size", type=int, default=64, help="feature map side (default 64)")
    parser.add_argument("--channels", type=int, default=256, help="input = output channels (default 256)")
    parser.add_argument("--num-keypoints", type=int, default=17, help="K (default 17)")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=10, help="timed rounds (default 10)")
    parser.add_argument("--slow-repeats", type=int, default=3,
                        help="rounds for deform_conv2d on CPU (seconds per call; default 3)")
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
    write_json_atomic(args.out, result, indent=1)
    summary = {name: {kind: round(s["min_ms"], 1) for kind, s in r.items()}
               for name, r in result.get("results", {}).items()}
    print(json.dumps({"min_ms": summary, "check": result.get("check_vs_deform_conv2d",
                                                             result.get("max_rel_diff"))}))
    return 0 if result.get("ok", True) else 1


if __name__ == "__main__":
    import argparse
    import sys

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(p)
    sys.exit(main(p.parse_args()))
