"""Sanity benchmark of every ablation switch: the overfit recipe of tests/test_overfit.py
(small backbone, a handful of synthetic 128 px images, whole-image training, 400 steps), once
per switch, evaluated on the same images. It shows that each switch trains and predicts end to
end and how it moves a *fitting* score; it says nothing about generalisation.

    python scripts/overfit_ablations.py --pose-source ../shared/data/crowdpose/crowdpose_val.json \
        --out results/ablation_overfit.json [--jobs 2]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

TRAIN_VARIANTS = {
    "baseline": [],
    "no_refine": ["model.refine=false"],
    "box_centroid": ["loss.centroid=box"],
    "no_intermediate_supervision": ["model.intermediate_supervision=false"],
    "heatmap_l2": ["loss.heatmap_loss=l2"],
}
# inference-only switches, applied to the baseline checkpoint
INFER_VARIANTS = {"iou_nms": ["infer.nms=iou"], "coarse_only": ["infer.coarse_only=true"]}
COMMON = ["model.backbone=mobilenetv3_small_050", "train.input_size=128", "train.batch_size=4",
          "train.iterations=400", "train.crop=full", "train.lr=5e-4", "train.lr_steps=[0.7,0.9]",
          "train.flip_prob=0.0", "train.log_every=50", "train.ckpt_every=100000", "train.seed=0"]


def sets(items):
    return [a for o in items for a in ("--set", o)]


def run(cmd, env):
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pose-source", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--work", default=None, help="scratch folder (default: beside --out)")
    ap.add_argument("--jobs", type=int, default=2, help="runs in parallel, one thread each")
    args = ap.parse_args()
    work = Path(args.work or Path(args.out).with_suffix("")).resolve()
    py = [sys.executable, "-m", "posedet"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    data = work / "data"
    if not (data / "annotations.json").exists():
        run(py + ["synth", "--layout", "coco", "--num-images", "4", "--size", "128", "--seed", "5",
                  "--density", "mixed", "--pose-source", args.pose_source, "--out", str(data),
                  "--no-progress"], env)
    ann, images = str(data / "annotations.json"), str(data / "images")

    def train(name):
        out = work / name
        if not (out / "final.pt").exists():
            run(py + ["train", "--train-ann", ann, "--train-images", images, "--out", str(out),
                      "--device", "cpu"] + sets(COMMON + TRAIN_VARIANTS[name]), env)
        return name

    def predict_eval(name, ckpt_name, extra):
        res = work / f"{name}.results.json"
        met = work / f"{name}.metrics.json"
        run(py + ["predict", "--checkpoint", str(work / ckpt_name / "final.pt"), "--ann", ann,
                  "--images", images, "--out", str(res), "--device", "cpu"]
            + sets(["infer.short_side=128", "infer.max_size=128"] + extra), env)
        run(py + ["evaluate", "--gt", ann, "--results", str(res), "--metric", "coco", "--out", str(met)], env)
        m = json.loads(met.read_text())["metrics"]
        s = json.loads((work / ckpt_name / "summary.json").read_text())
        return name, {"AP": m["AP"], "AP50": m["AP50"], "AP75": m["AP75"], "overrides": extra or TRAIN_VARIANTS.get(name, []),
                      "train_images_per_s": s["images_per_s"], "final_loss": s["last_log"]["loss"]}

    with ThreadPoolExecutor(args.jobs) as pool:
        list(pool.map(train, TRAIN_VARIANTS))
        jobs = [(n, n, []) for n in TRAIN_VARIANTS] + [(n, "baseline", o) for n, o in INFER_VARIANTS.items()]
        rows = dict(pool.map(lambda j: predict_eval(*j), jobs))
    table = {"protocol": __doc__.strip().splitlines()[0], "common_overrides": COMMON, "rows": rows}
    Path(args.out).write_text(json.dumps(table, indent=2) + "\n")
    for n, r in rows.items():
        print(f"{n:30s} AP {r['AP']:.3f}  AP50 {r['AP50']:.3f}  AP75 {r['AP75']:.3f}  loss {r['final_loss']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
