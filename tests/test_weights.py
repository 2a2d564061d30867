"""ImageNet weights for offline compute nodes: a staged `<backbone>.pth` loads with no network, the
offline check finds (or misses) weights without downloading, `posedet train` with
`model.pretrained: true` and no weights fails in seconds before it reads any data, and the paper
preset's dry run stages the weights on the submitting node and hands each training its file.
Every weights file here is one the test writes itself (nothing is downloaded)."""
import json
from pathlib import Path

import pytest
import torch

from posedet import cli
from posedet.model import weights as W
from posedet.model.backbones import SMALL_BACKBONE, PretrainedWeightsError, build_backbone
from test_workflow import job_counts, jobs, snakemake

REPO = Path(__file__).resolve().parents[1]
PAPER_BACKBONES = ("dla34", "hrnet_w32", "hrnet_w48")


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """No network, an empty Hugging Face cache (huggingface_hub reads the environment when it is
    imported, so its constants are set too)."""
    from huggingface_hub import constants

    home = tmp_path / "hf_home"
    (home / "hub").mkdir(parents=True)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(home / "hub"))
    return home


def _classifier(seed=0):
    import timm

    torch.manual_seed(seed)
    return timm.create_model(SMALL_BACKBONE, pretrained=False)


def test_staged_file_loads_offline_into_the_backbone(tmp_path, offline):
    reference = _classifier(seed=3)
    path = tmp_path / f"{SMALL_BACKBONE}.pth"
    torch.save(reference.state_dict(), path)
    assert W.weights_available(SMALL_BACKBONE, pretrained_file=path) == (True, str(path))
    bb = build_backbone(SMALL_BACKBONE, pretrained=True, pretrained_file=path)
    ref = reference.state_dict()
    got = {k.replace("_", "."): v for k, v in bb.body.state_dict().items()}
    norm = {k.replace("_", "."): v for k, v in ref.items()}
    assert len(got) > 10
    for k, v in got.items():
        if not k.endswith("num.batches.tracked"):
            assert torch.equal(v, norm[k]), k


def test_weights_available_offline_with_an_empty_cache(tmp_path, offline):
    ok, why = W.weights_available(SMALL_BACKBONE)
    assert not ok and str(offline) in why and "not cached" in why
    ok, why = W.weights_available("hrnet_w48", pretrained_file=tmp_path / "missing.pth")
    assert not ok and "no such file" in why


def test_weights_available_finds_a_hub_cache_entry(tmp_path, offline):
    """The Hugging Face cache layout timm downloads into (models--<org>--<repo>/snapshots/<rev>/)."""
    from timm.models import get_pretrained_cfg

    repo = get_pretrained_cfg(SMALL_BACKBONE).hf_hub_id
    cache = tmp_path / "hub"
    snap = cache / f"models--{repo.replace('/', '--')}" / "snapshots" / "abc123"
    snap.mkdir(parents=True)
    (snap.parent.parent / "refs").mkdir()
    (snap.parent.parent / "refs" / "main").write_text("abc123")
    torch.save(_classifier().state_dict(), snap / "pytorch_model.bin")
    ok, where = W.weights_available(SMALL_BACKBONE, cache_dir=cache)
    assert ok and where.endswith("pytorch_model.bin")
    assert not W.weights_available(SMALL_BACKBONE)[0]          # the environment's (empty) cache


def test_stage_weights_writes_files_and_manifest_then_check(tmp_path, monkeypatch, capsys, offline):
    monkeypatch.setattr(W, "_create_pretrained", lambda name, cache_dir=None: _classifier(seed=1))
    dest = tmp_path / "weights"
    man = W.stage_weights([SMALL_BACKBONE], dest)
    entry = man["backbones"][SMALL_BACKBONE]
    assert entry["file"] == f"{SMALL_BACKBONE}.pth" and len(entry["sha256"]) == 64 and entry["timm"]
    assert json.loads((dest / "weights.json").read_text()) == man
    assert not list(dest.glob(".*.tmp"))                       # atomic: no temporary left behind
    build_backbone(SMALL_BACKBONE, pretrained_file=dest / f"{SMALL_BACKBONE}.pth")   # loads, covers
    # --check --dir: present; a backbone with no file is one line and exit 1
    assert cli.main(["weights", "--check", "--backbones", SMALL_BACKBONE, "--dir", str(dest)]) == 0
    capsys.readouterr()
    assert cli.main(["weights", "--check", "--backbones", SMALL_BACKBONE, "dla34", "--dir", str(dest)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1 and out[0].startswith("missing dla34:")
    # a file that differs from the manifest is caught
    torch.save(_classifier(seed=2).state_dict(), dest / f"{SMALL_BACKBONE}.pth")
    assert cli.main(["weights", "--check", "--backbones", SMALL_BACKBONE, "--dir", str(dest)]) == 1
    assert "does not match" in capsys.readouterr().out
    # --check against the (empty) cache: one line per backbone
    assert cli.main(["weights", "--check", "--backbones", *PAPER_BACKBONES]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert [ln.split(":")[0] for ln in lines] == [f"missing {b}" for b in PAPER_BACKBONES]


def test_stage_weights_offline_is_a_clear_error(tmp_path, capsys, offline):
    assert cli.main(["weights", "--backbones", SMALL_BACKBONE, "--out", str(tmp_path / "w"),
                     "--cache-dir", str(offline / "hub")]) == 2
    err = capsys.readouterr().err
    assert "could not get its ImageNet weights" in err
    assert not (tmp_path / "w" / f"{SMALL_BACKBONE}.pth").exists()


def _train(tmp_path, *sets):
    args = ["train", "--config", str(REPO / "configs/recipes/paper.yaml"), "--set", f"model.backbone={SMALL_BACKBONE}",
            "--train-ann", str(tmp_path / "no_such_annotations.json"), "--out", str(tmp_path / "run"),
            "--device", "cpu"]
    for s in sets:
        args += ["--set", s]
    return cli.main(args)


def test_train_without_weights_fails_fast_before_reading_data(tmp_path, capsys, offline):
    """The annotation file does not exist: an exit 2 naming the weights proves they were checked first."""
    assert _train(tmp_path) == 2
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"posedet train: backbone '{SMALL_BACKBONE}'")
    assert "posedet weights" in lines[0] and "model.pretrained_file" in lines[0]
    assert not (tmp_path / "run").exists()
    assert _train(tmp_path, f"model.pretrained_file={tmp_path / 'gone.pth'}") == 2
    assert "no such file" in capsys.readouterr().err


def test_ensure_pretrained_is_a_no_op_from_scratch(offline):
    from posedet.config import load_config

    W.ensure_pretrained(load_config(str(REPO / "configs/recipes/smoke.yaml")).model)
    with pytest.raises(PretrainedWeightsError):
        W.ensure_pretrained(load_config(str(REPO / "configs/recipes/paper.yaml")).model)


def _fake_root(root: Path, files, keypoints: int):
    img = {"id": 1, "file_name": "000001.jpg", "width": 64, "height": 48}
    ann = {"id": 1, "image_id": 1, "category_id": 1, "iscrowd": 0, "bbox": [4, 4, 20, 30], "area": 600,
           "num_keypoints": 2, "keypoints": [10, 10, 2, 12, 20, 2] + [0, 0, 0] * (keypoints - 2)}
    doc = {"images": [img], "annotations": [ann],
           "categories": [{"id": 1, "name": "person", "keypoints": [f"k{i}" for i in range(keypoints)],
                           "skeleton": []}]}
    for f in files:
        (root / f).parent.mkdir(parents=True, exist_ok=True)
        (root / f).write_text(json.dumps(doc))


@pytest.fixture
def paper_roots(tmp_path):
    coco, crowd = tmp_path / "coco", tmp_path / "crowdpose"
    _fake_root(coco, ["annotations/person_keypoints_train2017.json", "annotations/person_keypoints_val2017.json"], 17)
    _fake_root(crowd, ["json/crowdpose_trainval.json", "json/crowdpose_test.json"], 14)
    return [f"coco_root={coco}", f"crowdpose_root={crowd}"]


def _backbone_of(shell: str) -> str:
    return shell.split("--set model.backbone=")[1].split()[0]


def test_paper_dry_run_stages_weights_and_trains_from_them(tmp_path, paper_roots):
    out = snakemake("-n", "--directory", str(tmp_path / "work"), "--config", "preset=paper", *paper_roots,
                    "--", "reproduce_tables")
    text = out.stdout
    assert job_counts(text)["stage_weights"] == 1
    (stage,) = [j["shell"] for j in jobs(text) if j["rule"] == "stage_weights"]
    assert f"posedet weights --backbones {' '.join(PAPER_BACKBONES)} --out results/paper/weights" in stage
    trains = [j["shell"] for j in jobs(text) if j["rule"] == "train"]
    assert len(trains) == 8
    for s in trains:
        assert s.startswith("Shell command: HF_HUB_OFFLINE=1 "), s
        assert f"--set model.pretrained_file=results/paper/weights/{_backbone_of(s)}.pth" in s
        assert "--device cuda " in s
    (bench,) = [j["shell"] for j in jobs(text) if j["rule"] == "bench_table"]
    assert "--device cuda --device cpu " in bench                 # the GPU, and the CPU column beside it


def test_paper_dry_run_with_weights_staged_by_hand(tmp_path, paper_roots):
    wdir = tmp_path / "staged"
    wdir.mkdir()
    for b in PAPER_BACKBONES:
        (wdir / f"{b}.pth").write_bytes(b"x")
    out = snakemake("-n", "--directory", str(tmp_path / "work"), "--config", "preset=paper", *paper_roots,
                    f"weights_dir={wdir}", "device=cpu", "--", "reproduce_tables")
    (stage,) = [j["shell"] for j in jobs(out.stdout) if j["rule"] == "stage_weights"]
    assert f"weights --check --backbones {' '.join(PAPER_BACKBONES)} --dir {wdir}" in stage
    trains = [j["shell"] for j in jobs(out.stdout) if j["rule"] == "train"]
    assert trains and all(f"model.pretrained_file={wdir}/{_backbone_of(s)}.pth" in s and "--device cpu " in s
                          for s in trains)
    # a hand-staged file that is missing stops the run at planning, naming the file
    (wdir / "hrnet_w32.pth").unlink()
    out = snakemake("-n", "--directory", str(tmp_path / "work"), "--config", "preset=paper", *paper_roots,
                    f"weights_dir={wdir}", "--", "reproduce_tables", check=False)
    assert out.returncode != 0 and f"{wdir}/hrnet_w32.pth" in out.stdout + out.stderr


def test_from_scratch_presets_stage_nothing(tmp_path):
    out = snakemake("-n", "--cores", "2", "--directory", str(tmp_path), "--config", "preset=smoke",
                    "--", "reproduce_tables")
    assert "stage_weights" not in job_counts(out.stdout)
    trains = [j["shell"] for j in jobs(out.stdout) if j["rule"] == "train"]
    assert trains and not any("pretrained_file" in s or "HF_HUB_OFFLINE" in s for s in trains)
