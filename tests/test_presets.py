"""Presets and variants: the experiment matrix each preset runs, resolved without Snakemake."""
from pathlib import Path

import pytest

from posedet import presets as P
from posedet.config import load_config

REPO = Path(__file__).resolve().parents[1]
VARIANTS = P.load_variants(REPO)
PRESETS = ["smoke", "synthetic", "paper"]


def test_variants_are_defined_once_with_the_paper_matrix():
    assert {"baseline", "no_refine", "box_centroid", "no_is", "box_no_is",
            "dla34", "hrnet_w32", "hrnet_w48"} <= set(VARIANTS)
    assert "model.refine=false" in VARIANTS["no_refine"]
    assert "loss.centroid=box" in VARIANTS["box_centroid"]
    assert "model.intermediate_supervision=false" in VARIANTS["no_is"]
    assert {"loss.centroid=box", "model.intermediate_supervision=false"} <= set(VARIANTS["box_no_is"])
    assert {"model.refine=true", "loss.centroid=keypoints",
            "model.intermediate_supervision=true"} <= set(VARIANTS["baseline"])


@pytest.mark.parametrize("name", PRESETS)
def test_every_model_config_resolves(name):
    """Recipe + training-set + variant + seed overrides give a valid config for every model."""
    preset = P.load_preset(name, REPO)
    models = P.trained_models(preset, VARIANTS)
    assert models
    for dataset, variant, seed in models:
        cfg = load_config(P.recipe_file(preset, REPO), P.model_overrides(preset, VARIANTS, dataset, variant, seed))
        assert cfg.train.seed == seed
        if variant == "no_refine":
            assert cfg.model.refine is False
        if variant in ("box_centroid", "box_no_is"):
            assert cfg.loss.centroid == "box"
        if variant in ("no_is", "box_no_is"):
            assert cfg.model.intermediate_supervision is False


def test_backbone_variants_map_through_the_preset():
    paper = P.load_preset("paper", REPO)
    o = P.model_overrides(paper, VARIANTS, "coco", "hrnet_w32", 0)
    assert "model.backbone=hrnet_w32" in o and "infer.short_side=512" in o
    # the paper's ablations on CrowdPose are HRNet-W48 (the training set's override), 640 px
    o = P.model_overrides(paper, VARIANTS, "crowdpose", "no_is", 0)
    assert o.index("model.backbone=hrnet_w48") < o.index("model.intermediate_supervision=false")
    assert "infer.short_side=640" in o
    synthetic = P.load_preset("synthetic", REPO)
    assert "model.backbone=hrnet_w18_small" in P.model_overrides(synthetic, VARIANTS, "synth_coco", "hrnet_w32", 0)
    assert "model.backbone=hrnet_w18_small_v2" in P.model_overrides(synthetic, VARIANTS, "synth_coco", "hrnet_w48", 0)
    assert P.model_overrides(synthetic, VARIANTS, "synth_coco", "hrnet_w48", 2)[-1] == "train.seed=2"


@pytest.mark.parametrize("name", PRESETS)
def test_experiment_matrix(name):
    preset = P.load_preset(name, REPO, overrides={"coco_root": "/c", "crowdpose_root": "/p"})
    ev = P.experiment_evals(preset, None, VARIANTS)
    coco, crowd = ("coco", "crowdpose") if name == "paper" else ("synth_coco", "synth_crowdpose")

    def rows(exp):
        return {(e.dataset, e.variant, e.mode, e.nms) for e in P.experiment_evals(preset, exp, VARIANTS)}

    assert {(coco, v, "refined", "oks") for v in ("dla34", "hrnet_w32", "hrnet_w48")} <= rows("table1")
    assert {r[2] for r in rows("table2")} == {"tta"} and {r[2] for r in rows("table3")} == {"tta"}
    assert rows("table4") == {(crowd, "baseline", "refined", "oks"), (crowd, "baseline", "coarse", "oks"),
                              (crowd, "no_refine", "refined", "oks")}
    assert rows("table5") == {(crowd, v, "refined", n) for v in ("baseline", "box_centroid", "no_is", "box_no_is")
                              for n in ("oks", "iou")}
    assert ("coarse" in {r[2] for r in rows("figure5")})
    # the Table 4/5 baseline is one model; one model serves both NMS rows
    # (synthetic: baseline and no_refine on seeds 1..n-1 too, the per-variant `seeded:`)
    extra = 2 * (len(P.seeds(preset)) - 1) if name == "synthetic" else 0
    assert len({(e.dataset, e.variant, e.seed) for e in ev}) == 8 + extra
    # no duplicated predictions across experiments
    assert len({e[1:] for e in ev}) == len(ev)


def test_seeds_multiply_only_the_seeded_ablations():
    one = P.load_preset("smoke", REPO)
    three = P.load_preset("smoke", REPO, overrides={"seeds": 3})
    assert P.seeds(three) == [0, 1, 2]
    m1, m3 = P.trained_models(one, VARIANTS), P.trained_models(three, VARIANTS)
    assert len(m1) == 8
    # Tables 4 and 5: baseline, no_refine, box_centroid, no_is, box_no_is x 3 seeds; Table 1 seed 0
    assert len(m3) == 3 + 5 * 3
    assert ("synth_crowdpose", "box_no_is", 2) in m3 and ("synth_coco", "dla34", 1) not in m3


def test_a_variant_may_override_the_experiments_seeding():
    # synthetic: Table 5's baseline on every seed (the NMS rows), its other models on seed 0 only
    syn = P.load_preset("synthetic", REPO, overrides={"seeds": 3})
    m = P.trained_models(syn, VARIANTS)
    crowd = {(v, s) for d, v, s in m if d == "synth_crowdpose"}
    assert {("baseline", s) for s in (0, 1, 2)} <= crowd and {("no_refine", s) for s in (0, 1, 2)} <= crowd
    assert ("box_centroid", 0) in crowd and ("box_centroid", 1) not in crowd and ("no_is", 2) not in crowd
    assert len(m) == 3 + 2 * 3 + 3


def test_layout_paths():
    smoke = P.load_preset("smoke", REPO)
    e = P.Eval("table5", "synth_crowdpose", "no_is", 1, "synth_crowdpose/val", "refined", "iou")
    assert e.predictions("results/smoke") == \
        "results/smoke/synth_crowdpose/no_is/seed1/predictions/synth_crowdpose-val.refined.iou.json"
    assert e.metrics("results/smoke") == \
        "results/smoke/synth_crowdpose/no_is/seed1/metrics/synth_crowdpose-val.refined.iou.json"
    assert P.training_set(smoke, "synth_coco") == "synth_coco/train"


def test_learning_curve_only_on_the_baseline_seed0():
    synthetic = P.load_preset("synthetic", REPO)
    lc = P.learning_curve(synthetic)
    assert (lc["dataset"], lc["variant"], lc["seed"]) == ("synth_crowdpose", "baseline", 0)
    assert P.curve_overrides(synthetic, "synth_crowdpose", "baseline", 0) == lc["set"]
    assert any(o.startswith("train.snapshot") for o in lc["set"])
    assert P.curve_overrides(synthetic, "synth_crowdpose", "baseline", 1) == []
    assert P.curve_overrides(synthetic, "synth_crowdpose", "no_is", 0) == []
    assert P.learning_curve(P.load_preset("paper", REPO)) is None


def test_bad_experiment_gives_clear_errors(tmp_path):
    smoke = P.load_preset("smoke", REPO)
    bad = dict(smoke, experiments={"t": {"train": "synth_coco", "variants": ["nope"], "eval": ["synth_coco/val"]}})
    with pytest.raises(P.PresetError, match="no variant 'nope'"):
        P.experiment_evals(bad, None, VARIANTS)
    bad = dict(smoke, experiments={"t": {"train": "synth_coco", "variants": ["baseline"], "eval": ["crowdpose_val"]}})
    with pytest.raises(P.PresetError, match="has no images"):
        P.experiment_evals(bad, None, VARIANTS)
    bad = dict(smoke, experiments={"t": {"train": "synth_coco", "variants": ["baseline"], "eval": ["synth_coco/val"],
                                         "modes": ["fast"]}})
    with pytest.raises(P.PresetError, match="unknown mode"):
        P.experiment_evals(bad, None, VARIANTS)
    with pytest.raises(P.PresetError, match="no training set 'coco'"):
        P.training_set(smoke, "coco")
