"""The workflow's wiring: presets resolve, the Snakefile lints clean, every target's DAG builds on
every preset, the slurm profile asks for GPUs only where a GPU is used, and the smoke chain runs."""
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from posedet import presets as P

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "workflow" / "Snakefile")]


def snakemake(*args, cwd=REPO, check=True):
    out = subprocess.run(SNAKEMAKE + list(args), cwd=cwd, capture_output=True, text=True)
    if check:
        assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-4000:]
    return out


def job_counts(text):
    """{rule: count} from the 'Job stats' table of a dry run."""
    table = text[text.index("Job stats:"):]
    counts = {}
    for line in table.splitlines()[3:]:
        bits = line.split()
        if len(bits) != 2 or not bits[1].isdigit():
            break
        counts[bits[0]] = int(bits[1])
    return counts


def jobs(text):
    """Every job of a dry run as {rule, resources: {..}, shell}."""
    out, cur = [], None
    for line in text.splitlines():
        m = re.match(r"^(?:local)?rule (\w+):$", line)
        if m:
            cur = {"rule": m.group(1), "resources": {}, "shell": ""}
            out.append(cur)
        elif cur is not None and line.strip().startswith("resources:"):
            for kv in line.split(":", 1)[1].split(", "):
                k, _, v = kv.strip().partition("=")
                cur["resources"][k] = v
        elif cur is not None and line.startswith("Shell command:"):
            cur["shell"] = line
    return out


def test_presets_resolve_paths():
    smoke = P.load_preset("smoke", REPO)
    assert P.annotation_file(smoke, "synth_coco/test", "results/smoke") == "results/smoke/data/synth_coco/test/annotations.json"
    real = P.annotation_file(smoke, "crowdpose_val", "results/smoke")
    assert Path(real).is_absolute() and real.endswith("crowdpose/crowdpose_val.json")
    assert P.unslug(smoke, P.slug("synth_crowdpose/test")) == "synth_crowdpose/test"
    assert P.image_root(smoke, "crowdpose_val", "r") is None


def test_unknown_preset_and_set_give_clear_errors():
    with pytest.raises(P.PresetError, match="unknown preset 'nope'.*known: .*smoke"):
        P.load_preset("nope", REPO)
    smoke = P.load_preset("smoke", REPO)
    with pytest.raises(P.PresetError, match="no data set 'coco'"):
        P.annotation_file(smoke, "coco/val", "r")
    with pytest.raises(P.PresetError, match="has no split 'dev'"):
        P.annotation_file(smoke, "synth_coco/dev", "r")


def test_paper_preset_needs_roots():
    paper = P.load_preset("paper", REPO)
    with pytest.raises(P.PresetError, match="needs coco_root: pass --config coco_root="):
        P.annotation_file(paper, "coco/val", "r")
    paper = P.load_preset("paper", REPO, overrides={"coco_root": "/data/coco"})
    assert P.annotation_file(paper, "coco/val", "r") == "/data/coco/annotations/person_keypoints_val2017.json"


def test_snakemake_lint_is_clean():
    out = snakemake("--lint")
    assert "Lints for" not in out.stdout + out.stderr


@pytest.mark.parametrize("preset", ["smoke", "synthetic"])
def test_dry_run_builds_the_upper_bound_dag(preset, tmp_path):
    out = snakemake("-n", "--directory", str(tmp_path), "--config", f"preset={preset}", "--", "nms_upper_bound")
    counts = job_counts(out.stdout)
    ub = P.load_preset(preset, REPO)["upper_bound"]
    synthetic_sets = [s for s in ub["sets"] if "/" in s]
    assert counts["upper_bound"] == len(ub["sets"]) * len(ub["protocols"])  # every set x protocol
    assert counts["synth_dataset"] == len(synthetic_sets)
    assert f"results/{preset}/upper_bound/crowdpose_val.authors.json" in out.stdout
    assert "--protocol eval" in out.stdout


@pytest.mark.parametrize("preset", ["smoke", "synthetic"])
def test_dry_run_reproduce_tables(preset, tmp_path):
    out = snakemake("-n", "--directory", str(tmp_path), "--config", f"preset={preset}", "--", "reproduce_tables")
    counts = job_counts(out.stdout)
    # 3 backbones on the COCO-like set + baseline/no_refine/box_centroid/no_is/box_no_is on the
    # CrowdPose-like set; Table 5's NMS rows and Table 4's coarse row are predictions, not models
    # (synthetic: baseline and no_refine on every seed, presets' per-variant `seeded:`)
    pre, variants = P.load_preset(preset, REPO), P.load_variants(REPO)
    assert counts["train"] == len(P.trained_models(pre, variants)) == 8 + 2 * (len(P.seeds(pre)) - 1)
    # + the peers' predictions (an experiment's `peers:`, rules/peers.smk; tests/test_peer_train.py)
    n_pred = len(P.experiment_evals(pre, None, variants))
    assert n_pred >= 19 and counts["predict"] == n_pred
    assert counts["evaluate"] == n_pred + counts.get("peer_predict", 0)
    assert counts["report"] == counts["bench_table"] == 1
    text = out.stdout
    res = f"results/{preset}"
    for path in [f"{res}/synth_crowdpose/baseline/seed0/train/final.pt",
                 f"{res}/synth_crowdpose/baseline/seed0/metrics/synth_crowdpose-val.coarse.oks.json",
                 f"{res}/synth_crowdpose/box_no_is/seed0/metrics/synth_crowdpose-val.refined.iou.json",
                 f"{res}/synth_crowdpose/no_refine/seed0/metrics/synth_crowdpose-val.refined.oks.json",
                 f"{res}/synth_coco/hrnet_w48/seed0/metrics/synth_coco-val.tta.oks.json",
                 f"{res}/synth_crowdpose/baseline/seed0/predictions/samples_crowdpose-test.coarse.oks.json",
                 f"{res}/bench/table.json", f"reports/{preset}/index.html", f"reports/{preset}/table5.tex"]:
        assert path in text, path
    predicts = [j for j in jobs(text) if j["rule"] == "predict"]
    assert any("--tta" in j["shell"] for j in predicts) and any("--coarse-only" in j["shell"] for j in predicts)
    assert all("--set infer.nms=" in j["shell"] for j in predicts)
    assert f"report --preset {preset} --results {res} --out reports/{preset}" in text
    mode = "quick" if preset == "smoke" else "full"
    bench = f"bench table --preset-mode {mode} "
    assert bench in text and f"--out {res}/bench/table.json" in text
    # the bench feeds Table 1's trained models (seed 0) to NMS: real candidate counts
    for v in ("dla34", "hrnet_w32", "hrnet_w48"):
        assert f"--checkpoint {v}={res}/synth_coco/{v}/seed0/train/final.pt" in text


def test_dry_run_ablation_with_three_seeds(tmp_path):
    out = snakemake("-n", "--directory", str(tmp_path), "--config", "preset=synthetic", "seeds=3", "--",
                    "ablation_crowdpose")
    counts = job_counts(out.stdout)
    # baseline and no_refine on every seed; box_centroid, no_is, box_no_is on seed 0 (variant `seeded:`)
    assert counts["train"] == 2 * 3 + 3
    assert counts["report_ablation"] == 1 and "report" not in counts
    for k in range(3):
        assert f"--set train.seed={k}" in out.stdout
        assert f"results/synthetic/synth_crowdpose/baseline/seed{k}/metrics/synth_crowdpose-val.refined.iou.json" \
            in out.stdout
    assert "results/synthetic/synth_crowdpose/box_centroid/seed0/metrics/synth_crowdpose-val.refined.iou.json" \
        in out.stdout and "box_centroid/seed1/" not in out.stdout
    assert "synth_coco" not in " ".join(j["shell"] for j in jobs(out.stdout) if j["rule"] == "train")


def test_train_threads_is_a_preset_key(tmp_path):
    target = "results/synthetic/synth_coco/dla34/seed0/train/final.pt"
    for n in (1, 2):
        out = snakemake("-n", "--cores", "2", "--directory", str(tmp_path), "--config", "preset=synthetic",
                        f"train_threads={n}", "--", target)
        block = out.stdout[out.stdout.index("rule train:"):]
        assert re.search(rf"^\s+threads: {n}$", block, re.M) or (n == 1 and "threads:" not in block.split("Shell")[0])


def _fake_root(root: Path, files: list[str], keypoints: int):
    img = {"id": 1, "file_name": "000001.jpg", "width": 64, "height": 48}
    ann = {"id": 1, "image_id": 1, "category_id": 1, "iscrowd": 0, "bbox": [4, 4, 20, 30], "area": 600,
           "num_keypoints": 2, "keypoints": [10, 10, 2, 12, 20, 2] + [0, 0, 0] * (keypoints - 2)}
    doc = {"images": [img, dict(img, id=2, file_name="000002.jpg")], "annotations": [ann],
           "categories": [{"id": 1, "name": "person", "keypoints": [f"k{i}" for i in range(keypoints)],
                           "skeleton": []}]}
    for f in files:
        (root / f).parent.mkdir(parents=True, exist_ok=True)
        (root / f).write_text(json.dumps(doc))


def test_slurm_profile_dry_run_asks_for_gpus_only_in_train_and_predict(tmp_path):
    """`snakemake -n --profile workflow/profiles/slurm --config preset=paper ...` on a fake COCO /
    CrowdPose root: the plugin parses the profile (no cluster needed for a dry run), the paper's
    matrix is built, and only the GPU rules (train, predict, and the bench that times the GPU)
    request GPUs; the report and aggregation rules are localrules."""
    try:
        import snakemake_executor_plugin_slurm  # noqa: F401
    except ImportError:
        pytest.fail("snakemake-executor-plugin-slurm is not installed: run `make install` (the slurm extra)")
    coco, crowd = tmp_path / "coco", tmp_path / "crowdpose"
    _fake_root(coco, ["annotations/person_keypoints_train2017.json", "annotations/person_keypoints_val2017.json"], 17)
    _fake_root(crowd, ["json/crowdpose_trainval.json", "json/crowdpose_test.json"], 14)
    work = tmp_path / "work"
    out = snakemake("-n", "--profile", str(REPO / "workflow" / "profiles" / "slurm"), "--directory", str(work),
                    "--config", "preset=paper", f"coco_root={coco}", f"crowdpose_root={crowd}",
                    "--", "reproduce_tables")
    counts = job_counts(out.stdout)
    assert counts["train"] == 8 and counts["predict"] == counts["evaluate"] == 19
    all_jobs = jobs(out.stdout)
    gpu_rules = {j["rule"] for j in all_jobs if "gpu" in j["resources"] or "gpu" in j["resources"].get("gres", "")}
    assert gpu_rules - {"peer_train", "peer_predict"} == {"train", "predict", "bench_table"}
    for j in all_jobs:
        if j["rule"] in ("train", "predict"):
            r = j["resources"]
            assert int(r["gpu"]) >= 1 and int(r["mem_mb"]) > 0 and int(r["runtime"]) > 0, j
            assert r["slurm_partition"]
    trains = [j for j in all_jobs if j["rule"] == "train"]
    # 8 GPUs per training job: one process each under torchrun (DDP), global batch 48
    assert all("torch.distributed.run --standalone --nproc_per_node 8 -m posedet train" in j["shell"] for j in trains)
    assert all(f"--train-ann {crowd}/json/crowdpose_trainval.json" in j["shell"]
               for j in trains if "/crowdpose/" in j["shell"])
    # Tables 4/5 on CrowdPose test with HRNet-W48; Table 1 on COCO at the paper's input sizes
    assert all("--set model.backbone=hrnet_w48" in j["shell"] for j in trains if "results/paper/crowdpose/" in j["shell"])
    assert any("results/paper/coco/dla34/seed0" in j["shell"] and "infer.short_side=512" in j["shell"] for j in trains)
    assert f"{crowd}/json/crowdpose_test.json" in out.stdout
    # the table/report rules run on the submitting node
    localrules = re.search(r"^localrules:\n((?:\s+\w+,?\n)+)", (REPO / "workflow" / "Snakefile").read_text(), re.M)
    assert localrules, "the Snakefile declares its localrules"
    local = {x.strip(" ,") for x in localrules.group(1).split()}
    assert {"report", "report_ablation", "reproduce_tables", "ablation_crowdpose", "dataset_stats"} <= local
    assert not local & {"train", "predict", "bench_table", "evaluate", "upper_bound"}


@pytest.mark.slow
def test_smoke_chain_runs_end_to_end(tmp_path):
    """The smoke preset's synth -> train -> predict (refined, coarse) -> evaluate chain, on a
    synthetic set and on the real sample images, through Snakemake itself (in a scratch working
    directory), into the results layout of docs/results_layout.md."""
    run = "results/smoke/synth_crowdpose/baseline/seed0"
    targets = [f"{run}/metrics/samples_crowdpose-test.refined.oks.json",
               f"{run}/metrics/synth_crowdpose-val.coarse.oks.json",
               f"{run}/metrics/synth_crowdpose-val.refined.iou.json"]
    snakemake("--cores", "2", "--directory", str(tmp_path), "--config", "preset=smoke", "--", *targets)
    for t in targets:
        m = json.loads((tmp_path / t).read_text())["metrics"]
        assert 0.0 <= m["AP"] <= 1.0
        if "crowdpose" in t:
            assert {"AP_easy", "AP_medium", "AP_hard"} <= set(m)
    train = tmp_path / run / "train"
    assert {"final.pt", "last.pt", "summary.json", "train_log.jsonl"} <= {p.name for p in train.iterdir()}
    assert json.loads((train / "summary.json").read_text())["status"] == "complete"
    # a finished workflow has nothing left to do
    out = snakemake("-n", "--directory", str(tmp_path), "--config", "preset=smoke", "--", *targets)
    assert "Nothing to be done" in out.stdout + out.stderr


@pytest.mark.slow
def test_a_killed_training_job_leaves_nothing_finished_and_resumes(tmp_path):
    """Kill the whole Snakemake process group in the middle of a training job: no final.pt or
    summary.json is left, the dry run still schedules the job, and the rerun resumes from last.pt."""
    import os
    import signal
    import time

    run = tmp_path / "results/smoke/synth_coco/dla34/seed0/train"
    target = "results/smoke/synth_coco/dla34/seed0/train/final.pt"
    proc = subprocess.Popen(SNAKEMAKE + ["--cores", "1", "--directory", str(tmp_path), "--config", "preset=smoke",
                                         "--", target], cwd=REPO, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        while not (run / "last.pt").exists():
            assert proc.poll() is None, "snakemake ended before the first checkpoint"
            assert time.monotonic() < deadline, "no last.pt within 240 s"
            time.sleep(0.2)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    if (run / "final.pt").exists():
        pytest.skip("training finished before the kill (machine too fast for this smoke run)")
    assert not (run / "summary.json").exists()
    snakemake("--unlock", "--directory", str(tmp_path), "--config", "preset=smoke")  # after a SIGKILL
    out = snakemake("-n", "--directory", str(tmp_path), "--config", "preset=smoke", "--", target)
    assert "rule train:" in out.stdout
    snakemake("--cores", "1", "--directory", str(tmp_path), "--config", "preset=smoke", "--", target)
    events = [json.loads(line).get("event") for line in (run / "train_log.jsonl").read_text().splitlines()]
    assert "resume" in events and events[-1] == "done"
    assert json.loads((run / "summary.json").read_text())["status"] == "complete"
