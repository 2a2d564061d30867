"""The timing protocol (DESIGN.md, "FPS protocol") and the manifest every timing file carries.

The lowest layer of ``posedet.bench``: it imports nothing from the rest of the package.

* batch 1, model in eval mode, ``torch.inference_mode()`` (the callers' ``fn`` runs inside it);
* a fixed intra-op thread count, set by :func:`threads` and recorded;
* ``warmup`` untimed calls, then ``repeats`` timed calls, each bracketed by
  ``torch.cuda.synchronize()`` on CUDA (:func:`time_calls`); :func:`time_interleaved` runs
  several functions round-robin so that a load spike from another process hits all alike;
* median and spread (min, p10, p90, max, MAD) over the runs (:func:`summarize`);
* FLOPs by ``torch.utils.flop_counter.FlopCounterMode`` (:func:`count_flops`), and the achieved
  GFLOP/s = FLOPs / median time;
* :func:`manifest`: CPU/GPU model, torch/torchvision/timm/CUDA versions, threads, the load
  average at start and end (``os.getloadavg()``: timings on a shared machine are noisy; the
  load says how noisy), platform, time, plus what the caller adds (input size, what was timed,
  weights, candidate counts).
"""
from __future__ import annotations

import contextlib
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Callable, Iterable

import torch

__all__ = ["cpu_model", "loadavg", "manifest", "summarize", "time_calls", "time_interleaved", "threads",
           "count_flops", "sync", "write_json"]


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def loadavg() -> list[float] | None:
    return [round(v, 2) for v in os.getloadavg()] if hasattr(os, "getloadavg") else None


def _versions() -> dict:
    from importlib import metadata

    v = {"torch": torch.__version__, "cuda": torch.version.cuda}
    for name in ("torchvision", "timm", "numpy", "scipy", "ultralytics"):
        try:                                            # metadata only: importing ultralytics has side effects
            v[name] = metadata.version(name)
        except metadata.PackageNotFoundError:           # optional packages
            v[name] = None
    return v


def manifest(device, num_threads: int | None = None, **extra) -> dict:
    """What every timing file records: machine, software, threads, load, and ``extra`` (input
    size, what was timed, weights, candidate counts, ...)."""
    device = str(device)
    cuda = device.startswith("cuda") and torch.cuda.is_available()
    m = {
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "device": device,
        "gpu": torch.cuda.get_device_name(torch.device(device)) if cuda else None,
        "threads": int(num_threads if num_threads is not None else torch.get_num_threads()),
        "interop_threads": torch.get_num_interop_threads(),
        **_versions(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "loadavg_at_start": loadavg(),
        "protocol": "batch 1, eval, torch.inference_mode, fixed threads, warm-up, CUDA sync around "
                    "every timed call, median and spread",
    }
    m.update(extra)
    return m


def finish_manifest(m: dict) -> dict:
    """Add the end-of-run load average (in place) and return ``m``."""
    m["loadavg_at_end"] = loadavg()
    return m


def summarize(seconds: Iterable[float]) -> dict:
    """Median and spread of a list of seconds, in milliseconds."""
    s = sorted(float(x) for x in seconds)
    if not s:
        return {"n": 0, "median_ms": None, "min_ms": None, "p10_ms": None, "p90_ms": None,
                "max_ms": None, "mad_ms": None, "fps_median": None}
    q = lambda p: s[min(len(s) - 1, int(round(p * (len(s) - 1))))]  # noqa: E731
    med = statistics.median(s)
    mad = statistics.median(abs(x - med) for x in s)
    return {"n": len(s), "median_ms": med * 1e3, "min_ms": s[0] * 1e3, "p10_ms": q(0.1) * 1e3,
            "p90_ms": q(0.9) * 1e3, "max_ms": s[-1] * 1e3, "mad_ms": mad * 1e3,
            "fps_median": (1.0 / med) if med > 0 else None}


def sync(device) -> None:
    if str(device).startswith("cuda") and torch.cuda.is_available():
        torch.cuda.synchronize()


def time_calls(fn: Callable[[], object], repeats: int, warmup: int, device="cpu") -> list[float]:
    """Run ``fn`` ``warmup`` times untimed, then ``repeats`` timed calls (synchronised on CUDA).
    Returns seconds per call."""
    for _ in range(max(0, warmup)):
        fn()
    sync(device)
    times = []
    for _ in range(max(1, repeats)):
        sync(device)
        t0 = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - t0)
    return times


def time_interleaved(fns: dict[str, Callable[[], object]], repeats: int, warmup: int = 1, device="cpu",
                     repeats_for: dict[str, int] | None = None) -> dict[str, list[float]]:
    """Round-robin timing: every round runs each function once, in order. ``repeats_for`` caps
    the rounds of slow functions (e.g. torchvision's CPU ``deform_conv2d``)."""
    repeats_for = repeats_for or {}
    for fn in fns.values():
        for _ in range(max(0, warmup)):
            fn()
    sync(device)
    out = {name: [] for name in fns}
    for r in range(max(1, repeats)):
        for name, fn in fns.items():
            if r >= repeats_for.get(name, repeats):
                continue
            sync(device)
            t0 = time.perf_counter()
            fn()
            sync(device)
            out[name].append(time.perf_counter() - t0)
    return out


@contextlib.contextmanager
def threads(n: int | None):
    """Fix torch's intra-op thread count for the block (None: leave it)."""
    old = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(int(n))
    try:
        yield torch.get_num_threads()
    finally:
        torch.set_num_threads(old)


def count_flops(fn: Callable[[], object]) -> int | None:
    """FLOPs of one call of ``fn`` by ``torch.utils.flop_counter.FlopCounterMode`` (counts
    matmuls and convolutions, 2 FLOPs per multiply-add; custom ops such as the pose embedding's
    embedding_bag sampling and NMS count 0: the figure is the dense-layer work). None if the
    counter fails on some op."""
    from torch.utils.flop_counter import FlopCounterMode

    try:
        with FlopCounterMode(display=False) as counter:
            fn()
        return int(counter.get_total_flops())
    except Exception:                                   # an op the counter cannot trace
        return None


def write_json(obj, out: str | Path, indent: int = 1) -> None:
    from posedet.atomic import write_json_atomic

    write_json_atomic(out, obj, indent=indent)
