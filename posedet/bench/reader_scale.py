"""Scale check of the training reader on a COCO-train2017-sized keypoint file.

    python -m posedet.bench.reader_scale --out FILE.json [--scale 1.0] [--seed 0] [--keep ANN.json]

Writes (numpy, seeded, in a temporary folder) a ``person_keypoints``-shaped file with COCO
train2017's counts — 118,287 images, 262,465 annotations of 17 keypoints — and its mix: about half
of the images have persons, ~0.4% of the annotations are crowd regions (RLE ``segmentation``
dict, all-zero keypoints, ``num_keypoints`` 0), ~25% are box-only persons (``num_keypoints`` 0),
the rest have 1-17 labelled keypoints and a ~20-point polygon; images carry COCO's fields
(``license``, ``coco_url``, ``date_captured``, ...), annotations ``area`` and ``bbox`` with two
decimals, in random order as in the release. Then times ``load_coco_keypoints`` on it in a fresh
``python`` subprocess (imports not included in ``seconds``; the subprocess's own wall time is
``process_wall_s``) and records the subprocess's peak RSS (``ru_maxrss`` after the load, and
``resource.getrusage(RUSAGE_CHILDREN)`` for the whole subprocess, which also runs
``filter_for_training`` and ``quirk_counts`` after the timed load), the file size and the load
average (``os.getloadavg()``) before and after. Budget: 30 s and 3 GiB peak for the load.
``--scale`` shrinks every count (tests use it). The JSON is written atomically.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from posedet.atomic import write_json_atomic

NUM_IMAGES = 118_287
NUM_ANNOTATIONS = 262_465
K = 17
IMAGES_WITH_PERSONS = 0.5
CROWD_FRACTION = 0.004
BOX_ONLY_FRACTION = 0.25
POLYGON_POINTS = 20
BUDGET_SECONDS = 30.0
BUDGET_PEAK_GIB = 3.0
GIB = 1 << 30

COCO_KEYPOINTS = ["nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder",
                  "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
                  "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle"]


def generate(path: Path, scale: float = 1.0, seed: int = 0, chunk: int = 20_000) -> dict:
    """Write the COCO-train-shaped file to ``path``; returns its counts."""
    rng = np.random.default_rng(seed)
    n_img = max(2, int(round(NUM_IMAGES * scale)))
    n_ann = max(4, int(round(NUM_ANNOTATIONS * scale)))
    widths = rng.choice([640, 480, 427, 500, 612, 375], size=n_img, p=[.6, .1, .1, .1, .05, .05])
    heights = np.where(rng.random(n_img) < 0.5, 480, rng.choice([427, 640, 360, 500], size=n_img))
    image_ids = np.sort(rng.choice(np.arange(1, 600_000), size=n_img, replace=False))
    # each image with persons gets one, the rest are spread at random; annotations shuffled
    n_with = min(n_img, n_ann, max(1, int(round(n_img * IMAGES_WITH_PERSONS))))
    with_persons = rng.choice(n_img, size=n_with, replace=False)
    ann_img = np.concatenate([with_persons, rng.choice(with_persons, size=n_ann - n_with)])
    ann_img = ann_img[rng.permutation(n_ann)]
    kind = rng.random(n_ann)
    crowd = kind < CROWD_FRACTION
    box_only = ~crowd & (kind < CROWD_FRACTION + BOX_ONLY_FRACTION)
    labelled = ~crowd & ~box_only
    w_img, h_img = widths[ann_img].astype(np.float64), heights[ann_img].astype(np.float64)
    bw = np.round(rng.uniform(0.02, 0.9, n_ann) * w_img, 2)
    bh = np.round(rng.uniform(0.05, 0.95, n_ann) * h_img, 2)
    bx = np.round(rng.uniform(0, 1, n_ann) * (w_img - bw), 2)
    by = np.round(rng.uniform(0, 1, n_ann) * (h_img - bh), 2)
    # keypoints: ints inside the box, 1-17 of them labelled (v 1 or 2) for the labelled persons
    kx = np.floor(bx[:, None] + rng.random((n_ann, K)) * bw[:, None]).astype(np.int64)
    ky = np.floor(by[:, None] + rng.random((n_ann, K)) * bh[:, None]).astype(np.int64)
    n_lab = rng.integers(1, K + 1, n_ann)
    lab = (rng.random((n_ann, K)).argsort(axis=1) < n_lab[:, None]) & labelled[:, None]
    v = np.where(lab, rng.choice([1, 2], size=(n_ann, K), p=[0.3, 0.7]), 0)
    kps = np.stack([np.where(lab, kx, 0), np.where(lab, ky, 0), v], axis=2).reshape(n_ann, 3 * K)
    num_kp = lab.sum(axis=1)
    # polygons: POLYGON_POINTS points on an ellipse in the box, two decimals
    t = np.linspace(0, 2 * np.pi, POLYGON_POINTS, endpoint=False)
    jitter = rng.uniform(0.85, 1.0, (n_ann, POLYGON_POINTS))
    px = np.round(bx[:, None] + bw[:, None] / 2 * (1 + jitter * np.cos(t)), 2)
    py = np.round(by[:, None] + bh[:, None] / 2 * (1 + jitter * np.sin(t)), 2)
    poly = np.stack([px, py], axis=2).reshape(n_ann, 2 * POLYGON_POINTS)
    area = np.round(bw * bh * rng.uniform(0.4, 0.7, n_ann), 4)
    ann_ids = rng.choice(np.arange(1, 3 * n_ann + 1_000), size=n_ann, replace=False)

    def image_entries(lo: int, hi: int):
        for i in range(lo, hi):
            iid = int(image_ids[i])
            name = f"{iid:012d}.jpg"
            yield {"license": int(i % 8) + 1, "file_name": name,
                   "coco_url": f"http://images.cocodataset.org/train2017/{name}",
                   "height": int(heights[i]), "width": int(widths[i]),
                   "date_captured": "2013-11-14 16:28:13",
                   "flickr_url": f"http://farm4.staticflickr.com/3153/{iid}_e4b5c6d7f8_z.jpg",
                   "id": iid}

    def annotation_entries(lo: int, hi: int):
        sl = slice(lo, hi)
        rows = zip(kps[sl].tolist(), poly[sl].tolist(), bx[sl].tolist(), by[sl].tolist(),
                   bw[sl].tolist(), bh[sl].tolist(), area[sl].tolist(), num_kp[sl].tolist(),
                   crowd[sl].tolist(), ann_img[sl].tolist(), ann_ids[sl].tolist())
        for kp, pg, x, y, w, h, a, nk, cr, img, aid in rows:
            if cr:
                ih, iw = int(heights[img]), int(widths[img])
                counts = rng.integers(1, 400, 100)
                counts[-1] = max(1, ih * iw - int(counts[:-1].sum()))
                seg = {"counts": counts.tolist(), "size": [ih, iw]}
            else:
                seg = [pg]
            yield {"segmentation": seg, "num_keypoints": nk, "area": a, "iscrowd": int(cr),
                   "keypoints": kp, "image_id": int(image_ids[img]), "bbox": [x, y, w, h],
                   "category_id": 1, "id": aid}

    dumps = json.JSONEncoder(separators=(",", ":")).encode
    with open(path, "w") as fh:
        fh.write('{"info":{"description":"posedet reader_scale: COCO train2017-shaped","year":2017},'
                 '"licenses":[{"url":"http://creativecommons.org/licenses/by/2.0/","id":1,'
                 '"name":"Attribution License"}],"images":[')
        for lo in range(0, n_img, chunk):
            part = ",".join(dumps(e) for e in image_entries(lo, min(n_img, lo + chunk)))
            fh.write(("," if lo else "") + part)
        fh.write('],"annotations":[')
        for lo in range(0, n_ann, chunk):
            part = ",".join(dumps(e) for e in annotation_entries(lo, min(n_ann, lo + chunk)))
            fh.write(("," if lo else "") + part)
        cat = {"supercategory": "person", "id": 1, "name": "person", "keypoints": COCO_KEYPOINTS,
               "skeleton": [[16, 14], [14, 12], [17, 15], [15, 13], [12, 13], [6, 12], [7, 13],
                            [6, 7], [6, 8], [7, 9], [8, 10], [9, 11], [2, 3], [1, 2], [1, 3],
                            [2, 4], [3, 5], [4, 6], [5, 7]]}
        fh.write('],"categories":[' + dumps(cat) + "]}")
    return {"images": n_img, "annotations": n_ann, "images_with_persons": int(n_with),
            "crowd": int(crowd.sum()), "box_only": int(box_only.sum()),
            "labelled": int(labelled.sum()), "polygon_points": POLYGON_POINTS, "seed": seed,
            "scale": scale}


def _child(ann_file: str) -> None:
    """Runs in the fresh subprocess: time the load, then the training view and the counts."""
    from posedet.data.quirks import quirk_counts
    from posedet.data.reader import filter_for_training, load_coco_keypoints

    t0, c0 = time.perf_counter(), time.process_time()
    index = load_coco_keypoints(ann_file)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    peak_load = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    t1 = time.perf_counter()
    train = filter_for_training(index)
    t_filter = time.perf_counter() - t1
    t2 = time.perf_counter()
    quirks = quirk_counts(index)
    t_quirks = time.perf_counter() - t2
    print(json.dumps({
        "seconds": seconds, "cpu_seconds": cpu, "peak_rss_after_load_bytes": peak_load,
        "images": len(index), "annotations": index.num_annotations,
        "filter_for_training_s": t_filter, "training_images": len(train),
        "training_persons": train.num_annotations, "quirk_counts_s": t_quirks, "quirks": quirks,
    }))


def run(out: Path, scale: float = 1.0, seed: int = 0, keep: Path | None = None) -> dict:
    load_start = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="reader_scale.") as tmp:
        ann = Path(keep) if keep else Path(tmp) / "person_keypoints_train2017.json"
        t0 = time.perf_counter()
        counts = generate(ann, scale=scale, seed=seed)
        gen_s = time.perf_counter() - t0
        size = ann.stat().st_size
        load_before = os.getloadavg()
        t1 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "posedet.bench.reader_scale", "--child", str(ann)],
                              capture_output=True, text=True)
        wall = time.perf_counter() - t1
        peak_children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    if proc.returncode != 0:
        raise RuntimeError(f"reader subprocess failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    child = json.loads(proc.stdout.strip().splitlines()[-1])
    peak_load = child.pop("peak_rss_after_load_bytes")
    result = {
        "file": {**counts, "bytes": size, "mib": round(size / (1 << 20), 1)},
        "load_coco_keypoints": {
            "seconds": round(child.pop("seconds"), 3),
            "cpu_seconds": round(child.pop("cpu_seconds"), 3),
            "peak_rss_gib": round(peak_load / GIB, 3),
            "note": "seconds: wall time of load_coco_keypoints alone in a fresh python process "
                    "(imports excluded); peak_rss_gib: that process's ru_maxrss right after it",
        },
        "subprocess": {
            "process_wall_s": round(wall, 3),
            "peak_rss_gib": round(peak_children / GIB, 3),
            "note": "the whole subprocess: interpreter start, imports, the load, then "
                    "filter_for_training and quirk_counts; peak from RUSAGE_CHILDREN",
        },
        "after_load": {k: (round(v, 3) if isinstance(v, float) else v) for k, v in child.items()},
        "budget": {"seconds": BUDGET_SECONDS, "peak_rss_gib": BUDGET_PEAK_GIB},
        "generate_s": round(gen_s, 1),
        "loadavg_at_start": [round(x, 2) for x in load_start],
        "loadavg_before_load": [round(x, 2) for x in load_before],
        "loadavg_at_end": [round(x, 2) for x in os.getloadavg()],
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "platform": platform.platform(),
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    lc = result["load_coco_keypoints"]
    result["within_budget"] = (lc["seconds"] <= BUDGET_SECONDS
                               and lc["peak_rss_gib"] <= BUDGET_PEAK_GIB)
    write_json_atomic(out, result)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m posedet.bench.reader_scale",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, help="result JSON")
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of COCO train's counts")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", type=Path, default=None,
                        help="write the generated annotation file here and keep it")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(args.child)
        return 0
    if args.out is None:
        parser.error("--out FILE.json is required")
    if not 0 < args.scale <= 1.0:
        parser.error(f"--scale must be in (0, 1], got {args.scale}")
    r = run(args.out, scale=args.scale, seed=args.seed, keep=args.keep)
    lc = r["load_coco_keypoints"]
    print(f"load_coco_keypoints: {r['file']['annotations']} annotations, {r['file']['mib']} MiB: "
          f"{lc['seconds']:.2f} s, peak {lc['peak_rss_gib']:.2f} GiB "
          f"(budget {BUDGET_SECONDS:g} s, {BUDGET_PEAK_GIB:g} GiB); load average "
          f"{r['loadavg_before_load']}; wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
