"""FPS of one method on one image under the protocol (``posedet bench fps`` for PoseDet alone;
``bench table`` calls :func:`time_runner` for every method).

Two figures per method:

* network     — forward + decode + NMS (PoseDet; the authors' protocol) / the peer's own
                post-processing (grouping, RoI heads, NMS), on the prepared input tensor;
* end-to-end  — also reading and decoding the JPEG file, resizing and normalising.

Plus the forward alone, its FLOPs (``torch.utils.flop_counter``) and the achieved GFLOP/s
(FLOPs ÷ median forward time), and the candidate counts the post-processing saw.
"""
from __future__ import annotations

import argparse
import os
import tempfile

import torch

from posedet.bench.protocol import count_flops, finish_manifest, manifest, summarize, time_calls, write_json


def _spread(s: dict) -> dict:
    return {k: s[k] for k in ("min_ms", "p10_ms", "p90_ms", "max_ms", "mad_ms", "n")}


def time_runner(runner, scene, warmup: int = 2, repeats: int = 10, e2e_repeats: int | None = None,
                forward_repeats: int | None = None, flops: bool = True, budget_s: float | None = None,
                min_repeats: int = 3, end_to_end: bool = True) -> dict:
    """Time ``runner`` on ``scene`` (``bench.scenes.BenchScene``); returns one table row.
    ``budget_s``: cap the timed calls of a slow model so its network figure takes about that
    long (at least ``min_repeats``; the forward and end-to-end figures get half as many)."""
    import time

    from posedet.data.reader import read_image

    with tempfile.TemporaryDirectory() as td:
        path = os.path.join(td, "bench.jpg")
        with open(path, "wb") as f:
            f.write(scene.jpeg)
        image = read_image(path)
        x, scale = runner.prepare(image)
        runner.use_scene(scene, x, scale)
        t0 = time.perf_counter()
        result = runner.network(x)
        first = time.perf_counter() - t0
        counts = runner.counts(result)
        if budget_s is not None and first > 0:
            repeats = max(min_repeats, min(repeats, int(budget_s / first)))
            warmup = min(warmup, max(1, repeats // 3))
            e2e_repeats = min(e2e_repeats or repeats, max(1, repeats // 2))
            forward_repeats = min(forward_repeats or repeats, max(1, repeats // 2))
        t_net = summarize(time_calls(lambda: runner.network(x), repeats, warmup, runner.device))
        t_fwd = summarize(time_calls(lambda: runner.forward_only(x), forward_repeats or max(1, repeats // 2),
                                     min(1, warmup), runner.device))

        def e2e():
            img = read_image(path)
            xi, _ = runner.prepare(img)
            return runner.network(xi)

        t_e2e = summarize(time_calls(e2e, e2e_repeats or max(1, repeats // 2), min(1, warmup), runner.device)
                          if end_to_end else [])
    fl = count_flops(lambda: runner.forward_only(x)) if flops else None
    inp = list(x.shape[-2:]) if torch.is_tensor(x) else None
    row = {
        "method": runner.method, "backbone": runner.backbone, "short_side": runner.short_side,
        "max_size": runner.max_size, "input_size": inp, "device": runner.device, "dtype": runner.dtype,
        "network_ms": t_net["median_ms"], "spread": _spread(t_net),
        "end_to_end_ms": t_e2e["median_ms"], "end_to_end_spread": _spread(t_e2e),
        "forward_ms": t_fwd["median_ms"], "post_ms": t_net["median_ms"] - t_fwd["median_ms"],
        "fps": t_net["fps_median"], "end_to_end_fps": t_e2e["fps_median"],
        "gflops": None if fl is None else fl / 1e9,
        "achieved_gflops_per_s": None if fl is None or not t_fwd["median_ms"] else fl / 1e6 / t_fwd["median_ms"],
        "repeats": {"network": t_net["n"], "forward": t_fwd["n"], "end_to_end": t_e2e["n"], "warmup": warmup},
        "weights": runner.weights, "candidates": dict(counts, mode=runner.candidates_mode),
        "people": scene.people, "image_size": list(scene.size),
    }
    if runner.notes:
        row["notes"] = list(runner.notes)
    return row


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--backbone", default="dla34")
    p.add_argument("--checkpoint", default=None, help="a trained PoseDet checkpoint (real candidate counts)")
    p.add_argument("--short-side", type=int, default=512)
    p.add_argument("--max-size", type=int, default=1000)
    p.add_argument("--people", type=int, default=10, help="people on the synthetic 640x480 image")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=None, help="intra-op threads (default: all cores)")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--amp", action="store_true", help="autocast fp16 on CUDA")
    p.add_argument("--pose-source", default=None)
    p.add_argument("--out", required=True)


def main(args) -> int:
    from posedet.bench.protocol import threads
    from posedet.bench.runners import PoseDetRunner
    from posedet.bench.scenes import default_pose_source, load_prior, make_scene

    nthreads = args.threads or os.cpu_count()
    with threads(nthreads):
        src = args.pose_source or default_pose_source()
        scene = make_scene(args.people, prior=load_prior(src), pose_source=src)
        m = manifest(args.device, nthreads, what="PoseDet network (forward + decode + OKS-NMS) and "
                     "end-to-end (JPEG read + decode + resize + normalise + network)", image=scene.pose_source)
        r = PoseDetRunner(args.backbone, args.short_side, args.max_size, args.device, args.amp, args.checkpoint)
        row = time_runner(r, scene, args.warmup, args.repeats)
    write_json({"manifest": finish_manifest(m), "rows": [row]}, args.out)
    print(f"{row['method']} {row['backbone']} @ {row['input_size']} on {row['device']}: network "
          f"{row['network_ms']:.1f} ms ({row['fps']:.1f} FPS), end-to-end {row['end_to_end_ms']:.1f} ms, "
          f"candidates {row['candidates']}")
    return 0
