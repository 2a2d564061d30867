"""CrowdPose crowd index and summary statistics of COCO-format keypoint annotations.

Crowd index of one image (CrowdPose paper): ``(1/n) * sum_i N_b(i) / N_a(i)`` over the
``n`` persons with labelled joints, where ``N_a(i)`` counts person i's labelled joints
(v > 0) and ``N_b(i)`` counts the other persons' labelled joints inside person i's box
(borders included).  Easy < 0.2 <= medium < 0.8 <= hard.  On the released
``crowdpose_val.json`` this reproduces the stored ``crowdIndex`` within 0.01 for ~76% of
the images (the others were computed with people the file does not list).

Hand-written: crowdposetools stores the index but has no function computing it.
"""
from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

EASY_MAX = 0.2
HARD_MIN = 0.8
LEVELS = ("easy", "medium", "hard")
# Finer histogram: 10 bins of width 0.2 over [0, 2), the last one open: [1.8, inf).
HIST_EDGES = tuple(round(0.2 * i, 1) for i in range(10))
# COCO area ranges (pixels of segment area).
AREA_SMALL_MAX = 32 ** 2
AREA_MEDIUM_MAX = 96 ** 2
CROWDPOSE_AREA_FACTOR = 0.53  # CrowdPose has no `area`: its evaluation uses box w*h*0.53


def crowd_index(annotations: Sequence[Mapping]) -> float:
    """Crowd index of one image from its person annotations (COCO dicts with
    ``keypoints`` and ``bbox``); 0.0 when no person has a labelled joint."""
    if not annotations:
        return 0.0
    kps = [np.asarray(a["keypoints"], dtype=np.float64).reshape(-1, 3) for a in annotations]
    if len({len(k) for k in kps}) != 1:
        raise ValueError("annotations of one image have different keypoint counts")
    return crowd_index_arrays(np.stack(kps), np.asarray([a["bbox"] for a in annotations], dtype=np.float64))


def crowd_index_arrays(keypoints: np.ndarray, boxes: np.ndarray) -> float:
    """Crowd index from ``keypoints [n, K, 3]`` (x, y, v) and COCO ``boxes [n, 4]``."""
    kp = np.asarray(keypoints, dtype=np.float64)
    boxes = np.asarray(boxes, dtype=np.float64)
    lab = kp[..., 2] > 0
    n_a = lab.sum(1)
    keep = n_a > 0
    if not keep.any():
        return 0.0
    kp, lab, n_a, boxes = kp[keep], lab[keep], n_a[keep], boxes[keep]
    x, y = kp[None, :, :, 0], kp[None, :, :, 1]                 # [1, n, K]: joints of person j
    x0, y0 = boxes[:, 0, None, None], boxes[:, 1, None, None]   # [n, 1, 1]: box of person i
    x1, y1 = x0 + boxes[:, 2, None, None], y0 + boxes[:, 3, None, None]
    inside = (x >= x0) & (x <= x1) & (y >= y0) & (y <= y1) & lab[None]
    inside[np.arange(len(kp)), np.arange(len(kp))] = False      # not one's own joints
    n_b = inside.sum(axis=(1, 2))
    return float(np.mean(n_b / n_a))


def crowd_level(ci: float) -> str:
    """'easy' (< 0.2), 'medium' ([0.2, 0.8)) or 'hard' (>= 0.8)."""
    return "easy" if ci < EASY_MAX else ("medium" if ci < HARD_MIN else "hard")


def annotations_by_image(coco: Mapping) -> dict[int, list[Mapping]]:
    by = defaultdict(list)
    for a in coco.get("annotations", []):
        by[a["image_id"]].append(a)
    return {im["id"]: by.get(im["id"], []) for im in coco["images"]}


def crowd_indices(coco: Mapping) -> dict[int, float]:
    """Computed crowd index per image id of a COCO-format dict."""
    return {iid: crowd_index(anns) for iid, anns in annotations_by_image(coco).items()}


def _histogram(values: Sequence[float]) -> dict:
    v = np.asarray(values, dtype=np.float64)
    n = max(len(v), 1)
    levels = {lv: int(sum(crowd_level(x) == lv for x in v)) for lv in LEVELS}
    edges = list(HIST_EDGES) + [float("inf")]
    counts = [int(np.count_nonzero((v >= lo) & (v < hi))) for lo, hi in zip(edges[:-1], edges[1:])]
    labels = [f"[{lo:.1f},{hi:.1f})" if np.isfinite(hi) else f"[{lo:.1f},inf)"
              for lo, hi in zip(edges[:-1], edges[1:])]
    return {
        "mean": float(v.mean()) if len(v) else 0.0,
        "max": float(v.max()) if len(v) else 0.0,
        "levels": levels,
        "level_fractions": {lv: round(c / n, 4) for lv, c in levels.items()},
        "hist": dict(zip(labels, counts)),
    }


def load_coco(path: str | Path) -> dict:
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: cannot read COCO annotations: {e}") from e
    for key in ("images", "annotations"):
        if key not in data:
            raise ValueError(f"{path}: no {key!r} list")
    return data


def annotation_stats(coco: Mapping | str | Path) -> dict:
    """Summary of a COCO-format keypoint data set (dict or path to its JSON).

    crowd index histogram (computed from the annotations, and the stored ``crowdIndex``
    when images carry one), occlusion rate (fraction of labelled keypoints with v=1),
    persons per image and COCO area buckets (``area`` when present, else CrowdPose's
    box w*h*0.53).
    """
    if not isinstance(coco, Mapping):
        coco = load_coco(coco)
    by_image = annotations_by_image(coco)
    n_img = len(by_image)
    persons = [len(v) for v in by_image.values()]
    out: dict = {
        "num_images": n_img,
        "num_persons": int(sum(persons)),
        "persons_per_image_mean": float(np.mean(persons)) if persons else 0.0,
        "persons_per_image_max": int(max(persons)) if persons else 0,
        "crowd_index": _histogram([crowd_index(a) for a in by_image.values()]),
    }
    stored = [im["crowdIndex"] for im in coco["images"] if "crowdIndex" in im]
    if stored:
        out["crowd_index_stored"] = _histogram(stored)
    flags = [np.asarray(a["keypoints"], dtype=np.float64).reshape(-1, 3)[:, 2]
             for a in coco.get("annotations", [])]
    v = np.concatenate(flags) if flags else np.zeros(0)
    labelled = int(np.count_nonzero(v > 0))
    out["keypoints"] = {
        "per_person": int(len(flags[0])) if flags else 0,
        "labelled": labelled,
        "visible_v2": int(np.count_nonzero(v == 2)),
        "occluded_v1": int(np.count_nonzero(v == 1)),
        "occlusion_rate": round(int(np.count_nonzero(v == 1)) / labelled, 4) if labelled else 0.0,
        "labelled_per_person_mean": round(labelled / max(len(flags), 1), 3),
    }
    anns = coco.get("annotations", [])
    has_area = bool(anns) and all("area" in a for a in anns)
    areas = np.array([a["area"] if has_area else a["bbox"][2] * a["bbox"][3] * CROWDPOSE_AREA_FACTOR
                      for a in anns], dtype=np.float64)
    buckets = {
        "small": int(np.count_nonzero(areas < AREA_SMALL_MAX)),
        "medium": int(np.count_nonzero((areas >= AREA_SMALL_MAX) & (areas <= AREA_MEDIUM_MAX))),
        "large": int(np.count_nonzero(areas > AREA_MEDIUM_MAX)),
    }
    out["area"] = {
        "source": "area" if has_area else f"bbox w*h*{CROWDPOSE_AREA_FACTOR}",
        **buckets,
        "fractions": {k: round(c / max(len(areas), 1), 4) for k, c in buckets.items()},
        "median": float(np.median(areas)) if len(areas) else 0.0,
    }
    return out
