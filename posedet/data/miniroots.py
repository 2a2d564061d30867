"""Miniature COCO 2017 and CrowdPose roots, laid out exactly as the releases are, from real files.

    python -m posedet.data.miniroots --shared-data ../shared/data --out results/miniroots
    # -> results/miniroots/coco/{annotations/person_keypoints_{train,val}2017.json, train2017/, val2017/}
    #    results/miniroots/crowdpose/{json/crowdpose_{train,val,trainval,test}.json, images/}

The point is to run the ``paper`` preset's own workflow, readers and report on files shaped like
the real releases before a cluster run (docs/cluster.md), and in the tests. What goes in:

* COCO: the 4 real val2017 sample images and their annotation file (``samples/coco``), as both
  ``train2017`` and ``val2017`` (the file's ``info``/``licenses``/``categories`` as released).
* CrowdPose: the **real CrowdPose val annotations as released** (2,000 images, 8,527 persons,
  every quirk of the file) as ``crowdpose_trainval.json`` and ``crowdpose_val.json``, each of
  their images written as a plain grey JPEG at the annotated size (the release's images are not
  available here), plus the 2 real sample images and their annotations as ``crowdpose_test.json``
  and ``crowdpose_train.json``.

Annotation files are copied byte for byte: nothing is cleaned, so every quirk reaches the readers.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

import cv2
import numpy as np

from posedet.atomic import atomic_write_bytes

COCO_FILES = ("person_keypoints_train2017.json", "person_keypoints_val2017.json")


def _copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(dst, lambda fh: fh.write(src.read_bytes()))


def _plain_jpeg(width: int, height: int) -> bytes:
    """A flat mid-grey JPEG of the given size (a few kB at any size)."""
    ok, buf = cv2.imencode(".jpg", np.full((height, width, 3), 114, np.uint8), [cv2.IMWRITE_JPEG_QUALITY, 50])
    if not ok:
        raise RuntimeError(f"could not encode a {width}x{height} JPEG")
    return buf.tobytes()


def build_coco_root(shared_data: Path, out: Path) -> Path:
    src = shared_data / "samples" / "coco"
    ann = src / "test_coco.json"
    for name in COCO_FILES:
        _copy(ann, out / "annotations" / name)
    for folder in ("train2017", "val2017"):
        for img in sorted(src.glob("*.jpg")):
            _copy(img, out / folder / img.name)
    return out


def build_crowdpose_root(shared_data: Path, out: Path, max_plain: int | None = None) -> Path:
    """``max_plain``: write plain images for only the first N images of the val file (None: all;
    the annotations stay whole, so the others are missing images — for testing the preflight)."""
    val = shared_data / "crowdpose" / "crowdpose_val.json"
    samples = shared_data / "samples" / "crowdpose"
    for name in ("crowdpose_val.json", "crowdpose_trainval.json"):
        _copy(val, out / "json" / name)
    for name in ("crowdpose_test.json", "crowdpose_train.json"):
        _copy(samples / "test_crowdpose.json", out / "json" / name)
    images = out / "images"
    images.mkdir(parents=True, exist_ok=True)
    for img in sorted(samples.glob("*.jpg")):
        _copy(img, images / img.name)
    cache: dict[tuple[int, int], bytes] = {}
    records = json.loads(val.read_text())["images"]
    for rec in records[:max_plain] if max_plain is not None else records:
        size = (int(rec["width"]), int(rec["height"]))
        if size not in cache:
            cache[size] = _plain_jpeg(*size)
        path = images / rec["file_name"]
        if not path.exists():
            atomic_write_bytes(path, lambda fh, b=cache[size]: fh.write(b))
    return out


def build_mini_roots(shared_data: str | os.PathLike, out: str | os.PathLike) -> dict[str, str]:
    """Both roots under ``out``; returns ``{"coco_root": ..., "crowdpose_root": ...}``."""
    shared, out = Path(shared_data), Path(out)
    for need in (shared / "crowdpose" / "crowdpose_val.json", shared / "samples" / "coco" / "test_coco.json",
                 shared / "samples" / "crowdpose" / "test_crowdpose.json"):
        if not need.is_file():
            raise FileNotFoundError(f"miniature roots need {need}")
    return {"coco_root": str(build_coco_root(shared, out / "coco")),
            "crowdpose_root": str(build_crowdpose_root(shared, out / "crowdpose"))}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m posedet.data.miniroots", description=__doc__.splitlines()[0])
    p.add_argument("--shared-data", default=str(Path(__file__).resolve().parents[3] / "shared" / "data"),
                   help="folder with crowdpose/crowdpose_val.json and samples/ (default: ../shared/data)")
    p.add_argument("--out", required=True)
    p.add_argument("--force", action="store_true", help="remove --out first")
    args = p.parse_args(argv)
    if args.force and Path(args.out).exists():
        shutil.rmtree(args.out)
    try:
        roots = build_mini_roots(args.shared_data, args.out)
    except FileNotFoundError as e:
        print(f"miniroots: {e}", file=sys.stderr)
        return 2
    print(" ".join(f"{k}={v}" for k, v in roots.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
