"""Config schema and `posedet train`: determinism, DDP equivalence, kill + resume, the
non-finite stop, the time budget, checkpoints."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from posedet import checkpoint as C
from posedet.config import config_to_dict, load_config, lr_milestones
from posedet.train import EXIT_DEBUG_STOP, EXIT_NON_FINITE, read_log

from conftest import REPO, run_posedet, tiny_train_args, train_in_process

# ------------------------------------------------------------------------------ config


def test_defaults_are_the_papers_settings():
    cfg = load_config()
    t, i = cfg.train, cfg.infer
    assert (t.lr, t.epochs, t.lr_steps, t.lr_gamma, t.input_size) == (1e-4, 210, [180, 200], 0.1, 512)
    assert (cfg.loss.centroid, cfg.loss.heatmap_loss) == ("keypoints", "focal")
    assert config_to_dict(cfg.loss.weights) == {"coarse": 0.1, "refine": 0.2, "cls": 1.0, "heatmap": 0.1}
    assert (i.short_side, i.max_size, i.tta_scales, i.score_thr, i.topk, i.max_dets, i.nms) == (
        640, 1000, [300, 400, 500, 600, 700, 800], 0.05, 500, 100, "oks")
    assert lr_milestones(t, 100) == (21000, [18000, 20000])


def test_lr_steps_as_fractions_or_units():
    t = load_config(None, ["train.iterations=40", "train.lr_steps=[0.5, 30]"]).train
    assert lr_milestones(t, 7) == (40, [20, 30])
    t = load_config(None, ["train.epochs=4", "train.lr_steps=[0.75, 3]"]).train
    assert lr_milestones(t, 10) == (40, [30, 30])


def test_yaml_file_and_overrides(tmp_path):
    f = tmp_path / "variant.yaml"
    f.write_text("name: no_refine\nmodel: {backbone: hrnet_w32, refine: false}\n"
                 "train: {lr: 1e-4, batch_size: 8}\nloss: {weights: {refine: 0.5}}\n")
    cfg = load_config(f, ["train.batch_size=16", "infer.nms=iou", "model.pretrained_file=null"])
    assert (cfg.name, cfg.model.backbone, cfg.model.refine) == ("no_refine", "hrnet_w32", False)
    assert cfg.train.lr == 1e-4 and isinstance(cfg.train.lr, float)      # YAML reads '1e-4' as str
    assert (cfg.train.batch_size, cfg.infer.nms, cfg.loss.weights.refine) == (16, "iou", 0.5)


@pytest.mark.parametrize("override, message", [
    ("loss.centroid=foo", r"loss\.centroid: 'foo' is not one of 'keypoints', 'box'"),
    ("loss.heatmap_loss=mse", r"loss\.heatmap_loss: 'mse' is not one of 'focal', 'l2'"),
    ("train.bogus=1", r"train\.bogus: unknown key"),
    ("trian.lr=1", r"trian: unknown key"),
    ("train.batch_size=2.5", r"train\.batch_size: expected an integer"),
    ("train.lr=fast", r"train\.lr: expected a number"),
    ("train.lr=0", r"train\.lr: must be > 0"),
    ("model.refine=maybe", r"model\.refine: expected true or false"),
    ("infer.nms=soft", r"infer\.nms: 'soft' is not one of 'oks', 'iou'"),
    ("infer.nms_thr=1.5", r"infer\.nms_thr: must be in \(0, 1\]"),
    ("train.lr_steps=[200,180]", r"train\.lr_steps: must be positive and ascending"),
    ("train.micro_batches=5", r"train\.micro_batches: 5 does not divide batch_size 48"),
    ("train.epochs=null", r"set train\.epochs or train\.iterations"),
    ("loss.weights.cls=-1", r"loss\.weights\.cls: must be ≥ 0"),
    ("noequals", r"expected KEY=VALUE"),
])
def test_bad_values_name_the_key(override, message):
    with pytest.raises(ValueError, match=message):
        load_config(None, [override])


def test_bad_file_names_the_file(tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text("loss:\n  centroid: foo\n")
    with pytest.raises(ValueError, match=r"bad\.yaml: loss\.centroid: 'foo' is not one of"):
        load_config(f)
    with pytest.raises(ValueError, match=r"missing\.yaml: cannot read config"):
        load_config(tmp_path / "missing.yaml")


def test_cli_reports_config_errors(synth_coco, tmp_path, capsys):
    from posedet.cli import main

    rc = main(["train", "--train-ann", synth_coco["ann"], "--out", str(tmp_path / "r"),
               "--set", "loss.centroid=foo"])
    assert rc == 2
    assert "loss.centroid: 'foo' is not one of 'keypoints', 'box'" in capsys.readouterr().err


# ---------------------------------------------------------------------------- training


_train_args = tiny_train_args


def _losses(run: Path) -> list[dict]:
    return [r for r in read_log(run / "train_log.jsonl") if "event" not in r]


def _params(path: Path) -> dict:
    """Trainable parameters of a checkpoint's model (BatchNorm running stats left out)."""
    ckpt = C.load_checkpoint(path)
    model = C.model_from_checkpoint(ckpt, str(path))
    names = {n for n, _ in model.named_parameters()}
    return {k: v for k, v in ckpt["model"].items() if k in names}


def test_tiny_run_writes_log_checkpoints_and_summary(tiny_run):
    recs = _losses(tiny_run)
    assert [r["step"] for r in recs] == [1, 2, 3, 4, 5]
    terms = {"loss", "loss_coarse", "loss_refine", "loss_cls", "loss_heatmap",
             "num_coarse_pos", "num_refine_pos", "num_cls_pos"}
    for r in recs:
        assert terms <= set(r) and r["images_per_s"] > 0 and "lr" in r and "epoch" in r
    # warm-up from lr/3 over 2 steps, ×0.1 after step 0.6·5 = 3
    assert [r["lr"] for r in recs] == pytest.approx([1e-3 / 3, 2e-3 / 3, 1e-3, 1e-4, 1e-4])
    assert recs[0]["num_coarse_pos"] >= 1
    events = [r["event"] for r in read_log(tiny_run / "train_log.jsonl") if "event" in r]
    assert events == ["start", "done"]
    summary = json.loads((tiny_run / "summary.json").read_text())
    assert summary["status"] == "complete" and summary["steps"] == 5 and summary["images_per_s"] > 0
    last = torch.load(tiny_run / "last.pt", weights_only=True)
    assert last["step"] == 5 and last["complete"] and last["optimizer"] is not None
    for key in ("model", "optimizer", "scheduler", "rng", "config", "model_signature", "skeleton"):
        assert key in last
    assert set(last["rng"]) == {"torch", "cuda", "numpy", "python"}
    final = torch.load(tiny_run / "final.pt", weights_only=True)
    assert final["optimizer"] is None and final["complete"] and final["skeleton"]["name"] == "coco"
    assert last["config"]["train"]["iterations"] == 5


def test_two_identical_runs_are_identical(tiny_run, synth_coco, tmp_path):
    out = tmp_path / "again"
    assert train_in_process(_train_args(synth_coco, out)) == 0
    a, b = _losses(tiny_run), _losses(out)
    for ra, rb in zip(a, b):
        assert {k: v for k, v in ra.items() if k.startswith(("loss", "num_"))} == \
               {k: v for k, v in rb.items() if k.startswith(("loss", "num_"))}
    sa, sb = C.load_checkpoint(tiny_run / "final.pt")["model"], C.load_checkpoint(out / "final.pt")["model"]
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


def test_kill_then_resume_equals_the_uninterrupted_run(tiny_run, synth_coco, tmp_path):
    out = tmp_path / "killed"
    res = run_posedet(_train_args(synth_coco, out) + ["--stop-after-steps", "3"])
    assert res.returncode == EXIT_DEBUG_STOP, res.stderr[-3000:]
    assert C.load_checkpoint(out / "last.pt")["step"] == 2                  # ckpt_every 2; step 3 lost
    assert not (out / "final.pt").exists()
    assert [r["step"] for r in _losses(out)] == [1, 2, 3]
    assert train_in_process(_train_args(synth_coco, out) + ["--resume"]) == 0
    ref, got = C.load_checkpoint(tiny_run / "final.pt"), C.load_checkpoint(out / "final.pt")
    assert all(torch.equal(ref["model"][k], got["model"][k]) for k in ref["model"])
    recs = _losses(out)
    assert [r["step"] for r in recs] == [1, 2, 3, 4, 5]                    # the lost step 3 redone once
    assert [r["loss"] for r in recs] == [r["loss"] for r in _losses(tiny_run)]
    assert "resume" in [r.get("event") for r in read_log(out / "train_log.jsonl")]


def test_ddp_two_gloo_processes_match_one_micro_batched_process(tiny_run, synth_coco, tmp_path):
    """2 processes × batch 2 (each normalised by its own positive counts, gradients averaged by
    DDP) compute what one process with batch 4 split into 2 interleaved micro-batches computes."""
    out = tmp_path / "ddp"
    args = _train_args(synth_coco, out, train__micro_batches=1)
    env = dict(os.environ, OMP_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "posedet", *args]
    res = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-4000:]
    a, b = _losses(tiny_run), _losses(out)
    assert [r["step"] for r in b] == [1, 2, 3, 4, 5]
    for ra, rb in zip(a, b):
        for k in ra:
            if k.startswith(("loss", "num_")):
                assert rb[k] == pytest.approx(ra[k], rel=1e-5, abs=1e-6), (ra["step"], k)
    pa, pb = _params(tiny_run / "final.pt"), _params(out / "final.pt")
    assert pa.keys() == pb.keys()
    for k in pa:
        torch.testing.assert_close(pb[k], pa[k], rtol=1e-4, atol=1e-6, msg=k)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["world_size"] == 2


_in_process_train = train_in_process


def test_non_finite_loss_stops_naming_step_and_term(synth_coco, tmp_path, monkeypatch, capsys):
    import posedet.losses

    real = posedet.losses.posedet_loss
    calls = {"n": 0}

    def poisoned(*a, **kw):                         # 2 micro-batches a step: calls 5, 6 = step 3
        out = real(*a, **kw)
        calls["n"] += 1
        if calls["n"] == 6:
            out = dict(out)
            out["loss_refine"] = out["loss_refine"] * float("nan")
            out["loss"] = out["loss"] + out["loss_refine"]
        return out

    monkeypatch.setattr(posedet.losses, "posedet_loss", poisoned)
    out = tmp_path / "nan"
    rc = _in_process_train(_train_args(synth_coco, out))
    assert rc == EXIT_NON_FINITE != 0
    err = capsys.readouterr().err
    assert "non-finite loss_refine at step 3" in err
    assert str(out / "last.pt") in err
    last = C.load_checkpoint(out / "last.pt")
    assert last["step"] == 2 and torch.isfinite(torch.cat([v.flatten().float() for v in last["model"].values()])).all()
    assert not (out / "final.pt").exists()
    log = read_log(out / "train_log.jsonl")
    assert log[-1]["event"] == "non_finite" and log[-1]["term"] == "loss_refine" and log[-1]["step"] == 3
    assert json.loads((out / "summary.json").read_text())["status"] == "non_finite"


def test_time_budget_stops_cleanly_after_the_current_step(synth_coco, tmp_path, capsys):
    out = tmp_path / "budget"
    rc = _in_process_train(_train_args(synth_coco, out, "train.max_minutes=1e-9"))
    assert rc == 0
    assert "stopped on the time budget" in capsys.readouterr().err
    log = read_log(out / "train_log.jsonl")
    assert log[-1]["event"] == "stopped_on_budget" and log[-1]["step"] == 1
    assert C.load_checkpoint(out / "last.pt")["step"] == 1
    final = C.load_checkpoint(out / "final.pt")
    assert final["step"] == 1 and not final["complete"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "stopped_on_budget" and summary["stopped_on_budget"]


def test_checkpoint_signature_and_backbone_mismatch_are_clear_errors(tiny_run, tmp_path):
    ckpt = C.load_checkpoint(tiny_run / "final.pt")
    model = C.load_model_from_checkpoint(tiny_run / "final.pt")
    assert not model.training
    backbone = ckpt["config"]["model"]["backbone"]
    with pytest.raises(C.CheckpointError, match=rf"checkpoint backbone '{backbone}', but 'dla34' was requested"):
        C.load_model_from_checkpoint(tiny_run / "final.pt", backbone="dla34")
    with pytest.raises(C.CheckpointError, match=r"checkpoint has 17 keypoints .*'coco'.*but 14"):
        C.load_model_from_checkpoint(tiny_run / "final.pt", num_keypoints=14)
    tampered = dict(ckpt, model_signature={"backbone": "hrnet_w48", "num_keypoints": 17})
    bad = tmp_path / "tampered.pt"
    C.save_checkpoint(bad, {k: v for k, v in tampered.items() if k != "format"})
    with pytest.raises(C.CheckpointError, match=r"tampered\.pt: stored model signature .*hrnet_w48.* differs"):
        C.load_model_from_checkpoint(bad)
    not_ckpt = tmp_path / "plain.pt"
    torch.save({"weights": torch.zeros(1)}, not_ckpt)
    with pytest.raises(C.CheckpointError, match=r"plain\.pt: not a posedet checkpoint"):
        C.load_checkpoint(not_ckpt)


def test_rng_state_round_trips():
    import random

    import numpy as np

    state = C.rng_state()
    a = (torch.rand(3), np.random.rand(3), random.random())
    C.set_rng_state(state)
    b = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and a[2] == b[2]
