"""End to end: the small backbone overfits a handful of synthetic images to AP ≥ 0.9 on those
same images, through `posedet train`, `posedet predict` and the official COCO evaluation.
Exercises assignment (coarse, refine/cls by OKS), the losses, decoding, OKS-NMS and the results
format together: a convention mismatch anywhere (x/y order, stride units, pixel centres, the
test-time rescale) caps the AP far below the bar.

Training uses ``train.crop=full`` (whole images, long side = input size: exactly the views
`predict` sees at short_side = max_size = input size). With the paper's random-person crops a
handful of images gives only a few distinct patches, each with a person at its centre: the model
fits those patches to 0.1 px and still fails on the uncentred full images (AP ≈ 0; see
``FullImageTrainDataset``).

lr 5e-4 (5× the paper's, for a 400-step run): at 1e-3–2e-3 the classification branch of this small
model often dies — every output of its pose embedding turns negative, the ReLU after it passes no
gradient, the scores stay at the prior 0.01 and the AP is 0 although the poses fit to 0.1 px.
At 5e-4, train seeds 0 / 1 / 2 gave AP 1.0 / 0.92 / 1.0."""
from __future__ import annotations

import json
import time

import pytest

from conftest import make_synth, small_backbone, train_in_process

SIZE = 128           # image and input size (px)
NUM_IMAGES = 4       # "mixed" crowding: ~14 persons, several overlapping
STEPS = 400


@pytest.mark.slow
def test_overfit_a_handful_of_synthetic_images(tmp_path):
    from posedet.cli import main
    from posedet.evaluate import evaluate_coco

    data = make_synth(tmp_path / "data", "coco", NUM_IMAGES, SIZE, seed=5, density="mixed")
    run = tmp_path / "run"
    overrides = {
        "model.backbone": small_backbone(),
        "train.input_size": SIZE,
        "train.batch_size": NUM_IMAGES,
        "train.iterations": STEPS,
        "train.crop": "full",
        "train.lr": 5e-4,
        "train.lr_steps": "[0.7, 0.9]",
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
