"""Official metrics (posedet.evaluate): perfect predictions give 1, worse ones less, the official
evaluators (pycocotools / xtcocotools) and faster-coco-eval agree, bad input gives clear errors."""
from __future__ import annotations

import argparse
import copy
import json
from pathlib import Path

import numpy as np
import pytest

from posedet import evaluate as E
from posedet.skeletons import COCO17, CROWDPOSE14

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


# ----------------------------------------------------------------------------- fixtures

# (crowdIndex, [(w, h) of each person]) – crowd bins easy / medium / hard, COCO areas medium & large
IMAGES = [
    (0.05, [(60, 120)]),
    (0.15, [(150, 260), (40, 70)]),
    (0.30, [(90, 200), (100, 210), (30, 60)]),
    (0.55, [(120, 240), (110, 230)]),
    (0.85, [(100, 220), (95, 215), (105, 225)]),
    (1.70, [(80, 180), (85, 185), (90, 190), (70, 150)]),
]


def make_gt(k: int, seed: int = 0, with_area: bool = True, crowd_index: bool = True) -> dict:
    rng = np.random.default_rng(seed)
    images, anns = [], []
    for i, (ci, sizes) in enumerate(IMAGES):
        img = {"id": 100 + i, "file_name": f"{100 + i}.jpg", "width": 640, "height": 480}
        if crowd_index:
            img["crowdIndex"] = ci
        images.append(img)
        for w, h in sizes:
            x0, y0 = rng.uniform(0, 640 - w), rng.uniform(0, 480 - h)
            xy = rng.uniform([x0, y0], [x0 + w, y0 + h], size=(k, 2)).round(1)
            v = rng.choice([1, 2], size=k)
            v[rng.permutation(k)[: k // 5]] = 0
            xy[v == 0] = 0
            lab = xy[v > 0]
            bx0, by0 = lab.min(0) - 5
            bx1, by1 = lab.max(0) + 5
            ann = {"id": len(anns) + 1, "image_id": img["id"], "category_id": 1, "iscrowd": 0,
                   "num_keypoints": int((v > 0).sum()),
                   "bbox": [float(bx0), float(by0), float(bx1 - bx0), float(by1 - by0)],
                   "keypoints": [float(c) for p, vv in zip(xy, v) for c in (p[0], p[1], vv)]}
            if with_area:
                ann["area"] = float(w * h * 0.6)
            anns.append(ann)
    names = CROWDPOSE14.keypoints if k == 14 else COCO17.keypoints
    return {"images": images, "annotations": anns,
            "categories": [{"id": 1, "name": "person", "keypoints": list(names), "skeleton": []}]}


def as_predictions(gt: dict, jitter: float = 0.0, seed: int = 1, only_images=None, scores="random",
                   unlabelled: bool = False) -> list[dict]:
    """GT poses as a results list; ``jitter`` is the keypoint noise in units of the person's size.
    Persons without a labelled keypoint are left out unless ``unlabelled`` (then their keypoint
    scores are 0)."""
    rng = np.random.default_rng(seed)
    out = []
    for ann in gt["annotations"]:
        kp = np.asarray(ann["keypoints"], dtype=np.float64).reshape(-1, 3)
        if not unlabelled and not (kp[:, 2] > 0).any():
            continue
        size = np.sqrt(max(ann["bbox"][2] * ann["bbox"][3], 1.0))
        if only_images is None or ann["image_id"] in only_images:
            kp[:, :2] += rng.normal(0, jitter * size, size=kp[:, :2].shape)
        labelled = kp[:, 2] > 0
        kp[:, 2] = 1.0 if labelled.any() else 0.0
        out.append({"image_id": ann["image_id"], "category_id": ann["category_id"],
                    "keypoints": kp.ravel().round(2).tolist(),
                    "score": float(rng.uniform(0.3, 1.0)) if scores == "random" else 1.0})
    return out


def write(tmp_path: Path, name: str, obj) -> Path:
    p = tmp_path / name
    p.write_text(json.dumps(obj))
    return p


def assert_agree(a: dict, b: dict, tol: float = 1e-6):
    assert a.keys() == b.keys()
    for key in a:
        if a[key] is None or b[key] is None:
            assert a[key] is None and b[key] is None, key
        else:
            assert abs(a[key] - b[key]) <= tol, (key, a[key], b[key])


# ----------------------------------------------------------------------------- perfect & perturbed

def test_crowdpose_predictions_equal_gt_give_one(tmp_path):
    gt = make_gt(14)
    m = E.evaluate_crowdpose(write(tmp_path, "gt.json", gt), as_predictions(gt))
    assert list(m) == list(E.CROWDPOSE_METRICS)
    assert all(v == pytest.approx(1.0, abs=1e-12) for v in m.values()), m
    # in-memory GT goes through a temporary file (xtcocotools re-reads it for the crowd split)
    assert E.evaluate_crowdpose(gt, as_predictions(gt)) == m


def test_coco_predictions_equal_gt_give_one():
    gt = make_gt(17)
    m = E.evaluate_coco(gt, as_predictions(gt))
    assert list(m) == list(E.COCO_METRICS) + ["AP_easy", "AP_medium", "AP_hard"]
    assert all(v == pytest.approx(1.0, abs=1e-12) for v in m.values()), m
    m = E.evaluate_coco(make_gt(17, crowd_index=False), as_predictions(make_gt(17, crowd_index=False)))
    assert list(m) == list(E.COCO_METRICS) and all(v == pytest.approx(1.0) for v in m.values())


def test_perturbed_predictions_score_less_and_metrics_land_under_their_names(tmp_path):
    gt = make_gt(14)
    gt_path = write(tmp_path, "gt.json", gt)
    hard = {img["id"] for img in gt["images"] if img["crowdIndex"] >= 0.8}
    m = E.evaluate_crowdpose(gt_path, as_predictions(gt, jitter=0.06, only_images=hard))
    # only the hard images are perturbed: the bins prove the names follow xtcocotools' order
    assert m["AP_easy"] == 1.0 and m["AP_medium"] == 1.0 and m["AP_hard"] < 0.9
    assert m["AP"] < 1.0 and m["AP75"] <= m["AP50"] and m["AR"] >= m["AP"]
    worse = E.evaluate_crowdpose(gt_path, as_predictions(gt, jitter=0.06))
    assert worse["AP"] < m["AP"] and worse["AP_easy"] < 1.0

    gt17 = make_gt(17)
    c = E.evaluate_coco(gt17, as_predictions(gt17, jitter=0.04))
    assert all(0.0 <= v <= 1.0 for v in c.values()), c
    assert c["AP"] < 1.0 and c["AP75"] < 1.0 and c["APM"] < 1.0 and c["AP_hard"] < 1.0, c
    assert c["AP50"] >= c["AP"] >= 0.0 and c["AR"] >= c["AP"]


def test_empty_results_give_zeros(tmp_path):
    gt = make_gt(14)
    gt_path = write(tmp_path, "gt.json", gt)
    for m in (E.evaluate_crowdpose(gt_path, []), E.evaluate_faster(gt_path, [], "crowdpose"),
              E.evaluate_coco(gt_path, []), E.evaluate_faster(gt_path, [], "coco")):
        assert m and all(v == 0.0 for v in m.values()), m


# ----------------------------------------------------------------------------- cross-check

def test_evaluators_agree_on_fixture(tmp_path):
    for k in (14, 17):
        gt = make_gt(k, seed=k)
        gt_path = write(tmp_path, f"gt{k}.json", gt)
        for jitter in (0.02, 0.08):
            preds = as_predictions(gt, jitter=jitter, seed=k)
            assert_agree(E.evaluate_coco(gt_path, preds), E.evaluate_faster(gt_path, preds, "coco"))
            if k == 14:
                assert_agree(E.evaluate_crowdpose(gt_path, preds), E.evaluate_faster(gt_path, preds, "crowdpose"))


@pytest.mark.parametrize("rel, metric", [("samples/coco/test_coco.json", "coco"),
                                         ("samples/crowdpose/test_crowdpose.json", "crowdpose")])
def test_evaluators_agree_on_real_samples(rel, metric):
    path = SHARED_DATA / rel
    if not path.is_file():
        pytest.skip(f"{path} not present")
    gt = json.loads(path.read_text())
    assert E.detect_metric(gt) == metric
    official = E.evaluate_coco if metric == "coco" else E.evaluate_crowdpose
    for jitter in (0.0, 0.03, 0.1):
        preds = as_predictions(gt, jitter=jitter)
        m = official(path, preds)
        assert_agree(m, E.evaluate_faster(path, preds, metric))
        if jitter == 0.0:
            assert m["AP"] == pytest.approx(1.0)


def test_evaluators_agree_on_real_crowdpose_val(tmp_path):
    path = SHARED_DATA / "crowdpose" / "crowdpose_val.json"
    if not path.is_file():
        pytest.skip(f"{path} not present")
    full = json.loads(path.read_text())
    # every 6th image (333 of 2,000; all three crowd bins) keeps the test fast
    keep = {img["id"] for img in full["images"][::6]}
    gt = {**full, "images": [i for i in full["images"] if i["id"] in keep],
          "annotations": [a for a in full["annotations"] if a["image_id"] in keep]}
    gt_path = write(tmp_path, "crowdpose_val_subset.json", gt)
    preds = as_predictions(gt, jitter=0.03, unlabelled=True)
    # persons without labelled keypoints come with all-zero keypoint scores: xtcocotools drops
    # such detections and evaluate_faster drops them too; some carry score 1 instead (false
    # positives at (0, 0) for both)
    for p in preds[::7]:
        p["keypoints"][2::3] = [1.0] * 14
    m = E.evaluate_crowdpose(gt_path, preds)
    assert 0.3 < m["AP"] < 1.0 and all(m[f"AP_{b}"] is not None for b in ("easy", "medium", "hard"))
    assert_agree(m, E.evaluate_faster(gt_path, preds, "crowdpose"))


# ----------------------------------------------------------------------------- CLI, provenance, errors

def _cli(tmp_path, gt, results, metric="auto", evaluator="official"):
    out = tmp_path / "sub" / "metrics.json"
    ns = argparse.Namespace(gt=str(gt), results=str(results), metric=metric, evaluator=evaluator, out=str(out))
    return E.main(ns), out


def test_cli_writes_metrics_with_provenance(tmp_path, capsys):
    gt = make_gt(14)
    gt_path = write(tmp_path, "gt.json", gt)
    res_path = write(tmp_path, "res.json", as_predictions(gt, jitter=0.03))
    rc, out = _cli(tmp_path, gt_path, res_path)
    assert rc == 0
    d = json.loads(out.read_text())
    assert set(d["metrics"]) == set(E.CROWDPOSE_METRICS)
    p = d["provenance"]
    assert p["metric"] == "crowdpose" and p["evaluator"] == "xtcocotools" and p["evaluator_version"]
    assert p["gt"] == str(gt_path.resolve()) and p["results"] == str(res_path.resolve())
    assert p["num_images"] == 6 and p["num_detections"] == p["num_gt_persons"] == 15
    assert p["images_per_crowd_bin"] == {"easy": 2, "medium": 2, "hard": 2}
    assert not list(out.parent.glob(".*tmp"))          # atomic write leaves no temporary behind
    rc, out2 = _cli(tmp_path, gt_path, res_path, metric="coco", evaluator="faster-coco-eval")
    d2 = json.loads(out2.read_text())
    assert rc == 0 and d2["provenance"]["evaluator"] == "faster-coco-eval" and "APM" in d2["metrics"]
    assert "crowdpose" in capsys.readouterr().out


def test_clear_errors_name_the_file(tmp_path, capsys):
    gt = make_gt(14)
    gt_path = write(tmp_path, "gt.json", gt)
    res_path = write(tmp_path, "res.json", as_predictions(gt))

    rc, _ = _cli(tmp_path, tmp_path / "missing_gt.json", res_path)
    assert rc == 2 and "missing_gt.json: ground-truth file not found" in capsys.readouterr().err
    bad = tmp_path / "broken.json"
    bad.write_text("{not json")
    with pytest.raises(E.EvaluationError, match="broken.json: ground-truth file is not valid JSON"):
        E.evaluate(bad, res_path)
    with pytest.raises(E.EvaluationError, match="broken.json: results file is not valid JSON"):
        E.evaluate(gt_path, bad)
    with pytest.raises(E.EvaluationError, match="nope.json: results file not found"):
        E.evaluate(gt_path, tmp_path / "nope.json")

    preds17 = as_predictions(make_gt(17))
    with pytest.raises(E.EvaluationError, match=r"res17.json: results\[0\]: 17 keypoints, but the ground truth .*gt.json has 14"):
        E.evaluate(gt_path, write(tmp_path, "res17.json", preds17))
    stray = as_predictions(gt)
    stray[3]["image_id"] = 999
    with pytest.raises(E.EvaluationError, match=r"stray.json: results\[3\]: image_id 999 is not in the ground truth"):
        E.evaluate(gt_path, write(tmp_path, "stray.json", stray))
    with pytest.raises(E.EvaluationError, match="must be a JSON list"):
        E.evaluate(gt_path, write(tmp_path, "obj.json", {"a": 1}))

    no_area = make_gt(14, with_area=False)
    na = write(tmp_path, "no_area.json", no_area)
    with pytest.raises(E.EvaluationError, match=r"no_area.json: annotations\[0\] \(id 1\) has no 'area'"):
        E.evaluate(na, as_predictions(no_area), metric="coco")
    ragged = copy.deepcopy(gt)
    ragged["annotations"][2]["keypoints"] = ragged["annotations"][2]["keypoints"][:-3]
    with pytest.raises(E.EvaluationError, match=r"ragged.json: annotations\[2\] \(id 3\): 13 keypoints"):
        E.evaluate(write(tmp_path, "ragged.json", ragged), [])
    no_ci = make_gt(14, crowd_index=False)
    assert E.detect_metric(no_ci) == "coco"
    with pytest.raises(E.EvaluationError, match="has no numeric 'crowdIndex'"):
        E.evaluate_crowdpose(no_ci, [])
