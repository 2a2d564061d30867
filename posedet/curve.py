"""`posedet curve`: the learning curve of one training run.

    posedet curve --run-dir RUN/train --ann VAL.json [--images DIR] --out curve.json [--set infer.…]
                  [--figure curve.png] [--evaluator official|faster-coco-eval] [--device cpu|auto|cuda]

Every snapshot ``RUN/train/snapshots/stepNNNNNN.pt`` (written by ``posedet train`` with
``train.snapshot_every``) is run on the val set (single scale, refined poses, the run's infer
settings and ``--set`` overrides) and scored with the official metric of that set (auto: xtcocotools
``keypoints_crowd`` when the images carry a crowd index, else pycocotools). The output JSON:

.. code-block:: json

    {"set": "VAL.json", "metric": "crowdpose", "run_dir": "...", "device": "cpu", ...,
     "points": [{"step": 100, "images_seen": 1600, "minutes": 2.51, "AP": 0.12, "AP50": ...}, ...]}

``minutes`` is the training wall time behind the snapshot (across ``--resume``), from the snapshot
itself; ``images_seen`` = step × global batch. Points already in an existing ``--out`` file (same
step and same snapshot bytes size) are reused, so a re-run after new snapshots evaluates only the new
ones. ``device`` is the one the snapshots ran on (``--device``: ``cpu`` by default; ``auto``
resolves to CUDA when there is one, ``posedet.devices.resolve_device``). The figure plots AP /
AP50 / AP75 against minutes, with images seen on a second axis.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from posedet import checkpoint as ckpt_io
from posedet.atomic import write_json_atomic

__all__ = ["snapshot_paths", "evaluate_snapshot", "learning_curve", "plot_curve", "add_arguments", "main"]


def snapshot_paths(run_dir: str | Path) -> list[Path]:
    """The run's snapshots, in step order."""
    return sorted((Path(run_dir) / "snapshots").glob("step*.pt"))


def evaluate_snapshot(path: Path, ann: str, images: str | None, overrides=(), evaluator: str = "official",
                      device: str = "cpu") -> dict:
    """One learning-curve point: predict ``ann``'s images with the snapshot and score them."""
    from posedet.data.reader import load_coco_keypoints
    from posedet.evaluate import evaluate
    from posedet.predict import model_from_checkpoint, predict_index, resolve_config

    ckpt = ckpt_io.load_checkpoint(path, map_location="cpu")
    cfg = resolve_config(ckpt, str(path), None, list(overrides))
    index = load_coco_keypoints(ann, images)
    model, skeleton = model_from_checkpoint(ckpt, str(path), cfg, index.skeleton, ann)
    model = model.to(device).eval()
    results, _ = predict_index(model, index, cfg.infer, skeleton, torch.device(device),
                               use_refine=cfg.model.refine and not cfg.infer.coarse_only, progress=False)
    scored = evaluate(ann, results, metric="auto", evaluator=evaluator)
    meta = ckpt.get("meta") or {}
    point = {"step": int(ckpt["step"]), "images_seen": meta.get("images_seen"),
             "minutes": None if meta.get("train_s") is None else round(float(meta["train_s"]) / 60.0, 3),
             "snapshot": path.name, "snapshot_bytes": path.stat().st_size, "num_poses": len(results)}
    point.update(scored["metrics"])
    return point, scored


def learning_curve(run_dir: str | Path, ann: str, images: str | None, out: str | Path,
                   overrides=(), evaluator: str = "official", device: str = "cpu") -> dict:
    from posedet.devices import resolve_device

    device = str(resolve_device(device))      # auto -> cuda | cpu; DeviceError (ValueError) if absent
    paths = snapshot_paths(run_dir)
    if not paths:
        raise ValueError(f"{run_dir}: no snapshots/step*.pt (train with train.snapshot_every=N)")
    done = {}
    out = Path(out)
    if out.exists():
        try:
            for p in json.loads(out.read_text()).get("points", []):
                done[(p.get("snapshot"), p.get("snapshot_bytes"))] = p
        except (json.JSONDecodeError, AttributeError):
            done = {}
    points, metric, package = [], None, None
    for i, path in enumerate(paths):
        key = (path.name, path.stat().st_size)
        if key in done:
            points.append(done[key])
            print(f"posedet curve: [{i + 1}/{len(paths)}] {path.name} (kept)", file=sys.stderr)
            continue
        point, scored = evaluate_snapshot(path, ann, images, overrides, evaluator, device)
        metric, package = scored["provenance"]["metric"], scored["provenance"]["evaluator"]
        points.append(point)
        print(f"posedet curve: [{i + 1}/{len(paths)}] {path.name}: step {point['step']}, "
              f"{point['minutes']} min, AP {point.get('AP')}", file=sys.stderr, flush=True)
        # each point lands on disk at once: an interrupted curve keeps what it evaluated
        write_json_atomic(out, _curve_doc(run_dir, ann, points, metric, package, overrides, complete=False,
                                          device=device))
    doc = _curve_doc(run_dir, ann, points, metric, package, overrides, complete=True, device=device)
    write_json_atomic(out, doc)
    return doc


def _curve_doc(run_dir, ann, points, metric, package, overrides, complete: bool, device: str | None = None) -> dict:
    return {"set": str(ann), "run_dir": str(run_dir), "metric": metric, "evaluator": package,
            "overrides": list(overrides), "complete": complete, "device": device,
            "points": sorted(points, key=lambda p: p["step"])}


def plot_curve(doc: dict, path: str | Path, title: str | None = None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pts = [p for p in doc["points"] if p.get("minutes") is not None]
    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    for key, style in (("AP", "o-"), ("AP50", "s--"), ("AP75", "^:")):
        ax.plot([p["minutes"] for p in pts], [p.get(key) or 0.0 for p in pts], style, label=key)
    ax.set_xlabel("training wall time (minutes)")
    ax.set_ylabel("val metric")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    if pts and pts[-1].get("images_seen") and pts[-1]["minutes"]:
        rate = pts[-1]["images_seen"] / pts[-1]["minutes"]
        sec = ax.secondary_xaxis("top", functions=(lambda m: m * rate / 1000.0, lambda k: k * 1000.0 / rate))
        sec.set_xlabel("training images seen (thousands)")
    ax.set_title(title or f"learning curve: {Path(doc['set']).parent.name}")
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--run-dir", required=True, help="a training run folder with snapshots/")
    p.add_argument("--ann", required=True, help="val annotations (COCO format)")
    p.add_argument("--images", default=None, help="val image folder (default: images/ beside --ann "
                   "if it exists, else --ann's folder)")
    p.add_argument("--out", required=True, help="curve JSON")
    p.add_argument("--figure", default=None, help="also draw the curve to this PNG")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="inference overrides, e.g. --set infer.nms=iou")
    p.add_argument("--evaluator", default="official", choices=["official", "faster-coco-eval"])
    p.add_argument("--device", default="cpu", help="cpu (default) | auto | cuda | cuda:N")


def main(args) -> int:
    try:
        doc = learning_curve(args.run_dir, args.ann, args.images, args.out, args.overrides,
                             args.evaluator, args.device)
    except ValueError as e:
        print(f"posedet curve: {e}", file=sys.stderr)
        return 2
    if args.figure:
        plot_curve(doc, args.figure)
    return 0
