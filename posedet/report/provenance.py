"""Provenance of a report: git commit, config hash, data checksums, hardware, versions, wall times.

Everything is read from the machine, the repository and the results tree (with a plan: the files
the plan names); nothing is typed in.
"""
from __future__ import annotations

import csv
import hashlib
import os
import platform
import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from posedet.report.collect import Inputs

__all__ = ["collect_provenance", "sha256_file", "LIBRARIES"]

LIBRARIES = ("torch", "torchvision", "timm", "numpy", "opencv-python-headless", "pycocotools", "xtcocotools",
             "faster-coco-eval", "pandas", "matplotlib", "snakemake", "pyyaml")


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(chunk)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


def _git(repo: Path, *args) -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _mem_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 ** 2, 1)
    except (OSError, ValueError, IndexError):
        pass
    return None


def _versions() -> dict:
    out = {"python": platform.python_version()}
    for lib in LIBRARIES:
        try:
            out[lib] = version(lib)
        except PackageNotFoundError:
            out[lib] = None
    return out


def config_files(inputs: Inputs, extra: list[Path]) -> list[Path]:
    files = []
    pf = inputs.preset.get("_file") if inputs.preset else None
    if pf:
        files.append(Path(pf))
    if inputs.plan is not None:
        files.append(Path(inputs.plan.variants_file))
    elif inputs.repo is not None:
        files.append(inputs.repo / "configs" / "variants.yaml")
        for m in (inputs.preset.get("models") or {}).values() if isinstance(inputs.preset.get("models"), dict) else []:
            v = m.get("variant") if isinstance(m, dict) else None
            if v:
                files.append(Path(v) if Path(v).is_absolute() else inputs.repo / v)
    files += extra
    seen, out = set(), []
    for f in files:
        if f.is_file() and f.resolve() not in seen:
            seen.add(f.resolve())
            out.append(f)
    return out


def annotation_files(inputs: Inputs) -> list[Path]:
    """Every annotation file the results used: generated sets under data/, and the files named by the
    metrics' and upper-bound studies' provenance."""
    found = set(inputs.annotation_files())
    for run in inputs.runs():
        for _, _, _, p in inputs.metric_files(run):
            d = inputs.json(p)
            gt = ((d or {}).get("provenance") or {}).get("gt") if isinstance(d, dict) else None
            if gt and Path(gt).is_file():
                found.add(Path(gt))
    for _, _, p in inputs.upper_bound_files():
        d = inputs.json(p)
        gt = ((d or {}).get("provenance") or {}).get("gt") if isinstance(d, dict) else None
        if gt and Path(gt).is_file():
            found.add(Path(gt))
    return sorted({f.resolve() for f in found})


def wall_times(inputs: Inputs) -> list[dict]:
    """(stage, item, seconds, source) from train summaries, upper-bound studies, bench files and
    Snakemake ``benchmark:`` TSVs (any ``*.tsv`` under results/<preset>/benchmarks or logs; with a
    plan, none: the workflow declares no benchmark files, and the plan names none)."""
    rows = []
    for run in inputs.runs():
        s = inputs.summary(run)
        if isinstance(s, dict) and isinstance(s.get("wall_s"), (int, float)):
            rows.append({"stage": "train", "item": f"{run.dataset}/{run.variant}/seed{run.seed}",
                         "seconds": float(s["wall_s"]), "source": inputs.rel(run.path / "train" / "summary.json"),
                         "note": s.get("status")})
    for _, _, p in inputs.upper_bound_files():
        d = inputs.json(p)
        sec = ((d or {}).get("provenance") or {}).get("seconds_total") if isinstance(d, dict) else None
        if isinstance(sec, (int, float)):
            rows.append({"stage": "upper_bound", "item": p.stem, "seconds": float(sec), "source": inputs.rel(p),
                         "note": None})
    for sub in ("benchmarks", "logs") if inputs.plan is None else ():
        d = inputs.results / sub
        for p in sorted(d.rglob("*.tsv")) if d.is_dir() else []:
            try:
                with open(p, newline="") as f:
                    recs = list(csv.DictReader(f, delimiter="\t"))
            except OSError:
                continue
            for r in recs[:1]:
                try:
                    sec = float(r.get("s"))
                except (TypeError, ValueError):
                    continue
                rel = p.relative_to(d)
                rows.append({"stage": rel.parts[0] if len(rel.parts) > 1 else "snakemake",
                             "item": str(rel.with_suffix("")), "seconds": sec, "source": inputs.rel(p),
                             "note": f"max RSS {r.get('max_rss')} MB" if r.get("max_rss") not in (None, "", "-")
                             else None})
    return rows


def collect_provenance(inputs: Inputs, extra_configs: list[Path] | None = None, hash_data: bool = True) -> dict:
    repo = inputs.repo or Path.cwd()
    commit = _git(repo, "rev-parse", "HEAD")
    dirty = _git(repo, "status", "--porcelain", "--untracked-files=no")
    cfgs = config_files(inputs, list(extra_configs or []))
    h = hashlib.sha256()
    cfg_rows = []
    for f in cfgs:
        digest = sha256_file(f)
        h.update(f.name.encode() + b"\0" + digest.encode())
        cfg_rows.append({"file": inputs.rel(f), "sha256": digest})
    data_rows = []
    for f in annotation_files(inputs):
        data_rows.append({"file": inputs.rel(f), "sha256": sha256_file(f) if hash_data else None,
                          "bytes": f.stat().st_size})
    evaluators = set()
    for run in inputs.runs():
        for _, _, _, p in inputs.metric_files(run):
            pv = ((inputs.json(p) or {}).get("provenance") or {}) if isinstance(inputs.json(p), dict) else {}
            if pv.get("evaluator"):
                evaluators.add(f"{pv['evaluator']} {pv.get('evaluator_version')}")
    for _, _, p in inputs.upper_bound_files():
        pv = ((inputs.json(p) or {}).get("provenance") or {}) if isinstance(inputs.json(p), dict) else {}
        if pv.get("evaluator"):
            evaluators.add(f"{pv['evaluator']} {pv.get('evaluator_version')}")
    bench = inputs.json(inputs.bench_path)
    return {
        "git_commit": commit,
        "git_dirty_files": None if dirty is None else len([ln for ln in dirty.splitlines() if ln.strip()]),
        "config_hash": h.hexdigest() if cfgs else None,
        "config_files": cfg_rows,
        "data_checksums": data_rows,
        "hardware": {"platform": platform.platform(), "cpu": _cpu_model(), "cpu_count": os.cpu_count(),
                     "memory_gib": _mem_gib(),
                     "bench_manifest": bench.get("manifest") if isinstance(bench, dict) else None},
        "versions": _versions(),
        "evaluators_used": sorted(evaluators),
        "wall_times": wall_times(inputs),
    }
