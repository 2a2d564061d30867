"""GT-upper-bound NMS study (posedet.upper_bound), both OKS protocols, and its figure (posedet.report.figures)."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from posedet import upper_bound as U
from posedet.oks_nms import iou_matrix, keypoint_box_area, keypoint_boxes, oks_eval
from posedet.skeletons import CROWDPOSE14

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
REC_THRS = np.linspace(0.0, 1.0, 101)   # COCO's recall thresholds


def ap_at_full_precision(recall: float) -> float:
    """AP of a ranking that is all true positives, reaching ``recall``: the fraction of COCO's
    101 recall thresholds that it reaches (precision 1 there, 0 beyond)."""
    return float(np.mean(REC_THRS <= recall))


def pose(points, v=2):
    return [c for x, y in points for c in (float(x), float(y), v)]


def person(ann_id, image_id, points, v=2):
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    return {"id": ann_id, "image_id": image_id, "category_id": 1, "iscrowd": 0,
            "num_keypoints": len(points), "keypoints": pose(points, v),
            "bbox": [min(xs) - 4, min(ys) - 4, max(xs) - min(xs) + 8, max(ys) - min(ys) + 8]}


def tiny_set() -> dict:
    """Three CrowdPose-like images: hard (an overlapping pair A/B), easy (one person),
    medium (two people far apart). B is A mirrored left-right inside A's box and shifted a bit:
    nearly the same keypoint box (IoU > 0.5) but no keypoint near its counterpart (OKS < 0.5)."""
    rng = np.random.default_rng(7)
    xs = np.concatenate([rng.uniform(105, 160, 7), rng.uniform(240, 295, 7)])
    ys = rng.uniform(100, 400, 14)
    a = list(zip(xs.round(1), ys.round(1)))
    b = [(round(400 - x + 12, 1), round(y + 8, 1)) for x, y in a]
    single = [(x + 300, y) for x, y in a]
    far1 = [(x * 0.5, y * 0.5) for x, y in a]
    far2 = [(x * 0.5 + 400, y * 0.5 + 200) for x, y in a]
    return {
        "images": [{"id": 1, "width": 800, "height": 600, "crowdIndex": 0.95},
                   {"id": 2, "width": 800, "height": 600, "crowdIndex": 0.05},
                   {"id": 3, "width": 800, "height": 600, "crowdIndex": 0.45}],
        "annotations": [person(11, 1, a), person(12, 1, b), person(21, 2, single),
                        person(31, 3, far1), person(32, 3, far2),
                        # no labelled keypoint: not a pose, not a detection (and ignored as GT)
                        {**person(33, 3, far1, v=0), "num_keypoints": 0}],
        "categories": [{"id": 1, "name": "person", "keypoints": list(CROWDPOSE14.keypoints), "skeleton": []}],
    }


def rows_by(result):
    return {(r["nms"], r["threshold"]): r for r in result["rows"]}


def test_overlapping_pair_iou_suppresses_oks_keeps(tmp_path):
    gt = tiny_set()
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(gt))
    # the premise: the pair's keypoint boxes overlap by IoU > 0.5, their OKS is < 0.5 either way
    pa = torch.tensor(gt["annotations"][0]["keypoints"], dtype=torch.float64).view(1, 14, 3)
    pb = torch.tensor(gt["annotations"][1]["keypoints"], dtype=torch.float64).view(1, 14, 3)
    iou = iou_matrix(keypoint_boxes(pa), keypoint_boxes(pb)).item()
    oks_ab = oks_eval(pa, pb, keypoint_box_area(pb), CROWDPOSE14.sigmas).item()
    oks_ba = oks_eval(pb, pa, keypoint_box_area(pa), CROWDPOSE14.sigmas).item()
    assert iou > 0.5 and max(oks_ab, oks_ba) < 0.5, (iou, oks_ab, oks_ba)

    res = U.run_upper_bound(path, [0.5, 1.0], progress=False, name="tiny")
    assert res["metric"] == "crowdpose" and res["provenance"]["evaluator"] == "xtcocotools"
    assert res["provenance"]["num_detections_in"] == 5
    assert res["provenance"]["num_gt_without_labelled_keypoints"] == 1
    rows = rows_by(res)

    iou5, oks5 = rows[("iou", 0.5)], rows[("oks", 0.5)]
    assert iou5["num_suppressed"] == 1 and iou5["num_suppressed_per_bin"] == {"easy": 0, "medium": 0, "hard": 1}
    assert oks5["num_suppressed"] == 0
    # IoU-NMS keeps 4 of the 5 scorable people, all correct: AP = AP at recall 4/5; the hard
    # image keeps 1 of 2 (xtcocotools rounds the bin APs to 4 decimals)
    assert iou5["AP"] == pytest.approx(ap_at_full_precision(4 / 5), abs=1e-12)
    assert iou5["AP_hard"] == pytest.approx(ap_at_full_precision(1 / 2), abs=1e-4)
    assert iou5["AP_easy"] == 1.0 and iou5["AP_medium"] == 1.0
    assert iou5["AR"] == pytest.approx(0.8)
    for key in ("AP", "AP50", "AP75", "AP_easy", "AP_medium", "AP_hard", "AR"):
        assert oks5[key] == pytest.approx(1.0), key
        assert rows[("iou", 1.0)][key] == rows[("oks", 1.0)][key] == pytest.approx(1.0), key
    assert res["provenance"]["num_evaluations"] == 2   # OKS@0.5, OKS@1.0 and IoU@1.0 keep the same set


def test_nms_on_gt_visits_in_annotation_order():
    gt = tiny_set()
    poses = torch.tensor([a["keypoints"] for a in gt["annotations"][:2]], dtype=torch.float64).view(2, 14, 3)
    assert U.nms_on_gt(poses, "iou", 0.5, CROWDPOSE14.sigmas) == [0]      # the first annotated person wins
    assert U.nms_on_gt(poses.flip(0), "iou", 0.5, CROWDPOSE14.sigmas) == [0]
    assert U.nms_on_gt(poses, "oks", 0.5, CROWDPOSE14.sigmas) == [0, 1]
    assert U.nms_on_gt(poses[:0], "oks", 0.5, CROWDPOSE14.sigmas) == []
    with pytest.raises(ValueError, match="unknown NMS kind"):
        U.nms_on_gt(poses, "soft", 0.5, CROWDPOSE14.sigmas)


def test_cli_writes_json_and_figure(tmp_path, capsys):
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(tiny_set()))
    out, fig = tmp_path / "res" / "ub.json", tmp_path / "fig" / "ub.png"
    ns = argparse.Namespace(gt=str(path), thresholds=[0.3, 0.5, 1.0], nms=["oks", "iou"], metric="auto",
                            evaluator="official", out=str(out), figure=str(fig), name="tiny", title=None,
                            protocol="eval")
    assert U.main(ns) == 0
    d = json.loads(out.read_text())
    assert d["name"] == "tiny" and d["thresholds"] == [0.3, 0.5, 1.0] and len(d["rows"]) == 6
    assert d["oks_protocol"] == "eval" and d["protocol"]["name"] == "eval"
    assert {"AP", "AP50", "AP75", "AP_easy", "AP_medium", "AP_hard"} <= set(d["metric_names"])
    assert fig.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "wrote" in capsys.readouterr().out
    ns.thresholds = [1.5]
    assert U.main(ns) == 2


def test_coco_like_set_uses_the_coco_metric_with_crowd_bins(tmp_path):
    gt = tiny_set()
    for ann in gt["annotations"]:
        ann["area"] = ann["bbox"][2] * ann["bbox"][3] * 0.6
    path = tmp_path / "tiny_coco.json"
    path.write_text(json.dumps(gt))
    res = U.run_upper_bound(path, [0.5], kinds=["iou"], metric="coco", progress=False)
    row = res["rows"][0]
    assert res["provenance"]["evaluator"] == "pycocotools"
    assert row["AP"] == pytest.approx(ap_at_full_precision(4 / 5)) and "APM" in row
    assert row["AP_hard"] == pytest.approx(ap_at_full_precision(1 / 2)) and row["AP_easy"] == pytest.approx(1.0)
    # and the independent evaluator agrees
    alt = U.run_upper_bound(path, [0.5], kinds=["iou"], metric="coco", evaluator="faster-coco-eval", progress=False)
    assert all(alt["rows"][0][k] == pytest.approx(row[k], abs=1e-9) for k in res["metric_names"])


def test_real_crowdpose_val_threshold_one_is_the_pipeline_check():
    path = SHARED_DATA / "crowdpose" / "crowdpose_val.json"
    if not path.is_file():
        pytest.skip(f"{path} not present")
    # one official evaluation (~10 s): both kinds at 1.0 keep the same poses and share it
    res = U.run_upper_bound(path, [1.0], progress=False, protocol="eval")
    p = res["provenance"]
    assert p["num_images"] == 2000 and p["num_gt_persons"] == 8527
    assert p["num_gt_without_labelled_keypoints"] == 499 and p["num_detections_in"] == 8028
    assert p["num_evaluations"] == 1
    for row in res["rows"]:
        assert row["num_suppressed"] == 0
        assert row["AP"] >= 0.999 and row["AP50"] == 1.0 and row["AR"] == 1.0
        assert min(row["AP_easy"], row["AP_medium"], row["AP_hard"]) >= 0.999
        # not exactly 1: in image 104045 two head/neck-only people (GT ignored) share a head point;
        # the first one's detection takes the second one's GT, whose own detection then matches
        # nothing at OKS >= 0.55 -> one false positive, at the same score as everything else
        assert row["AP"] < 1.0


# ----------------------------------------------------------------------------- the two OKS protocols

def _poses(*flat):
    return torch.tensor(flat, dtype=torch.float64).view(len(flat), 14, 3)


def test_default_protocol_is_the_authors_script():
    assert U.DEFAULT_PROTOCOL == "authors"
    import inspect
    assert inspect.signature(U.run_upper_bound).parameters["protocol"].default == "authors"
    parser = argparse.ArgumentParser()
    U.add_arguments(parser)
    assert parser.parse_args(["--gt", "x", "--out", "y"]).protocol == "authors"
    assert parser.parse_args(["--gt", "x", "--out", "y", "--protocol", "eval"]).protocol == "eval"


def test_authors_oks_is_training_oks_with_the_kept_pose_as_reference():
    gt = tiny_set()
    a = np.asarray(gt["annotations"][0]["keypoints"], float).reshape(14, 3)
    b = a.copy()
    b[:, :2] += np.linspace(1, 14, 14)[:, None]          # a different shift per keypoint
    b[7:, 2] = 0                                          # the candidate labels only its first 7 points
    ov = U.authors_overlap(_poses(a.ravel().tolist(), b.ravel().tolist()), "oks", CROWDPOSE14.sigmas)
    sig = np.asarray(CROWDPOSE14.sigmas)
    d2 = ((a[:, :2] - b[:, :2]) ** 2).sum(1)

    def oks(ref_vis, ref_xy):
        area = np.ptp(ref_xy[ref_vis, 0]) * np.ptp(ref_xy[ref_vis, 1])
        return np.exp(-d2 / ((2 * sig) ** 2 * area))[ref_vis].mean()   # no "/2"

    # [ref, cand]: ref a (all 14 labelled) -> over a's 14 points and a's area; ref b -> b's 7 and b's area
    assert ov[0, 1].item() == pytest.approx(oks(a[:, 2] > 0, a[:, :2]), rel=1e-9)
    assert ov[1, 0].item() == pytest.approx(oks(b[:, 2] > 0, b[:, :2]), rel=1e-9)
    # the evaluation OKS has the "/2": larger for the same pair
    e_ov = oks_eval(_poses(b.ravel().tolist()), _poses(a.ravel().tolist()), keypoint_box_area(_poses(a.ravel().tolist())),
                    CROWDPOSE14.sigmas).item()
    assert e_ov > ov[0, 1].item()


def test_authors_reference_asymmetry_decides_who_is_suppressed():
    gt = tiny_set()
    full = np.asarray(gt["annotations"][0]["keypoints"], float).reshape(14, 3)
    part = full.copy()
    part[3:, :] = 0                                       # only 3 labelled points, on top of full's
    p_then_f = _poses(part.ravel().tolist(), full.ravel().tolist())
    f_then_p = _poses(full.ravel().tolist(), part.ravel().tolist())
    s = CROWDPOSE14.sigmas
    # authors: the kept pose is the reference
    assert U.nms_on_gt(p_then_f, "oks", 0.5, s, "authors") == [0]       # part kept: full matches its 3 points
    assert U.nms_on_gt(f_then_p, "oks", 0.5, s, "authors") == [0, 1]    # full kept: part misses 11 of 14
    # eval: the candidate is the reference (its labelled points, its area)
    assert U.nms_on_gt(p_then_f, "oks", 0.5, s, "eval") == [0, 1]
    assert U.nms_on_gt(f_then_p, "oks", 0.5, s, "eval") == [0]


def test_authors_suppress_at_threshold_equality_eval_strictly_above():
    gt = tiny_set()
    a = gt["annotations"][0]["keypoints"]
    twins = _poses(a, a)
    s = CROWDPOSE14.sigmas
    assert U.nms_on_gt(twins, "oks", 1.0, s, "authors") == [0]        # OKS = 1 >= 1.0
    assert U.nms_on_gt(twins, "iou", 1.0, s, "authors") == [0]        # IoU = 1 >= 1.0
    assert U.nms_on_gt(twins, "oks", 1.0, s, "eval") == [0, 1]        # OKS = 1 is not > 1.0
    assert U.nms_on_gt(twins, "iou", 1.0, s, "eval") == [0, 1]
    with pytest.raises(ValueError, match="unknown protocol"):
        U.nms_on_gt(twins, "oks", 0.5, s, "coco")


def test_authors_leave_out_persons_whose_flags_sum_to_at_most_one(tmp_path):
    gt = tiny_set()
    one_occluded = [0.0] * 42
    one_occluded[0:3] = [300.0, 300.0, 1]
    one_visible = [0.0] * 42
    one_visible[0:3] = [500.0, 100.0, 2]
    gt["annotations"] += [{**person(22, 2, [(300, 300)]), "keypoints": one_occluded, "num_keypoints": 1},
                          {**person(23, 2, [(500, 100)]), "keypoints": one_visible, "num_keypoints": 1}]
    ids = lambda det: sorted(a["id"] for anns, _ in det.values() for a in anns)  # noqa: E731
    assert ids(U.gt_detections(gt, "authors")) == [11, 12, 21, 23, 31, 32]
    assert ids(U.gt_detections(gt, "eval")) == [11, 12, 21, 22, 23, 31, 32]
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(gt))
    res = U.run_upper_bound(path, [1.0], kinds=["oks"], progress=False)
    assert res["oks_protocol"] == "authors" and res["protocol"]["name"] == "authors"
    p = res["provenance"]
    assert p["num_detections_in"] == 6 and p["num_gt_left_out_by_protocol"] == 1
    assert p["num_gt_without_labelled_keypoints"] == 1
    assert "analyze_nms.py" in res["protocol"]["source"]


def test_real_crowdpose_val_authors_protocol_counts():
    path = SHARED_DATA / "crowdpose" / "crowdpose_val.json"
    if not path.is_file():
        pytest.skip(f"{path} not present")
    gt = json.loads(path.read_text())
    det = U.gt_detections(gt, "authors")
    # 8,527 persons: 499 without a labelled keypoint, 215 with a single occluded one
    assert sum(len(a) for a, _ in det.values()) == 8527 - 499 - 215
