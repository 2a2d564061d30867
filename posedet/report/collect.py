"""Reading the results tree (docs/results_layout.md) for the report; nothing here computes a metric.

With the run's plan (``Inputs.plan``, posedet/plan.py: ``results/<preset>/plan.json``) every reader
takes its files from the plan and from nothing else: the models are the plan's (a model whose
folder is absent is listed as missing), never a folder the plan does not name (a ``seed2/`` left
by an earlier run with more seeds, say). Without a plan (a tree from before plan.json) the readers
walk the tree as they always did.

Every reader records what it looked for and did not find in ``Inputs.missing`` instead of raising,
so a partial tree still gives a report (with "—" cells) that lists what is missing.
"""
from __future__ import annotations

import json
import re
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    from posedet.plan import Plan

__all__ = ["Inputs", "ModelRun", "aggregate", "RESERVED_DIRS", "synthetic_data_files", "sheet_split"]

# top-level folders of results/<preset>/ that are not <dataset> folders of trained models
RESERVED_DIRS = {"data", "stats", "upper_bound", "pretrain", "bench", "logs", "benchmarks", "report",
                 "snakemake"}
_SEED = re.compile(r"^seed(\d+)$")
_DEFAULT_SWITCHES = {"refine": True, "intermediate_supervision": True, "centroid": "keypoints",
                     "backbone": None}


@dataclass(frozen=True)
class ModelRun:
    dataset: str
    variant: str
    seed: int
    path: Path


@dataclass
class Inputs:
    """The results tree of one preset plus the preset's YAML (may be empty) and, for a workflow
    run, its plan: then every file read is one the plan names (paths relative to ``base``, the
    workflow's working directory)."""
    results: Path
    preset: dict = field(default_factory=dict)
    repo: Path | None = None
    missing: list[tuple[str, str]] = field(default_factory=list)     # (path or key, what for)
    _json_cache: dict = field(default_factory=dict)
    plan: Plan | None = None
    base: Path | None = None

    # ---------------------------------------------------------------- generic
    def path(self, p: str | Path) -> Path:
        """A path of the plan (relative to the workflow's working directory) on this machine."""
        p = Path(p)
        return p if p.is_absolute() or self.base is None else self.base / p

    def rel(self, p: Path | str) -> str:
        p = Path(p)
        for base in (self.base, self.repo, self.results.parent.parent if self.results.parent else None):
            if base is not None:
                try:
                    return str(p.resolve().relative_to(Path(base).resolve()))
                except ValueError:
                    pass
        return str(p)

    def need(self, what: str, where: str) -> None:
        if (where, what) not in self.missing:
            self.missing.append((where, what))

    def json(self, path: Path | str, what: str | None = None) -> Any:
        """Parsed JSON of ``path``, or None (recorded as missing when ``what`` is given)."""
        path = Path(path)
        key = str(path)
        if key not in self._json_cache:
            try:
                self._json_cache[key] = json.loads(path.read_text())
            except (OSError, ValueError):
                self._json_cache[key] = None
        if self._json_cache[key] is None and what:
            self.need(what, self.rel(path))
        return self._json_cache[key]

    # ---------------------------------------------------------------- models
    def runs(self) -> list[ModelRun]:
        """The trained models: the plan's (those whose folder is absent are listed as missing), else
        every ``<dataset>/<variant>/seed<k>/`` folder of the tree."""
        if self.plan is not None:
            out = []
            for m in self.plan.models:
                run = ModelRun(m.dataset, m.variant, m.seed, self.path(m.run_dir))
                if not run.path.is_dir():
                    self.need("trained model (in the plan; its folder is absent)", self.rel(run.path))
                out.append(run)
            return sorted(out, key=lambda r: (r.dataset, r.variant, r.seed))
        out = []
        if not self.results.is_dir():
            return out
        for ds in sorted(p for p in self.results.iterdir() if p.is_dir() and p.name not in RESERVED_DIRS):
            for var in sorted(p for p in ds.iterdir() if p.is_dir()):
                for sd in sorted(p for p in var.iterdir() if p.is_dir()):
                    m = _SEED.match(sd.name)
                    if m:
                        out.append(ModelRun(ds.name, var.name, int(m.group(1)), sd))
        return sorted(out, key=lambda r: (r.dataset, r.variant, r.seed))

    def datasets(self) -> list[str]:
        return sorted({r.dataset for r in self.runs()})

    def variants(self, dataset: str) -> list[str]:
        return sorted({r.variant for r in self.runs() if r.dataset == dataset})

    def seeds(self, dataset: str, variant: str) -> list[ModelRun]:
        return [r for r in self.runs() if r.dataset == dataset and r.variant == variant]

    def metric_files(self, run: ModelRun) -> list[tuple[str, str, str, Path]]:
        """(set, mode, nms, path) of every ``metrics/<set>.<mode>.<nms>.json`` of a run: the plan's
        evaluations of the model (whether written yet or not), else the files found."""
        if self.plan is not None:
            return sorted((e.slug, e.mode, e.nms, self.path(e.metrics))
                          for e in self.plan.evals_of_model(run.dataset, run.variant, run.seed))
        d = run.path / "metrics"
        out = []
        for p in sorted(d.glob("*.json")) if d.is_dir() else []:
            parts = p.name[:-len(".json")].rsplit(".", 2)
            if len(parts) == 3:
                out.append((*parts, p))
        return out

    def sets_evaluated(self, dataset: str, variant: str | None = None) -> list[str]:
        sets = set()
        for r in self.runs():
            if r.dataset == dataset and (variant is None or r.variant == variant):
                sets.update(s for s, _, _, _ in self.metric_files(r))
        return sorted(sets)

    def metric(self, run: ModelRun, set_slug: str, mode: str, nms: str, name: str) -> float | None:
        path = run.path / "metrics" / f"{set_slug}.{mode}.{nms}.json"
        d = self.json(path, f"metrics ({mode}, {nms}-NMS) of {run.dataset}/{run.variant}/seed{run.seed}")
        if d is None:
            return None
        v = (d.get("metrics") or {}).get(name) if isinstance(d, dict) else None
        if v is None:
            self.need(f"metric {name}", self.rel(path))
        return None if v is None else float(v)

    def seed_values(self, dataset: str, variant: str, set_slug: str, mode: str, nms: str,
                    name: str) -> dict[int, float]:
        """{seed: value} over the seeds that have the metric (fractions as stored)."""
        runs = self.seeds(dataset, variant)
        if not runs:
            self.need("trained model (not in the plan)" if self.plan is not None else
                      "trained model (no seed<k>/ folder)", self.rel(self.results / dataset / variant))
        out = {}
        for r in runs:
            v = self.metric(r, set_slug, mode, nms, name)
            if v is not None:
                out[r.seed] = v
        return out

    def predictions(self, run: ModelRun, set_slug: str, mode: str, nms: str = "oks") -> list | None:
        return self.json(run.path / "predictions" / f"{set_slug}.{mode}.{nms}.json",
                         f"predictions ({mode}) of {run.dataset}/{run.variant}/seed{run.seed}")

    def summary(self, run: ModelRun) -> dict | None:
        return self.json(run.path / "train" / "summary.json")

    def train_log(self, run: ModelRun) -> list[dict]:
        p = run.path / "train" / "train_log.jsonl"
        try:
            lines = p.read_text().splitlines()
        except OSError:
            return []
        out = []
        for ln in lines:
            try:
                out.append(json.loads(ln))
            except ValueError:
                continue          # a line cut by a kill
        return out

    def curve(self, run: ModelRun) -> dict | None:
        if self.plan is not None:
            c = self.plan.curve
            if not c or (c["dataset"], c["variant"], int(c["seed"])) != (run.dataset, run.variant, run.seed):
                return None
            return self.json(self.path(c["file"]))
        return self.json(run.path / "curve.json")

    # ---------------------------------------------------------------- model-free files
    def upper_bound_files(self) -> list[tuple[str, str | None, Path]]:
        """(set slug, protocol, path) of the upper-bound studies: the plan's, else every
        ``upper_bound/*.json`` found (protocol None: read it from the file name or the JSON)."""
        if self.plan is not None:
            return [(u.slug, u.protocol, self.path(u.metrics)) for u in self.plan.upper_bound]
        d = self.results / "upper_bound"
        return [(p.name[:-len(".json")], None, p) for p in sorted(d.glob("*.json"))] if d.is_dir() else []

    @property
    def bench_path(self) -> Path:
        """``bench/table.json`` (the plan's)."""
        return self.path(self.plan.bench) if self.plan is not None else self.results / "bench" / "table.json"

    def annotation_files(self) -> list[Path]:
        """The annotation files of the plan's data sets that exist; without a plan, the generated
        sets' (``data/<name>/<split>/annotations.json``)."""
        if self.plan is not None:
            return [self.path(s.annotations) for s in self.plan.sets
                    if s.annotations and self.path(s.annotations).is_file()]
        data = self.results / "data"
        return sorted(data.glob("*/*/annotations.json")) if data.is_dir() else []

    def set_files(self, set_slug: str) -> tuple[Path | None, Path | None] | None:
        """(annotation file, image folder) of a set the plan names; None without a plan or set."""
        s = self.plan.set_named(set_slug) if self.plan is not None else None
        if s is None:
            return None
        return (self.path(s.annotations) if s.annotations else None, self.path(s.images) if s.images else None)

    # ---------------------------------------------------------------- synthetic data sets
    def synthetic_splits(self) -> dict[str, dict[str, Path]]:
        """{data set: {split: folder}} of every ``data/<name>/<split>/stats.json`` found, plus the
        splits the preset declares (their stats.json, when absent, is listed as missing); data sets
        in the preset's order, then the others by name; splits train, val, test, then by name.
        With a plan: the plan's synthetic splits only."""
        if self.plan is not None:
            planned: dict[str, dict[str, Path]] = {}
            for s in self.plan.sets:
                if s.kind == "synthetic" and s.stats:
                    name, split = s.name.partition("/")[::2]
                    planned.setdefault(name, {})[split] = self.path(s.stats).parent
            return planned
        declared = _synthetic_specs(self.preset)
        root = self.results / "data"
        found: dict[str, list[str]] = {}
        for p in sorted(root.glob("*/*/stats.json")) if root.is_dir() else []:
            found.setdefault(p.parent.parent.name, []).append(p.parent.name)
        out: dict[str, dict[str, Path]] = {}
        for name in list(declared) + sorted(n for n in found if n not in declared):
            splits = declared.get(name, []) + [s for s in found.get(name, []) if s not in declared.get(name, [])]
            if name not in declared:
                splits.sort(key=lambda s: (_SPLIT_ORDER.index(s) if s in _SPLIT_ORDER else len(_SPLIT_ORDER), s))
            out[name] = {s: root / name / s for s in splits}
        return out

    # ---------------------------------------------------------------- configs
    def model_config(self, dataset: str, variant: str) -> dict | None:
        """The resolved config the model trained with (``train/summary.json`` ``config``)."""
        for r in self.seeds(dataset, variant):
            s = self.summary(r)
            if isinstance(s, dict) and isinstance(s.get("config"), dict):
                return s["config"]
        return None

    def variant_overrides(self, variant: str) -> dict[str, Any] | None:
        """``configs/variants.yaml``'s entry for ``variant`` as {dotted key: value} (the plan's copy
        of it when there is a plan), or None."""
        if self.plan is not None:
            doc = self.plan.variants
        elif self.repo is None:
            return None
        else:
            path = self.repo / "configs" / "variants.yaml"
            try:
                doc = yaml.safe_load(path.read_text()) or {}
            except (OSError, yaml.YAMLError):
                return None
        if isinstance(doc, dict) and isinstance(doc.get("variants"), dict):
            doc = doc["variants"]
        entry = doc.get(variant) if isinstance(doc, dict) else None
        if entry is None:
            return None
        if isinstance(entry, dict):
            entry = entry.get("set", entry.get("overrides", entry))
        out: dict[str, Any] = {}
        if isinstance(entry, dict):
            for k, v in entry.items():
                out[str(k)] = v
        elif isinstance(entry, (list, tuple)):
            for item in entry:
                k, sep, v = str(item).partition("=")
                if sep:
                    out[k.strip()] = yaml.safe_load(v)
        return out

    def switches(self, dataset: str, variant: str) -> dict:
        """The ablation switches of a trained model: refine, intermediate_supervision, centroid,
        backbone; from its resolved config, else the variant's overrides, else the defaults."""
        sw = dict(_DEFAULT_SWITCHES)
        cfg = self.model_config(dataset, variant)
        if cfg is not None:
            model, loss = cfg.get("model") or {}, cfg.get("loss") or {}
            sw.update(refine=bool(model.get("refine", True)),
                      intermediate_supervision=bool(model.get("intermediate_supervision", True)),
                      centroid=loss.get("centroid", "keypoints"), backbone=model.get("backbone"),
                      source="train/summary.json")
            return sw
        ov = self.variant_overrides(variant)
        if ov is not None:
            sw.update(refine=bool(ov.get("model.refine", True)),
                      intermediate_supervision=bool(ov.get("model.intermediate_supervision", True)),
                      centroid=ov.get("loss.centroid", "keypoints"), backbone=ov.get("model.backbone"),
                      source="configs/variants.yaml")
            return sw
        sw["source"] = "defaults (no summary.json, no configs/variants.yaml entry)"
        return sw


# -------------------------------------------------------------------- synthetic data sets

_SPLIT_ORDER = ("train", "val", "test")


def _synthetic_specs(preset: dict) -> dict[str, list[str]]:
    """{name: [split, ...]} of the preset's synthetic data sets, in the preset's order."""
    out = {}
    for name, ds in ((preset or {}).get("datasets") or {}).items():
        if isinstance(ds, dict) and ds.get("kind") == "synthetic":
            out[str(name)] = [str(s) for s in (ds.get("splits") or {})]
    return out


def sheet_split(splits: list[str]) -> str | None:
    """The split whose contact sheet stands for a data set: ``train``, else the first."""
    return "train" if "train" in splits else (splits[0] if splits else None)


def synthetic_data_files(preset: dict, results_dir: str) -> list[str]:
    """What the report's "Data sets" section reads, as paths under ``results_dir``: ``stats.json`` of
    every split of the preset's synthetic data sets and the ``contact_sheet.png`` of the split it
    shows (``sheet_split``). The report rule takes them as inputs (workflow/rules/report.smk)."""
    out = []
    for name, splits in _synthetic_specs(preset).items():
        out += [f"{results_dir}/data/{name}/{s}/stats.json" for s in splits]
        if splits:
            out.append(f"{results_dir}/data/{name}/{sheet_split(splits)}/contact_sheet.png")
    return out


# -------------------------------------------------------------------- statistics

def aggregate(values: dict[int, float], scale: float = 100.0) -> dict:
    """Mean and spread of per-seed values (×``scale``): std (n ≥ 3, sample std), min–max (n = 2),
    none (n = 1); ``n = 0`` gives mean None."""
    vals = [values[k] * scale for k in sorted(values)]
    n = len(vals)
    out = {"n": n, "mean": None, "spread": None, "spread_kind": None, "lo": None, "hi": None,
           "seeds": {k: values[k] * scale for k in sorted(values)}}
    if n == 0:
        return out
    out["mean"] = statistics.fmean(vals)
    out["lo"], out["hi"] = min(vals), max(vals)
    if n >= 3:
        out["spread"], out["spread_kind"] = statistics.stdev(vals), "std"
    elif n == 2:
        out["spread"], out["spread_kind"] = max(vals) - min(vals), "range"
    return out


def within_spread(a: dict, b: dict) -> bool | None:
    """Whether the difference of two aggregated cells is smaller than their seed spread (the larger
    std, or the larger min–max range); None when neither has a spread (n < 2) or a mean is missing."""
    if a.get("mean") is None or b.get("mean") is None:
        return None
    spreads = [s for s in (a.get("spread"), b.get("spread")) if s is not None]
    if not spreads:
        return None
    return abs(a["mean"] - b["mean"]) < max(spreads)
