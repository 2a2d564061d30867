"""Official keypoint metrics: COCO (pycocotools) and CrowdPose (xtcocotools ``keypoints_crowd``).

``posedet evaluate --gt GT.json --results RES.json --metric {coco,crowdpose,auto} --out M.json``

* ``evaluate_coco``      – pycocotools ``COCOeval(iouType='keypoints')``: AP, AP50, AP75, APM, APL,
  AR, AR50, AR75, ARM, ARL; when every image carries a ``crowdIndex`` also AP_easy / AP_medium /
  AP_hard (the same evaluator restricted to the images of each crowd bin).
* ``evaluate_crowdpose`` – xtcocotools ``COCOeval(gt, dt, 'keypoints_crowd', sigmas=CrowdPose's 14,
  use_area=False)``: AP, AP50, AP75, AR, AR50, AR75, AP_easy, AP_medium, AP_hard (crowd bins at
  crowdIndex 0.2 / 0.8; xtcocotools rounds the three bin APs to 4 decimals, as crowdposetools did).
* ``evaluate_faster``    – the same two protocols through faster-coco-eval, an independent
  implementation (C++ matching/accumulation), used to cross-check the official numbers.

Every metric is stored under its own name. A metric the evaluator reports as -1 (no ground truth
in that bin or area range) is stored as ``None``. Empty results give 0 where there is ground truth.
"""
from __future__ import annotations

import contextlib
import copy
import io
import json
import math
import os
import tempfile
from importlib.metadata import version as _pkg_version
from pathlib import Path

from posedet.atomic import write_json_atomic  # noqa: F401  (re-exported)
from typing import Any, Iterable

import numpy as np

from posedet.skeletons import CROWDPOSE14, skeleton_for_num_keypoints

__all__ = [
    "EvaluationError", "COCO_METRICS", "CROWDPOSE_METRICS", "CROWD_BINS",
    "load_gt", "load_results", "num_keypoints_of", "has_crowd_index", "detect_metric", "crowd_bin",
    "evaluate_coco", "evaluate_crowdpose", "evaluate_faster", "evaluate", "write_json_atomic", "format_metrics",
    "add_arguments", "main",
]

# Names of pycocotools' keypoint ``stats`` vector, in its order:
# pycocotools/cocoeval.py, COCOeval.summarize._summarizeKps:
#   stats[0] _summarize(1, maxDets=20)                     AP
#   stats[1] _summarize(1, maxDets=20, iouThr=.5)          AP50
#   stats[2] _summarize(1, maxDets=20, iouThr=.75)         AP75
#   stats[3] _summarize(1, maxDets=20, areaRng='medium')   APM
#   stats[4] _summarize(1, maxDets=20, areaRng='large')    APL
#   stats[5] _summarize(0, maxDets=20)                     AR
#   stats[6] _summarize(0, maxDets=20, iouThr=.5)          AR50
#   stats[7] _summarize(0, maxDets=20, iouThr=.75)         AR75
#   stats[8] _summarize(0, maxDets=20, areaRng='medium')   ARM
#   stats[9] _summarize(0, maxDets=20, areaRng='large')    ARL
COCO_METRICS = ("AP", "AP50", "AP75", "APM", "APL", "AR", "AR50", "AR75", "ARM", "ARL")

# Names of xtcocotools' ``keypoints_crowd`` ``stats`` vector, in its order:
# xtcocotools/cocoeval.py (1.14.3), COCOeval.summarize._summarizeKps_crowd:
#   stats[0] _summarize(1, maxDets=20)                     AP
#   stats[1] _summarize(1, maxDets=20, iouThr=.5)          AP50
#   stats[2] _summarize(1, maxDets=20, iouThr=.75)         AP75
#   stats[3] _summarize(0, maxDets=20)                     AR
#   stats[4] _summarize(0, maxDets=20, iouThr=.5)          AR50
#   stats[5] _summarize(0, maxDets=20, iouThr=.75)         AR75
#   stats[6] get_type_result(first=0.2, second=0.8)[0]     AP_easy   (crowdIndex < 0.2)
#   stats[7] get_type_result(...)[1]                       AP_medium (0.2 <= crowdIndex < 0.8)
#   stats[8] get_type_result(...)[2]                       AP_hard   (crowdIndex >= 0.8)
CROWDPOSE_METRICS = ("AP", "AP50", "AP75", "AR", "AR50", "AR75", "AP_easy", "AP_medium", "AP_hard")

# faster-coco-eval names its statistics itself (COCOeval_faster.stats_as_dict); map them to ours.
_FASTER_NAMES = {
    "AP_all": "AP", "AP_50": "AP50", "AP_75": "AP75", "AP_medium": "APM", "AP_large": "APL",
    "AR_all": "AR", "AR_50": "AR50", "AR_75": "AR75", "AR_medium": "ARM", "AR_large": "ARL",
}
_FASTER_CROWD_NAMES = {
    "AP_all": "AP", "AP_50": "AP50", "AP_75": "AP75", "AR_all": "AR", "AR_50": "AR50", "AR_75": "AR75",
    "AP_easy": "AP_easy", "AP_medium": "AP_medium", "AP_hard": "AP_hard",
}

# CrowdPose crowd-index bins (DESIGN.md): easy < 0.2 <= medium < 0.8 <= hard.
CROWD_BINS = (("easy", 0.2), ("medium", 0.8), ("hard", math.inf))

IN_MEMORY = "<in-memory>"


class EvaluationError(ValueError):
    """Bad evaluation input; the message names the file and the entry."""


# ----------------------------------------------------------------------------- loading & checks

def _read_json(path: Path, what: str) -> Any:
    if not path.is_file():
        raise EvaluationError(f"{path}: {what} file not found")
    try:
        with open(path) as f:
            return json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise EvaluationError(f"{path}: {what} file is not valid JSON ({e})") from None


def _finite_number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def load_gt(gt_json: str | os.PathLike | dict) -> tuple[dict, str]:
    """Read and check a COCO-format keypoint ground truth. Returns ``(dataset, name)`` where name
    is the file path (or ``<in-memory>``). Checks what both evaluators read: images with ids,
    categories, annotations with image_id / category_id / iscrowd / bbox / num_keypoints and a
    keypoint list of the same length 3K everywhere."""
    if isinstance(gt_json, dict):
        gt, name = gt_json, IN_MEMORY
    else:
        name = str(gt_json)
        gt = _read_json(Path(gt_json), "ground-truth")
    if not isinstance(gt, dict):
        raise EvaluationError(f"{name}: ground truth must be a JSON object with images/annotations/categories")
    for key in ("images", "annotations", "categories"):
        if not isinstance(gt.get(key), list):
            raise EvaluationError(f"{name}: ground truth has no '{key}' list")
    image_ids = set()
    for i, img in enumerate(gt["images"]):
        if not isinstance(img, dict) or "id" not in img:
            raise EvaluationError(f"{name}: images[{i}] has no 'id'")
        image_ids.add(img["id"])
    cat_ids = {c.get("id") for c in gt["categories"] if isinstance(c, dict)}
    k3 = None
    for i, ann in enumerate(gt["annotations"]):
        where = f"{name}: annotations[{i}] (id {ann.get('id') if isinstance(ann, dict) else '?'})"
        if not isinstance(ann, dict):
            raise EvaluationError(f"{where}: not an object")
        for key in ("id", "image_id", "category_id", "keypoints", "bbox", "iscrowd", "num_keypoints"):
            if key not in ann:
                raise EvaluationError(f"{where}: missing '{key}'")
        if ann["image_id"] not in image_ids:
            raise EvaluationError(f"{where}: image_id {ann['image_id']} is not in 'images'")
        if ann["category_id"] not in cat_ids:
            raise EvaluationError(f"{where}: category_id {ann['category_id']} is not in 'categories'")
        kp = ann["keypoints"]
        if not isinstance(kp, list) or len(kp) == 0 or len(kp) % 3:
            raise EvaluationError(f"{where}: 'keypoints' must be a flat [x, y, v]*K list")
        if k3 is None:
            k3 = len(kp)
        elif len(kp) != k3:
            raise EvaluationError(f"{where}: {len(kp) // 3} keypoints, earlier annotations have {k3 // 3}")
        if not (isinstance(ann["bbox"], list) and len(ann["bbox"]) == 4):
            raise EvaluationError(f"{where}: 'bbox' must be [x, y, w, h]")
    return gt, name


def num_keypoints_of(gt: dict) -> int:
    """K of a checked ground truth: from its annotations, else from its person category."""
    for ann in gt["annotations"]:
        return len(ann["keypoints"]) // 3
    for cat in gt["categories"]:
        if cat.get("keypoints"):
            return len(cat["keypoints"])
    raise EvaluationError("ground truth has neither annotations nor a category keypoint list: K unknown")


def has_crowd_index(gt: dict) -> bool:
    return bool(gt["images"]) and all(_finite_number(img.get("crowdIndex")) for img in gt["images"])


def detect_metric(gt: dict) -> str:
    """``crowdpose`` if every image carries a ``crowdIndex`` and K = 14, else ``coco``."""
    return "crowdpose" if has_crowd_index(gt) and num_keypoints_of(gt) == CROWDPOSE14.num_keypoints else "coco"


def crowd_bin(crowd_index: float) -> str:
    for label, upper in CROWD_BINS:
        if crowd_index < upper:
            return label
    raise ValueError(f"crowdIndex {crowd_index!r} is not a finite number")


def load_results(results: str | os.PathLike | Iterable[dict], gt: dict | None = None,
                 gt_name: str = IN_MEMORY) -> tuple[list[dict], str]:
    """Read and check a COCO results list (image_id, category_id, keypoints [x,y,s]*K, score).
    Returns ``(a deep copy of the list, name)``. With ``gt``: image ids, category ids and K must
    match it."""
    if isinstance(results, (str, os.PathLike)):
        name = str(results)
        res = _read_json(Path(results), "results")
    else:
        name, res = IN_MEMORY, results
    if not isinstance(res, list):
        if isinstance(res, Iterable) and not isinstance(res, dict):
            res = list(res)
        else:
            raise EvaluationError(f"{name}: results must be a JSON list of detections")
    image_ids = {img["id"] for img in gt["images"]} if gt is not None else None
    cat_ids = {c["id"] for c in gt["categories"]} if gt is not None else None
    k = num_keypoints_of(gt) if gt is not None else None
    for i, det in enumerate(res):
        where = f"{name}: results[{i}]"
        if not isinstance(det, dict):
            raise EvaluationError(f"{where}: not an object")
        for key in ("image_id", "category_id", "keypoints", "score"):
            if key not in det:
                raise EvaluationError(f"{where}: missing '{key}'")
        if not _finite_number(det["score"]):
            raise EvaluationError(f"{where}: score {det['score']!r} is not a finite number")
        kp = det["keypoints"]
        if not isinstance(kp, list) or len(kp) % 3 or not all(_finite_number(x) for x in kp):
            raise EvaluationError(f"{where}: 'keypoints' must be a flat list of finite [x, y, score]*K")
        if k is not None and len(kp) != 3 * k:
            raise EvaluationError(f"{where}: {len(kp) // 3} keypoints, but the ground truth {gt_name} has {k}")
        if image_ids is not None and det["image_id"] not in image_ids:
            raise EvaluationError(f"{where}: image_id {det['image_id']!r} is not in the ground truth {gt_name}")
        if cat_ids is not None and det["category_id"] not in cat_ids:
            raise EvaluationError(f"{where}: category_id {det['category_id']!r} is not in the ground truth {gt_name}")
    # evaluators add keys (id, area, bbox) to the dicts they are given: hand them copies
    return copy.deepcopy(res), name


def _sigmas_for(gt: dict, sigmas) -> np.ndarray:
    if sigmas is None:
        sigmas = skeleton_for_num_keypoints(num_keypoints_of(gt)).sigmas
    s = np.asarray(sigmas, dtype=np.float64)
    if s.shape != (num_keypoints_of(gt),):
        raise EvaluationError(f"{len(s)} sigmas for {num_keypoints_of(gt)} keypoints")
    return s


def _require_area(gt: dict, name: str) -> None:
    for i, ann in enumerate(gt["annotations"]):
        if not _finite_number(ann.get("area")):
            raise EvaluationError(
                f"{name}: annotations[{i}] (id {ann.get('id')}) has no 'area': the COCO metric needs "
                "each person's segment area (CrowdPose-style sets: use --metric crowdpose)")


def _require_crowd_index(gt: dict, name: str) -> None:
    for i, img in enumerate(gt["images"]):
        if not _finite_number(img.get("crowdIndex")):
            raise EvaluationError(f"{name}: images[{i}] (id {img.get('id')}) has no numeric 'crowdIndex': "
                                  "the CrowdPose metric splits images by it")


def _clean(value) -> float | None:
    v = float(value)
    return None if v == -1.0 or not math.isfinite(v) else v


def _named(names: tuple[str, ...], stats) -> dict[str, float | None]:
    stats = list(stats)
    if len(stats) != len(names):
        raise RuntimeError(f"evaluator returned {len(stats)} statistics, expected {len(names)} ({names})")
    return {n: _clean(s) for n, s in zip(names, stats)}


@contextlib.contextmanager
def _quiet():
    with contextlib.redirect_stdout(io.StringIO()):
        yield


@contextlib.contextmanager
def _gt_file(gt: dict, name: str):
    """A path holding ``gt``: the original file when there is one (the crowd evaluators re-read
    it to split images by crowdIndex), else a temporary copy."""
    if name != IN_MEMORY:
        yield name
        return
    with tempfile.TemporaryDirectory(prefix="posedet_eval_") as d:
        path = os.path.join(d, "gt.json")
        with open(path, "w") as f:
            json.dump(gt, f)
        yield path


# ----------------------------------------------------------------------------- evaluators

def _pycocotools_stats(gt: dict, dets: list[dict], sigmas: np.ndarray, img_ids=None) -> dict:
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with _quiet():
        coco_gt = COCO()
        coco_gt.dataset = copy.deepcopy(gt)
        coco_gt.createIndex()
        if dets:
            coco_dt = coco_gt.loadRes(copy.deepcopy(dets))
        else:
            # pycocotools' loadRes indexes anns[0] and crashes on an empty list: build the empty
            # result set directly, so the evaluation itself runs (0 where there is ground truth).
            coco_dt = COCO()
            coco_dt.dataset = {"images": list(gt["images"]), "categories": copy.deepcopy(gt["categories"]),
                               "annotations": []}
            coco_dt.createIndex()
        ev = COCOeval(coco_gt, coco_dt, iouType="keypoints")
        ev.params.kpt_oks_sigmas = sigmas
        if img_ids is not None:
            ev.params.imgIds = sorted(img_ids)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return _named(COCO_METRICS, ev.stats)


def evaluate_coco(gt_json, results, *, sigmas=None, crowd_bins: bool | None = None) -> dict:
    """COCO keypoint metrics (pycocotools). ``crowd_bins``: also AP_easy/AP_medium/AP_hard, the
    COCO AP over the images of each crowdIndex bin (None: when every image has a crowdIndex)."""
    gt, gt_name = load_gt(gt_json)
    dets, _ = load_results(results, gt, gt_name)
    _require_area(gt, gt_name)
    s = _sigmas_for(gt, sigmas)
    metrics = _pycocotools_stats(gt, dets, s)
    if crowd_bins is None:
        crowd_bins = has_crowd_index(gt)
    if crowd_bins:
        _require_crowd_index(gt, gt_name)
        for label, _ in CROWD_BINS:
            ids = [img["id"] for img in gt["images"] if crowd_bin(img["crowdIndex"]) == label]
            # a bin without images has no AP (xtcocotools reports -1 there too, stored as None)
            metrics[f"AP_{label}"] = _pycocotools_stats(gt, dets, s, ids)["AP"] if ids else None
    return metrics


def evaluate_crowdpose(gt_json, results, *, sigmas=None) -> dict:
    """CrowdPose metrics (xtcocotools ``keypoints_crowd``, CrowdPose sigmas, ``use_area=False``)."""
    from xtcocotools.coco import COCO
    from xtcocotools.cocoeval import COCOeval

    gt, gt_name = load_gt(gt_json)
    dets, _ = load_results(results, gt, gt_name)
    _require_crowd_index(gt, gt_name)
    s = _sigmas_for(gt, sigmas)
    with _gt_file(gt, gt_name) as path, _quiet():
        coco_gt = COCO(path)
        coco_dt = coco_gt.loadRes(dets)        # xtcocotools copes with an empty list
        ev = COCOeval(coco_gt, coco_dt, "keypoints_crowd", sigmas=s, use_area=False)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return _named(CROWDPOSE_METRICS, ev.stats)


def evaluate_faster(gt_json, results, metric: str = "auto", *, sigmas=None) -> dict:
    """The same protocols through faster-coco-eval (an independent implementation), for
    cross-checking. ``metric``: coco | crowdpose | auto.

    One protocol difference is bridged here: xtcocotools drops detections whose keypoint scores
    are all 0 before matching (``COCOeval._prepare``); faster-coco-eval keeps them. For the
    crowd metric they are dropped here too, so both see the same detections."""
    from faster_coco_eval import COCO, COCOeval_faster

    gt, gt_name = load_gt(gt_json)
    dets, _ = load_results(results, gt, gt_name)
    if metric == "auto":
        metric = detect_metric(gt)
    silent = lambda *a, **k: None  # noqa: E731
    if metric == "coco":
        _require_area(gt, gt_name)
        iou_type, names, use_area = "keypoints", _FASTER_NAMES, True
        s = _sigmas_for(gt, sigmas)
    elif metric == "crowdpose":
        _require_crowd_index(gt, gt_name)
        iou_type, names, use_area = "keypoints_crowd", _FASTER_CROWD_NAMES, False
        s = _sigmas_for(gt, sigmas)
        dets = [d for d in dets if any(v > 0 for v in d["keypoints"][2::3])]
    else:
        raise ValueError(f"unknown metric {metric!r}: coco, crowdpose or auto")
    with _quiet():
        coco_gt = COCO(copy.deepcopy(gt), print_function=silent)
        coco_dt = coco_gt.loadRes(copy.deepcopy(dets))
        ev = COCOeval_faster(coco_gt, coco_dt, iouType=iou_type, kpt_oks_sigmas=list(s),
                             use_area=use_area, print_function=silent)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
        stats = ev.stats_as_dict
    out = {ours: _clean(stats[theirs]) for theirs, ours in names.items()}
    if metric == "coco" and has_crowd_index(gt):
        for label, _ in CROWD_BINS:
            ids = [img["id"] for img in gt["images"] if crowd_bin(img["crowdIndex"]) == label]
            if not ids:
                out[f"AP_{label}"] = None
                continue
            with _quiet():
                ev = COCOeval_faster(COCO(copy.deepcopy(gt), print_function=silent),
                                     coco_gt.loadRes(copy.deepcopy(dets)), iouType=iou_type,
                                     kpt_oks_sigmas=list(s), use_area=True, print_function=silent)
                ev.params.imgIds = sorted(ids)
                ev.evaluate()
                ev.accumulate()
                ev.summarize()
            out[f"AP_{label}"] = _clean(ev.stats_as_dict["AP_all"])
    return out


EVALUATORS = ("official", "faster-coco-eval")


def evaluate(gt_json, results, metric: str = "auto", evaluator: str = "official", *, sigmas=None) -> dict:
    """Metrics plus provenance: ``{"metrics": {name: value}, "provenance": {...}}``.
    ``evaluator``: official (pycocotools for coco, xtcocotools for crowdpose) or faster-coco-eval."""
    gt, gt_name = load_gt(gt_json)
    dets, res_name = load_results(results, gt, gt_name)
    if metric == "auto":
        metric = detect_metric(gt)
    if metric not in ("coco", "crowdpose"):
        raise ValueError(f"unknown metric {metric!r}: coco, crowdpose or auto")
    if evaluator == "faster-coco-eval":
        package, metrics = evaluator, evaluate_faster(gt_json, dets, metric, sigmas=sigmas)
    elif evaluator == "official" and metric == "coco":
        package, metrics = "pycocotools", evaluate_coco(gt_json, dets, sigmas=sigmas)
    elif evaluator == "official":
        package, metrics = "xtcocotools", evaluate_crowdpose(gt_json, dets, sigmas=sigmas)
    else:
        raise ValueError(f"unknown evaluator {evaluator!r}: {EVALUATORS}")
    s = _sigmas_for(gt, sigmas)
    bins = {}
    if has_crowd_index(gt):
        for label, _ in CROWD_BINS:
            bins[label] = sum(1 for img in gt["images"] if crowd_bin(img["crowdIndex"]) == label)
    prov = {
        "gt": str(Path(gt_name).resolve()) if gt_name != IN_MEMORY else gt_name,
        "results": str(Path(res_name).resolve()) if res_name != IN_MEMORY else res_name,
        "metric": metric,
        "evaluator": package,
        "evaluator_version": _pkg_version(package),
        "iou_type": "keypoints_crowd" if metric == "crowdpose" else "keypoints",
        "use_area": metric != "crowdpose",
        "sigmas": [float(x) for x in s],
        "num_keypoints": num_keypoints_of(gt),
        "num_images": len(gt["images"]),
        "num_gt_persons": len(gt["annotations"]),
        "num_detections": len(dets),
        "images_per_crowd_bin": bins or None,
        "crowd_bin_edges": [0.2, 0.8] if bins else None,
    }
    return {"metrics": metrics, "provenance": prov}




def format_metrics(metrics: dict) -> str:
    return "  ".join(f"{k}={'n/a' if v is None else f'{v:.4f}'}" for k, v in metrics.items())


# ----------------------------------------------------------------------------- CLI

def add_arguments(parser) -> None:
    parser.add_argument("--gt", required=True, help="COCO-format keypoint ground-truth JSON")
    parser.add_argument("--results", required=True, help="COCO results JSON (image_id, category_id, keypoints, score)")
    parser.add_argument("--metric", choices=("auto", "coco", "crowdpose"), default="auto",
                        help="auto: crowdpose when every image has a crowdIndex and K=14, else coco")
    parser.add_argument("--evaluator", choices=tuple(EVALUATORS), default="official",
                        help="official: pycocotools (coco) / xtcocotools (crowdpose); "
                             "faster-coco-eval: independent cross-check")
    parser.add_argument("--out", required=True, help="metrics JSON to write")


def main(args) -> int:
    import sys
    try:
        out = evaluate(args.gt, args.results, metric=args.metric, evaluator=args.evaluator)
    except EvaluationError as e:
        print(f"posedet evaluate: error: {e}", file=sys.stderr)
        return 2
    write_json_atomic(args.out, out)
    p = out["provenance"]
    print(f"{p['metric']} ({p['evaluator']} {p['evaluator_version']}), {p['num_images']} images, "
          f"{p['num_detections']} detections: {format_metrics(out['metrics'])}")
    print(f"wrote {args.out}")
    return 0
