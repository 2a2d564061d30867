"""The budget knob: ``train.budget`` (``snakemake --config budget=K``) scales a whole training run
in one place (``config.train_schedule``); ``--resume`` across budgets continues only a run whose
steps were trained as this schedule trains them; the workflow passes the budget to every training
and writes a budget other than 1 under its own roots."""
from __future__ import annotations

import json

import pytest
import torch

from posedet import checkpoint as C
from posedet import presets as P
from posedet.config import load_config, lr_milestones, train_schedule
from posedet.train import read_log

from conftest import REPO, tiny_train_args, train_in_process

RECIPE_LIKE = ["train.iterations=400", "train.warmup_iters=50", "train.lr_steps=[0.8, 0.95]",
               "train.ckpt_every=50", "train.snapshot_every=25", "train.max_minutes=10"]


def _sched(s):
    return (s.total_steps, s.milestones, s.warmup_iters, s.ckpt_every, s.snapshot_every, s.max_minutes)


def test_budget_scales_steps_schedule_points_and_cadence():
    one = train_schedule(load_config(None, RECIPE_LIKE).train, 7)
    assert _sched(one) == (400, [320, 380], 50, 50, 25, 10) and one.budget == 1.0
    four = train_schedule(load_config(None, RECIPE_LIKE + ["train.budget=4"]).train, 7)
    assert _sched(four) == (1600, [1280, 1520], 200, 200, 100, 40)
    # a run in epochs, milestones in epochs (the paper's): all scale; the config keeps budget-1 values
    half = load_config(None, ["train.budget=0.5"]).train
    assert lr_milestones(half, 100) == (10500, [9000, 10000]) and half.epochs == 210
    # milestones given in steps scale with the run too
    t = load_config(None, ["train.iterations=40", "train.lr_steps=[0.5, 30]", "train.budget=2"]).train
    assert lr_milestones(t, 7) == (80, [40, 60])
    with pytest.raises(ValueError, match=r"train\.budget: must be > 0"):
        load_config(None, ["train.budget=0"])


def _steps(run):
    return [r for r in read_log(run / "train_log.jsonl") if "event" not in r]


def _events(run):
    return [r["event"] for r in read_log(run / "train_log.jsonl") if "event" in r]


def _same_weights(a, b):
    wa, wb = C.load_checkpoint(a)["model"], C.load_checkpoint(b)["model"]
    return all(torch.equal(wa[k], wb[k]) for k in wa)


def test_budget_run_and_resume_across_budgets(synth_coco, tmp_path, capsys):
    base = ["train.warmup_iters=0"]        # tiny run: 5 steps, lr ×0.1 after 0.6 of the run
    ref = tmp_path / "ref"
    assert train_in_process(tiny_train_args(synth_coco, ref, *base, "train.budget=2")) == 0
    recs = _steps(ref)
    assert [r["step"] for r in recs] == list(range(1, 11))
    assert [r["lr"] for r in recs] == pytest.approx([1e-3] * 6 + [1e-4] * 4)
    start = read_log(ref / "train_log.jsonl")[0]
    assert (start["total_steps"], start["lr_milestones"], start["budget"]) == (10, [6], 2.0)
    assert json.loads((ref / "summary.json").read_text())["budget"] == 2.0

    # a budget-1 run stopped after step 1 trained that step as budget 2 does: it resumes at
    # budget 2, takes budget 2's lr drop (step 6, not 3) and ends with the reference's weights
    run = tmp_path / "run"
    assert train_in_process(tiny_train_args(synth_coco, run, *base, "train.max_minutes=1e-9")) == 0
    assert C.load_checkpoint(run / "last.pt")["step"] == 1
    capsys.readouterr()
    assert train_in_process(tiny_train_args(synth_coco, run, *base, "train.budget=2") + ["--resume"]) == 0
    assert "was a 5-step run; continuing to 10 steps" in capsys.readouterr().err
    assert [r["lr"] for r in _steps(run)] == [r["lr"] for r in recs]
    assert _same_weights(ref / "final.pt", run / "final.pt")

    # the finished budget-2 run resumed at budget 1: more steps than that run has -> from scratch
    assert train_in_process(tiny_train_args(synth_coco, run, *base) + ["--resume"]) == 0
    assert "for 10 steps, more than this run's 5 (budget 1); starting from scratch" in capsys.readouterr().err
    assert _events(run) == ["start", "done"] and len(_steps(run)) == 5

    # the finished budget-1 run (lr drop at step 3 passed) resumed at budget 1.2 (drop at 4):
    # not a shorter schedule continued silently, a restart
    assert train_in_process(tiny_train_args(synth_coco, run, *base, "train.budget=1.2") + ["--resume"]) == 0
    err = capsys.readouterr().err
    assert "on another schedule" in err and "starting from scratch" in err
    assert _events(run) == ["start", "done"] and [r["step"] for r in _steps(run)][-1] == 6


def test_train_defaults_to_the_images_folder_beside_the_annotations(synth_coco, tmp_path):
    """`posedet synth --out D` then `posedet train --train-ann D/annotations.json`: D/images/."""
    args = tiny_train_args(synth_coco, tmp_path / "run", "train.iterations=1")
    i = args.index("--train-images")
    del args[i:i + 2]
    assert train_in_process(args) == 0
    start = read_log(tmp_path / "run" / "train_log.jsonl")[0]
    n = len(json.loads(open(synth_coco["ann"]).read())["images"])
    assert start["images"] == n


def test_pretrain_budget_scales_its_iterations(tmp_path):
    from conftest import POSE_SOURCE, small_backbone
    from posedet.pretrain import pretrain

    m = pretrain(small_backbone(), tmp_path / "pre", num_images=4, holdout=2, size=64, seed=7,
                 pose_source=str(POSE_SOURCE), iterations=2, batch_size=2, budget=1.5)
    assert (m["iterations"], m["iterations_at_budget_1"], m["budget"], m["images_seen"]) == (3, 2, 1.5, 6)


# ------------------------------------------------------------------------------ presets, workflow


def test_budget_config_value_suffix_and_arguments():
    assert P.budget({}) == 1.0 and P.budget({"budget": "4"}) == 4.0 and P.budget({"budget": 0.5}) == 0.5
    for bad in (0, -1, "x", "nan", "inf"):
        with pytest.raises(P.PresetError, match="budget must be a positive number"):
            P.budget({"budget": bad})
    assert (P.budget_suffix(1), P.budget_suffix(4.0), P.budget_suffix(0.5)) == ("", "/budget4", "/budget0.5")
    assert P.budget_overrides(1.0) == [] and P.budget_overrides(4) == ["train.budget=4"]
    assert P.budget_args(1) == [] and P.budget_args(2.5) == ["--budget", "2.5"]


@pytest.mark.parametrize("dataset, variant", [("synth_crowdpose", "baseline"), ("synth_coco", "hrnet_w48")])
def test_images_budget_is_what_train_runs(dataset, variant):
    preset = P.load_preset("synthetic", REPO)
    overrides = P.model_overrides(preset, P.load_variants(REPO), dataset, variant, 0)
    t = load_config(P.recipe_file(preset, REPO), overrides).train
    assert P.images_budget(preset, dataset, variant=variant) == t.iterations * t.batch_size
    for k in (4, 0.5):
        assert P.images_budget(preset, dataset, k, variant=variant) == \
            max(1, round(t.iterations * k)) * t.batch_size


def test_workflow_passes_the_budget_to_every_training_under_its_own_root(tmp_path):
    from test_workflow import jobs, snakemake

    out = snakemake("-n", "--directory", str(tmp_path), "--config", "preset=synthetic", "budget=2", "--",
                    "train_eval")
    js = jobs(out.stdout)
    trains = [j["shell"] for j in js if j["rule"] == "train"]
    assert trains
    assert all("--set train.budget=2 " in s and "--out results/synthetic/budget2/" in s for s in trains)
    # the pretext start (smoke wires it; synthetic leaves it off) gets the budget too
    out2 = snakemake("-n", "--directory", str(tmp_path), "--config", "preset=smoke", "budget=2", "--",
                     "train_eval")
    pretrains = [j["shell"] for j in jobs(out2.stdout) if j["rule"] == "pretrain"]
    assert pretrains
    assert all("--budget 2 " in s and "results/smoke/budget2/pretrain/" in s for s in pretrains)
    # budget 1: the commands and paths of the unscaled workflow
    out = snakemake("-n", "--directory", str(tmp_path), "--config", "preset=synthetic", "--", "train_eval")
    shells = " ".join(j["shell"] for j in jobs(out.stdout) if j["rule"] in ("train", "pretrain"))
    assert "budget" not in shells and "results/synthetic/synth_crowdpose/baseline/seed0/train" in shells
