"""Shared fixtures: tiny synthetic data sets (made once per session), tiny training configs and
a helper that runs ``python -m posedet`` in a subprocess with one thread."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
POSE_SOURCE = REPO.parent / "shared" / "data" / "crowdpose" / "crowdpose_val.json"


def make_synth(out: Path, layout: str = "coco", num_images: int = 8, size: int = 128, seed: int = 0,
               density: str = "mixed") -> dict:
    from posedet.cli import main as cli_main

    rc = cli_main(["synth", "--layout", layout, "--num-images", str(num_images), "--size", str(size),
                   "--seed", str(seed), "--density", density, "--pose-source", str(POSE_SOURCE),
                   "--out", str(out), "--no-progress"])
    assert rc == 0, f"posedet synth failed ({rc})"
    return {"ann": str(out / "annotations.json"), "images": str(out / "images"), "dir": out}


@pytest.fixture(scope="session")
def synth_coco(tmp_path_factory) -> dict:
    """8 synthetic 128×128 images, COCO layout (17 keypoints)."""
    return make_synth(tmp_path_factory.mktemp("synth_coco"), "coco", 8, 128, seed=0)


@pytest.fixture(scope="session")
def synth_crowdpose(tmp_path_factory) -> dict:
    """4 synthetic 128×128 images, CrowdPose layout (14 keypoints)."""
    return make_synth(tmp_path_factory.mktemp("synth_crowdpose"), "crowdpose", 4, 128, seed=1)


def small_backbone() -> str:
    """Name of the small test backbone of posedet/model/backbones.py."""
    from posedet.model.backbones import SMALL_BACKBONE

    return SMALL_BACKBONE


def tiny_overrides(**extra) -> list[str]:
    """A seconds-long CPU training config: small backbone, 64-px crops, batch 4 in 2 interleaved
    micro-batches (= what 2 DDP processes of batch 2 compute), 5 steps: 2 of warm-up, an lr
    step after 3."""
    o = {
        "model.backbone": small_backbone(),
        "train.input_size": 64,
        "train.batch_size": 4,
        "train.micro_batches": 2,
        "train.iterations": 5,
        "train.lr": 1e-3,
        "train.lr_steps": "[0.6]",
        "train.warmup_iters": 2,
        "train.log_every": 1,
        "train.ckpt_every": 2,
        "train.seed": 3,
        "infer.short_side": 96,
        "infer.max_size": 128,
        "infer.tta_scales": "[64,128]",
        "infer.topk": 30,
    }
    o.update({k.replace("__", "."): v for k, v in extra.items()})
    return [f"{k}={v}" for k, v in o.items()]


def run_posedet(args: list[str], env: dict | None = None, timeout: float = 300,
                threads: int = 1) -> subprocess.CompletedProcess:
    """``python -m posedet ARGS`` in a fresh process (one intra-op thread unless told)."""
    e = dict(os.environ)
    e.update({"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads),
              "PYTHONPATH": str(REPO) + os.pathsep + e.get("PYTHONPATH", "")})
    e.update(env or {})
    return subprocess.run([sys.executable, "-m", "posedet", *args], cwd=REPO, env=e,
                          capture_output=True, text=True, timeout=timeout)


def train_in_process(args: list[str], threads: int = 1) -> int:
    """``posedet ARGS`` in this process with ``threads`` intra-op threads (as the subprocess
    helper), restoring the thread count and the global determinism flag afterwards."""
    import torch

    from posedet.cli import main

    det, n = torch.are_deterministic_algorithms_enabled(), torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return main(args)
    finally:
        torch.set_num_threads(n)
        torch.use_deterministic_algorithms(det)


def tiny_train_args(synth: dict, out, *extra, **overrides) -> list[str]:
    args = ["train", "--train-ann", synth["ann"], "--train-images", synth["images"],
            "--out", str(out), "--device", "cpu"]
    for o in tiny_overrides(**overrides) + list(extra):
        args += ["--set", o]
    return args


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, synth_coco) -> Path:
    """One finished tiny training run (one thread): RUN_DIR with final.pt, last.pt,
    train_log.jsonl and summary.json. The reference of several tests."""
    out = tmp_path_factory.mktemp("tiny_run") / "run"
    assert train_in_process(tiny_train_args(synth_coco, out)) == 0
    return out


@pytest.fixture
def bench_rows_of(tmp_path):
    """``bench_rows_of(doc)``: the report's ``tables.bench_rows`` over a hand-made
    ``bench/table.json`` holding ``doc`` -> (rows, sweep, manifest)."""
    from posedet.report import tables as T

    class FakeInputs:
        results = tmp_path

        def json(self, p, what):
            return json.loads(Path(p).read_text())

    def read(doc: dict):
        (tmp_path / "bench").mkdir(exist_ok=True)
        (tmp_path / "bench" / "table.json").write_text(json.dumps(doc))
        return T.bench_rows(FakeInputs())

    return read
