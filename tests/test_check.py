"""`posedet check`, the preflight: one clear line per problem, the plan, and a workflow that stops
before any job when the check finds one. Roots are miniature COCO 2017 / CrowdPose releases
built from the real files (posedet.data.miniroots)."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from posedet import check as C

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
OVERRIDES = REPO / "configs" / "overrides" / "paper_cpu.yaml"

pytestmark = pytest.mark.skipif(not (SHARED / "crowdpose" / "crowdpose_val.json").is_file(),
                                reason=f"needs the real CrowdPose val annotations in {SHARED}")


@pytest.fixture(scope="module")
def roots(tmp_path_factory):
    from posedet.data.miniroots import build_mini_roots

    return build_mini_roots(SHARED, tmp_path_factory.mktemp("roots"))


def _config(roots, **extra):
    config = yaml.safe_load(OVERRIDES.read_text())
    config.update(preset="paper", **roots)
    config.update(extra)
    return config


def _copy_roots(roots, tmp_path):
    out = {}
    for key, root in roots.items():
        dst = tmp_path / Path(root).name
        shutil.copytree(root, dst)
        out[key] = str(dst)
    return out


def test_clean_roots_pass_and_the_plan_is_printed(roots, tmp_path):
    rep = C.preflight(_config(roots), REPO, workdir=tmp_path)
    assert rep.problems == [] and rep.notes == []
    text = "\n".join(rep.plan)
    assert "trainings: 8" in text and "predict 19" in text and "4 iterations × 2 = 8 images" in text


def test_cli_exit_status_and_lines(roots, tmp_path):
    args = [sys.executable, "-m", "posedet", "check", "--preset", "paper", "--configfile", str(OVERRIDES),
            "--config", *(f"{k}={v}" for k, v in roots.items())]
    ok = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert ok.stdout.strip().endswith("posedet check: 0 problems, ready to run")
    bad = subprocess.run(args[:-2] + [f"coco_root={tmp_path / 'nowhere'}", f"crowdpose_root={roots['crowdpose_root']}"],
                         cwd=tmp_path, capture_output=True, text=True)
    assert bad.returncode == 1
    lines = [ln for ln in bad.stdout.splitlines() if ln.startswith("problem:")]
    # coco/train and coco/val: each names its missing annotation file, one line each
    assert len(lines) == 2 and all("nowhere/annotations/person_keypoints_" in ln for ln in lines)


def test_a_root_that_is_not_given_is_one_line(roots, tmp_path):
    config = _config(roots)
    del config["crowdpose_root"]
    rep = C.preflight(config, REPO, workdir=tmp_path)
    assert rep.problems == ["data sets crowdpose/train, crowdpose/test need crowdpose_root: "
                            "pass --config crowdpose_root=/path/to/it"]


def test_unusable_annotation_file_names_file_and_place(roots, tmp_path):
    r = _copy_roots(roots, tmp_path)
    ann = Path(r["coco_root"]) / "annotations" / "person_keypoints_val2017.json"
    ann.write_text(ann.read_text()[:3000])                        # truncated, as by a failed copy
    rep = C.preflight(_config(r), REPO, workdir=tmp_path)
    assert len(rep.problems) == 1
    assert f"{ann}: malformed JSON at line" in rep.problems[0] and "coco/val" in rep.problems[0]


def test_wrong_category_is_one_line(roots, tmp_path):
    r = _copy_roots(roots, tmp_path)
    ann = Path(r["crowdpose_root"]) / "json" / "crowdpose_test.json"
    data = json.loads(ann.read_text())
    data["categories"][0]["keypoints"] = ["nose", "tail"]
    ann.write_text(json.dumps(data))
    rep = C.preflight(_config(r), REPO, workdir=tmp_path)
    assert len(rep.problems) == 1 and "match no known skeleton" in rep.problems[0]


def test_missing_images_are_counted_and_the_first_named(roots, tmp_path):
    r = _copy_roots(roots, tmp_path)
    images = Path(r["crowdpose_root"]) / "images"
    gone = sorted(images.glob("1000*.jpg"))
    assert len(gone) > C.SHOW_MISSING
    for f in gone:
        f.unlink()
    rep = C.preflight(_config(r), REPO, workdir=tmp_path)
    assert len(rep.problems) == 1
    line = rep.problems[0]
    assert f"{len(gone)} of 2000 images named in" in line and "crowdpose_trainval.json" in line
    assert "(first: " in line and line.count(".jpg") == C.SHOW_MISSING


def test_a_gpu_run_on_a_machine_without_one_is_one_line(roots, tmp_path, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    rep = C.preflight(_config(roots, device="cuda"), REPO, workdir=tmp_path)
    assert rep.problems == ["device cuda: the run asks for a GPU and this machine has none "
                            "(torch.cuda.is_available() is False); on a CPU machine pass --config device=cpu"]
    rep = C.preflight(_config(roots, device="cuda"), REPO, where="cluster",
                      rules_without_gpu=["bench_table"], workdir=tmp_path)
    assert len(rep.problems) == 1 and "gives no GPU to rule(s) bench_table" in rep.problems[0]


def test_missing_imagenet_weights_offline_is_one_line_per_backbone(roots, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty_hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    config = _config(roots)
    config["recipe_set"] = [o for o in config["recipe_set"] if not o.startswith("model.pretrained")]
    rep = C.preflight(config, REPO, workdir=tmp_path)
    assert len(rep.problems) == 1                                 # one stand-in backbone for all three
    assert rep.problems[0].startswith("backbone mobilenetv3_small_050: ImageNet weights not available offline")
    # staged by hand: a weights file the test writes itself
    import timm
    import torch

    wdir = tmp_path / "weights"
    wdir.mkdir()
    torch.save(timm.create_model("mobilenetv3_small_050", pretrained=False).state_dict(),
               wdir / "mobilenetv3_small_050.pth")
    rep = C.preflight(dict(config, weights_dir=str(wdir)), REPO, workdir=tmp_path)
    assert rep.problems == []


def test_stale_results_folders_are_named(roots, tmp_path):
    (tmp_path / "results" / "paper" / "crowdpose" / "baseline" / "seed2").mkdir(parents=True)
    rep = C.preflight(_config(roots), REPO, workdir=tmp_path)
    assert rep.problems == []
    assert rep.notes == [f"{tmp_path}/results/paper/crowdpose/baseline/seed2 is not part of this run's plan: "
                         "the report ignores it"]


def test_the_workflow_stops_before_any_job(roots, tmp_path):
    r = _copy_roots(roots, tmp_path)
    shutil.rmtree(Path(r["crowdpose_root"]) / "images")
    work = tmp_path / "work"
    out = subprocess.run([sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "workflow" / "Snakefile"),
                          "--cores", "1", "--directory", str(work), "--configfile", str(OVERRIDES),
                          "--config", "preset=paper", *(f"{k}={v}" for k, v in r.items()), "--", "reproduce_tables"],
                         cwd=REPO, capture_output=True, text=True)
    log = out.stdout + out.stderr
    assert out.returncode != 0
    assert "posedet check: problem: data set crowdpose/train (training): image folder" in log
    assert "nothing was run" in log
    assert not (work / "results").exists() or not list((work / "results").rglob("*.json"))
