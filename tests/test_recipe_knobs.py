"""The CPU recipe's switches: coarse positives per person (pos_num), pyramid levels, channels_last,
backbone feature selection, learning-curve snapshots and `posedet curve`."""
from __future__ import annotations

import json
import math

import pytest
import torch

from posedet.config import load_config
from posedet.model.detector import PoseDet
from posedet.targets import assign_coarse, level_starts

from conftest import small_backbone, tiny_train_args, train_in_process


def _person(cx, cy, side, k=14):
    """Labelled keypoints spanning [cx ± side/2]², mean exactly at (cx, cy)."""
    kp = torch.zeros(k, 3)
    pts = [(-1, -1), (1, -1), (-1, 1), (1, 1)] * (k // 4) + [(0, 0)] * (k % 4)
    for n, (dx, dy) in enumerate(pts):
        kp[n] = torch.tensor([cx + dx * side / 2, cy + dy * side / 2, 2.0])
    return kp


def test_pos_num_one_is_the_authors_single_nearest_point():
    sizes = [(16, 16), (8, 8), (4, 4)]
    res = assign_coarse([_person(43.0, 61.0, 40)[None]], [8, 16, 32], sizes)
    cells = torch.nonzero(res["pos"][0]).squeeze(1).tolist()
    assert cells == [round(61 / 8) * 16 + round(43 / 8)]


def test_pos_num_takes_the_nearest_grid_points_on_the_persons_level():
    sizes = [(16, 16), (8, 8), (4, 4)]
    cx, cy = 43.0, 61.0                         # grid points (j·8, i·8): nearest (5, 8) → 40, 64
    res = assign_coarse([_person(cx, cy, 40)[None]], [8, 16, 32], sizes, pos_num=9)
    cells = torch.nonzero(res["pos"][0]).squeeze(1)
    assert cells.numel() == 9 and bool((cells < level_starts(sizes)[1]).all())   # all on stride 8
    i, j = cells // 16, cells % 16
    d2 = ((j * 8 - cx) ** 2 + (i * 8 - cy) ** 2).float()
    # the 9 chosen are the 9 nearest of the whole level
    ii, jj = torch.meshgrid(torch.arange(16), torch.arange(16), indexing="ij")
    all_d2 = ((jj * 8 - cx) ** 2 + (ii * 8 - cy) ** 2).flatten().float()
    assert d2.max() <= torch.sort(all_d2).values[8] + 1e-6
    # every positive regresses the same person's keypoints
    assert torch.equal(res["gt_index"][0, cells], torch.zeros(9, dtype=torch.long))
    assert torch.allclose(res["target_xy"][0, cells], _person(cx, cy, 40)[:, :2].expand(9, -1, -1))


def test_pos_num_at_the_border_and_conflicts_between_persons():
    sizes = [(8, 8)]
    # a person at the image corner: only in-map points, still the nearest ones
    res = assign_coarse([_person(1.0, 1.0, 30)[None]], [8], sizes, pos_num=4)
    cells = sorted(torch.nonzero(res["pos"][0]).squeeze(1).tolist())
    assert cells == [0, 1, 8, 9]
    # two persons whose neighbourhoods overlap: a shared point goes to the nearer centre
    two = torch.stack([_person(20.0, 20.0, 30), _person(30.0, 20.0, 30)])
    res = assign_coarse([two], [8], sizes, pos_num=4)
    gi = res["gt_index"][0].reshape(8, 8)
    assert gi[2, 2].item() == 0 and gi[2, 4].item() == 1       # (16,16)→person 0, (32,16)→person 1
    assert int(res["pos"].sum()) == len(set(torch.nonzero(res["pos"][0]).squeeze(1).tolist()))


def test_num_levels_and_channels_last_change_speed_not_outputs():
    torch.manual_seed(0)
    m4 = PoseDet(small_backbone(), 14, neck_channels=32, gn_groups=8)
    m3 = PoseDet(small_backbone(), 14, neck_channels=32, gn_groups=8, num_levels=3)
    assert m4.strides == [8, 16, 32, 64] and m3.strides == [8, 16, 32] and m3.size_divisor == 32
    with pytest.raises(ValueError, match="at least"):
        PoseDet(small_backbone(), 14, neck_channels=32, num_levels=2)
    cl = PoseDet(small_backbone(), 14, neck_channels=32, gn_groups=8, num_levels=3, channels_last=True)
    cl.load_state_dict(m3.state_dict())
    x = torch.randn(2, 3, 64, 96)
    m3.eval(), cl.eval()
    with torch.no_grad():
        a, b = m3(x), cl(x)
    for key in ("coarse", "refine", "cls"):
        for u, v in zip(a[key], b[key]):
            assert torch.allclose(u, v, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("name,strides", [("dla46_c", [8, 16, 32]), ("resnet10t", [8, 16, 32])])
def test_generic_timm_backbones_feed_strides_8_16_32(name, strides):
    # out_indices are the model's own feature indices (DLA counts from 1): a stride-4 map
    # reaching the neck made dla46_c 3× slower than its size
    m = PoseDet(name, 14, neck_channels=32, gn_groups=8, num_levels=3)
    assert m.backbone.strides == strides and m.strides == strides


def test_compact_hrnet_uses_raw_branches_and_hrfpn():
    m = PoseDet("hrnet_w18_small", 14, neck_channels=32, gn_groups=8)
    assert m.backbone.channels == [16, 32, 64, 128] and m.strides == [8, 16, 32]
    assert type(m.neck).__name__ == "HRFPN"


def test_recipe_switch_defaults_are_the_papers():
    cfg = load_config()
    assert cfg.loss.pos_num == 1 and cfg.model.num_levels is None and cfg.model.channels_last is False
    assert cfg.train.snapshot_every is None
    with pytest.raises(ValueError, match="loss.pos_num"):
        load_config(None, ["loss.pos_num=0"])


def test_snapshots_and_learning_curve(synth_crowdpose, tmp_path):
    from posedet.curve import learning_curve, plot_curve, snapshot_paths

    run = tmp_path / "run"
    args = tiny_train_args(synth_crowdpose, run, "train.snapshot_every=2", "loss.pos_num=4",
                           "model.num_levels=3", "train.micro_batches=1")
    assert train_in_process(args) == 0
    snaps = snapshot_paths(run)
    assert [p.name for p in snaps] == ["step000002.pt", "step000004.pt", "step000005.pt"]
    meta = torch.load(snaps[0], weights_only=True)["meta"]
    assert meta["images_seen"] == 2 * 4 and meta["train_s"] > 0
    out = tmp_path / "curve.json"
    doc = learning_curve(run, synth_crowdpose["ann"], synth_crowdpose["images"], out,
                         overrides=["infer.short_side=128", "infer.max_size=128"])
    assert [p["step"] for p in doc["points"]] == [2, 4, 5]
    assert [p["images_seen"] for p in doc["points"]] == [8, 16, 20]
    assert all(0.0 <= p["AP"] <= 1.0 for p in doc["points"]) and doc["metric"] == "crowdpose"
    minutes = [p["minutes"] for p in doc["points"]]
    assert minutes == sorted(minutes) and doc["complete"]
    assert json.loads(out.read_text()) == doc
    # a second call reuses the evaluated points (same snapshot files)
    again = learning_curve(run, synth_crowdpose["ann"], synth_crowdpose["images"], out,
                           overrides=["infer.short_side=128", "infer.max_size=128"])
    assert again["points"] == doc["points"]
    plot_curve(doc, tmp_path / "curve.png")
    assert (tmp_path / "curve.png").stat().st_size > 1000


def test_pretext_pretraining_writes_a_backbone_posedet_loads(tmp_path):
    from conftest import POSE_SOURCE
    from posedet.pretrain import load_backbone_weights, pretrain

    out = tmp_path / "pre"
    m = pretrain(small_backbone(), out, num_images=6, holdout=2, size=64, seed=7,
                 pose_source=str(POSE_SOURCE), iterations=3, batch_size=2, command="test")
    assert m["iterations"] == 3 and m["images_seen"] == 6 and 0.0 <= m["holdout_person_iou"] <= 1.0
    assert len(m["sha256"]) == 64 and (out / "manifest.json").exists()
    saved = torch.load(out / "backbone.pt", weights_only=True)["state_dict"]
    model = PoseDet(small_backbone(), 14, neck_channels=32, gn_groups=8, init_backbone=str(out / "backbone.pt"))
    assert model.init_backbone_sha256 == m["sha256"]
    for k, v in model.backbone.state_dict().items():
        assert torch.equal(v, saved[k])
    # the same start for every variant: two models built from the file have the same backbone
    other = PoseDet(small_backbone(), 14, neck_channels=32, gn_groups=8, refine=False,
                    init_backbone=str(out / "backbone.pt"))
    assert all(torch.equal(a, b) for a, b in zip(model.backbone.state_dict().values(),
                                                  other.backbone.state_dict().values()))
    with pytest.raises(ValueError, match="holds a"):
        load_backbone_weights(PoseDet("resnet10t", 14, neck_channels=32, num_levels=3).backbone,
                              out / "backbone.pt", "resnet10t")
    with pytest.raises(FileNotFoundError, match="posedet pretrain"):
        PoseDet(small_backbone(), 14, init_backbone=str(tmp_path / "missing.pt"))


def test_resume_with_another_recipe_starts_from_scratch(synth_crowdpose, tmp_path, capsys):
    from posedet.train import config_changes, read_log

    run = tmp_path / "run"
    base = ["train.micro_batches=1", "model.num_levels=3"]
    assert train_in_process(tiny_train_args(synth_crowdpose, run, *base, "train.iterations=3")) == 0
    # a longer run of the same recipe resumes ...
    assert train_in_process(tiny_train_args(synth_crowdpose, run, *base, "train.iterations=4") + ["--resume"]) == 0
    assert [r["event"] for r in read_log(run / "train_log.jsonl") if "event" in r] == ["start", "done", "resume", "done"]
    # ... another recipe in the same folder does not: it trains from step 0
    capsys.readouterr()
    assert train_in_process(tiny_train_args(synth_crowdpose, run, *base, "train.iterations=4",
                                            "loss.centroid=box") + ["--resume"]) == 0
    assert "trained with another config (loss.centroid)" in capsys.readouterr().err
    events = [r for r in read_log(run / "train_log.jsonl") if "event" in r]
    assert [e["event"] for e in events] == ["start", "done"]
    assert torch.load(run / "final.pt", weights_only=True)["config"]["loss"]["centroid"] == "box"
    assert config_changes({"train": {"iterations": 3, "lr": 1.0}}, {"train": {"iterations": 9, "lr": 1.0}}) == []
    assert config_changes({"train": {"lr": 1.0}, "infer": {"nms": "oks"}},
                          {"train": {"lr": 2.0}, "infer": {"nms": "iou"}}) == ["train.lr"]


@pytest.mark.parametrize("variant", ["baseline", "no_refine", "box_no_is", "hrnet_w32"])
def test_synthetic_recipe_and_its_variants_train_a_few_steps(variant, synth_crowdpose, tmp_path):
    """configs/recipes/synthetic_cpu.yaml with the preset's variant overrides: two real steps."""
    from conftest import REPO
    from posedet import presets as P
    from posedet.train import read_log

    preset = P.load_preset("synthetic", REPO)
    overrides = P.model_overrides(preset, P.load_variants(REPO), "synth_crowdpose", variant, 0)
    recipe = P.recipe_file(preset, REPO)
    cfg = load_config(recipe, overrides)
    assert cfg.deviations and all(d.switch and d.paper and d.why for d in cfg.deviations)
    run = tmp_path / variant
    args = ["train", "--config", recipe, "--train-ann", synth_crowdpose["ann"], "--train-images",
            synth_crowdpose["images"], "--out", str(run), "--device", "cpu"]
    for o in overrides + ["train.iterations=2", "train.batch_size=2", "train.warmup_iters=1",
                          "train.log_every=1"]:
        args += ["--set", o]
    assert train_in_process(args) == 0
    steps = [r for r in read_log(run / "train_log.jsonl") if "event" not in r]
    assert [r["step"] for r in steps] == [1, 2] and all(math.isfinite(r["loss"]) for r in steps)
    final = torch.load(run / "final.pt", weights_only=True)
    assert final["config"]["loss"]["pos_num"] == 9 and final["config"]["model"]["num_levels"] == 3
    assert final["config"]["model"]["refine"] == (variant != "no_refine")
