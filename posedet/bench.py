"""`posedet bench`: timing under one documented protocol (DESIGN.md, "FPS protocol").

    posedet bench embedding [...]   pose-embedding micro-benchmark (ours vs deform_conv2d vs dense conv)
    posedet bench fps [...]         model FPS: network (forward + decode + NMS) and end-to-end
                                    (also image-file decode, resize, normalise)

Protocol: batch 1, eval mode, ``torch.inference_mode()``, a fixed thread count (recorded),
warm-up runs before timing, ``torch.cuda.synchronize()`` around every timed call on GPU,
median and spread (min, p10, p90, max) over many runs. Every output carries a manifest:
CPU/GPU model, torch/CUDA versions, threads, input size, what was timed.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from pathlib import Path

import torch

from posedet.atomic import write_json_atomic


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def manifest(device, threads: int, **extra) -> dict:
    """What every timing file records: machine, software, threads, load, and ``extra`` (shapes,
    input size, what was timed)."""
    import torchvision

    device = str(device)
    cuda = device.startswith("cuda") and torch.cuda.is_available()
    m = {
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "cuda": torch.version.cuda,
        "device": device,
        "gpu": torch.cuda.get_device_name(torch.device(device)) if cuda else None,
        "threads": threads,
        "platform": platform.platform(),
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    if hasattr(os, "getloadavg"):
        m["loadavg_at_start"] = list(os.getloadavg())
    m.update(extra)
    return m


def summarize(seconds: list[float]) -> dict:
    s = sorted(seconds)
    q = lambda p: s[min(len(s) - 1, int(round(p * (len(s) - 1))))]  # noqa: E731
    med = statistics.median(s)
    return {"n": len(s), "median_ms": med * 1e3, "min_ms": s[0] * 1e3, "p10_ms": q(0.1) * 1e3,
            "p90_ms": q(0.9) * 1e3, "max_ms": s[-1] * 1e3, "fps_median": (1.0 / med) if med > 0 else None}


def time_calls(fn, repeats: int, warmup: int, device: str) -> list[float]:
    """Run ``fn`` ``warmup`` times untimed, then ``repeats`` timed calls (synchronised on CUDA)."""
    cuda = device.startswith("cuda")
    for _ in range(warmup):
        fn()
    if cuda:
        torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        if cuda:
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        if cuda:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return times


def write_json(obj, out: str | Path) -> None:
    write_json_atomic(out, obj)


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="bench", metavar="BENCH")
    sub.required = True
    e = sub.add_parser("embedding", help="pose-embedding micro-benchmark")
    from posedet import bench_embedding
    bench_embedding.add_arguments(e)
    f = sub.add_parser("fps", help="model FPS under the protocol")
    from posedet import bench_fps
    bench_fps.add_arguments(f)


def main(args) -> int:
    if args.bench == "embedding":
        from posedet import bench_embedding
        return bench_embedding.main(args)
    from posedet import bench_fps
    return bench_fps.main(args)
