"""The paper preset's own workflow, end to end, on miniature COCO 2017 and CrowdPose roots laid out
as the releases are and built from real files: the real CrowdPose val annotations as released
(every quirk of the file) with plain images at their sizes, the real COCO and CrowdPose sample
images with their annotation files. Only what a CPU forces is swapped, through
configs/overrides/paper_cpu.yaml (small backbone, a few steps, small inputs, device cpu, quick
bench). Every rule of the DAG runs with the same readers as on a cluster, then the report.
About 4 minutes on 2 cores."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from posedet import presets as P
from test_workflow import job_counts

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
OVERRIDES = REPO / "configs" / "overrides" / "paper_cpu.yaml"
SNAKEMAKE = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "workflow" / "Snakefile")]

pytestmark = pytest.mark.skipif(not (SHARED / "crowdpose" / "crowdpose_val.json").is_file(),
                                reason=f"needs the real CrowdPose val annotations in {SHARED}")


@pytest.fixture(scope="module")
def paper_run(tmp_path_factory):
    from posedet.data.miniroots import build_mini_roots

    base = tmp_path_factory.mktemp("paper_run")
    roots = build_mini_roots(SHARED, base / "roots")
    work = base / "work"
    args = ["--cores", "2", "--directory", str(work), "--configfile", str(OVERRIDES),
            "--config", "preset=paper", f"coco_root={roots['coco_root']}",
            f"crowdpose_root={roots['crowdpose_root']}", "--", "reproduce_tables"]
    dry = subprocess.run(SNAKEMAKE + ["-n"] + args, cwd=REPO, capture_output=True, text=True)
    assert dry.returncode == 0, dry.stdout[-3000:] + dry.stderr[-3000:]
    run = subprocess.run(SNAKEMAKE + args, cwd=REPO, capture_output=True, text=True)
    log = run.stdout + run.stderr
    assert run.returncode == 0, log[-6000:]
    return {"roots": roots, "work": work, "res": work / "results" / "paper",
            "rep": work / "reports" / "paper", "planned": job_counts(dry.stdout), "log": log}


def test_every_planned_job_ran(paper_run):
    planned = paper_run["planned"]
    total = planned.pop("total")
    assert f"{total} of {total} steps (100%) done" in paper_run["log"]
    pre = P.load_preset("paper", REPO, overrides={"coco_root": "x", "crowdpose_root": "y"})
    variants = P.load_variants(REPO)
    assert planned["train"] == len(P.trained_models(pre, variants)) == 8
    assert planned["predict"] == planned["evaluate"] == len(P.experiment_evals(pre, None, variants))
    assert planned["upper_bound"] == 6 and planned["bench_table"] == 1 and planned["report"] == 1
    plan = json.loads((paper_run["res"] / "plan.json").read_text())
    assert len(plan["models"]) == planned["train"] and len(plan["evals"]) == planned["evaluate"]


def test_preflight_ran_first_and_found_nothing(paper_run):
    log = paper_run["log"]
    assert "posedet check: 0 problems, ready to run" in log
    assert "posedet check: problem" not in log
    assert "posedet check: plan:" in log
    assert log.index("posedet check: 0 problems") < log.index("jobid: ")


def test_the_bench_ran_alone(paper_run):
    """No other job of the workflow started or finished while bench_table ran (--cores 2)."""
    import re

    log = paper_run["log"]
    start = log.index("localrule bench_table:") if "localrule bench_table:" in log else log.index("rule bench_table:")
    end = re.search(r"Finished jobid: \d+ \(Rule: bench_table\)", log).start()
    between = log[start + len("rule bench_table:"):end]
    assert not re.search(r"^(local)?rule \w+:$", between, re.M)
    assert "Finished jobid" not in between
    # and every job but the report and the targets finished before it started
    before = log[:start]
    assert before.count("(Rule: train)") == paper_run["planned"]["train"]
    assert before.count("(Rule: evaluate)") == paper_run["planned"]["evaluate"]


def test_crowdpose_models_trained_on_the_real_release_file(paper_run):
    from posedet.data.reader import filter_for_training, load_coco_keypoints

    ann = Path(paper_run["roots"]["crowdpose_root"]) / "json" / "crowdpose_trainval.json"
    assert ann.read_bytes() == (SHARED / "crowdpose" / "crowdpose_val.json").read_bytes()
    trainable = len(filter_for_training(load_coco_keypoints(ann)))
    assert 1500 < trainable <= 2000
    for variant in ("baseline", "no_refine", "box_centroid", "no_is", "box_no_is"):
        s = json.loads((paper_run["res"] / "crowdpose" / variant / "seed0" / "train" / "summary.json").read_text())
        assert s["status"] == "complete" and s["device"] == "cpu"
        assert s["steps_per_epoch"] == trainable // 2          # batch 2: every trainable image read
        assert s["config"]["model"]["backbone"] == "mobilenetv3_small_050"


def test_every_prediction_is_scored_by_the_official_tool(paper_run):
    metrics = sorted(paper_run["res"].glob("*/*/seed0/metrics/*.json"))
    assert len(metrics) == paper_run["planned"]["evaluate"]
    for m in metrics:
        d = json.loads(m.read_text())
        assert "AP" in d["metrics"], m
    crowd = json.loads((paper_run["res"] / "crowdpose/baseline/seed0/metrics/crowdpose-test.refined.oks.json").read_text())
    assert {"AP_easy", "AP_medium", "AP_hard"} <= set(crowd["metrics"]) or "AP(E)" in json.dumps(crowd)


def test_statistics_count_the_real_files_quirks(paper_run):
    st = json.loads((paper_run["res"] / "stats" / "crowdpose_val.json").read_text())
    q = st["quirks"]
    assert q["iscrowd"] == 106 and q["num_keypoints_zero"] == 1453 and q["num_keypoints_mismatch"] == 7543
    assert q["labelled_kp_negative"] == 8 and q["labelled_kp_outside_image"] == 1


def test_the_report_is_written(paper_run):
    rep = paper_run["rep"]
    for i in range(1, 6):
        assert (rep / f"table{i}.md").stat().st_size > 0
    html = (rep / "index.html").read_text()
    assert "Table 4" in html and "Table 5" in html
    bench = json.loads((paper_run["res"] / "bench" / "table.json").read_text())
    assert bench["manifest"]["device"] == "cpu"
