"""Workflow presets: ``configs/presets/<name>.yaml`` resolved into concrete file paths.

The Snakefile and the tests use these functions; nothing else reads presets. A data set is
named ``NAME`` (annotations-only sets, e.g. the real CrowdPose val file) or ``NAME/SPLIT``.
Placeholders such as ``{shared_data}`` or ``{coco_root}`` in paths are filled from the preset's
top-level keys, which ``--config key=value`` may override.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

import yaml


class PresetError(ValueError):
    pass


def preset_path(name: str, repo_root: str | Path) -> Path:
    return Path(repo_root) / "configs" / "presets" / f"{name}.yaml"


def load_preset(name: str, repo_root: str | Path, overrides: dict[str, Any] | None = None) -> dict:
    path = preset_path(name, repo_root)
    if not path.is_file():
        known = sorted(p.stem for p in path.parent.glob("*.yaml"))
        raise PresetError(f"unknown preset {name!r}: {path} does not exist (known: {', '.join(known)})")
    with open(path) as f:
        preset = yaml.safe_load(f)
    if not isinstance(preset, dict) or "datasets" not in preset:
        raise PresetError(f"{path}: a preset needs a 'datasets' mapping")
    apply_overrides(preset, overrides or {}, str(path))
    if preset.get("seed_every_arm"):
        seed_every_arm(preset)
    # Relative data roots are relative to the repository, wherever Snakemake runs from.
    for key in ("shared_data", "coco_root", "crowdpose_root"):
        if preset.get(key) is not None and not Path(str(preset[key])).is_absolute():
            preset[key] = str((Path(repo_root) / str(preset[key])).resolve())
    preset["_file"] = str(path)
    for ds_name, ds in preset["datasets"].items():
        if isinstance(ds, dict) and ds.get("kind") == "synthetic":
            check_difficulty(ds, f"{path}: data set {ds_name!r}")
    return preset


#: Top-level keys a ``--config`` override may add to a preset that does not declare them.
OPTIONAL_KEYS = ("device", "weights_dir", "budget", "recipe_set", "seed_every_arm")


def seed_every_arm(preset: dict) -> dict:
    """Mark every experiment, variant and peer of ``preset`` ``seeded: true``, in place: every
    trained arm of every finding then runs on the preset's seeds (``--config seed_every_arm=true``;
    what it costs on 2 cores: README, "Seeds")."""
    for e in (preset.get("experiments") or {}).values():
        if not isinstance(e, dict):
            continue
        e["seeded"] = True
        for key in ("variants", "peers"):
            arms = e.get(key)
            if isinstance(arms, list):
                e[key] = {a: {"seeded": True} for a in arms}
            elif isinstance(arms, dict):
                e[key] = {a: {**(opts or {}), "seeded": True} for a, opts in arms.items()}
    return preset


def apply_overrides(preset: dict, overrides: dict[str, Any], where: str) -> dict:
    """Apply Snakemake ``--config`` / ``--configfile`` values to a loaded preset, in place.

    A scalar replaces a top-level scalar key the preset has (or one of ``OPTIONAL_KEYS``); a
    mapping is merged key by key into the preset's mapping of that name (so a config file can
    swap one backbone, ``backbones: {hrnet_w48: {model: hrnet_w18_small}}``, or one recipe
    value of the bench); a list replaces the preset's list. Other keys (``preset``, unknown
    names) are not preset keys and are left alone; a mapping or list given for a scalar key, or
    the reverse, is an error.
    """
    for key, value in overrides.items():
        if key not in preset:
            if key in OPTIONAL_KEYS and not isinstance(value, dict):
                preset[key] = list(value) if isinstance(value, list) else value
            continue
        old = preset[key]
        if isinstance(old, dict) or isinstance(value, dict):
            if not (isinstance(old, dict) and isinstance(value, dict)):
                raise PresetError(f"{where}: --config {key}: a mapping can only override a mapping "
                                  f"(the preset has {type(old).__name__}, the override "
                                  f"{type(value).__name__})")
            preset[key] = _merged(old, value)
        elif isinstance(old, list) or isinstance(value, list):
            if not isinstance(value, list) or not (isinstance(old, list) or old is None):
                raise PresetError(f"{where}: --config {key}: a list can only replace a list")
            preset[key] = list(value)
        else:
            preset[key] = value
    return preset


def _merged(base: dict, extra: dict) -> dict:
    """``base`` with ``extra`` merged in recursively (mappings merge, everything else replaces)."""
    out = dict(base)
    for k, v in extra.items():
        out[k] = _merged(out[k], v) if isinstance(out.get(k), dict) and isinstance(v, dict) else v
    return out


DIFFICULTY_KEYS = ("clutter", "max_people", "person_scale", "texture")


def check_difficulty(ds: dict, where: str) -> None:
    """A synthetic data set's difficulty keys (``posedet synth``'s knobs) must be valid."""
    from posedet.data.synth import Difficulty

    try:
        Difficulty(**{k: ds[k] for k in DIFFICULTY_KEYS if k in ds})
    except (ValueError, TypeError) as e:
        raise PresetError(f"{where}: {e}") from None


def _fill(template: str, preset: dict, what: str) -> str:
    keys = {k: v for k, v in preset.items() if not isinstance(v, (dict, list))}
    try:
        value = template.format(**keys)
    except KeyError as e:
        raise PresetError(f"{preset['_file']}: {what} uses undefined placeholder {e}") from None
    if "None" in value.split("/"):
        missing = [k for k, v in keys.items() if v is None and "{" + k + "}" in template]
        raise PresetError(f"{what} needs {', '.join(missing)}: pass --config "
                          + " ".join(f"{m}=/path/to/it" for m in missing))
    return value


def split_set(set_name: str) -> tuple[str, str | None]:
    name, _, split = set_name.partition("/")
    return name, (split or None)


def dataset_spec(preset: dict, set_name: str) -> dict:
    name, split = split_set(set_name)
    try:
        ds = preset["datasets"][name]
    except KeyError:
        raise PresetError(f"{preset['_file']}: no data set {name!r} (has: {', '.join(preset['datasets'])})") from None
    if ds["kind"] == "annotations":
        if split is not None:
            raise PresetError(f"data set {name!r} is a single annotation file; drop '/{split}'")
    elif split not in ds.get("splits", {}):
        raise PresetError(f"data set {name!r} has no split {split!r} (has: {', '.join(ds.get('splits', {}))})")
    return ds


def annotation_file(preset: dict, set_name: str, results_dir: str) -> str:
    """Path of the COCO-format annotation file of ``set_name``."""
    ds = dataset_spec(preset, set_name)
    name, split = split_set(set_name)
    if ds["kind"] == "synthetic":
        return f"{results_dir}/data/{name}/{split}/annotations.json"
    if ds["kind"] == "annotations":
        return _fill(ds["ann_file"], preset, f"data set {name}")
    return _fill(ds["splits"][split]["ann_file"], preset, f"data set {set_name}")


def image_root(preset: dict, set_name: str, results_dir: str) -> str | None:
    ds = dataset_spec(preset, set_name)
    name, split = split_set(set_name)
    if ds["kind"] == "synthetic":
        return f"{results_dir}/data/{name}/{split}/images"
    if ds["kind"] == "annotations":
        return None
    return _fill(ds["splits"][split]["image_root"], preset, f"data set {set_name}")


def slug(set_name: str) -> str:
    """File-name-safe form of a data set name: ``synth_coco/test`` → ``synth_coco-test``."""
    return set_name.replace("/", "-")


def unslug(preset: dict, s: str) -> str:
    for name in preset["datasets"]:
        if s == name:
            return name
        if s.startswith(name + "-"):
            return name + "/" + s[len(name) + 1:]
    raise PresetError(f"no data set matches {s!r}")


# --------------------------------------------------------------------------------------------
# Trained models and their evaluations: variants × training sets × seeds (docs/results_layout.md)
# --------------------------------------------------------------------------------------------
#
# A preset names its recipe config (``recipe:``), the training sets (``training_sets:``), the
# paper-backbone stand-ins (``backbones:``) and the experiments (``experiments:``), e.g.
#
#   recipe: configs/recipes/synthetic_cpu.yaml
#   seeds: 1                          # --config seeds=3 → seed0, seed1, seed2
#   backbones: {dla34: dla34, hrnet_w32: hrnet_w18_small, hrnet_w48: {model: hrnet_w48,
#               set: [infer.short_side=640]}}
#   training_sets:
#     synth_crowdpose: {split: train, set: [backbone=hrnet_w48]}   # `set`: every model on it
#   experiments:
#     table5:
#       train: synth_crowdpose        # a training set
#       variants: [baseline, box_centroid, no_is, box_no_is]   # or {name: {modes: [...]}}
#       eval: [synth_crowdpose/val]
#       modes: [refined]              # refined | coarse | tta        (default [refined])
#       nms: [oks, iou]               # inference-time NMS switch      (default [oks])
#       seeded: true                  # every seed (default: seed 0 only)
#
# Variants live in ``configs/variants.yaml``: name → list of ``--set`` overrides applied on top of
# the recipe. The pseudo-override ``backbone=NAME`` (NAME a paper backbone) expands to the
# preset's ``backbones: NAME`` mapping: ``model.backbone=<stand-in>`` plus its ``set:`` list.
# ``recipe_set:`` (a list of ``--set`` overrides, usually given through ``--configfile``) applies to
# every model of the run, e.g. what a CPU forces on the paper preset (configs/overrides/paper_cpu.yaml).
# Override order: recipe file < ``recipe_set`` < training set's ``set`` < variant < ``train.seed``
# < learning curve.

MODES = ("refined", "coarse", "tta")
NMS_KINDS = ("oks", "iou")


def variants_path(repo_root: str | Path) -> Path:
    return Path(repo_root) / "configs" / "variants.yaml"


def load_variants(repo_root: str | Path) -> dict[str, list[str]]:
    path = variants_path(repo_root)
    with open(path) as f:
        variants = yaml.safe_load(f) or {}
    if not isinstance(variants, dict):
        raise PresetError(f"{path}: expected a mapping name → list of overrides")
    for name, overrides in variants.items():
        if not isinstance(overrides, list) or not all(isinstance(o, str) and "=" in o for o in overrides):
            raise PresetError(f"{path}: variant {name!r} must be a list of 'key=value' strings")
        if "/" in name or "." in name:
            raise PresetError(f"{path}: variant name {name!r} may not contain '/' or '.'")
    return variants


def seeds(preset: dict) -> list[int]:
    n = int(preset.get("seeds", 1))
    if n < 1:
        raise PresetError(f"seeds must be ≥ 1, got {n}")
    return list(range(n))


def recipe_file(preset: dict, repo_root: str | Path) -> str:
    try:
        recipe = Path(preset["recipe"])
    except KeyError:
        raise PresetError(f"{preset['_file']}: no 'recipe:' (the training config file)") from None
    return str(recipe if recipe.is_absolute() else Path(repo_root) / recipe)


def training_set(preset: dict, dataset: str) -> str:
    """``synth_crowdpose`` → ``synth_crowdpose/train`` (the split it trains on)."""
    try:
        spec = preset["training_sets"][dataset]
    except KeyError:
        raise PresetError(f"{preset['_file']}: no training set {dataset!r} "
                          f"(has: {', '.join(preset.get('training_sets', {}))})") from None
    return f"{dataset}/{spec.get('split', 'train')}"


def _expand(preset: dict, overrides: list[str], where: str) -> list[str]:
    out = []
    for o in overrides:
        key, _, value = o.partition("=")
        if key.strip() != "backbone":
            out.append(o)
            continue
        try:
            b = preset["backbones"][value.strip()]
        except KeyError:
            raise PresetError(f"{where}: {o!r} needs backbones: {value.strip()} in {preset['_file']}") from None
        if isinstance(b, str):
            b = {"model": b}
        out.append(f"model.backbone={b['model']}")
        out.extend(b.get("set", []))
    return out


def model_overrides(preset: dict, variants: dict, dataset: str, variant: str, seed: int) -> list[str]:
    """The ``--set`` overrides (on top of the recipe) of one trained model."""
    if variant not in variants:
        raise PresetError(f"no variant {variant!r} in configs/variants.yaml (has: {', '.join(variants)})")
    spec = preset["training_sets"][dataset]
    out = _expand(preset, list(preset.get("recipe_set") or []), "recipe_set")
    out += _expand(preset, list(spec.get("set", [])), f"training set {dataset}")
    out += _expand(preset, variants[variant], f"variant {variant}")
    out.append(f"train.seed={int(seed)}")
    return out


def learning_curve(preset: dict) -> dict | None:
    """The preset's ``learning_curve:`` block, or None (no curve on this preset)."""
    lc = preset.get("learning_curve")
    if not lc:
        return None
    for key in ("dataset", "variant", "eval", "set"):
        if key not in lc:
            raise PresetError(f"{preset['_file']}: learning_curve needs {key!r}")
    if not isinstance(lc["set"], list):
        raise PresetError(f"{preset['_file']}: learning_curve.set must be a list of overrides")
    return {"seed": 0, **lc}


def curve_overrides(preset: dict, dataset: str, variant: str, seed: int) -> list[str]:
    lc = learning_curve(preset)
    if lc and (lc["dataset"], lc["variant"], int(lc["seed"])) == (dataset, variant, int(seed)):
        return list(lc["set"])
    return []


class Eval(NamedTuple):
    """One prediction + its metrics: a trained model, the set it runs on, the output, the NMS."""
    experiment: str
    dataset: str
    variant: str
    seed: int
    set: str
    mode: str
    nms: str

    def run_dir(self, results_dir: str) -> str:
        return run_dir(results_dir, self.dataset, self.variant, self.seed)

    def predictions(self, results_dir: str) -> str:
        return f"{self.run_dir(results_dir)}/predictions/{slug(self.set)}.{self.mode}.{self.nms}.json"

    def metrics(self, results_dir: str) -> str:
        return f"{self.run_dir(results_dir)}/metrics/{slug(self.set)}.{self.mode}.{self.nms}.json"


def run_dir(results_dir: str, dataset: str, variant: str, seed: int) -> str:
    return f"{results_dir}/{dataset}/{variant}/seed{int(seed)}"


def experiments(preset: dict, variants: dict | None = None) -> dict[str, dict]:
    """The preset's experiments, normalised: each ``variants`` a mapping name → {modes, nms}."""
    out = {}
    for name, e in (preset.get("experiments") or {}).items():
        where = f"{preset['_file']}: experiments.{name}"
        try:
            dataset, sets = e["train"], list(e["eval"])
        except KeyError as err:
            raise PresetError(f"{where} needs {err.args[0]!r}") from None
        training_set(preset, dataset)
        for s in sets:
            if dataset_spec(preset, s)["kind"] == "annotations":
                raise PresetError(f"{where}: eval set {s!r} has no images")
        vs = e.get("variants") or {}
        if isinstance(vs, list):
            vs = {v: {} for v in vs}
        norm = {}
        for v, opts in vs.items():
            if variants is not None and v not in variants:
                raise PresetError(f"{where}: no variant {v!r} in configs/variants.yaml")
            opts = opts or {}
            modes = list(opts.get("modes", e.get("modes", ["refined"])))
            nms = list(opts.get("nms", e.get("nms", ["oks"])))
            bad = [m for m in modes if m not in MODES] + [n for n in nms if n not in NMS_KINDS]
            if bad:
                raise PresetError(f"{where}: unknown mode/nms {bad} (modes {MODES}, nms {NMS_KINDS})")
            # a variant may override the experiment's `seeded:` (e.g. Table 5: the baseline on every
            # seed for the NMS rows, the other models on seed 0)
            norm[v] = {"modes": modes, "nms": nms, "seeded": bool(opts.get("seeded", e.get("seeded", False)))}
        out[name] = {"train": dataset, "eval": sets, "variants": norm, "seeded": bool(e.get("seeded", False)),
                     "title": e.get("title", name)}
    return out


def experiment_evals(preset: dict, name: str | None = None, variants: dict | None = None) -> list[Eval]:
    """Every (model, set, mode, nms) evaluation of one experiment (or of all, ``name=None``)."""
    exps = experiments(preset, variants)
    if name is not None and name not in exps:
        raise PresetError(f"{preset['_file']}: no experiment {name!r} (has: {', '.join(exps)})")
    out, seen = [], set()
    for ename, e in exps.items():
        if name is not None and ename != name:
            continue
        for v, opts in e["variants"].items():
            for seed in (seeds(preset) if opts["seeded"] else [0]):
                for s in e["eval"]:
                    for mode in opts["modes"]:
                        for nms in opts["nms"]:
                            ev = Eval(ename, e["train"], v, seed, s, mode, nms)
                            if ev[1:] not in seen:
                                seen.add(ev[1:])
                                out.append(ev)
    return out


def trained_models(preset: dict, variants: dict | None = None) -> list[tuple[str, str, int]]:
    """Every (dataset, variant, seed) the preset trains."""
    models = {ev[1:4] for ev in experiment_evals(preset, None, variants)}
    lc = learning_curve(preset)
    if lc:
        models.add((lc["dataset"], lc["variant"], int(lc["seed"])))
    return sorted(models)


# --------------------------------------------------------------------------------------------
# The budget knob: ``snakemake --config budget=K`` (default 1) scales every training of a preset
# --------------------------------------------------------------------------------------------
#
# Each PoseDet training gets ``--set train.budget=K`` (``config.train_schedule`` scales its steps,
# warm-up, lr milestones in steps/epochs, checkpoint and snapshot cadence, time cap: the stand-ins'
# own ``train.iterations=...`` overrides included) and ``posedet pretrain`` gets ``--budget K``.
# Budget 1 passes nothing (its commands are the unscaled ones). A run at K != 1 writes under its
# own roots, ``results/<preset>/budget<K>/`` and ``reports/<preset>/budget<K>/``, so it never
# overwrites (or is mistaken for) the budget-1 results.


def budget(config: dict | None) -> float:
    """The workflow's ``budget`` (``--config budget=K``; default 1): a positive number."""
    raw = (config or {}).get("budget", 1)
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise PresetError(f"budget must be a positive number, got {raw!r}") from None
    if not value > 0 or value != value or value == float("inf"):
        raise PresetError(f"budget must be a positive number, got {raw!r}")
    return value


def budget_suffix(budget: float) -> str:
    """``""`` at budget 1, else ``/budget<K>`` (``/budget4``, ``/budget0.5``): appended to the
    preset's results and reports roots."""
    return "" if float(budget) == 1.0 else f"/budget{float(budget):g}"


def budget_overrides(budget: float) -> list[str]:
    """The ``posedet train --set`` overrides of a budget (none at budget 1)."""
    return [] if float(budget) == 1.0 else [f"train.budget={float(budget):g}"]


def budget_args(budget: float) -> list[str]:
    """The ``posedet pretrain`` arguments of a budget (none at budget 1)."""
    return [] if float(budget) == 1.0 else ["--budget", f"{float(budget):g}"]


def _repo_of(preset: dict) -> Path:
    return Path(preset["_file"]).resolve().parents[2]          # configs/presets/<name>.yaml


def images_budget(preset: dict, dataset: str, budget: float = 1.0, variant: str = "baseline",
                  repo_root: str | Path | None = None) -> int:
    """Training images (effective optimiser steps × global batch) the PoseDet ``variant`` (default
    the baseline, seed 0) sees on training set ``dataset`` of ``preset`` at ``budget``: the
    recipe, the training set's and the variant's overrides and the budget resolved exactly as
    ``posedet train`` resolves them (``config.train_schedule``). A run given in epochs counts the
    split's images (the preset's size of a synthetic split, else the annotation file's)."""
    from posedet.config import load_config, train_schedule

    root = Path(repo_root) if repo_root is not None else _repo_of(preset)
    overrides = model_overrides(preset, load_variants(root), dataset, variant, 0) + budget_overrides(budget)
    tc = load_config(recipe_file(preset, root), overrides).train
    steps_per_epoch = 1
    if tc.iterations is None:
        set_name = training_set(preset, dataset)
        ds = dataset_spec(preset, set_name)
        if ds["kind"] == "synthetic":
            n = int(ds["splits"][split_set(set_name)[1]])
        else:
            import json

            ann = annotation_file(preset, set_name, "")
            try:
                with open(ann) as f:
                    n = len(json.load(f).get("images", []))
            except (OSError, ValueError) as e:
                raise PresetError(f"training set {dataset} trains for epochs: its images are counted "
                                  f"from {ann}, which cannot be read ({e})") from None
        steps_per_epoch = n // tc.batch_size
        if steps_per_epoch < 1:
            raise PresetError(f"training set {dataset}: {n} images give no full batch of {tc.batch_size}")
    return train_schedule(tc, steps_per_epoch).total_steps * tc.batch_size


# --------------------------------------------------------------------------------------------
# Harness-made pretrained start (``posedet pretrain``): the preset's ``pretrain:`` block
# --------------------------------------------------------------------------------------------
#
#   pretrain:
#     backbones: [mobilenetv3_small_050, ...]   # these backbones start from a pretext backbone
#     layout: crowdpose                          # the pretext split: its own generator seed
#     num_images: 2000
#     size: 256
#     seed: 7
#     iterations: 600
#     batch_size: 16
#
# A model whose backbone is listed trains with ``model.init_backbone=<results>/pretrain/<bb>/backbone.pt``
# (the same file for every variant).

PRETRAIN_KEYS = ("layout", "num_images", "size", "seed", "iterations", "batch_size", "lr")


def pretrain_spec(preset: dict) -> dict | None:
    """The ``pretrain:`` block with ``backbones`` normalised to name → its own settings (a list
    entry, or a mapping whose values override the block's settings for that backbone, e.g. fewer
    iterations for a costlier backbone under the same time budget)."""
    spec = preset.get("pretrain")
    if not spec:
        return None
    bbs = spec.get("backbones")
    if isinstance(bbs, list):
        bbs = {b: {} for b in bbs}
    if not isinstance(bbs, dict):
        raise PresetError(f"{preset['_file']}: pretrain.backbones must be a list or mapping of backbone names")
    spec = dict(spec, backbones={b: dict(v or {}) for b, v in bbs.items()})
    split_seeds = {int(d["seed"]) for d in preset["datasets"].values() if d.get("kind") == "synthetic"}
    if "seed" in spec and int(spec["seed"]) in split_seeds:
        raise PresetError(f"{preset['_file']}: pretrain.seed {spec['seed']} is a data set's seed; the "
                          "pretext split must be separate")
    return spec


def pretrain_args(preset: dict, backbone: str) -> dict:
    """``posedet pretrain`` settings of one backbone."""
    spec = pretrain_spec(preset) or {"backbones": {}}
    if backbone not in spec["backbones"]:
        raise PresetError(f"{preset['_file']}: no pretrain entry for backbone {backbone!r}")
    merged = {k: spec[k] for k in PRETRAIN_KEYS if k in spec}
    merged.update({k: v for k, v in spec["backbones"][backbone].items() if k in PRETRAIN_KEYS})
    return merged


def model_backbone(recipe: str, overrides: list[str]) -> str:
    """The backbone a model trains (recipe file + its overrides)."""
    from posedet.config import load_config

    return load_config(recipe, list(overrides)).model.backbone


def pretrain_file(preset: dict, results_dir: str, backbone: str) -> str | None:
    spec = pretrain_spec(preset)
    if spec is None or backbone not in spec["backbones"]:
        return None
    return f"{results_dir}/pretrain/{backbone}/backbone.pt"


# --------------------------------------------------------------------------------------------
# Peers trained beside PoseDet (``posedet peer-train``): an experiment's ``peers:`` list
# --------------------------------------------------------------------------------------------
#
#   experiments:
#     table4:
#       train: synth_crowdpose
#       ...
#       peers: [yolo11n_pose]        # or {yolo11n_pose: {seeded: false}}: seed 0 only
#
# A peer trains on the experiment's training set (every seed when the experiment is seeded),
# under the PoseDet baseline's budget on that set: train.iterations x train.batch_size images
# (the recipe with the training set's and the baseline variant's overrides, times the budget
# knob) at the recipe's train.input_size and batch size. It lands where a variant does:
# results/<preset>/<dataset>/<peer>/seed<k>/train/summary.json (+ weights/last.pt) and
# .../predictions/<set>.refined.oks.json (its own output and NMS, filed under the names the
# report reads for a variant's single-scale row), scored into .../metrics/ by the same rule.

#: peer name -> the Ultralytics model YAML it trains (random init)
PEERS = {"yolo11n_pose": "yolo11n-pose.yaml"}
PEER_MODE, PEER_NMS = "refined", "oks"


def experiment_peers(preset: dict, name: str) -> dict[str, dict]:
    """The ``peers:`` of one experiment: peer name -> {seeded: bool} (default: the experiment's)."""
    e = (preset.get("experiments") or {}).get(name)
    if e is None:
        raise PresetError(f"{preset['_file']}: no experiment {name!r}")
    peers = e.get("peers") or {}
    if isinstance(peers, list):
        peers = {p: {} for p in peers}
    if not isinstance(peers, dict):
        raise PresetError(f"{preset['_file']}: experiments.{name}.peers must be a list or mapping of peer names")
    out = {}
    for p, opts in peers.items():
        if p not in PEERS:
            raise PresetError(f"{preset['_file']}: experiments.{name}.peers: unknown peer {p!r} "
                              f"(known: {', '.join(PEERS)})")
        out[p] = {"seeded": bool((opts or {}).get("seeded", e.get("seeded", False)))}
    return out


def peer_evals(preset: dict, name: str | None = None) -> list[Eval]:
    """Every (peer model, set) evaluation of one experiment (or of all, ``name=None``)."""
    exps = experiments(preset)
    if name is not None and name not in exps:
        raise PresetError(f"{preset['_file']}: no experiment {name!r} (has: {', '.join(exps)})")
    out, seen = [], set()
    for ename, e in exps.items():
        if name is not None and ename != name:
            continue
        for peer, opts in experiment_peers(preset, ename).items():
            for seed in (seeds(preset) if opts["seeded"] else [0]):
                for s in e["eval"]:
                    ev = Eval(ename, e["train"], peer, seed, s, PEER_MODE, PEER_NMS)
                    if ev[1:] not in seen:
                        seen.add(ev[1:])
                        out.append(ev)
    return out


def peer_models(preset: dict, name: str | None = None) -> list[tuple[str, str, int]]:
    """Every (dataset, peer, seed) the preset (or one experiment) trains."""
    return sorted({ev[1:4] for ev in peer_evals(preset, name)})


def peer_val_set(preset: dict, dataset: str) -> str:
    """The set a peer's own final validation runs on: the first eval set of the first experiment
    that trains a peer on ``dataset``."""
    for ev in peer_evals(preset):
        if ev.dataset == dataset:
            return ev.set
    raise PresetError(f"{preset['_file']}: no experiment trains a peer on {dataset!r}")


def peer_budget(preset: dict, variants: dict, recipe: str, dataset: str, seed: int = 0,
                budget: float = 1.0) -> dict:
    """The PoseDet baseline's training budget on ``dataset``: images (iterations x batch size,
    times ``budget``; a recipe in epochs: its epochs times ``budget``), input size and batch size —
    what a peer trained beside it gets."""
    from posedet.config import load_config

    if "baseline" not in variants:
        raise PresetError("a peer's budget is the baseline's: configs/variants.yaml needs 'baseline'")
    budget = float(budget)
    if not budget > 0:
        raise PresetError(f"budget must be > 0, got {budget}")
    t = load_config(recipe, model_overrides(preset, variants, dataset, "baseline", seed)).train
    out = {"batch_size": int(t.batch_size), "imgsz": int(t.input_size), "budget": budget}
    if t.iterations is None:               # a run in epochs (the paper's recipe): the same epochs
        return {"epochs": max(1, round(int(t.epochs) * budget)), **out}
    iterations = max(1, round(int(t.iterations) * budget))
    return {"images": iterations * int(t.batch_size), "iterations": iterations, **out}
