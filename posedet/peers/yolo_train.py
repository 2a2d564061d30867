"""YOLO11n-pose trained here, beside PoseDet, on the same data and budget (``posedet peer-train``,
``posedet peer-predict``).

    posedet peer-train --train-ann A.json [--images DIR] --val-ann V.json [--val-images DIR] \\
        --out RUN (--images-budget N | --time-budget S | --epochs E) --imgsz 128 --batch 16 \\
        --seed 0 --threads 1
    posedet peer-predict --checkpoint RUN/weights/last.pt --ann V.json [--images DIR] --out R.json

``peer-train``
  1. converts both COCO-format keypoint splits (CrowdPose's 14 keypoints or COCO's 17) into
     Ultralytics' pose format under ``RUN/data/``: ``images/<split>/`` (symlinks to the real
     images), ``labels/<split>/<stem>.txt`` (one line per person: ``0 cx cy w h`` then ``x y v``
     per keypoint, all normalised by the image size; a keypoint without a label is ``0 0 0``) and
     ``data.yaml`` (``kpt_shape: [K, 3]``, the layout's ``flip_idx`` from ``posedet.skeletons``);
     persons kept: those PoseDet trains on (not crowd, >= 1 labelled keypoint, a box inside the
     image); images without one stay as background images (Ultralytics' convention);
  2. trains YOLO11n-pose built from its YAML (random init: nothing is downloaded) with
     Ultralytics' own trainer and its default hyper-parameters, except: ``workers=0``, the seed,
     ``deterministic``, ``plots=False``, ``val=False`` (one validation at the end only), ``amp=False``
     (its AMP check downloads yolo11n.pt), the epoch count from the budget and ``close_mosaic`` =
     10 % of the epochs (the default schedule's shape: 10 of 100 epochs without mosaic; the
     default 10 would switch mosaic off for a whole run of <= 10 epochs);
  3. writes ``RUN/weights/{last,best}.pt`` (Ultralytics) and, last and atomically,
     ``RUN/summary.json`` (wall seconds, images seen, epochs, threads, input size, versions, load
     average before and after, Ultralytics' own final validation).

  Budget: ``--images-budget N`` trains ``round(N / train images)`` epochs (>= 1), so the images
  seen are ~N (the workflow passes the PoseDet baseline's iterations x batch size);
  ``--time-budget S`` uses Ultralytics' ``time=`` (hours; it re-plans the epochs after the first).

``peer-predict`` writes COCO keypoint results (``image_id``, ``category_id``, ``keypoints`` as
x, y, score for each of the K keypoints, ``score``: the box confidence) that ``posedet evaluate``
scores: confidence threshold 0.001, box-IoU NMS 0.7, at most 100 poses per image (the keypoint
AP protocol keeps the best 20), at the training input size unless ``--imgsz`` says otherwise.

Ultralytics is kept offline: ``YOLO_OFFLINE=1``, ``YOLO_AUTOINSTALL=false``, its settings file in
``RUN/ultralytics_settings/`` (``YOLO_CONFIG_DIR``) with ``sync`` and every logger integration
off, and its font check (which would download Arial.ttf) skipped.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import time
from pathlib import Path

from posedet.atomic import atomic_write_bytes, write_json_atomic

__all__ = ["PeerError", "DEFAULT_MODEL", "default_images", "label_lines", "convert_split", "write_dataset",
           "epochs_for_budget", "train", "predict", "add_arguments", "main",
           "predict_add_arguments", "predict_main"]

DEFAULT_MODEL = "yolo11n-pose.yaml"
#: Ultralytics' settings that would reach the network or a logging service.
_OFFLINE_SETTINGS = {"sync": False, "hub": False, "clearml": False, "comet": False, "dvc": False,
                     "mlflow": False, "neptune": False, "raytune": False, "tensorboard": False,
                     "wandb": False, "vscode_msg": False, "openvino_msg": False}


class PeerError(ValueError):
    """Bad input to peer-train / peer-predict (the message says what and where)."""


# ------------------------------------------------------------------------------ data conversion


def default_images(ann: str | os.PathLike, images: str | os.PathLike | None) -> str:
    """The image folder: ``images`` if given, else ``images/`` beside the annotation file when it
    exists (what ``posedet synth`` writes), else the annotation file's folder."""
    if images is not None:
        return os.fspath(images)
    here = Path(ann).resolve().parent
    return str(here / "images") if (here / "images").is_dir() else str(here)


def label_lines(ann, width: int, height: int, min_keypoints: int = 1) -> list[str]:
    """Ultralytics pose label lines of one image's annotations (``ImageAnnotations``).

    ``0 cx cy w h`` (the box clipped to the image) then ``x y v`` per keypoint, normalised to
    [0, 1]; a keypoint without a label (v = 0) or outside the image (by more than a pixel) is
    ``0 0 0``. Crowd regions, persons with fewer than ``min_keypoints`` labelled keypoints and
    boxes with no area inside the image are left out.
    """
    import numpy as np

    lines = []
    for kp, box, crowd, nk in zip(ann.keypoints, ann.boxes, ann.iscrowd, ann.num_keypoints):
        if crowd or nk < min_keypoints:
            continue
        x, y, w, h = (float(v) for v in box)
        x0, y0 = max(0.0, x), max(0.0, y)
        x1, y1 = min(float(width), x + w), min(float(height), y + h)
        if x1 - x0 < 1e-3 or y1 - y0 < 1e-3:
            continue
        fields = ["0", f"{(x0 + x1) / 2 / width:.6f}", f"{(y0 + y1) / 2 / height:.6f}",
                  f"{(x1 - x0) / width:.6f}", f"{(y1 - y0) / height:.6f}"]
        kp = np.asarray(kp, dtype=np.float64)
        for kx, ky, v in kp:
            inside = -1.0 <= kx <= width + 1.0 and -1.0 <= ky <= height + 1.0
            if v > 0 and inside:
                fields += [f"{min(max(kx, 0.0), width) / width:.6f}", f"{min(max(ky, 0.0), height) / height:.6f}",
                           str(int(v))]
            else:
                fields += ["0", "0", "0"]
        lines.append(" ".join(fields))
    return lines


def _load(ann: str, images: str | None):
    from posedet.data.reader import load_coco_keypoints

    if not os.path.isfile(ann):
        raise PeerError(f"{ann}: annotation file not found")
    return load_coco_keypoints(ann, default_images(ann, images))


def _check_images(index, what: str) -> None:
    """Every image of the file exists and has the size the file says (the labels are normalised
    by it)."""
    from PIL import Image

    missing = [rec.path for rec in index.images if not os.path.isfile(rec.path)]
    if missing:
        raise PeerError(f"{index.ann_file}: {len(missing)} of {len(index.images)} {what} images missing under "
                        f"{index.image_root} (first: {missing[0]}); pass --images DIR")
    for rec in index.images:
        try:
            with Image.open(rec.path) as im:
                size = im.size
        except OSError as e:
            raise PeerError(f"{rec.path}: unreadable image ({e})") from None
        if size != (rec.width, rec.height):
            raise PeerError(f"{rec.path}: the image is {size[0]}x{size[1]}, the annotation file "
                            f"{index.ann_file} says {rec.width}x{rec.height}")


def convert_split(index, root: Path, split: str, min_keypoints: int = 1) -> dict:
    """Write ``root/images/<split>/`` (symlinks) and ``root/labels/<split>/*.txt`` of one split;
    returns counts. Replaces what an earlier run left there."""
    img_dir, lbl_dir = root / "images" / split, root / "labels" / split
    for d in (img_dir, lbl_dir):
        if d.exists() or d.is_symlink():
            shutil.rmtree(d)
    (root / "labels" / f"{split}.cache").unlink(missing_ok=True)
    persons = 0
    stems = set()
    for rec, ann in zip(index.images, index.annotations):
        rel = Path(rec.file_name)
        if rel.is_absolute() or ".." in rel.parts:
            raise PeerError(f"{index.ann_file}: file_name {rec.file_name!r} must be a relative path inside the "
                            "image folder")
        stem = rel.with_suffix("")
        if stem in stems:
            raise PeerError(f"{index.ann_file}: two images map to the label file {stem}.txt")
        stems.add(stem)
        dst = img_dir / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(os.path.abspath(rec.path), dst)
        lines = label_lines(ann, rec.width, rec.height, min_keypoints)
        persons += len(lines)
        lbl = lbl_dir / stem.with_suffix(".txt")
        lbl.parent.mkdir(parents=True, exist_ok=True)
        lbl.write_text("".join(line + "\n" for line in lines))
    return {"images": len(index.images), "persons": persons, "ann_file": os.path.abspath(index.ann_file),
            "image_root": os.path.abspath(index.image_root)}


def write_dataset(train_ann: str, val_ann: str, out: Path, train_images: str | None = None,
                  val_images: str | None = None, min_keypoints: int = 1) -> tuple[Path, dict]:
    """Both splits in Ultralytics' pose format under ``out``; ``out/data.yaml`` is written last."""
    import yaml

    tr, va = _load(train_ann, train_images), _load(val_ann, val_images)
    if tr.skeleton.name != va.skeleton.name:
        raise PeerError(f"the training set ({train_ann}: {tr.skeleton.name}, {tr.skeleton.num_keypoints} keypoints) "
                        f"and the val set ({val_ann}: {va.skeleton.name}, {va.skeleton.num_keypoints}) have "
                        "different layouts")
    _check_images(tr, "training")
    _check_images(va, "val")
    out.mkdir(parents=True, exist_ok=True)
    (out / "data.yaml").unlink(missing_ok=True)
    counts = {"train": convert_split(tr, out, "train", min_keypoints),
              "val": convert_split(va, out, "val", min_keypoints)}
    if counts["train"]["persons"] == 0:
        raise PeerError(f"{train_ann}: no person to train on (none with >= {min_keypoints} labelled keypoint)")
    skel = tr.skeleton
    data = {"path": str(out.resolve()), "train": "images/train", "val": "images/val",
            "kpt_shape": [skel.num_keypoints, 3], "flip_idx": list(skel.flip_index),
            "names": {0: "person"}, "kpt_names": {0: list(skel.keypoints)}}
    text = yaml.safe_dump(data, sort_keys=False)
    atomic_write_bytes(out / "data.yaml", lambda f: f.write(text.encode()))
    return out / "data.yaml", {"layout": skel.name, "num_keypoints": skel.num_keypoints,
                               "flip_idx": list(skel.flip_index), "min_keypoints": min_keypoints, **counts}


# ------------------------------------------------------------------------------ Ultralytics, offline


def _offline(config_dir: Path, threads: int | None = None):
    """Import Ultralytics with everything that would reach the network switched off."""
    os.environ["YOLO_OFFLINE"] = "1"
    os.environ["YOLO_AUTOINSTALL"] = "false"
    os.environ.setdefault("YOLO_CONFIG_DIR", str(config_dir))  # read once, at Ultralytics' first import
    os.environ.setdefault("YOLO_VERBOSE", "true")
    if threads:
        os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    try:
        import ultralytics
        from ultralytics.utils import SETTINGS
    except Exception as e:  # ImportError, or a dependency the --no-deps install lacks
        raise PeerError(f"ultralytics is not usable ({type(e).__name__}: {e}); `make install` installs it "
                        "(pip install --no-deps ultralytics ultralytics-thop; pip install polars)") from None
    SETTINGS.update({k: v for k, v in _OFFLINE_SETTINGS.items() if k in SETTINGS})
    import ultralytics.data.utils as du
    import ultralytics.utils.checks as uc

    def _no_font(font="Arial.ttf"):  # plots are off; the check would download Arial.ttf
        return None

    du.check_font = uc.check_font = _no_font
    if threads:
        import torch
        import ultralytics.utils.torch_utils as tu

        tu.NUM_THREADS = int(threads)  # select_device('cpu') sets torch's threads to this
        torch.set_num_threads(int(threads))
    return ultralytics


def epochs_for_budget(images_budget: int, num_images: int) -> int:
    if images_budget <= 0:
        raise PeerError(f"--images-budget must be > 0, got {images_budget}")
    return max(1, round(images_budget / num_images))


def _device(name: str | None) -> str:
    """Ultralytics' device string ("cpu" | "0") of ``auto`` / ``cpu`` / ``cuda[:N]``
    (``posedet.devices.resolve_device``: CUDA asked for where there is none is a PeerError)."""
    from posedet.devices import DeviceError, resolve_device

    try:
        dev = resolve_device(name)
    except DeviceError as e:
        raise PeerError(str(e)) from None
    return "cpu" if dev.type == "cpu" else str(dev.index or 0)


def _versions() -> dict:
    import platform

    import torch
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version(), "torch": torch.__version__}
    for pkg in ("ultralytics", "torchvision", "numpy", "opencv-python-headless", "polars"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = None
    return out


def train(train_ann: str, val_ann: str, out: str | os.PathLike, *, train_images: str | None = None,
          val_images: str | None = None, images_budget: int | None = None, time_budget: float | None = None,
          epochs: int | None = None, imgsz: int = 128, batch: int = 16, seed: int = 0, threads: int = 1,
          device: str | None = None, model: str = DEFAULT_MODEL, close_mosaic: int | None = None,
          min_keypoints: int = 1, extra: dict | None = None) -> dict:
    """Convert, train, write ``out/summary.json``; returns the summary."""
    if sum(x is not None for x in (images_budget, time_budget, epochs)) != 1:
        raise PeerError("give exactly one of --images-budget, --time-budget, --epochs")
    if time_budget is not None and time_budget <= 0:
        raise PeerError(f"--time-budget must be > 0 seconds, got {time_budget}")
    if epochs is not None and epochs < 1:
        raise PeerError(f"--epochs must be >= 1, got {epochs}")
    device = _device(device)              # before any work: CUDA asked for where there is none
    run = Path(out).resolve()
    t0 = time.perf_counter()
    load_before = os.getloadavg()
    # a fresh start: nothing of an earlier (killed) run may look like this run's result
    (run / "summary.json").unlink(missing_ok=True)
    for stale in ("weights", "results.csv", "args.yaml"):
        p = run / stale
        if p.is_dir():
            shutil.rmtree(p)
        elif p.exists():
            p.unlink()
    data_yaml, data = write_dataset(train_ann, val_ann, run / "data", train_images, val_images, min_keypoints)
    n_train = data["train"]["images"]
    if images_budget is not None:
        epochs = epochs_for_budget(int(images_budget), n_train)
    cm = close_mosaic if close_mosaic is not None else (round(0.1 * epochs) if epochs else 10)

    _offline(run / "ultralytics_settings", threads)
    from ultralytics import YOLO

    yolo = YOLO(model, task="pose")
    seen = {"epochs": 0, "epoch_s": []}
    t_epoch = [time.perf_counter()]

    def _on_epoch_end(trainer):
        seen["epochs"] += 1
        now = time.perf_counter()
        seen["epoch_s"].append(round(now - t_epoch[0], 3))
        t_epoch[0] = now

    def _on_train_start(trainer):
        t_epoch[0] = time.perf_counter()

    yolo.add_callback("on_train_start", _on_train_start)
    yolo.add_callback("on_train_epoch_end", _on_epoch_end)
    args = dict(data=str(data_yaml), imgsz=int(imgsz), batch=int(batch), workers=0, seed=int(seed),
                deterministic=True, plots=False, val=False, amp=False, pretrained=False,
                device=device, project=str(run.parent), name=run.name, exist_ok=True,
                close_mosaic=int(cm), save=True, verbose=True)
    if time_budget is not None:
        args["time"] = float(time_budget) / 3600.0
        args["epochs"] = 1000  # re-planned by Ultralytics after the first epoch
    else:
        args["epochs"] = int(epochs)
    args.update(extra or {})
    t_train = time.perf_counter()
    yolo.train(**args)
    train_s = time.perf_counter() - t_train
    trainer = yolo.trainer
    weights = {name: str(p.relative_to(run)) for name, p in (("last", trainer.last), ("best", trainer.best))
               if Path(p).is_file()}
    if "last" not in weights:
        raise PeerError(f"ultralytics wrote no {trainer.last}")
    if Path(trainer.save_dir).resolve() != run:
        raise PeerError(f"ultralytics saved into {trainer.save_dir}, expected {run}")
    metrics = {k: (float(v) if isinstance(v, (int, float)) and math.isfinite(float(v)) else None)
               for k, v in (getattr(trainer, "metrics", None) or {}).items()}
    images_seen = seen["epochs"] * n_train
    summary = {
        "status": "finished",
        "peer": Path(model).stem.replace("-", "_"),
        "model": model,
        "init": "random (built from the model YAML; no pretrained weights)",
        "budget": ({"images": int(images_budget)} if images_budget is not None else
                   {"seconds": float(time_budget)} if time_budget is not None else {"epochs": int(epochs)}),
        "epochs": seen["epochs"],
        "images_per_epoch": n_train,
        "images_seen": images_seen,
        "images_per_s": round(images_seen / sum(seen["epoch_s"]), 3) if sum(seen["epoch_s"]) > 0 else None,
        "images_per_s_note": "training images per second over the epochs (Ultralytics' final validation excluded)",
        "epoch_s": seen["epoch_s"],
        "train_s": round(train_s, 3),
        "wall_s": round(time.perf_counter() - t0, 3),
        "threads": int(threads),
        "torch_threads": __import__("torch").get_num_threads(),
        "device": str(trainer.device),
        "imgsz": int(imgsz),
        "batch": int(batch),
        "seed": int(seed),
        "close_mosaic": int(cm),
        "train_args": {k: (v if isinstance(v, (int, float, str, bool, type(None))) else str(v))
                       for k, v in vars(trainer.args).items()},
        "data": data,
        "ultralytics_final_val": metrics,
        "weights": weights,
        "versions": _versions(),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "command": " ".join(["posedet", *sys.argv[1:]]),
    }
    write_json_atomic(run / "summary.json", summary)
    return summary


# ------------------------------------------------------------------------------ prediction


def _category_id(ann: str) -> int:
    with open(ann) as f:
        cats = [c for c in json.load(f).get("categories", []) if isinstance(c, dict) and c.get("keypoints")]
    return int(cats[0]["id"]) if cats and "id" in cats[0] else 1


def predict(checkpoint: str, ann: str, out: str | os.PathLike, *, images: str | None = None,
            imgsz: int | None = None, conf: float = 0.001, iou: float = 0.7, max_det: int = 100,
            device: str | None = None, threads: int | None = None, batch: int = 16) -> list[dict]:
    """COCO keypoint results of a trained YOLO-pose checkpoint on every image of ``ann``."""
    device = _device(device)
    # the results file is a bare COCO list: the job's log records the device
    print(f"posedet peer-predict: device {'cpu' if device == 'cpu' else 'cuda:' + device}", file=sys.stderr)
    if not os.path.isfile(checkpoint):
        raise PeerError(f"{checkpoint}: checkpoint not found")
    index = _load(ann, images)
    import tempfile

    _offline(Path(tempfile.gettempdir()) / "posedet-ultralytics", threads)
    from ultralytics import YOLO

    try:
        yolo = YOLO(checkpoint, task="pose")
    except Exception as e:
        raise PeerError(f"{checkpoint}: not a YOLO-pose checkpoint ({type(e).__name__}: {e})") from None
    kpt_shape = list(getattr(yolo.model, "kpt_shape", None) or yolo.model.yaml.get("kpt_shape") or [])
    k = index.skeleton.num_keypoints
    if not kpt_shape or kpt_shape[0] != k or kpt_shape[1] != 3:
        raise PeerError(f"{checkpoint} predicts kpt_shape {kpt_shape}; {ann} is the {index.skeleton.name} layout "
                        f"({k} keypoints): wrong layout")
    if imgsz is None:
        imgsz = int((getattr(yolo, "overrides", {}) or {}).get("imgsz") or 640)
    missing = [rec.path for rec in index.images if not os.path.isfile(rec.path)]
    if missing:
        raise PeerError(f"{ann}: {len(missing)} of {len(index.images)} images missing under {index.image_root} "
                        f"(first: {missing[0]}); pass --images DIR")
    cat = _category_id(ann)
    results = []
    recs = index.images
    for i in range(0, len(recs), batch):
        chunk = recs[i:i + batch]
        preds = yolo.predict([r.path for r in chunk], imgsz=int(imgsz), conf=conf, iou=iou, max_det=max_det,
                             device=device, verbose=False, save=False)
        for rec, r in zip(chunk, preds):
            if r.keypoints is None or r.boxes is None or len(r.boxes) == 0:
                continue
            kp = r.keypoints.data.detach().float().cpu()        # [N, K, 3]: x, y (original pixels), confidence
            scores = r.boxes.conf.detach().float().cpu()
            for p, s in zip(kp, scores):
                flat = [round(float(v), 3) for v in p.reshape(-1)]
                results.append({"image_id": rec.id, "category_id": cat, "keypoints": flat, "score": round(float(s), 6)})
    text = json.dumps(results)
    atomic_write_bytes(out, lambda f: f.write(text.encode()))
    return results


# ------------------------------------------------------------------------------ CLI


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--train-ann", required=True, help="COCO-format keypoint annotations of the training split")
    p.add_argument("--images", default=None, help="training image folder (default: images/ beside the annotations)")
    p.add_argument("--val-ann", required=True, help="annotations of the val split (Ultralytics' final validation)")
    p.add_argument("--val-images", default=None, help="val image folder (default: images/ beside the annotations)")
    p.add_argument("--out", required=True, help="run folder: data/, weights/, summary.json")
    b = p.add_mutually_exclusive_group(required=True)
    b.add_argument("--images-budget", type=int, help="training images to see (epochs = round(N / train images))")
    b.add_argument("--time-budget", type=float, help="wall seconds of training (Ultralytics' time=)")
    b.add_argument("--epochs", type=int, help="epochs, directly")
    p.add_argument("--imgsz", type=int, default=128, help="training input size (default 128)")
    p.add_argument("--batch", type=int, default=16, help="batch size (default 16)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    p.add_argument("--device", default=None, help="auto | cpu | cuda | cuda:N (default auto: cuda if available)")
    p.add_argument("--model", default=DEFAULT_MODEL, help=f"Ultralytics model YAML (default {DEFAULT_MODEL})")
    p.add_argument("--close-mosaic", type=int, default=None,
                   help="final epochs without mosaic (default: 10%% of the epochs; 10 under --time-budget)")
    p.add_argument("--min-keypoints", type=int, default=1,
                   help="persons with fewer labelled keypoints are left out (default 1, as PoseDet trains)")
    p.add_argument("--set", dest="extra", action="append", default=[], metavar="KEY=VALUE",
                   help="another Ultralytics train argument, e.g. --set mosaic=0.5 (YAML value; repeatable)")


def _extra(pairs: list[str]) -> dict:
    import yaml

    out = {}
    for kv in pairs:
        key, sep, value = kv.partition("=")
        if not sep or not key.strip():
            raise PeerError(f"--set {kv!r}: expected KEY=VALUE")
        out[key.strip()] = yaml.safe_load(value)
    return out


def main(args) -> int:
    try:
        s = train(args.train_ann, args.val_ann, args.out, train_images=args.images, val_images=args.val_images,
                  images_budget=args.images_budget, time_budget=args.time_budget, epochs=args.epochs,
                  imgsz=args.imgsz, batch=args.batch, seed=args.seed, threads=args.threads, device=args.device,
                  model=args.model, close_mosaic=args.close_mosaic, min_keypoints=args.min_keypoints,
                  extra=_extra(args.extra))
    except PeerError as e:
        print(f"posedet peer-train: {e}", file=sys.stderr)
        return 2
    print(f"posedet peer-train: {s['epochs']} epoch(s), {s['images_seen']} images in {s['train_s']:.1f} s "
          f"-> {Path(args.out) / 'summary.json'}", file=sys.stderr)
    return 0


def predict_add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", required=True, help="a peer-train checkpoint (RUN/weights/last.pt)")
    p.add_argument("--ann", required=True, help="COCO-format keypoint annotations of the images to run on")
    p.add_argument("--images", default=None, help="image folder (default: images/ beside the annotations)")
    p.add_argument("--out", required=True, help="results JSON to write (COCO results format)")
    p.add_argument("--imgsz", type=int, default=None, help="input size (default: the training one)")
    p.add_argument("--conf", type=float, default=0.001, help="confidence threshold (default 0.001)")
    p.add_argument("--iou", type=float, default=0.7, help="NMS box IoU threshold (default 0.7)")
    p.add_argument("--max-det", type=int, default=100, help="poses per image at most (default 100)")
    p.add_argument("--batch", type=int, default=16, help="images per forward pass (default 16)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: OMP_NUM_THREADS)")
    p.add_argument("--device", default=None, help="auto | cpu | cuda | cuda:N (default auto: cuda if available)")


def predict_main(args) -> int:
    try:
        res = predict(args.checkpoint, args.ann, args.out, images=args.images, imgsz=args.imgsz, conf=args.conf,
                      iou=args.iou, max_det=args.max_det, device=args.device, threads=args.threads,
                      batch=args.batch)
    except PeerError as e:
        print(f"posedet peer-predict: {e}", file=sys.stderr)
        return 2
    print(f"posedet peer-predict: {len(res)} poses -> {args.out}", file=sys.stderr)
    return 0
