"""OKS and NMS (posedet.oks_nms) against pycocotools and against plain Python reference loops."""
from __future__ import annotations

import contextlib
import io
import math
import random

import numpy as np
import pytest
import torch
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from posedet.oks_nms import (
    greedy_nms, iou_matrix, iou_nms, keypoint_box_area, keypoint_boxes, oks_eval, oks_matrix,
    oks_nms, oks_train,
)
from posedet.skeletons import COCO17, CROWDPOSE14


# ----------------------------------------------------------------------------- helpers

def random_poses(gen: torch.Generator, n: int, k: int, min_visible: int = 1) -> torch.Tensor:
    """[n, k, 3] poses around random centres; v in {0, 1, 2}, at least ``min_visible`` labelled."""
    centre = torch.rand(n, 1, 2, generator=gen, dtype=torch.float64) * 400 + 50
    spread = torch.rand(n, 1, 2, generator=gen, dtype=torch.float64) * 120 + 5
    xy = centre + (torch.rand(n, k, 2, generator=gen, dtype=torch.float64) - 0.5) * spread
    v = torch.randint(0, 3, (n, k), generator=gen).to(torch.float64)
    for i in range(n):
        if int((v[i] > 0).sum()) < min_visible:
            idx = torch.randperm(k, generator=gen)[:min_visible]
            v[i, idx] = 2
    return torch.cat([xy, v[..., None]], dim=-1)


def pycocotools_oks(gt_poses: torch.Tensor, gt_areas, dt_poses: torch.Tensor, sigmas) -> np.ndarray:
    """ious[d, g] from pycocotools' own ``COCOeval.computeOks`` on a one-image COCO set."""
    k = gt_poses.shape[1]
    gt = {
        "images": [{"id": 1, "width": 1000, "height": 1000}],
        "categories": [{"id": 1, "name": "person", "keypoints": [str(i) for i in range(k)], "skeleton": []}],
        "annotations": [],
    }
    for j, (p, a) in enumerate(zip(gt_poses.tolist(), gt_areas)):
        xs = [x for x, y, v in p if v > 0]
        ys = [y for x, y, v in p if v > 0]
        gt["annotations"].append({
            "id": j + 1, "image_id": 1, "category_id": 1, "iscrowd": 0, "area": float(a),
            "num_keypoints": sum(1 for _, _, v in p if v > 0),
            "bbox": [min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)],
            "keypoints": [c for kp in p for c in kp],
        })
    # strictly decreasing scores keep the detections in the given order after pycocotools' sort
    dts = [{"image_id": 1, "category_id": 1, "score": 1.0 - 0.01 * i,
            "keypoints": [c for x, y in p for c in (x, y, 1.0)]}
           for i, p in enumerate(dt_poses[..., :2].tolist())]
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = gt
        coco_gt.createIndex()
        coco_dt = coco_gt.loadRes(dts)
        ev = COCOeval(coco_gt, coco_dt, iouType="keypoints")
        ev.params.kpt_oks_sigmas = np.asarray(sigmas, dtype=np.float64)
        ev._prepare()
        return np.asarray(ev.computeOks(1, 1))


def ref_iou(a, b) -> float:
    iw = min(a[2], b[2]) - max(a[0], b[0])
    ih = min(a[3], b[3]) - max(a[1], b[1])
    inter = max(iw, 0.0) * max(ih, 0.0)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def ref_oks(pred, ref, ref_area, sigmas) -> float:
    """COCO OKS of ``pred`` measured against ``ref`` (ref's labelled keypoints, ref's area)."""
    total, n = 0.0, 0
    for (px, py, *_), (gx, gy, gv), s in zip(pred, ref, sigmas):
        if gv > 0:
            d2 = (px - gx) ** 2 + (py - gy) ** 2
            total += math.exp(-d2 / (2.0 * max(ref_area, np.finfo(np.float64).eps) * (2 * s) ** 2))
            n += 1
    return total / n if n else 0.0


def ref_keypoint_box(pose):
    pts = [(x, y) for x, y, v in pose if v > 0]
    if not pts:
        return [0.0, 0.0, 0.0, 0.0]
    xs, ys = zip(*pts)
    return [min(xs), min(ys), max(xs), max(ys)]


def ref_greedy(n: int, scores: list[float], overlap, threshold: float) -> list[int]:
    """Plain greedy NMS: visit by descending score (ties: lower index first), keep a candidate
    unless an already kept one overlaps it by more than the threshold. ``overlap(kept, cand)``."""
    order = sorted(range(n), key=lambda i: -scores[i])  # Python's sort is stable
    keep: list[int] = []
    for cand in order:
        if all(overlap(kept, cand) <= threshold for kept in keep):
            keep.append(cand)
    return keep


# ----------------------------------------------------------------------------- OKS

@pytest.mark.parametrize("skeleton", [COCO17, CROWDPOSE14], ids=lambda s: s.name)
def test_oks_eval_matches_pycocotools_computeOks(skeleton):
    gen = torch.Generator().manual_seed(0)
    k = skeleton.num_keypoints
    for trial in range(5):
        gt = random_poses(gen, 6, k, min_visible=1 + trial)
        # detections: jittered copies of the GT (high OKS) plus unrelated poses (low OKS)
        near = gt[:4].clone()
        near[..., :2] += torch.randn(4, k, 2, generator=gen, dtype=torch.float64) * 6
        dt = torch.cat([near, random_poses(gen, 5, k)], dim=0)
        areas = (torch.rand(6, generator=gen, dtype=torch.float64) * 2e4 + 200).tolist()
        ours = oks_eval(dt, gt, torch.tensor(areas, dtype=torch.float64), skeleton.sigmas)
        theirs = pycocotools_oks(gt, areas, dt, skeleton.sigmas)
        assert ours.shape == theirs.shape == (9, 6)
        np.testing.assert_allclose(ours.numpy(), theirs, rtol=1e-12, atol=1e-12)
        assert ours.max() > 0.5 and ours.min() < 0.1  # the comparison covers both regimes


def test_oks_train_is_box_area_without_the_half():
    gen = torch.Generator().manual_seed(1)
    k = CROWDPOSE14.num_keypoints
    gt = random_poses(gen, 5, k)
    dt = gt.clone()
    dt[..., :2] += torch.randn(5, k, 2, generator=gen, dtype=torch.float64) * 8
    wh = (torch.rand(5, generator=gen, dtype=torch.float64) * 1e4 + 100)
    ours = oks_train(dt, gt, wh, CROWDPOSE14.sigmas)
    # e = d² / (w·h · (2σ)²)  ==  COCO's d² / (2 · area · (2σ)²) with area = w·h / 2
    theirs = pycocotools_oks(gt, (wh / 2).tolist(), dt, CROWDPOSE14.sigmas)
    np.testing.assert_allclose(ours.numpy(), theirs, rtol=1e-12, atol=1e-12)
    assert torch.all(ours < oks_eval(dt, gt, wh, CROWDPOSE14.sigmas) + 1e-15)


def test_oks_edge_cases():
    sig = CROWDPOSE14.sigmas
    gen = torch.Generator().manual_seed(2)
    p = random_poses(gen, 3, 14)
    p[2, :, 2] = 0                                          # a GT with no labelled keypoint
    m = oks_eval(p, p, keypoint_box_area(p), sig)
    assert torch.allclose(m.diagonal()[:2], torch.ones(2, dtype=m.dtype))
    assert torch.all(m[:, 2] == 0)                          # documented: 0, not pycocotools' box fallback
    z = oks_eval(p[:1], p[:1], torch.zeros(1, dtype=torch.float64), sig)   # zero area: finite
    assert torch.isfinite(z).all() and z.item() == 1.0
    assert oks_matrix(p[:0], p, keypoint_box_area(p), sig).shape == (0, 3)


def test_keypoint_boxes_use_labelled_points_only():
    pose = torch.tensor([[[10., 20., 2.], [30., 5., 1.], [500., 500., 0.]],
                         [[0., 0., 0.], [0., 0., 0.], [0., 0., 0.]]])
    assert keypoint_boxes(pose).tolist() == [[10., 5., 30., 20.], [0., 0., 0., 0.]]
    assert keypoint_box_area(pose).tolist() == [300.0, 0.0]


# ----------------------------------------------------------------------------- NMS

def _random_nms_case(rng: random.Random, gen: torch.Generator, k: int):
    n = rng.randint(0, 14)
    poses = random_poses(gen, n, k) if n else torch.zeros(0, k, 3, dtype=torch.float64)
    if n >= 3:
        # crowd the poses together so that overlaps span the whole [0, 1] range
        poses[..., :2] = poses[..., :2] * 0.3 + 100
        poses[1] = poses[0]                                 # an exact duplicate
        poses[2, :, 2] = 0
        poses[2, rng.randrange(k), 2] = 2                   # a single labelled point: degenerate box
    if n >= 5:
        poses[4, :, 2] = 0                                  # no labelled keypoint at all
    # ties: scores from a small set of values
    scores = torch.tensor([rng.choice([0.9, 0.5, 0.5, 0.3, 1.0]) for _ in range(n)], dtype=torch.float64)
    return poses, scores


def test_oks_nms_matches_reference_loop():
    rng, gen = random.Random(3), torch.Generator().manual_seed(3)
    sig = CROWDPOSE14.sigmas
    suppressed_any = 0
    for case in range(150):
        poses, scores = _random_nms_case(rng, gen, 14)
        thr = rng.choice([0.0, 0.1, 0.3, 0.5, 0.7, 0.9, 1.0, rng.random()])
        min_area = rng.choice([0.0, 32.0 ** 2])
        got = oks_nms(poses, scores, thr, sig, min_area=min_area).tolist()
        plist = poses.tolist()
        areas = [max((b[2] - b[0]) * (b[3] - b[1]), min_area) for b in map(ref_keypoint_box, plist)]
        # library convention: the candidate plays the GT role (its labelled points, its area)
        want = ref_greedy(len(plist), scores.tolist(),
                          lambda kept, cand: ref_oks(plist[kept], plist[cand], areas[cand], sig), thr)
        assert got == want, (case, thr)
        suppressed_any += len(want) < len(plist)
    assert suppressed_any > 30


def test_iou_nms_matches_reference_loop():
    rng, gen = random.Random(4), torch.Generator().manual_seed(4)
    suppressed_any = 0
    for case in range(150):
        poses, scores = _random_nms_case(rng, gen, 17)
        thr = rng.choice([0.0, 0.1, 0.3, 0.5, 0.7, 0.9, 1.0, rng.random()])
        boxes = keypoint_boxes(poses)
        if len(boxes) >= 7:
            boxes[6] = torch.tensor([50.0, 60.0, 50.0, 90.0])   # zero width
        got = iou_nms(boxes, scores, thr).tolist()
        blist = boxes.tolist()
        want = ref_greedy(len(blist), scores.tolist(), lambda a, b: ref_iou(blist[a], blist[b]), thr)
        assert got == want, (case, thr)
        # and the generic greedy pass on the IoU matrix agrees with torchvision's kernel
        assert greedy_nms(iou_matrix(boxes, boxes), scores, thr).tolist() == want
        suppressed_any += len(want) < len(blist)
    assert suppressed_any > 30


def test_threshold_one_keeps_everything_even_duplicates():
    gen = torch.Generator().manual_seed(5)
    poses = random_poses(gen, 6, 14)
    poses[1] = poses[0]
    scores = torch.ones(6, dtype=torch.float64)
    assert oks_nms(poses, scores, 1.0, CROWDPOSE14.sigmas).tolist() == list(range(6))
    assert iou_nms(keypoint_boxes(poses), scores, 1.0).tolist() == list(range(6))


def test_threshold_zero_keeps_only_non_overlapping():
    sig = CROWDPOSE14.sigmas
    base = torch.tensor([[x, y, 2.0] for x, y in zip(range(0, 140, 10), range(0, 280, 20))], dtype=torch.float64)
    far = base.clone()
    far[:, :2] += 10_000                                    # OKS underflows to exactly 0, IoU 0
    touching = base.clone()
    touching[:, 0] += 130                                   # boxes share an edge: IoU 0, OKS > 0
    poses = torch.stack([base, far, touching])
    scores = torch.tensor([0.9, 0.8, 0.7], dtype=torch.float64)
    assert oks_nms(poses, scores, 0.0, sig).tolist() == [0, 1]
    assert iou_nms(keypoint_boxes(poses), scores, 0.0).tolist() == [0, 1, 2]


def test_empty_inputs():
    e = torch.zeros(0, 14, 3)
    assert oks_nms(e, torch.zeros(0), 0.5, CROWDPOSE14.sigmas).numel() == 0
    assert iou_nms(torch.zeros(0, 4), torch.zeros(0), 0.5).numel() == 0
