"""``posedet check``: the preflight of a run, in seconds, before any job is submitted.

    posedet check --preset paper --config coco_root=/data/coco crowdpose_root=/data/crowdpose
    posedet check --preset paper --configfile configs/overrides/paper_cpu.yaml --config coco_root=...

The workflow runs the same check when it starts (``onstart`` in workflow/Snakefile; skip it with
``--config check=false``). It checks, for the run that the preset plus the ``--config`` values
describe (the run's plan, posedet/plan.py):

* the data roots are set and every annotation file and image folder the run reads exists;
* every annotation file parses with the training reader (``posedet.data.reader``);
* every image the annotations name exists (the missing ones counted, the first few named);
* the ImageNet weights of every backbone that trains with ``model.pretrained: true`` are
  available offline (a staged file, ``model.pretrained_file``, or the timm / Hugging Face cache);
* the device the run asks for (``device: cuda``) is present: here when the jobs run here, else
  the cluster profile gives a GPU to every rule that runs on it.

Each problem is one line (``problem: ...``); the exit status is 1 when there is any, 2 on bad
arguments. It then prints the plan: trainings, images × epochs, and jobs per rule.
Results folders the plan does not name (a ``seed2/`` of an earlier run, say) are listed as
``note:`` lines: the report ignores them.
"""
from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
#: rules that run on the run's ``device`` (the rest are CPU jobs)
DEVICE_RULES = ("train", "predict", "bench_table", "curve", "peer_train", "peer_predict")
SHOW_MISSING = 3


@dataclass
class Report:
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    plan: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        return ([f"problem: {p}" for p in self.problems] + [f"note: {n}" for n in self.notes]
                + (["plan:"] + [f"  {ln}" for ln in self.plan] if self.plan else []))


def parse_config_args(items: list[str], files: list[str]) -> dict[str, Any]:
    """Snakemake-style ``--configfile F`` then ``--config KEY=VALUE`` (values parsed as YAML)."""
    config: dict[str, Any] = {}
    for f in files:
        try:
            data = yaml.safe_load(Path(f).read_text()) or {}
        except (OSError, yaml.YAMLError) as e:
            raise ValueError(f"--configfile {f}: {e}") from None
        if not isinstance(data, dict):
            raise ValueError(f"--configfile {f}: expected a mapping")
        config.update(data)
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--config {item!r}: expected KEY=VALUE")
        config[key.strip()] = yaml.safe_load(value)
    return config


# ------------------------------------------------------------------------------------------ checks


def _sets_read(preset: dict, variants: dict) -> dict[str, str]:
    """{set name: what reads it} for every real (not generated) data set the run reads."""
    from posedet import presets as P

    used: dict[str, str] = {}
    for d, _v, _s in P.trained_models(preset, variants):
        used.setdefault(P.training_set(preset, d), "training")
    for ev in P.experiment_evals(preset, None, variants):
        used.setdefault(ev.set, "prediction")
    for s in preset.get("upper_bound", {}).get("sets", []):
        used.setdefault(s, "upper bound")
    return {s: why for s, why in used.items() if P.dataset_spec(preset, s)["kind"] != "synthetic"}


def check_data(preset: dict, variants: dict, report: Report) -> None:
    from posedet import presets as P
    from posedet.data.reader import PoseDataError, load_coco_keypoints

    parsed: dict[tuple[str, str | None], Any] = {}
    unset: dict[str, list[str]] = {}                       # "needs coco_root: pass ..." -> sets
    for set_name, why in _sets_read(preset, variants).items():
        try:
            ann = P.annotation_file(preset, set_name, "")
            images = P.image_root(preset, set_name, "")
        except P.PresetError as e:
            msg = str(e)
            if " needs " in msg:                            # a root not given: one line per root
                unset.setdefault(msg.split(" needs ", 1)[1], []).append(set_name)
            else:
                report.problems.append(f"data set {set_name} ({why}): {msg}")
            continue
        if not os.path.isfile(ann):
            report.problems.append(f"data set {set_name} ({why}): annotation file {ann} does not exist")
            continue
        if images is not None and not os.path.isdir(images):
            report.problems.append(f"data set {set_name} ({why}): image folder {images} does not exist")
            continue
        key = (ann, images)
        if key in parsed:
            continue
        try:
            index = load_coco_keypoints(ann, image_root=images)
        except PoseDataError as e:
            report.problems.append(f"data set {set_name} ({why}): the training reader rejects it: {e}")
            parsed[key] = None
            continue
        parsed[key] = index
        if images is None:
            continue
        missing = [rec.file_name for rec in index.images if not os.path.isfile(rec.path)]
        if missing:
            first = ", ".join(missing[:SHOW_MISSING]) + (", ..." if len(missing) > SHOW_MISSING else "")
            report.problems.append(f"data set {set_name} ({why}): {len(missing)} of {len(index.images)} "
                                   f"images named in {ann} are missing from {images} (first: {first})")
    for need, sets in unset.items():
        report.problems.append(f"data sets {', '.join(sets)} need {need}")


def model_configs(preset: dict, variants: dict, repo: Path, budget: float = 1.0) -> dict[tuple, Any]:
    """{(dataset, variant, seed): resolved Config} of every model the run trains."""
    from posedet import presets as P
    from posedet.config import load_config

    recipe = P.recipe_file(preset, repo)
    return {m: load_config(recipe, P.model_overrides(preset, variants, *m) + P.budget_overrides(budget))
            for m in P.trained_models(preset, variants)}


def _hub_reachable(timeout: float = 3.0) -> bool:
    """Whether this machine can reach the Hugging Face hub now (never under HF_HUB_OFFLINE)."""
    import socket

    from posedet.model.weights import hf_offline

    if hf_offline():
        return False
    try:
        with socket.create_connection(("huggingface.co", 443), timeout=timeout):
            return True
    except OSError:
        return False


def check_weights(configs: dict, report: Report, repo: Path, results: Path,
                  weights_dir: str | None = None) -> None:
    """Every backbone that trains from ImageNet weights has them where its jobs read them
    offline: ``model.pretrained_file``; else ``weights_dir`` (staged by hand, relative to the
    repository, as the workflow reads it); else the workflow's own staging folder
    ``results/<preset>/weights/`` or the timm / Hugging Face cache, from which the
    ``stage_weights`` rule copies them; else this node must reach the hub, for that rule."""
    from posedet.model.weights import weights_available

    seen = set()
    reachable = None
    for cfg in configs.values():
        m = cfg.model
        if not m.pretrained or (m.backbone, m.pretrained_file) in seen:
            continue
        seen.add((m.backbone, m.pretrained_file))
        if m.pretrained_file is not None or weights_dir:
            f = m.pretrained_file or (repo / str(weights_dir) / f"{m.backbone}.pth")
            ok, why = weights_available(m.backbone, pretrained_file=f)
            if not ok:
                report.problems.append(f"backbone {m.backbone}: ImageNet weights file {f} is missing ({why}); "
                                       "make it with `posedet weights --backbones "
                                       f"{m.backbone} --out DIR` on a machine with network (docs/cluster.md)")
            continue
        if (results / "weights" / f"{m.backbone}.pth").is_file():
            continue
        ok, why = weights_available(m.backbone)
        if ok:
            continue
        if reachable is None:
            reachable = _hub_reachable()
        if reachable:
            report.notes.append(f"backbone {m.backbone}: ImageNet weights not staged yet; the stage_weights "
                                "rule fetches them on this node before any training")
        else:
            report.problems.append(f"backbone {m.backbone}: ImageNet weights not available offline ({why}) "
                                   "and this node cannot reach the Hugging Face hub to stage them; run "
                                   "`posedet weights --out DIR` on a machine with network, copy DIR here and "
                                   "pass --config weights_dir=DIR (docs/cluster.md)")


def check_device(device: str, report: Report, where: str = "local",
                 rules_without_gpu: list[str] | None = None) -> None:
    import torch

    device = str(device or "auto")
    if device not in ("auto", "cpu", "cuda") and not device.startswith("cuda:"):
        report.problems.append(f"device {device!r}: use auto, cpu or cuda")
        return
    if not device.startswith("cuda"):
        return
    if where == "local":
        if not torch.cuda.is_available():
            report.problems.append(f"device {device}: the run asks for a GPU and this machine has none "
                                   "(torch.cuda.is_available() is False); on a CPU machine pass "
                                   "--config device=cpu")
    elif rules_without_gpu:
        report.problems.append(f"device {device}: the cluster profile gives no GPU to rule(s) "
                               f"{', '.join(rules_without_gpu)} (set-resources: gpu or gres)")


def stale_folders(preset: dict, variants: dict, results: Path) -> list[str]:
    """Model folders under ``results`` that the plan does not name."""
    from posedet import presets as P

    planned = {(d, v, f"seed{s}") for d, v, s in P.trained_models(preset, variants)}
    planned |= {(d, p, f"seed{s}") for d, p, s in P.peer_models(preset)}
    out = []
    for d in sorted({m[0] for m in planned}):
        for seed_dir in sorted((results / d).glob("*/seed*")) if (results / d).is_dir() else []:
            if (d, seed_dir.parent.name, seed_dir.name) not in planned:
                out.append(str(seed_dir))
    return out


def plan_lines(preset: dict, variants: dict, configs: dict, config: dict, repo: Path) -> list[str]:
    try:
        from posedet.plan import build_plan, plan_summary
    except ImportError:  # pragma: no cover - the plan module is part of the package
        return []
    try:
        return plan_summary(build_plan(repo, dict(config)))
    except Exception as e:  # noqa: BLE001 - the plan printout must not hide the problems above
        return [f"(plan not available: {type(e).__name__}: {e})"]


def preflight(config: dict, repo: Path = REPO, where: str = "local",
              rules_without_gpu: list[str] | None = None, with_plan: bool = True,
              workdir: Path | None = None) -> Report:
    """The checks of the run ``config`` describes (``workdir``: where its results/ lie; default
    the current directory)."""
    from posedet import presets as P

    report = Report()
    name = str(config.get("preset", "synthetic"))
    try:
        preset = P.load_preset(name, repo, overrides=config)
        variants = P.load_variants(repo)
        budget = P.budget(config)
    except (P.PresetError, ValueError) as e:
        report.problems.append(f"preset {name}: {e}")
        return report
    check_data(preset, variants, report)
    try:
        configs = model_configs(preset, variants, repo, budget)
    except (P.PresetError, ValueError) as e:
        report.problems.append(f"preset {name}: a model's config does not resolve: {e}")
        configs = {}
    results = Path(workdir or Path.cwd()) / f"results/{name}{P.budget_suffix(budget)}"
    check_weights(configs, report, repo, results, config.get("weights_dir", preset.get("weights_dir")))
    check_device(str(config.get("device", preset.get("device", "auto"))), report, where, rules_without_gpu)
    for d in stale_folders(preset, variants, results):
        report.notes.append(f"{d} is not part of this run's plan: the report ignores it")
    if with_plan:
        report.plan = plan_lines(preset, variants, configs, config, repo)
    return report


# ---------------------------------------------------------------------------------------- command


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--preset", default=None, help="preset name (default: synthetic, or --config preset=...)")
    p.add_argument("--config", nargs="*", default=[], metavar="KEY=VALUE",
                   help="the run's snakemake --config values (coco_root=..., device=..., seeds=...)")
    p.add_argument("--configfile", action="append", default=[], help="the run's snakemake --configfile(s)")
    p.add_argument("--where", choices=("local", "cluster"), default="local",
                   help="where the jobs run: local checks the device on this machine")
    p.add_argument("--rules-without-gpu", nargs="*", default=[],
                   help="(cluster) rules that would run on the device without a GPU resource")
    p.add_argument("--no-plan", action="store_true", help="problems only")


def main(args: argparse.Namespace) -> int:
    try:
        config = parse_config_args(args.config, args.configfile)
    except ValueError as e:
        print(f"posedet check: {e}", file=sys.stderr)
        return 2
    if args.preset:
        config["preset"] = args.preset
    report = preflight(config, REPO, args.where, args.rules_without_gpu, with_plan=not args.no_plan)
    for line in report.lines():
        print(line)
    n = len(report.problems)
    print(f"posedet check: {n} problem{'s' if n != 1 else ''}" + ("" if n else ", ready to run"))
    return 1 if n else 0
