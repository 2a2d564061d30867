"""The run's plan (posedet/plan.py) and the report that reads only it: the plan's models and
evaluations are presets.py's, plan.json round-trips, a stale seed folder the plan does not name is
ignored, a planned model without its folder is listed as missing, and the deviations shown are
those of the recipe the run used (``--config recipe=...``), not the repository's."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from posedet import cli
from posedet import presets as P
from posedet.plan import Plan, build_plan, load_plan, plan_json, plan_summary, write_plan
from posedet.report.build import build_report
from posedet.report.collect import Inputs, synthetic_data_files

REPO = Path(__file__).resolve().parents[1]
PAPER_ROOTS = {"coco_root": "/data/coco", "crowdpose_root": "/data/crowdpose"}
CONFIGS = [{"preset": "smoke"}, {"preset": "synthetic"}, {"preset": "paper", **PAPER_ROOTS},
           {"preset": "synthetic", "seeds": 2, "budget": 4}]


def _write(path: Path, obj) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(obj if isinstance(obj, str) else json.dumps(obj))
    return path


def _metrics(ap: float) -> dict:
    return {"metrics": {"AP": ap, "AP50": ap, "AP75": ap, "AR50": ap, "AP_easy": ap, "AP_medium": ap, "AP_hard": ap}}


# ============================================================================== the plan itself

@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: "-".join(f"{k}={v}" for k, v in c.items() if "root" not in k))
def test_plan_lists_the_models_and_evaluations_of_presets(config):
    plan = build_plan(REPO, config)
    preset, variants = P.load_preset(config["preset"], REPO, overrides=config), P.load_variants(REPO)
    res = f"results/{config['preset']}{P.budget_suffix(P.budget(config))}"
    assert plan.results == res and plan.reports == res.replace("results/", "reports/", 1)
    assert plan.seeds == tuple(P.seeds(preset)) and plan.recipe == P.recipe_file(preset, REPO)
    assert [(m.dataset, m.variant, m.seed) for m in plan.models_of("posedet")] == P.trained_models(preset, variants)
    assert [(m.dataset, m.variant, m.seed) for m in plan.models_of("peer")] == P.peer_models(preset)
    evals = P.experiment_evals(preset, None, variants)
    assert [(e.dataset, e.variant, e.seed, e.set, e.mode, e.nms) for e in plan.evals_of("posedet")] == \
        [tuple(ev[1:]) for ev in evals]
    assert [(e.dataset, e.variant, e.seed, e.set) for e in plan.evals_of("peer")] == \
        [tuple(ev[1:5]) for ev in P.peer_evals(preset)]
    for e, ev in zip(plan.evals_of("posedet"), evals):
        assert (e.predictions, e.metrics) == (ev.predictions(res), ev.metrics(res))
    # an experiment's files, including the evaluations it shares with an earlier experiment
    for name in P.experiments(preset, variants):
        want = {ev.metrics(res) for ev in P.experiment_evals(preset, name, variants) + P.peer_evals(preset, name)}
        assert set(plan.eval_files("metrics", [name])) == want, name
    for m in plan.models:
        assert m.summary == f"{P.run_dir(res, m.dataset, m.variant, m.seed)}/train/summary.json"
    assert plan.synthetic_data_files() == synthetic_data_files(preset, res)
    assert plan.upper_bound_files() == [f"{res}/upper_bound/{P.slug(s)}.{p}.json" for s in preset["upper_bound"]["sets"]
                                        for p in preset["upper_bound"]["protocols"]]
    assert plan.bench == f"{res}/bench/table.json"
    assert plan.deviations == tuple(_recipe_deviations(plan.recipe))
    lines = plan_summary(plan)
    assert any(ln.startswith("trainings: ") for ln in lines)
    assert any(ln.startswith("predictions per rule: predict ") for ln in lines)


def _recipe_deviations(recipe):
    import yaml
    doc = yaml.safe_load(Path(recipe).read_text()) or {}
    return doc.get("deviations") or []


def test_plan_summary_counts_images_and_jobs():
    plan = build_plan(REPO, {"preset": "smoke", "budget": 2})
    lines = plan_summary(plan)
    train = [ln for ln in lines if ln.strip().startswith("train synth_coco/dla34/seed0")]
    b = plan.model("synth_coco", "dla34", 0).budget
    assert b["steps"] == 2 * 30 and b["images"] == 2 * 30 * 4          # smoke recipe: 30 iterations of 4, budget 2
    assert train and "60 iterations × 4 = 240 images" in train[0]
    n_pred = len(P.experiment_evals(P.load_preset("smoke", REPO), None, P.load_variants(REPO)))
    assert f"predict {n_pred}," in next(ln for ln in lines if ln.startswith("predictions per rule"))
    # the paper trains in epochs of a real set: the plan says so instead of reading 200 MB at parse time
    paper = build_plan(REPO, {"preset": "paper", **PAPER_ROOTS})
    assert any("210 epochs × |coco/train| images" in ln for ln in plan_summary(paper))
    # without the roots the plan is still built; the unresolved data sets are notes
    bare = build_plan(REPO, {"preset": "paper"})
    assert bare.set_named("coco/val").annotations is None and any("coco_root" in n for n in bare.notes)


def test_plan_json_round_trips(tmp_path):
    for config in CONFIGS:
        plan = build_plan(REPO, config)
        assert Plan.from_dict(json.loads(json.dumps(plan.to_dict()))) == plan
        path = tmp_path / "plan.json"
        write_plan(path, plan)
        assert load_plan(path) == plan
        assert path.read_text() == plan_json(plan)
    assert not list(tmp_path.glob(".plan.json.*"))                 # the atomic write's temporary file is gone
    with pytest.raises(ValueError, match="version"):
        Plan.from_dict({**plan.to_dict(), "version": 0})


def test_plan_follows_the_config():
    base = build_plan(REPO, {"preset": "synthetic"})
    one = build_plan(REPO, {"preset": "synthetic", "seeds": 1})
    assert {m.seed for m in base.models} == {0, 1, 2} and {m.seed for m in one.models} == {0}
    smoke_recipe = build_plan(REPO, {"preset": "synthetic", "recipe": "configs/recipes/smoke.yaml"})
    assert smoke_recipe.recipe == str(REPO / "configs" / "recipes" / "smoke.yaml")
    assert base.deviations and smoke_recipe.deviations == ()          # smoke.yaml declares none
    assert build_plan(REPO, {"preset": "smoke", "budget": 0.5}).results == "results/smoke/budget0.5"



def _seeds_per_arm(plan: Plan) -> dict[tuple[str, str], set[int]]:
    out: dict[tuple[str, str], set[int]] = {}
    for m in plan.models:
        out.setdefault((m.dataset, m.variant), set()).add(m.seed)
    return out


def test_the_synthetic_preset_seeds_the_arms_its_readme_names():
    arms = _seeds_per_arm(build_plan(REPO, {"preset": "synthetic"}))
    seeded = {a for a, s in arms.items() if s == {0, 1, 2}}
    assert seeded == {("synth_crowdpose", "baseline"), ("synth_crowdpose", "no_refine"),
                      ("synth_crowdpose", "yolo11n_pose")}
    assert all(s == {0} for a, s in arms.items() if a not in seeded)
    # TTA is evaluated on every baseline seed (an inference mode: no extra training)
    tta = {e.seed for e in build_plan(REPO, {"preset": "synthetic"}).evals
           if e.variant == "baseline" and e.mode == "tta"}
    assert tta == {0, 1, 2}


def test_seed_every_arm_trains_every_model_on_every_seed():
    base = build_plan(REPO, {"preset": "synthetic"})
    every = build_plan(REPO, {"preset": "synthetic", "seed_every_arm": True})
    arms = _seeds_per_arm(every)
    assert set(arms) == set(_seeds_per_arm(base))        # the same arms, more seeds
    assert all(s == {0, 1, 2} for s in arms.values()), arms
    assert len(every.models) == 3 * len(arms) > len(base.models)
    # every evaluation of the default run is still there, on each seed
    key = lambda e: (e.dataset, e.variant, e.set, e.mode, e.nms)
    assert {key(e) for e in every.evals} == {key(e) for e in base.evals}
    assert len(build_plan(REPO, {"preset": "synthetic", "seed_every_arm": True, "seeds": 2}).models) \
        == 2 * len(arms)

# ============================================================================== the report reads the plan

def _tree(tmp: Path, config: dict) -> tuple[Plan, Path]:
    """A plan of ``config`` written where the workflow writes it, under ``tmp`` (the working directory)."""
    plan = build_plan(REPO, config)
    path = tmp / plan.results / "plan.json"
    write_plan(path, plan)
    return plan, path


def _report(tmp: Path, plan_file: Path, **kw) -> tuple[Path, dict]:
    out = tmp / "reports" / "out"
    res = build_report(None, None, out, repo=REPO, plan=load_plan(plan_file), plan_file=plan_file,
                       hash_data=False, log=lambda *a: None, **kw)
    return out, res


def test_a_stale_seed_folder_the_plan_does_not_name_is_ignored(tmp_path):
    plan, plan_file = _tree(tmp_path, {"preset": "synthetic", "seeds": 1})
    res = tmp_path / plan.results
    run = res / "synth_crowdpose" / "baseline"
    _write(run / "seed0" / "metrics" / "synth_crowdpose-val.refined.oks.json", _metrics(0.50))
    # left by an earlier `--config seeds=3` run, with metrics and a summary
    _write(run / "seed2" / "metrics" / "synth_crowdpose-val.refined.oks.json", _metrics(0.90))
    _write(run / "seed2" / "train" / "summary.json", {"config": {"model": {"backbone": "stale"}}})
    _write(res / "stale_set" / "baseline" / "seed0" / "metrics" / "stale_set-val.refined.oks.json", _metrics(0.7))
    _write(res / "upper_bound" / "stale-set.eval.json", {"rows": []})
    inputs = Inputs(results=res, plan=plan, base=tmp_path)
    assert [r.seed for r in inputs.seeds("synth_crowdpose", "baseline")] == [0]
    assert "stale_set" not in inputs.datasets()
    assert all("stale" not in p.name for _, _, p in inputs.upper_bound_files())
    assert inputs.seed_values("synth_crowdpose", "baseline", "synth_crowdpose-val", "refined", "oks", "AP") == {0: 0.5}
    # the walk of a tree without a plan would have averaged the stale seed in
    assert [r.seed for r in Inputs(results=res).seeds("synth_crowdpose", "baseline")] == [0, 2]
    out, rep = _report(tmp_path, plan_file)
    md = (out / "table4.md").read_text()
    row = next(ln for ln in md.splitlines() if ln.startswith("| ✓ | baseline"))
    assert "| 50.0 |" in row and "70.0" not in row and "90.0" not in row
    assert not [w for w, _ in rep["missing"] if "seed2" in w or "stale_set" in w or "stale-set" in w]


def test_a_planned_model_without_its_folder_is_listed_missing(tmp_path):
    plan, plan_file = _tree(tmp_path, {"preset": "synthetic", "seeds": 1})
    res = tmp_path / plan.results
    _write(res / "synth_crowdpose" / "baseline" / "seed0" / "metrics" / "synth_crowdpose-val.refined.oks.json",
           _metrics(0.5))
    out, rep = _report(tmp_path, plan_file)
    missing = dict(rep["missing"])
    where = f"{plan.results}/synth_crowdpose/no_refine/seed0"
    assert missing[where].startswith("trained model (in the plan")
    assert f"{where}/metrics/synth_crowdpose-val.refined.oks.json" in missing
    assert f"{plan.results}/synth_crowdpose/baseline/seed0" not in missing        # its folder is there
    # the plan's upper-bound studies and bench table are asked for by name
    assert f"{plan.results}/upper_bound/crowdpose_val.authors.json" in missing
    assert f"{plan.results}/bench/table.json" in missing
    assert "no_refine/seed0" in (out / "missing.txt").read_text()


def _trained(tmp: Path, plan: Plan, deviations: list[dict]) -> None:
    """Each PoseDet model's train/summary.json with its resolved config, the recipe's deviations in it."""
    from posedet.config import Config, config_to_dict
    for m in plan.models_of("posedet"):
        cfg = dict(config_to_dict(Config()), deviations=deviations)
        _write(tmp / m.summary, {"status": "complete", "config": cfg})


def test_config_recipe_changes_the_deviations_shown(tmp_path):
    # the repository's recipe of the synthetic preset declares its deviations ...
    plan, plan_file = _tree(tmp_path / "a", {"preset": "synthetic", "seeds": 1})
    _, rep = _report(tmp_path / "a", plan_file)
    declared = {r["switch"] for r in rep["deviations"] if r["source"] == "recipe deviations:"}
    assert "loss.level_scale" in declared
    # ... `--config recipe=configs/recipes/smoke.yaml` trains with one that declares none
    plan, plan_file = _tree(tmp_path / "b", {"preset": "synthetic", "seeds": 1, "recipe": "configs/recipes/smoke.yaml"})
    out, rep = _report(tmp_path / "b", plan_file)
    assert not [r for r in rep["deviations"] if r["source"] == "recipe deviations:"]
    page = (out / "index.html").read_text()
    assert "The recipe declares no" in page and "configs/recipes/smoke.yaml" in page
    # a recipe of its own: its deviations, as plan.json recorded them when the run was planned ...
    recipe = _write(tmp_path / "mine.yaml", "deviations:\n  - {switch: train.lr, value: '1e-3', paper: '1e-4', "
                                            "why: mine}\ntrain: {iterations: 10, batch_size: 2}\n")
    plan, plan_file = _tree(tmp_path / "c", {"preset": "synthetic", "seeds": 1, "recipe": str(recipe)})
    recipe.write_text("deviations:\n  - {switch: train.epochs, value: 1, paper: 210, why: edited later}\n")
    _, rep = _report(tmp_path / "c", plan_file)
    rows = {r["switch"]: r for r in rep["deviations"] if r["source"] == "recipe deviations:"}
    assert list(rows) == ["train.lr"] and rows["train.lr"]["why"] == "mine"
    # ... and once the models are trained, what their resolved configs (train/summary.json) carry
    _trained(tmp_path / "c", plan, [{"switch": "train.batch_size", "value": "2", "paper": "48", "why": "trained"}])
    out, rep = _report(tmp_path / "c", plan_file)
    rows = {r["switch"]: r for r in rep["deviations"] if r["source"] == "recipe deviations:"}
    assert list(rows) == ["train.batch_size"] and rows["train.batch_size"]["why"] == "trained"
    assert "train/summary.json" in (out / "index.html").read_text()


def test_report_cli_takes_the_plan(tmp_path, monkeypatch, capsys):
    plan, plan_file = _tree(tmp_path, {"preset": "smoke"})
    _write(tmp_path / plan.results / "synth_coco" / "dla34" / "seed0" / "metrics" / "synth_coco-val.refined.oks.json",
           _metrics(0.25))
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "reports" / "smoke"
    assert cli.main(["report", "--plan", str(plan_file), "--out", str(out), "--no-data-hash"]) == 0
    assert "| 25.0 |" in next(ln for ln in (out / "table1.md").read_text().splitlines() if "DLA-34" in ln)
    # as the workflow calls it: --preset and --results must agree with the plan
    assert cli.main(["report", "--preset", "smoke", "--results", plan.results, "--out", str(out),
                     "--plan", str(plan_file), "--no-data-hash"]) == 0
    assert cli.main(["report", "--preset", "synthetic", "--results", plan.results, "--out", str(out),
                     "--plan", str(plan_file)]) == 2
    assert "not the plan's preset" in capsys.readouterr().err
    assert cli.main(["report", "--out", str(out)]) == 2


# ============================================================================== the workflow writes it

def test_workflow_writes_the_plan_and_the_report_reads_it(tmp_path):
    """Dry run: rule `plan` makes results/<preset>/plan.json, the report rules take it as input and
    pass it with --plan; the plan the Snakefile builds is build_plan's."""
    import subprocess
    import sys
    snakefile = REPO / "workflow" / "Snakefile"
    out = subprocess.run([sys.executable, "-m", "snakemake", "--snakefile", str(snakefile), "-n", "--directory",
                          str(tmp_path), "--config", "preset=smoke", "seeds=2", "check=false", "--",
                          "reproduce_tables", "ablation_crowdpose"], cwd=REPO, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    text = out.stdout
    assert "rule plan:\n    output: results/smoke/plan.json" in text
    for target in ("--out reports/smoke --plan results/smoke/plan.json",
                   "--out reports/smoke/ablation_crowdpose --plan results/smoke/plan.json"):
        assert target in text, target
    plan = build_plan(REPO, {"preset": "smoke", "seeds": 2, "check": False})
    trains = [ln for ln in text.splitlines() if ln.startswith("Shell command:") and " train --config " in ln]
    assert len(trains) == len(plan.models_of("posedet"))
    for m in plan.models_of("posedet"):        # the plan's --set list is the train rule's
        shell = next(ln for ln in trains if f"--out {m.run_dir}/train " in ln)
        assert " ".join(f"--set {o}" for o in m.overrides) in shell, (m, shell)
