"""Machine load per timed row: sample it, wait (bounded) while the machine is busy, record it.

A timing taken while other jobs share the cores is inflated, and the run's start/end load average
does not say which rows were hit. So before every row ``posedet bench table`` times (each
``time_runner`` call, the sweep's too) :class:`LoadGuard` samples the load; while the machine is
busy it waits and samples again, then times the row and records what it saw.

Sample (:func:`sample`, ``window_s`` long, 0.5 s in full mode): ``os.getloadavg()`` and the CPU
share of *other* processes, in cores — the busy time of the CPUs this process may run on
(``os.sched_getaffinity``; ``psutil.cpu_times(percpu=True)``: user + nice + system + irq +
softirq) minus this process's own CPU time (``psutil.Process().cpu_times()``, all its threads),
over the window's wall time. The same difference over the whole timed row is recorded as
``other_cpu_cores_during``.

Busy rule (:meth:`LoadPolicy.is_busy`; thresholds in :class:`LoadPolicy`, nowhere else):

* other processes use more than ``busy_other_cores`` (0.5) cores; or
* only where psutil cannot measure that: the 1-min load average exceeds this run's threads +
  ``loadavg_margin`` (0.5) — the load average lags by a minute and counts this process's own
  just-finished row, so it is the fallback, not the rule.

Per row: while busy, sleep ``wait_s`` (10 s) and sample again, at most ``tries`` (3) times and at
most ``max_total_wait_s`` (300 s) of waiting per run; then time the row. A row is *timed under
load* when the last sample before timing was still busy, or other processes used more than
``busy_other_cores`` during the timing. ``quick`` mode samples (0.2 s) and marks but never waits.

Every row gets ``timed_under_load`` (bool) and ``load``: ``loadavg_before`` ([1, 5, 15 min], the
last sample before timing), ``other_cpu_cores_before`` (same sample; null without psutil),
``other_cpu_cores_during``, ``loadavg_after`` (after the timing), ``waited_s``, ``busy`` (the first
sample was busy, so the row waited or would have), ``timed_under_load``, ``samples`` (every
sample: ``loadavg``, ``other_cpu_cores``, ``busy``). The manifest gets ``load_policy`` (the
thresholds) and ``load_summary`` (``rows``, ``rows_timed_under_load``, ``waited_s``).
"""
from __future__ import annotations

import contextlib
import os
import time
from dataclasses import asdict, dataclass

__all__ = ["LoadPolicy", "LoadGuard", "sample", "cpu_snapshot", "POLICIES"]


@dataclass
class LoadPolicy:
    busy_other_cores: float = 0.5      # other processes' CPU use, cores, above which the machine is busy
    loadavg_margin: float = 0.5        # fallback (no psutil): busy when loadavg[0] > threads + margin
    window_s: float = 0.5              # the sampling window
    wait_s: float = 10.0               # sleep between samples while busy
    tries: int = 3                     # waits per row at most
    max_total_wait_s: float = 300.0    # waiting per run at most

    def is_busy(self, s: dict, threads: int) -> bool:
        if s.get("other_cpu_cores") is not None:
            return s["other_cpu_cores"] > self.busy_other_cores
        la = s.get("loadavg")
        return bool(la) and la[0] > threads + self.loadavg_margin


# per bench mode; run_table's ``load_policy`` argument overrides single fields
POLICIES = {"quick": {"window_s": 0.2, "tries": 0}, "full": {}}


def _loadavg() -> list[float] | None:
    return [round(v, 2) for v in os.getloadavg()] if hasattr(os, "getloadavg") else None


def cpu_snapshot() -> tuple[float, float, float] | None:
    """(wall s, busy CPU s of this process's CPUs, this process's CPU s), or None without psutil."""
    try:
        import psutil
    except ImportError:
        return None
    per = psutil.cpu_times(percpu=True)
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else range(len(per))
    busy = 0.0
    for i in cpus:
        if i < len(per):
            t = per[i]
            busy += t.user + t.system + getattr(t, "nice", 0.0) + getattr(t, "irq", 0.0) + getattr(t, "softirq", 0.0)
    own = psutil.Process().cpu_times()
    return time.perf_counter(), busy, own.user + own.system


def other_cores(a, b) -> float | None:
    """Other processes' CPU use between two :func:`cpu_snapshot` s, in cores (≥ 0)."""
    if a is None or b is None or b[0] <= a[0]:
        return None
    return round(max(0.0, ((b[1] - a[1]) - (b[2] - a[2])) / (b[0] - a[0])), 3)


def sample(window_s: float) -> dict:
    """``{"loadavg": [1, 5, 15 min], "other_cpu_cores": float | None}`` over ``window_s`` seconds."""
    a = cpu_snapshot()
    time.sleep(max(0.0, window_s))
    return {"loadavg": _loadavg(), "other_cpu_cores": other_cores(a, cpu_snapshot())}


def _sleep(s: float) -> None:
    time.sleep(s)


class LoadGuard:
    """One per bench run: ``with guard.row() as rec: row = time_runner(...)``, then
    ``guard.mark(row, rec)``. ``policy``: :class:`LoadPolicy` fields to override."""

    def __init__(self, threads: int, log=None, **policy):
        self.policy = LoadPolicy(**policy)
        self.threads = int(threads or 1)
        self.log = log
        self.waited_total = 0.0
        self.rows = 0
        self.under_load = 0

    @contextlib.contextmanager
    def row(self, label: str = ""):
        p = self.policy
        samples, waited = [], 0.0
        while True:
            s = sample(p.window_s)                       # module-level lookups: tests patch them
            s["busy"] = p.is_busy(s, self.threads)
            samples.append(s)
            room = p.max_total_wait_s - self.waited_total
            if not s["busy"] or len(samples) > p.tries or room <= 0:
                break
            w = min(p.wait_s, room)
            if self.log:
                self.log(f"  busy before {label or 'row'} (other processes {s['other_cpu_cores']} cores, "
                         f"load {s['loadavg']}): waiting {w:.0f} s")
            _sleep(w)
            waited += w
            self.waited_total += w
        last = samples[-1]
        rec = {"loadavg_before": last["loadavg"], "other_cpu_cores_before": last["other_cpu_cores"],
               "waited_s": round(waited, 2), "busy": samples[0]["busy"]}
        a = cpu_snapshot()
        yield rec
        during = other_cores(a, cpu_snapshot())
        rec["other_cpu_cores_during"] = during
        rec["loadavg_after"] = _loadavg()
        rec["timed_under_load"] = bool(last["busy"] or (during is not None and during > p.busy_other_cores))
        rec["samples"] = samples
        self.rows += 1
        self.under_load += rec["timed_under_load"]
        if rec["timed_under_load"] and self.log:
            self.log(f"  {label or 'row'} timed under load (other processes {last['other_cpu_cores']} cores "
                     f"before, {during} during)")

    @staticmethod
    def mark(row: dict, rec: dict) -> dict:
        row["load"] = rec
        row["timed_under_load"] = rec["timed_under_load"]
        return row

    def manifest_fields(self) -> dict:
        return {"load_policy": asdict(self.policy),
                "load_summary": {"rows": self.rows, "rows_timed_under_load": self.under_load,
                                 "waited_s": round(self.waited_total, 2)}}
