"""End to end: the small backbone overfits a handful of synthetic images to AP ≥ 0.9 on those
same images. Exercises the crop transform, assignment, losses, decoding, NMS and the official
evaluation together — a convention mismatch anywhere (x/y, stride units, pixel centres, flip)
caps the AP far below the bar."""
from __future__ import annotations

import json
import time

import pytest

from conftest import make_synth, small_backbone, train_in_process

SIZE = 128           # image and crop size (px)
NUM_IMAGES = 4
STEPS = 400


@pytest.mark.slow
def test_overfit_a_handful_of_synthetic_images(tmp_path):
    from posedet.cli import main
    from posedet.evaluate import evaluate_coco

    data = make_synth(tmp_path / "data", "coco", NUM_IMAGES, SIZE, seed=5, density="sparse")
    run = tmp_path / "run"
    overrides = {
        "model.backbone": small_backbone(),
        "train.input_size": SIZE,
        "train.batch_size": NUM_IMAGES,
        "train.iterations": STEPS,
        "train.lr": 2e-3,
        "train.lr_steps": "[0.7, 0.9]",
        "train.scale_range": "[1.0, 1.0]",          # the crops then only translate the image
        "train.flip_prob": 0.0,
        "train.log_every": 50,
        "train.ckpt_every": 100000,
        "train.seed": 0,
    }
    args = ["train", "--train-ann", data["ann"], "--train-images", data["images"], "--out", str(run),
            "--device", "cpu"]
    for k, v in overrides.items():
        args += ["--set", f"{k}={v}"]
    t0 = time.perf_counter()
    assert train_in_process(args, threads=2) == 0
    t_train = time.perf_counter() - t0
    out = tmp_path / "results.json"
    assert main(["predict", "--checkpoint", str(run / "final.pt"), "--ann", data["ann"],
                 "--images", data["images"], "--out", str(out), "--device", "cpu",
                 "--set", f"infer.short_side={SIZE}", "--set", f"infer.max_size={SIZE}"]) == 0
    metrics = evaluate_coco(data["ann"], json.loads(out.read_text()))
    summary = json.loads((run / "summary.json").read_text())
    print(f"overfit: AP {metrics['AP']:.3f} AP50 {metrics['AP50']:.3f} after {STEPS} steps "
          f"({t_train:.0f} s training, {summary['images_per_s']:.1f} images/s)")
    assert metrics["AP"] >= 0.9, metrics
