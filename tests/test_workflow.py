"""The workflow's wiring: presets resolve, the Snakefile lints clean, the smoke DAG builds."""
import subprocess
import sys
from pathlib import Path

import pytest

from posedet import presets as P

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "workflow" / "Snakefile")]


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
    out = subprocess.run(SNAKEMAKE + ["--lint"], cwd=REPO, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "Lints for" not in out.stdout + out.stderr


@pytest.mark.parametrize("preset", ["smoke", "synthetic"])
def test_dry_run_builds_the_upper_bound_dag(preset, tmp_path):
    out = subprocess.run(SNAKEMAKE + ["-n", "--directory", str(tmp_path), "--config", f"preset={preset}",
                                      "--", "nms_upper_bound"], cwd=REPO, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "upper_bound" in out.stdout and "synth_dataset" in out.stdout


@pytest.mark.slow
def test_smoke_train_eval_runs_end_to_end(tmp_path):
    """The smoke preset's train → predict (refined, coarse) → evaluate chain, on synthetic sets
    and on the real sample images, through Snakemake itself (in a scratch working directory)."""
    out = subprocess.run(SNAKEMAKE + ["--cores", "2", "--directory", str(tmp_path), "--config", "preset=smoke",
                                      "--", "train_eval"], cwd=REPO, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    import json
    metrics = sorted((tmp_path / "results" / "smoke" / "metrics").rglob("*.json"))
    names = {f"{p.parent.name}/{p.name}" for p in metrics}
    assert "smoke_crowdpose/samples_crowdpose-test.refined.json" in names
    assert "smoke_coco/samples_coco-test.coarse.json" in names
    assert len(names) == 8
    for p in metrics:
        m = json.loads(p.read_text())["metrics"]
        assert 0.0 <= m["AP"] <= 1.0
        if "crowdpose" in p.name:
            assert {"AP_easy", "AP_medium", "AP_hard"} <= set(m)
