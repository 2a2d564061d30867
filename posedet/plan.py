"""The plan of one workflow run: every file the run makes that the report reads, from one place.

``build_plan(repo_root, config)`` composes ``posedet/presets.py`` (the source of truth for what a
preset trains and evaluates) with the run's ``--config`` (the Snakemake ``config`` dict: preset,
seeds, budget, recipe, data roots, ...) into a ``Plan``: the results and reports roots
(``results/<preset>[/budget<K>]``), the recipe the run trains with and its ``deviations:`` list,
every trained model (PoseDet variants and peers: run folder, ``train/summary.json``, budget,
``--set`` overrides), every evaluation (predictions and metrics files), the data sets, the
upper-bound studies, the statistics files, the bench table and the learning curve.

The workflow builds the plan once when it parses (workflow/Snakefile: ``PLAN``), takes its file
lists from it (workflow/rules/common.smk) and writes it to ``results/<preset>[/budget<K>]/plan.json``
(rule ``plan``); ``posedet report --plan`` reads only the files the plan names
(docs/results_layout.md, "plan.json"). ``plan_summary(plan)`` gives the plan as text lines
(trainings, images per training, predictions per rule).

    python -m posedet.plan --config-json '{"preset": "smoke"}' [--out results/smoke/plan.json]
"""
from __future__ import annotations

import dataclasses
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from posedet import presets as P
from posedet.atomic import atomic_write_bytes

__all__ = ["PLAN_VERSION", "Plan", "PlanModel", "PlanEval", "PlanSet", "UpperBound", "StatsFile", "Pretrain",
           "build_plan", "learning_curve_run", "plan_json", "write_plan", "write_plan_json", "load_plan",
           "plan_base", "plan_summary", "recipe_deviations"]

PLAN_VERSION = 1
DEFAULT_PRESET = "synthetic"        # the workflow's embedded default (workflow/Snakefile)
POSEDET, PEER = "posedet", "peer"   # PlanModel.kind / PlanEval.kind


# ============================================================================== the plan

@dataclass(frozen=True)
class PlanModel:
    """One trained model: a PoseDet variant (rule ``train``) or a peer (rule ``peer_train``)."""
    dataset: str                    # the training set's name (synth_coco)
    variant: str                    # a configs/variants.yaml name, or a peer (yolo11n_pose)
    seed: int
    kind: str                       # "posedet" | "peer"
    train_set: str                  # the split it trains on (synth_coco/train)
    run_dir: str                    # results/<preset>/<dataset>/<variant>/seed<k>
    summary: str                    # <run_dir>/train/summary.json
    checkpoint: str                 # train/final.pt (PoseDet) | train/weights/last.pt (peer)
    train_log: str | None           # train/train_log.jsonl (PoseDet; not a declared output)
    experiments: tuple[str, ...]    # the experiments that evaluate it (none: the learning curve's only)
    overrides: tuple[str, ...]      # `posedet train --set` list (PoseDet), () for a peer
    pretrained: str | None          # the harness-made backbone it starts from (results/.../pretrain/)
    budget: dict = field(default_factory=dict, hash=False)   # see _posedet_budget / presets.peer_budget


@dataclass(frozen=True)
class PlanEval:
    """One prediction + its metrics (rules ``predict`` / ``peer_predict``, then ``evaluate``)."""
    dataset: str
    variant: str
    seed: int
    set: str                        # data-set name (synth_crowdpose/val)
    slug: str                       # its file-name form (synth_crowdpose-val)
    mode: str                       # refined | coarse | tta
    nms: str                        # oks | iou
    kind: str                       # "posedet" | "peer"
    experiments: tuple[str, ...]    # every experiment that asks for it
    predictions: str
    metrics: str


@dataclass(frozen=True)
class PlanSet:
    """One data set of the preset (every split of every data set it declares)."""
    name: str                       # synth_coco/val, crowdpose_val
    slug: str
    kind: str                       # synthetic | images | annotations
    annotations: str | None         # None: a data root the run was not given (see Plan.notes)
    images: str | None
    stats: str | None               # synthetic: data/<name>/<split>/stats.json (posedet synth)
    contact_sheet: str | None       # synthetic, the split whose sheet the report shows


@dataclass(frozen=True)
class UpperBound:
    set: str
    slug: str
    protocol: str                   # authors | eval
    metrics: str                    # results/<preset>/upper_bound/<slug>.<protocol>.json
    figure: str                     # reports/<preset>/figure3_upper_bound_<slug>.<protocol>.png


@dataclass(frozen=True)
class StatsFile:
    set: str
    slug: str
    path: str                       # results/<preset>/stats/<slug>.json (rule dataset_stats)


@dataclass(frozen=True)
class Pretrain:
    backbone: str
    file: str                       # results/<preset>/pretrain/<backbone>/backbone.pt
    manifest: str


@dataclass(frozen=True)
class Plan:
    """What one workflow run (``snakemake --config ...``) makes and the report reads. Paths are as
    the workflow names them: relative to its working directory (results/..., reports/...), or
    absolute (the repository's config files, real data roots)."""
    version: int
    preset: str                                   # the preset's name
    preset_file: str                              # configs/presets/<name>.yaml (absolute)
    config: dict = field(hash=False)              # the run's --config, as given
    budget: float                                 # --config budget=K (1: the preset's schedule)
    seeds: tuple[int, ...]
    results: str                                  # results/<preset>[/budget<K>]
    reports: str                                  # reports/<preset>[/budget<K>]
    recipe: str                                   # the recipe file the run trains with (absolute)
    deviations: tuple = field(hash=False)         # that recipe's `deviations:` list when planned
    variants_file: str
    variants: dict = field(hash=False)            # configs/variants.yaml when planned
    preset_config: dict = field(hash=False)       # the preset, --config overrides applied
    models: tuple[PlanModel, ...]
    evals: tuple[PlanEval, ...]
    sets: tuple[PlanSet, ...]
    upper_bound: tuple[UpperBound, ...]
    stats: tuple[StatsFile, ...]
    bench: str                                    # results/<preset>/bench/table.json
    bench_checkpoints: tuple[str, ...]            # Table 1's trained models the bench feeds to NMS
    curve: dict | None = field(hash=False)        # learning curve {dataset, variant, seed, eval, set, file}
    pretrain: tuple[Pretrain, ...]
    notes: tuple[str, ...]                        # what the plan leaves out, and why

    # ---------------------------------------------------------------- JSON
    def to_dict(self) -> dict:
        return _jsonable(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, d: dict) -> "Plan":
        if not isinstance(d, dict) or d.get("version") != PLAN_VERSION:
            raise ValueError(f"not a plan of version {PLAN_VERSION} (got version "
                             f"{d.get('version') if isinstance(d, dict) else None!r})")
        sub = {"models": PlanModel, "evals": PlanEval, "sets": PlanSet, "upper_bound": UpperBound,
               "stats": StatsFile, "pretrain": Pretrain}
        kw = {}
        for f in dataclasses.fields(cls):
            v = d[f.name]
            if f.name in sub:
                v = tuple(_from(sub[f.name], x) for x in v)
            elif f.name in ("seeds", "bench_checkpoints", "notes", "deviations"):
                v = tuple(v)
            elif f.name == "budget":
                v = float(v)
            kw[f.name] = v
        return cls(**kw)

    # ---------------------------------------------------------------- look-ups
    def model(self, dataset: str, variant: str, seed: int) -> PlanModel | None:
        for m in self.models:
            if (m.dataset, m.variant, m.seed) == (dataset, variant, int(seed)):
                return m
        return None

    def models_of(self, kind: str | None = None, experiments=None) -> list[PlanModel]:
        """The models of ``kind`` (all: None) that the named experiments evaluate (all: None)."""
        ex = None if experiments is None else set(experiments)
        return [m for m in self.models if (kind is None or m.kind == kind)
                and (ex is None or ex & set(m.experiments))]

    def evals_of(self, kind: str | None = None, experiments=None) -> list[PlanEval]:
        ex = None if experiments is None else set(experiments)
        return [e for e in self.evals if (kind is None or e.kind == kind)
                and (ex is None or ex & set(e.experiments))]

    def evals_of_model(self, dataset: str, variant: str, seed: int) -> list[PlanEval]:
        return [e for e in self.evals if (e.dataset, e.variant, e.seed) == (dataset, variant, int(seed))]

    def set_named(self, name_or_slug: str) -> PlanSet | None:
        return next((s for s in self.sets if name_or_slug in (s.name, s.slug)), None)

    # ---------------------------------------------------------------- the workflow's file lists
    def eval_files(self, kind: str, experiments=None) -> list[str]:
        """Predictions or metrics files ('predictions' | 'metrics') of the named experiments (all:
        None), PoseDet and peers, sorted."""
        return sorted({e.predictions if kind == "predictions" else e.metrics
                       for e in self.evals_of(None, experiments)})

    def summaries(self, kind: str | None = POSEDET, experiments=None) -> list[str]:
        """``train/summary.json`` of the models of ``kind`` (default PoseDet; all: None)."""
        return [m.summary for m in self.models_of(kind, experiments)]

    def curve_files(self) -> list[str]:
        return [self.curve["file"]] if self.curve else []

    def upper_bound_files(self) -> list[str]:
        return [u.metrics for u in self.upper_bound]

    def stats_files(self) -> list[str]:
        return [s.path for s in self.stats]

    def synthetic_data_files(self) -> list[str]:
        """stats.json of every synthetic split and the contact sheet the report shows (the same list
        as posedet.report.collect.synthetic_data_files)."""
        # a data set's sheet comes after all its splits' stats
        by_name: dict[str, list[str]] = {}
        for s in self.sets:
            if s.kind == "synthetic":
                by_name.setdefault(P.split_set(s.name)[0], []).append(s)
        out = []
        for splits in by_name.values():
            out += [s.stats for s in splits]
            out += [s.contact_sheet for s in splits if s.contact_sheet]
        return out

    def report_inputs(self, experiments=None) -> list[str]:
        """What the report rules take as input (the plan file itself aside): the experiments'
        metrics, predictions and training summaries (all: None, with the learning curve, the
        upper-bound studies, the statistics and the bench), and the config files."""
        files = self.eval_files("metrics", experiments) + self.eval_files("predictions", experiments)
        if experiments is None:
            files += (self.summaries(POSEDET) + self.curve_files() + self.upper_bound_files()
                      + self.stats_files() + [self.bench])
        else:
            files += self.summaries(POSEDET, experiments)
        files += self.summaries(PEER, experiments)
        return files + [self.preset_file, self.variants_file, self.recipe]

    def bench_after(self) -> list[str]:
        """Every output of the run the timing bench waits for: all the report reads but the bench
        itself and the config files. With these as its inputs, the bench runs after every other
        job of the run and before the report, so on one machine it always runs alone."""
        skip = {self.bench, self.preset_file, self.variants_file, self.recipe}
        return [f for f in self.report_inputs() if f not in skip]


def _from(cls, d: dict):
    kw = {}
    for f in dataclasses.fields(cls):
        v = d[f.name]
        if isinstance(v, list):
            v = tuple(v)
        kw[f.name] = v
    return cls(**kw)


def _jsonable(x):
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, Path):
        return str(x)
    return x


# ============================================================================== building it

def learning_curve_run(preset: dict) -> tuple[dict | None, str | None]:
    """The preset's ``learning_curve:`` block if this checkout has ``posedet curve`` and the config
    keys its ``set:`` overrides name, else None; and a note when a block is skipped."""
    from posedet import cli
    from posedet import config as cfg

    curve = P.learning_curve(preset)
    if curve is None:
        return None, None
    sections = {"model": cfg.ModelConfig, "loss": cfg.LossConfig, "train": cfg.TrainConfig, "infer": cfg.InferConfig}
    missing = [] if "curve" in cli.SUBCOMMANDS else ["posedet curve"]
    for o in curve["set"]:
        section, _, key = o.partition("=")[0].strip().partition(".")
        known = sections.get(section)
        if known is None or key.split(".")[0] not in {f.name for f in dataclasses.fields(known)}:
            missing.append(o.partition("=")[0])
    if missing:
        return None, f"learning_curve skipped ({', '.join(missing)} not in this checkout)"
    return curve, None


def recipe_deviations(recipe: str | Path) -> list[dict]:
    """The recipe file's ``deviations:`` list ({switch, value, paper, why}); [] when it has none or
    cannot be read."""
    try:
        doc = yaml.safe_load(Path(recipe).read_text())
    except (OSError, yaml.YAMLError):
        return []
    devs = doc.get("deviations") if isinstance(doc, dict) else None
    return [_jsonable(d) for d in devs if isinstance(d, dict)] if isinstance(devs, list) else []


def _split_images(preset: dict, set_name: str) -> int | None:
    """Images of a split when the preset says (a synthetic split's size), else None (not read from
    the annotation file: the plan is built whenever the workflow parses)."""
    try:
        ds = P.dataset_spec(preset, set_name)
    except (P.PresetError, KeyError):
        return None
    split = P.split_set(set_name)[1]
    return int(ds["splits"][split]) if ds.get("kind") == "synthetic" and split else None


def _posedet_budget(preset: dict, recipe: str, overrides: list[str], train_set: str) -> dict:
    """What ``posedet train`` runs with these overrides (budget included): iterations or epochs,
    batch size, input size, optimiser steps and training images (None where the split's size is
    not known without reading its annotation file), the time cap."""
    from posedet.config import load_config, train_schedule

    tc = load_config(recipe, list(overrides)).train
    n = _split_images(preset, train_set)
    out = {"unit": "iterations" if tc.iterations is not None else "epochs", "iterations": tc.iterations,
           "epochs": tc.epochs if tc.iterations is None else None, "budget": float(tc.budget),
           "batch_size": int(tc.batch_size), "input_size": int(tc.input_size), "train_images": n,
           "steps": None, "images": None, "max_minutes": None}
    spe = 1 if tc.iterations is not None else (n // tc.batch_size if n else None)
    if spe:
        sched = train_schedule(tc, spe)
        out.update(steps=sched.total_steps, images=sched.total_steps * int(tc.batch_size),
                   max_minutes=sched.max_minutes)
    elif tc.max_minutes is not None:
        out["max_minutes"] = tc.max_minutes * float(tc.budget)
    return out


def _experiment_map(preset: dict, variants: dict, evals_of) -> dict[tuple, list[str]]:
    """{(dataset, variant, seed, set, mode, nms): [experiment, ...]} in the presets' order."""
    out: dict[tuple, list[str]] = {}
    for name in P.experiments(preset, variants):
        for ev in evals_of(name):
            out.setdefault(tuple(ev[1:]), [])
            if name not in out[tuple(ev[1:])]:
                out[tuple(ev[1:])].append(name)
    return out


def build_plan(repo_root: str | Path, config: dict | None = None) -> Plan:
    """The plan of ``snakemake --config <config>`` (the Snakemake ``config`` dict; ``preset``
    defaults to the workflow's embedded default). Raises ``presets.PresetError`` where the workflow
    would refuse to parse; paths that need a data root the run was not given are None (noted)."""
    from posedet.report.collect import sheet_split

    repo = Path(repo_root)
    config = _jsonable(dict(config or {}))
    name = str(config.get("preset", DEFAULT_PRESET))
    preset = P.load_preset(name, repo, overrides=config)
    variants = P.load_variants(repo)
    budget = P.budget(config)
    res = f"results/{name}{P.budget_suffix(budget)}"
    rep = f"reports/{name}{P.budget_suffix(budget)}"
    recipe = P.recipe_file(preset, repo)
    notes: list[str] = []
    curve, note = learning_curve_run(preset)
    if note:
        notes.append(note)

    # ---- evaluations: PoseDet (rule predict), then the peers (rule peer_predict)
    exp_of = _experiment_map(preset, variants, lambda e: P.experiment_evals(preset, e, variants))
    peer_exp_of = _experiment_map(preset, variants, lambda e: P.peer_evals(preset, e))
    evals = []
    for kind, evs, where in ((POSEDET, P.experiment_evals(preset, None, variants), exp_of),
                             (PEER, P.peer_evals(preset), peer_exp_of)):
        for ev in evs:
            evals.append(PlanEval(ev.dataset, ev.variant, int(ev.seed), ev.set, P.slug(ev.set), ev.mode, ev.nms,
                                  kind, tuple(where.get(tuple(ev[1:]), [ev.experiment])),
                                  ev.predictions(res), ev.metrics(res)))

    def experiments_of(d, v, s):
        return tuple(dict.fromkeys(x for e in evals if (e.dataset, e.variant, e.seed) == (d, v, s)
                                   for x in e.experiments))

    # ---- trained models
    models = []
    for d, v, s in P.trained_models(preset, variants):
        rd = P.run_dir(res, d, v, s)
        base = P.model_overrides(preset, variants, d, v, s)
        extra = P.curve_overrides(preset, d, v, s) if curve is not None else []
        pretrained = None
        try:
            pretrained = P.pretrain_file(preset, res, P.model_backbone(recipe, base))
        except (OSError, ValueError, TypeError) as e:
            notes.append(f"{d}/{v}/seed{s}: backbone not resolved from {recipe} ({e})")
        overrides = base + extra + ([f"model.init_backbone={pretrained}"] if pretrained else []) \
            + P.budget_overrides(budget)
        try:
            b = _posedet_budget(preset, recipe, overrides, P.training_set(preset, d))
        except (OSError, ValueError, TypeError) as e:
            b = {}
            notes.append(f"{d}/{v}/seed{s}: training budget not resolved ({e})")
        models.append(PlanModel(d, v, int(s), POSEDET, P.training_set(preset, d), rd, f"{rd}/train/summary.json",
                                f"{rd}/train/final.pt", f"{rd}/train/train_log.jsonl", experiments_of(d, v, s),
                                tuple(overrides), pretrained, b))
    peer_budget = config.get("budget", preset.get("budget", 1))      # as rules/peers.smk passes it
    for d, p, s in P.peer_models(preset):
        rd = P.run_dir(res, d, p, s)
        try:
            b = dict(P.peer_budget(preset, variants, recipe, d, int(s), budget=peer_budget),
                     train_images=_split_images(preset, P.training_set(preset, d)))
        except (OSError, ValueError, TypeError) as e:
            b = {}
            notes.append(f"{d}/{p}/seed{s}: peer budget not resolved ({e})")
        models.append(PlanModel(d, p, int(s), PEER, P.training_set(preset, d), rd, f"{rd}/train/summary.json",
                                f"{rd}/train/weights/last.pt", None, experiments_of(d, p, s), (), None, b))

    # ---- data sets: every split the preset declares
    sets = []
    for ds_name, ds in (preset.get("datasets") or {}).items():
        names = [ds_name] if ds.get("kind") == "annotations" else [f"{ds_name}/{sp}" for sp in ds.get("splits", {})]
        sheet = sheet_split([P.split_set(n)[1] for n in names]) if ds.get("kind") == "synthetic" else None
        for n in names:
            try:
                ann, img = P.annotation_file(preset, n, res), P.image_root(preset, n, res)
            except P.PresetError as e:
                ann = img = None
                notes.append(str(e))
            synth = ds.get("kind") == "synthetic"
            folder = f"{res}/data/{ds_name}/{P.split_set(n)[1]}"
            sets.append(PlanSet(n, P.slug(n), str(ds.get("kind")), ann, img, f"{folder}/stats.json" if synth else None,
                                f"{folder}/contact_sheet.png" if synth and P.split_set(n)[1] == sheet else None))

    # ---- model-free studies, bench, learning curve, pretrained starts
    ub = preset.get("upper_bound") or {}
    upper = [UpperBound(s, P.slug(s), p, f"{res}/upper_bound/{P.slug(s)}.{p}.json",
                        f"{rep}/figure3_upper_bound_{P.slug(s)}.{p}.png")
             for s in ub.get("sets", []) for p in ub.get("protocols", ["authors"])]
    stats = [StatsFile(s, P.slug(s), f"{res}/stats/{P.slug(s)}.json") for s in ub.get("sets", [])]
    t1 = P.experiments(preset, variants).get("table1")
    bench_ckpts = [f"{P.run_dir(res, t1['train'], v, 0)}/train/final.pt" for v in t1["variants"]] if t1 else []
    if curve is not None:
        curve = dict(curve, file=f"{P.run_dir(res, curve['dataset'], curve['variant'], curve['seed'])}/curve.json")
    try:
        spec = P.pretrain_spec(preset)
    except P.PresetError as e:
        spec = None
        notes.append(str(e))
    pretrain = [Pretrain(bb, f"{res}/pretrain/{bb}/backbone.pt", f"{res}/pretrain/{bb}/manifest.json")
                for bb in (spec or {}).get("backbones", {})]

    return Plan(
        version=PLAN_VERSION, preset=name, preset_file=str(preset["_file"]), config=config, budget=float(budget),
        seeds=tuple(P.seeds(preset)), results=res, reports=rep, recipe=recipe,
        deviations=tuple(recipe_deviations(recipe)), variants_file=str(P.variants_path(repo)),
        variants=_jsonable(variants), preset_config=preset, models=tuple(models), evals=tuple(evals),
        sets=tuple(sets), upper_bound=tuple(upper), stats=tuple(stats), bench=f"{res}/bench/table.json",
        bench_checkpoints=tuple(bench_ckpts), curve=curve, pretrain=tuple(pretrain), notes=tuple(notes))


# ============================================================================== plan.json

def plan_json(plan: Plan) -> str:
    """The plan as the text of plan.json (stable: keys in field order, 1-space indent)."""
    return json.dumps(plan.to_dict(), indent=1, allow_nan=False) + "\n"


def write_plan_json(path: str | Path, text: str, log: str | Path | None = None) -> None:
    """Write plan.json text (``plan_json``) atomically; a line on ``log`` (rule ``plan``)."""
    Plan.from_dict(json.loads(text))                  # refuse to write what the report cannot read
    atomic_write_bytes(path, lambda f: f.write(text.encode()))
    if log is not None:
        line = f"posedet plan: wrote {path}\n"
        atomic_write_bytes(log, lambda f: f.write(line.encode()))


def write_plan(path: str | Path, plan: Plan) -> None:
    write_plan_json(path, plan_json(plan))


def load_plan(path: str | Path) -> Plan:
    return Plan.from_dict(json.loads(Path(path).read_text()))


def plan_base(plan_path: str | Path, plan: Plan) -> Path:
    """The workflow's working directory of a plan file: the folder whose ``plan.results`` holds it
    (results/<preset>/plan.json → .), else the current directory (relative paths resolve there)."""
    folder = Path(plan_path).resolve().parent
    parts = Path(plan.results).parts
    if not Path(plan.results).is_absolute() and folder.parts[len(folder.parts) - len(parts):] == parts:
        return Path(*folder.parts[:len(folder.parts) - len(parts)])
    return Path.cwd()


# ============================================================================== text

def _n(v) -> str:
    return f"{v:,}" if isinstance(v, int) else f"{v:g}" if isinstance(v, float) else str(v)


def _rel(path: str, plan: Plan) -> str:
    try:
        return str(Path(path).relative_to(Path(plan.preset_file).resolve().parents[2]))
    except (ValueError, IndexError):
        return path


def _budget_text(m: PlanModel) -> str:
    b = m.budget or {}
    if not b:
        return "budget not resolved (see the notes)"
    bs = b.get("batch_size")
    if m.kind == PEER:
        if "images" in b:
            run = f"{_n(b['images'])} images ({_n(b.get('iterations'))} iterations × {_n(bs)})"
        else:
            run = f"{_n(b.get('epochs'))} epochs × {_n(b.get('train_images') or '|' + m.train_set + '|')} images"
        return f"{run} at {_n(b.get('imgsz'))} px (the PoseDet baseline's budget)"
    if b.get("unit") == "iterations":
        run = f"{_n(b.get('steps'))} iterations × {_n(bs)} = {_n(b.get('images'))} images"
    else:
        epochs = b.get("epochs")
        epochs = epochs * b.get("budget", 1.0) if isinstance(epochs, (int, float)) else epochs
        run = f"{_n(epochs)} epochs × {_n(b.get('train_images') or '|' + m.train_set + '|')} images"
        if b.get("images"):
            run += f" = {_n(b['images'])} images ({_n(b.get('steps'))} iterations × {_n(bs)})"
        else:
            run += f" (batch {_n(bs)})"
    n = b.get("train_images")
    if b.get("unit") == "iterations" and n and b.get("images"):
        run += f" ≈ {b['images'] / n:.1f} epochs of {_n(n)}"
    cap = f", at most {_n(b['max_minutes'])} min" if b.get("max_minutes") else ""
    return f"{run} at {_n(b.get('input_size'))} px{cap}"


def _short(value) -> str:
    """A --config value for one line: mappings by their keys, lists by their length."""
    if isinstance(value, dict):
        return "{" + ", ".join(str(k) for k in value) + ": ...}"
    if isinstance(value, (list, tuple)):
        return f"[{len(value)} items]"
    return str(value)


def plan_summary(plan: Plan) -> list[str]:
    """The plan as lines of text: the run, each training with its images × epochs, the predictions
    and other jobs per rule, the notes (``posedet check`` prints them)."""
    pd, peers = plan.models_of(POSEDET), plan.models_of(PEER)
    seeds = ", ".join(str(s) for s in plan.seeds)
    cfg = " ".join(f"{k}={_short(v)}" for k, v in plan.config.items()) or "(none)"
    lines = [f"plan: preset {plan.preset} ({_rel(plan.preset_file, plan)}), --config {cfg}; "
             f"budget {plan.budget:g}, seeds {seeds}",
             f"results: {plan.results}/ (plan.json), report: {plan.reports}/",
             f"recipe: {_rel(plan.recipe, plan)} ({len(plan.deviations)} declared deviations)",
             f"trainings: {len(plan.models)} ({len(pd)} PoseDet: rule train, {len(peers)} peers: rule peer_train)"
             + (f"; the learning curve on {plan.curve['dataset']}/{plan.curve['variant']}/seed{plan.curve['seed']}"
                if plan.curve else "")]
    total, unknown = 0, 0
    for m in plan.models:
        rule = "train" if m.kind == POSEDET else "peer_train"
        extra = f" (from {_rel(m.pretrained, plan)})" if m.pretrained else ""
        lines.append(f"  {rule} {m.dataset}/{m.variant}/seed{m.seed} on {m.train_set}: {_budget_text(m)}{extra}")
        imgs = (m.budget or {}).get("images")
        if isinstance(imgs, int):
            total += imgs
        else:
            unknown += 1
    lines.append(f"training images in all: {_n(total)}" + (f" (+ {unknown} trainings in epochs of a real set)"
                                                            if unknown else ""))
    ev_pd, ev_peer = plan.evals_of(POSEDET), plan.evals_of(PEER)
    per_rule = [("predict", len(ev_pd)), ("peer_predict", len(ev_peer)), ("evaluate", len(plan.evals)),
                ("curve", len(plan.curve_files()))]
    lines.append("predictions per rule: " + ", ".join(f"{r} {n}" for r, n in per_rule))
    by_set: dict[str, int] = {}
    for e in plan.evals:
        by_set[e.slug] = by_set.get(e.slug, 0) + 1
    lines.append("  per eval set: " + ", ".join(f"{s} {n}" for s, n in by_set.items()))
    lines.append(f"model-free and the rest: upper_bound {len(plan.upper_bound)}, dataset_stats {len(plan.stats)}, "
                 f"synth_dataset {sum(s.kind == 'synthetic' for s in plan.sets)}, pretrain {len(plan.pretrain)}, "
                 f"bench_table 1, report 1")
    lines += [f"note: {n}" for n in plan.notes]
    return lines


# ============================================================================== command line

def add_arguments(parser) -> None:
    parser.add_argument("--config-json", default="{}", help="the run's --config as a JSON object "
                                                             "(e.g. '{\"preset\": \"smoke\", \"seeds\": 3}')")
    parser.add_argument("--repo", default=None, help="repository root (default: the one holding posedet/)")
    parser.add_argument("--out", default=None, help="write plan.json here (atomically); else print the summary")


def main(args) -> int:
    repo = Path(args.repo) if args.repo else Path(__file__).resolve().parents[1]
    try:
        plan = build_plan(repo, json.loads(args.config_json))
    except (P.PresetError, ValueError) as e:
        print(f"posedet plan: error: {e}", file=sys.stderr)
        return 2
    if args.out:
        write_plan(args.out, plan)
    for line in plan_summary(plan):
        print(line)
    return 0


if __name__ == "__main__":
    import argparse

    _parser = argparse.ArgumentParser(prog="python -m posedet.plan", description=__doc__.splitlines()[0])
    add_arguments(_parser)
    sys.exit(main(_parser.parse_args()))

