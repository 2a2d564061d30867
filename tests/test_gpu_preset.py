"""The GPU path for the hard tier, wired and checked on the CPU: the
`synthetic_gpu` preset and its recipe load, its data sets are the hard tier with valid difficulty
keys, the recipe lists every departure from the paper, the workflow plans its tables (PoseDet and
YOLO11n-pose trainings on the hard-tier sets, the bench on CUDA), and scripts/gpu_check.sh parses
and plans its workflow targets. Dry runs and config parsing only: nothing trains here."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from posedet import presets as P
from posedet.config import config_to_dict, flatten_config, load_config
from posedet.data.synth import LAYOUTS
from test_workflow import job_counts, jobs, snakemake

REPO = Path(__file__).resolve().parents[1]
HARD = ("synth_coco_hard", "synth_crowdpose_hard")


def shells(text, rule):
    """The shell commands of one rule's jobs in a dry run's output."""
    return [j["shell"] for j in jobs(text) if j["rule"] == rule]


@pytest.fixture(scope="module")
def preset():
    return P.load_preset("synthetic_gpu", REPO)


def test_preset_loads_with_the_hard_tier(preset):
    variants = P.load_variants(REPO)
    assert preset["name"] == "synthetic_gpu" and P.seeds(preset) == [0, 1, 2]
    assert int(preset["train_threads"]) >= 2 and preset["bench"] == {"mode": "full", "device": "cuda"}
    recipe = P.recipe_file(preset, REPO)
    assert recipe.endswith("configs/recipes/synthetic_gpu.yaml")
    # every experiment trains on a hard-tier set and evaluates on sets that exist
    exps = P.experiments(preset, variants)
    assert {"table1", "table2", "table3", "table4", "table5", "figure4", "figure5"} <= set(exps)
    assert {e["train"] for e in exps.values()} == set(HARD)
    for name in HARD:
        assert P.training_set(preset, name) == f"{name}/train"
        ds = preset["datasets"][name]
        assert ds["clutter"] == "full" and ds["size"] == 256 and ds["density"] == "mixed"
        assert ds["splits"]["train"] >= 10000 and ds["splits"]["val"] >= 500 and ds["splits"]["test"] >= 500
    # the peers: Table 1 on the COCO layout (seed 0), Tables 4/5 on the CrowdPose layout (every seed)
    assert P.peer_models(preset) == [("synth_coco_hard", "yolo11n_pose", 0)] + [
        ("synth_crowdpose_hard", "yolo11n_pose", k) for k in range(3)]
    # 3 backbones + baseline/no_refine on 3 seeds + 3 seed-0 Table 5 models
    assert len(P.trained_models(preset, variants)) == 3 + 2 * 3 + 3
    # the same images for the peer as for the baseline, at the recipe's input and batch size
    b = P.peer_budget(preset, variants, recipe, "synth_crowdpose_hard")
    assert b == {"images": 6000 * 32, "iterations": 6000, "batch_size": 32, "imgsz": 256, "budget": 1.0}
    assert P.images_budget(preset, "synth_crowdpose_hard", 0.05) == 300 * 32
    # its results never mix with the synthetic preset's
    ev = P.experiment_evals(preset, "table4", variants)[0]
    assert ev.metrics("results/synthetic_gpu").startswith("results/synthetic_gpu/synth_crowdpose_hard/")


def test_every_data_set_difficulty_is_valid(preset):
    from posedet.data.synth import _density

    synthetic = {n: d for n, d in preset["datasets"].items() if d.get("kind") == "synthetic"}
    assert set(synthetic) == set(HARD)
    seeds = [int(d["seed"]) for d in synthetic.values()]
    assert len(set(seeds)) == len(seeds)
    for name, ds in synthetic.items():
        P.check_difficulty(ds, name)               # clutter, max_people, person_scale, texture
        assert set(P.DIFFICULTY_KEYS) <= set(ds)   # written out, not left to defaults
        assert ds["layout"] in LAYOUTS and int(ds["size"]) >= 32
        _density(str(ds["density"]))
        for split in ds["splits"]:
            P.annotation_file(preset, f"{name}/{split}", "results/synthetic_gpu")
    with pytest.raises(P.PresetError, match="clutter"):
        P.check_difficulty(dict(synthetic["synth_crowdpose_hard"], clutter="heavy"), "x")


def test_recipe_lists_every_departure_from_the_paper(preset):
    """Every setting of the GPU recipe that differs from configs/recipes/paper.yaml is a switch of
    its `deviations:` list (bookkeeping keys aside)."""
    gpu = load_config(P.recipe_file(preset, REPO))
    paper = load_config(REPO / "configs" / "recipes" / "paper.yaml")
    a, b = flatten_config(config_to_dict(gpu)), flatten_config(config_to_dict(paper))
    bookkeeping = {"name", "deviations", "train.log_every", "train.ckpt_every", "train.num_workers"}
    listed = {s.strip() for d in gpu.deviations for s in d.switch.split(",")}
    differs = {k for k in a if a[k] != b.get(k) and k not in bookkeeping}
    assert differs, "the GPU recipe is the paper's?"
    assert differs <= listed, f"not under deviations: {sorted(differs - listed)}"
    assert all(d.value and d.paper and d.why for d in gpu.deviations)
    assert gpu.train.input_size == 256 and gpu.train.max_minutes and gpu.infer.short_side == 256


def test_dry_run_reproduce_tables_plans_the_hard_tier(tmp_path, preset):
    out = snakemake("-n", "--cores", "16", "--directory", str(tmp_path), "--config", "preset=synthetic_gpu",
                    "--", "reproduce_tables")
    text = out.stdout
    counts = job_counts(text)
    assert counts["train"] == 12 and counts["peer_train"] == 4 and counts["peer_predict"] == 4
    assert counts["synth_dataset"] == 6 and counts["bench_table"] == counts["report"] == 1
    res = "results/synthetic_gpu"
    trains = shells(text, "train")
    for name in HARD:
        ann = f"--train-ann {res}/data/{name}/train/annotations.json"
        assert any(ann in s for s in trains), name
        assert any(f"{res}/data/{name}/train/annotations.json" in s for s in shells(text, "peer_train")), name
    assert all("configs/recipes/synthetic_gpu.yaml" in s for s in trains)
    assert sum("--set model.backbone=hrnet_w48" in s for s in trains) == 1
    # the peer gets the baseline's images at the recipe's input and batch size
    assert all("--images-budget 192000 --imgsz 256 --batch 32" in s for s in shells(text, "peer_train"))
    synth = shells(text, "synth_dataset")
    assert all("--clutter full" in s and "--size 256" in s for s in synth)
    assert sum("--num-images 10000" in s for s in synth) == 2
    assert any("bench table --preset-mode full --device cuda " in s for s in shells(text, "bench_table"))
    assert f"{res}/synth_crowdpose_hard/yolo11n_pose/seed2/metrics/synth_crowdpose_hard-val.refined.oks.json" in text
    assert f"reports/synthetic_gpu/index.html" in text


def test_gpu_check_script_parses_and_plans_its_targets(tmp_path):
    script = REPO / "scripts" / "gpu_check.sh"
    assert subprocess.run(["bash", "-n", str(script)], capture_output=True).returncode == 0
    env = dict(os.environ, GPU_CHECK_DRY_RUN="1", OUT=str(tmp_path / "out"), SM_DIR=str(tmp_path / "work"),
               PY=sys.executable, CORES="16", OMP_NUM_THREADS="1")
    out = subprocess.run(["bash", str(script)], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-4000:]
    text = out.stdout
    data, train = text.split("== dry run: train_eval")
    assert job_counts(data) == {"synth_dataset": 2, "total": 2}
    counts = job_counts(train)
    assert counts["train"] == 1 and counts["predict"] == 2 and counts["synth_dataset"] == 2
    res = "results/synthetic_gpu/budget0.05"
    assert f"{res}/synth_crowdpose_hard/baseline/seed0/metrics/synth_crowdpose_hard-val.coarse.oks.json" in train
    assert "--set train.budget=0.05" in train
    if "ultralytics/polars missing" not in text:
        assert counts["peer_train"] == 1 and counts["evaluate"] == 3
        assert "--images-budget 9600 --imgsz 256 --batch 32" in train
    assert not (tmp_path / "work" / "results").exists()   # a dry run writes nothing
