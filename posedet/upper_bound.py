"""Ground-truth upper bound of OKS-NMS vs IoU-NMS (the paper's Figure 3; DESIGN.md).

Model-free: the ground-truth poses of each image are the detections (score 1 each, in annotation
order); greedy OKS-NMS or IoU-NMS (``iou_nms`` on the keypoint boxes of the labelled keypoints) runs
at each threshold, and what survives is scored against the full ground truth: the CrowdPose metric
(xtcocotools ``keypoints_crowd``) on CrowdPose-like sets (K=14, every image with a crowdIndex), else
the COCO metric (pycocotools; plus AP per crowd bin when the images carry a crowdIndex).

Two OKS-NMS protocols (``--protocol``):

* ``authors`` (default) — the script that produced the paper's Figure 3 (the authors'
  ``tools/analyze_nms.py``; DESIGN.md): the pose already kept is the reference — OKS over *its*
  labelled keypoints (v > 0), area = *its* keypoint box w·h, the training OKS
  e = d² / ((2σ)² · area) (no COCO "/2") — and a candidate is suppressed when OKS ≥ the threshold
  (IoU-NMS likewise suppresses when IoU ≥ the threshold). Persons whose visibility flags sum to
  ≤ 1 (no labelled keypoint, or a single occluded one) are not passed as detections (215 such
  single-point persons in CrowdPose val besides the 499 without any).
* ``eval`` — the evaluation OKS (``oks_nms``: COCO's "/2", the *candidate's* labelled keypoints and
  keypoint-box area, ``min_area=0``), suppress when OKS (IoU) > the threshold; every person with
  at least one labelled keypoint is a detection.

In both, persons with no labelled keypoint (all v = 0: 499 of the 8,527 in CrowdPose val, 106 of
them ``iscrowd``) are not poses and are not passed as detections: xtcocotools drops such detections
before matching anyway (``COCOeval._prepare``), faster-coco-eval would count them as false
positives. Persons with labelled points but ``num_keypoints == 0`` (CrowdPose counts body joints
only: head/neck-only people) are passed; the evaluators ignore their GT. The ground truth that the
survivors are scored against is always the full annotation file.

``posedet upper-bound --gt ANN.json [--protocol authors|eval] --thresholds 0.1 ... 1.0 --out M.json
[--figure F.png] [--name L]``
"""
from __future__ import annotations

import sys
import time
from collections import Counter

import torch
from tqdm import tqdm

from posedet.evaluate import (
    CROWD_BINS, EvaluationError, _require_area, _require_crowd_index, crowd_bin, detect_metric,
    evaluate_coco, evaluate_crowdpose, evaluate_faster, has_crowd_index, load_gt, num_keypoints_of,
    write_json_atomic,
)
from posedet.oks_nms import iou_matrix, iou_nms, keypoint_box_area, keypoint_boxes, oks_matrix, oks_nms
from posedet.skeletons import skeleton_for_num_keypoints

__all__ = ["NMS_KINDS", "PROTOCOLS", "DEFAULT_PROTOCOL", "DEFAULT_THRESHOLDS", "gt_detections",
           "nms_on_gt", "authors_overlap", "run_upper_bound", "add_arguments", "main"]

NMS_KINDS = ("oks", "iou")
PROTOCOLS = ("authors", "eval")
DEFAULT_PROTOCOL = "authors"
DEFAULT_THRESHOLDS = tuple(round(0.1 * i, 1) for i in range(1, 11))
MAX_DETS = 20   # maxDets of both keypoint evaluators: more detections per image are cut


def _is_detection(ann: dict, protocol: str) -> bool:
    flags = ann["keypoints"][2::3]
    if protocol == "authors":
        return sum(flags) > 1          # analyze_nms.py: persons whose flags sum to <= 1 are skipped
    return any(v > 0 for v in flags)


def gt_detections(gt: dict, protocol: str = DEFAULT_PROTOCOL) -> dict:
    """Per image (in ``images`` order): the annotations that the protocol passes as detections (eval:
    at least one labelled keypoint; authors: visibility flags summing to > 1), in annotation order,
    as ``(annotations, [N, K, 3] float64 tensor)``."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}: {PROTOCOLS}")
    by_image: dict = {img["id"]: [] for img in gt["images"]}
    for ann in gt["annotations"]:
        if _is_detection(ann, protocol):
            by_image[ann["image_id"]].append(ann)
    k = num_keypoints_of(gt)
    out = {}
    for img_id, anns in by_image.items():
        poses = torch.tensor([a["keypoints"] for a in anns], dtype=torch.float64).reshape(len(anns), k, 3)
        out[img_id] = (anns, poses)
    return out


def authors_overlap(poses: torch.Tensor, kind: str, sigmas) -> torch.Tensor:
    """[N, N] overlap of the authors' protocol: entry [r, c] is the overlap of candidate c with the
    kept reference r — OKS over r's labelled keypoints with r's keypoint-box area and no "/2"
    (training OKS), or the IoU of the two keypoint boxes."""
    visible = poses[..., 2] > 0
    if kind == "oks":
        ref_area = keypoint_box_area(poses, visible)
        # oks_matrix(pred, gt, ...) is [pred, gt] with gt the reference: transpose to [ref, cand]
        return oks_matrix(poses, poses, ref_area, sigmas, gt_visible=visible, scale=1.0).T
    if kind == "iou":
        boxes = keypoint_boxes(poses, visible)
        return iou_matrix(boxes, boxes)
    raise ValueError(f"unknown NMS kind {kind!r}: {NMS_KINDS}")


def _greedy_in_order(overlap: torch.Tensor, threshold: float) -> list[int]:
    """Greedy NMS visiting the poses in order (all scores 1): a kept pose r suppresses every later
    candidate c with ``overlap[r, c] >= threshold``."""
    sup = (overlap >= threshold).cpu()
    alive = torch.ones(overlap.shape[0], dtype=torch.bool)
    keep = []
    for i in range(overlap.shape[0]):
        if alive[i]:
            keep.append(i)
            alive &= ~sup[i]
            alive[i] = False
    return keep


def nms_on_gt(poses: torch.Tensor, kind: str, threshold: float, sigmas,
              protocol: str = DEFAULT_PROTOCOL) -> list[int]:
    """Indices (into ``poses``) that survive greedy NMS when every pose scores 1 (see the module
    docstring for the two protocols)."""
    if kind not in NMS_KINDS:
        raise ValueError(f"unknown NMS kind {kind!r}: {NMS_KINDS}")
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}: {PROTOCOLS}")
    if poses.shape[0] == 0:
        return []
    if protocol == "authors":
        return _greedy_in_order(authors_overlap(poses, kind, sigmas), threshold)
    scores = torch.ones(poses.shape[0], dtype=torch.float64)
    visible = poses[..., 2] > 0
    if kind == "oks":
        keep = oks_nms(poses, scores, threshold, sigmas, visible=visible, min_area=0.0)
    else:
        keep = iou_nms(keypoint_boxes(poses, visible), scores, threshold)
    return keep.tolist()


def _detection(ann: dict) -> dict:
    return {"image_id": ann["image_id"], "category_id": ann["category_id"],
            "keypoints": list(ann["keypoints"]), "score": 1.0}


def run_upper_bound(gt_json, thresholds=DEFAULT_THRESHOLDS, kinds=NMS_KINDS, *, metric: str = "auto",
                    evaluator: str = "official", name: str | None = None, progress: bool = True,
                    protocol: str = DEFAULT_PROTOCOL) -> dict:
    """The study on one annotation file; returns the JSON-ready result (one row per NMS kind and
    threshold, with every metric of the evaluator and the number of poses suppressed)."""
    t0 = time.perf_counter()
    gt, gt_name = load_gt(gt_json)
    if metric == "auto":
        metric = detect_metric(gt)
    if metric == "coco":
        _require_area(gt, gt_name)          # fail before the NMS work, naming the file
    elif metric == "crowdpose":
        _require_crowd_index(gt, gt_name)
    else:
        raise ValueError(f"unknown metric {metric!r}: coco, crowdpose or auto")
    k = num_keypoints_of(gt)
    sigmas = skeleton_for_num_keypoints(k).sigmas
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}: {PROTOCOLS}")
    per_image = gt_detections(gt, protocol)
    n_labelled = sum(1 for a in gt["annotations"] if any(v > 0 for v in a["keypoints"][2::3]))
    bins = {img["id"]: crowd_bin(img["crowdIndex"]) for img in gt["images"]} if has_crowd_index(gt) else None
    n_in = sum(len(a) for a, _ in per_image.values())
    n_bin_in = Counter(bins[i] for i, (a, _) in per_image.items() for _ in a) if bins else None

    if evaluator == "faster-coco-eval":
        package = "faster-coco-eval"
        score = lambda dets: evaluate_faster(gt_json, dets, metric)  # noqa: E731
    elif evaluator == "official":
        package = "xtcocotools" if metric == "crowdpose" else "pycocotools"
        score = (lambda dets: evaluate_crowdpose(gt_json, dets)) if metric == "crowdpose" \
            else (lambda dets: evaluate_coco(gt_json, dets))
    else:
        raise ValueError(f"unknown evaluator {evaluator!r}: official or faster-coco-eval")

    rows, cache = [], {}
    t_nms = t_eval = 0.0
    steps = [(kind, float(t)) for kind in kinds for t in thresholds]
    bar = tqdm(steps, desc=f"upper bound {name or gt_name} ({protocol})", unit="setting", disable=not progress,
               file=sys.stderr)
    for kind, thr in bar:
        bar.set_postfix_str(f"{kind}-NMS @ {thr:g}")
        ts = time.perf_counter()
        dets, kept_ids = [], []
        suppressed_bin: Counter = Counter()
        for img_id, (anns, poses) in per_image.items():
            keep = nms_on_gt(poses, kind, thr, sigmas, protocol)
            dets.extend(_detection(anns[i]) for i in sorted(keep))   # annotation order
            kept_ids.extend(anns[i]["id"] for i in keep)
            if bins is not None:
                suppressed_bin[bins[img_id]] += len(anns) - len(keep)
        t_nms += time.perf_counter() - ts
        key = frozenset(kept_ids)
        ts = time.perf_counter()
        if key not in cache:           # e.g. both kinds at 1.0 keep the same poses: score once
            cache[key] = score(dets)
        t_eval += time.perf_counter() - ts
        row = {"nms": kind, "threshold": thr, **cache[key],
               "num_detections_in": n_in, "num_kept": len(dets), "num_suppressed": n_in - len(dets)}
        if bins is not None:
            row["num_suppressed_per_bin"] = {label: suppressed_bin[label] for label, _ in CROWD_BINS}
        rows.append(row)
        bar.set_postfix_str(f"{kind}-NMS @ {thr:g}: AP {row['AP']:.4f}, suppressed {row['num_suppressed']}")
    bar.close()

    per_img_counts = [len(a) for a, _ in per_image.values()]
    over = sum(1 for c in per_img_counts if c > MAX_DETS)
    if over:
        print(f"posedet upper-bound: warning: {over} images of {gt_name} have more than {MAX_DETS} poses; "
              f"the evaluator scores only the first {MAX_DETS} of each, so AP < 1 even at threshold 1.0",
              file=sys.stderr)
    from importlib.metadata import version
    return {
        "name": name or gt_name,
        "study": "gt_upper_bound_nms",
        "metric": metric,
        "metric_names": [m for m in rows[0] if m not in ("nms", "threshold") and not m.startswith("num_")]
        if rows else [],
        "thresholds": [float(t) for t in thresholds],
        "nms_kinds": list(kinds),
        "rows": rows,
        "oks_protocol": protocol,
        "protocol": {
            "name": protocol,
            **(_AUTHORS_PROTOCOL if protocol == "authors" else _EVAL_PROTOCOL),
            "sigmas": list(sigmas),
            "crowd_bins": "easy < 0.2 <= medium < 0.8 <= hard (crowdIndex)" if bins else None,
        },
        "provenance": {
            "gt": gt_name,
            "evaluator": package,
            "evaluator_version": version(package),
            "num_images": len(gt["images"]),
            "num_gt_persons": len(gt["annotations"]),
            "num_gt_without_labelled_keypoints": len(gt["annotations"]) - n_labelled,
            "num_gt_left_out_by_protocol": n_labelled - n_in,
            "num_detections_in": n_in,
            "num_detections_in_per_bin": dict(n_bin_in) if n_bin_in else None,
            "images_over_max_dets": over,
            "num_evaluations": len(cache),
            "seconds_nms": round(t_nms, 2),
            "seconds_eval": round(t_eval, 2),
            "seconds_total": round(time.perf_counter() - t0, 2),
        },
    }


_AUTHORS_PROTOCOL = {
    "source": "the authors' tools/analyze_nms.py (the script behind the paper's Figure 3), DESIGN.md",
    "detections": "GT poses whose visibility flags sum to > 1, score 1, annotation order",
    "oks": "training OKS with the kept pose as reference: e = d^2 / ((2 sigma)^2 area), no '/2', over the "
           "kept pose's labelled (v>0) keypoints, area = its keypoint box w*h; suppress when OKS >= threshold",
    "iou": "IoU of the keypoint boxes (labelled keypoints); suppress when IoU >= threshold",
}
_EVAL_PROTOCOL = {
    "source": "the COCO evaluation OKS (pycocotools computeOks)",
    "detections": "GT poses with >= 1 labelled keypoint, score 1, annotation order",
    "oks": "posedet.oks_nms.oks_nms: COCO OKS (e = d^2 / (2 area (2 sigma)^2)) over the labelled "
           "(v>0) keypoints of the candidate, area = its keypoint box w*h, min_area 0; "
           "suppress when OKS > threshold",
    "iou": "posedet.oks_nms.iou_nms on the keypoint boxes (labelled keypoints); suppress when IoU > threshold",
}


def format_table(result: dict) -> str:
    cols = [c for c in ("AP", "AP50", "AP75", "AP_easy", "AP_medium", "AP_hard") if c in result["metric_names"]]
    lines = [f"{'nms':>4} {'thr':>4} " + " ".join(f"{c:>9}" for c in cols) + f" {'suppressed':>10}"]
    for r in result["rows"]:
        vals = " ".join(f"{'n/a':>9}" if r[c] is None else f"{r[c]:9.4f}" for c in cols)
        lines.append(f"{r['nms']:>4} {r['threshold']:4.2f} {vals} {r['num_suppressed']:10d}")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- CLI

def add_arguments(parser) -> None:
    parser.add_argument("--gt", required=True, help="COCO-format keypoint annotations (images not needed)")
    parser.add_argument("--thresholds", type=float, nargs="+", default=list(DEFAULT_THRESHOLDS),
                        help="NMS thresholds (default 0.1 ... 1.0)")
    parser.add_argument("--nms", nargs="+", choices=NMS_KINDS, default=list(NMS_KINDS), help="NMS kinds")
    parser.add_argument("--protocol", choices=PROTOCOLS, default=DEFAULT_PROTOCOL,
                        help="authors (default): the authors' analyze_nms.py (kept pose is the reference, "
                             "training OKS without /2, suppress at >= thr, persons with flag sum <= 1 "
                             "left out); eval: the COCO evaluation OKS of the candidate, suppress at > thr")
    parser.add_argument("--metric", choices=("auto", "coco", "crowdpose"), default="auto",
                        help="auto: crowdpose when every image has a crowdIndex and K=14, else coco")
    parser.add_argument("--evaluator", choices=("official", "faster-coco-eval"), default="official")
    parser.add_argument("--out", required=True, help="metrics JSON to write")
    parser.add_argument("--figure", help="PNG of the Figure 3 plot to write")
    parser.add_argument("--name", help="data-set label (JSON and figure title)")
    parser.add_argument("--title", help="figure title (default: derived from --name)")


def main(args) -> int:
    for t in args.thresholds:
        if not 0.0 <= t <= 1.0:
            print(f"posedet upper-bound: error: threshold {t} outside [0, 1]", file=sys.stderr)
            return 2
    try:
        result = run_upper_bound(args.gt, args.thresholds, args.nms, metric=args.metric,
                                 evaluator=args.evaluator, name=args.name,
                                 protocol=getattr(args, "protocol", DEFAULT_PROTOCOL))
    except EvaluationError as e:
        print(f"posedet upper-bound: error: {e}", file=sys.stderr)
        return 2
    write_json_atomic(args.out, result)
    print(format_table(result))
    p = result["provenance"]
    print(f"{p['num_images']} images, {p['num_detections_in']} GT poses as detections; "
          f"{p['num_evaluations']} evaluations ({p['evaluator']} {p['evaluator_version']}), "
          f"{p['seconds_total']:.1f} s")
    print(f"wrote {args.out}")
    if args.figure:
        from posedet.report.figures import plot_upper_bound
        title = args.title or (f"GT upper bound of OKS-NMS vs IoU-NMS: {result['name']} "
                               f"({result['oks_protocol']} protocol)")
        plot_upper_bound([result], args.figure, title)
        print(f"wrote {args.figure}")
    return 0
