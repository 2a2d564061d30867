import math

import pytest
import torch

from posedet.decode import (decode_candidates, merge_candidates, postprocess, rescale_candidates,
                            to_coco_results)
from posedet.grid import grid_points, keypoints_to_offsets
from posedet.skeletons import COCO17
from posedet.targets import assign_coarse, level_starts

K = 17
STRIDES = [8, 16, 32, 64]
IMG = 256


def sizes(img=IMG, strides=STRIDES):
    return [(math.ceil(img / s), math.ceil(img / s)) for s in strides]


def person(x0, y0, side):
    kp = torch.zeros(K, 3)
    g = torch.linspace(0, 1, K)
    kp[:, 0] = x0 + side * g
    kp[:, 1] = y0 + side * torch.sin(3 * g).abs()
    kp[:, 2] = 2
    return kp


def gts():
    # three persons on different levels: 40 px (s8), 90 px (s16), 150 px (s32)
    return [torch.stack([person(10, 10, 40), person(150, 20, 90), person(60, 100, 150)])]


def perfect_outputs(gt_list, strides=STRIDES, img=IMG, split_refine=False, seed=0):
    """cls logit +8 at the coarse positives, −8 elsewhere; offsets that decode to the GT."""
    gen = torch.Generator().manual_seed(seed)
    sz = sizes(img, strides)
    ca = assign_coarse(gt_list, strides, sz)
    starts = level_starts(sz)
    coarse, refine, cls = [], [], []
    for l, (s, (h, w)) in enumerate(zip(strides, sz)):
        pts = grid_points(h, w, s)
        tgt = ca["target_xy"][:, starts[l]:starts[l + 1]]
        off = keypoints_to_offsets(tgt, pts[None].expand(tgt.shape[0], -1, -1), s)
        off = off.transpose(1, 2).reshape(-1, 2 * K, h, w)
        if split_refine:
            r = torch.randn(off.shape, generator=gen)
            coarse.append(off - r)
            refine.append(r)
        else:
            coarse.append(off)
        pos = ca["pos"][:, starts[l]:starts[l + 1]].reshape(-1, 1, h, w)
        cls.append(torch.where(pos, torch.tensor(8.0), torch.tensor(-8.0)))
    return {"strides": strides, "coarse": coarse, "refine": refine if split_refine else None,
            "cls": cls, "heatmaps": None}


def match_sets(pred_xy, gt_xy):
    assert pred_xy.shape == gt_xy.shape
    d = (pred_xy[:, None] - gt_xy[None]).norm(dim=-1).amax(-1)       # [M, N]
    assert (d.amin(1) < 1e-3).all() and (d.amin(0) < 1e-3).all()


def test_offsets_from_gt_decode_exactly():
    g = gts()
    for split in (False, True):
        out = perfect_outputs(g, split_refine=split)
        cands = decode_candidates(out)
        assert len(cands) == 1
        c = cands[0]
        assert c["keypoints"].shape == (3, K, 2) and c["scores"].shape == (3,)
        assert sorted(c["levels"].tolist()) == [0, 1, 2]
        match_sets(c["keypoints"], g[0][:, :, :2])
        torch.testing.assert_close(c["scores"], torch.sigmoid(torch.tensor(8.0)).expand(3))
    # refine ignored → the coarse pose (off by the random residual)
    out = perfect_outputs(g, split_refine=True)
    c = decode_candidates(out, use_refine=False)[0]
    assert (c["keypoints"] - g[0][:, :, :2]).abs().amax() > 1e-2


def test_perfect_output_postprocess_returns_gt():
    g = gts()
    out = perfect_outputs(g, split_refine=True)
    for nms in ("oks", "iou"):
        dets = postprocess(decode_candidates(out), sigmas=COCO17.sigmas, nms=nms)
        assert len(dets) == 1
        d = dets[0]
        assert d["keypoints"].shape == (3, K, 3) and d["scores"].shape == (3,) and d["boxes"].shape == (3, 4)
        assert (d["keypoints"][..., 2] == 1).all()
        match_sets(d["keypoints"][..., :2], g[0][:, :, :2])
        torch.testing.assert_close(d["boxes"][:, 0], d["keypoints"][:, :, 0].amin(1))


def test_nms_suppresses_duplicates_and_caps():
    base = person(50, 50, 100)[:, :2]
    kps = torch.stack([base, base + 0.5, base + 200.0, base + 1.0])
    cand = {"keypoints": kps, "scores": torch.tensor([0.9, 0.8, 0.7, 0.95]), "levels": torch.zeros(4, dtype=torch.long)}
    d = postprocess([cand], sigmas=COCO17.sigmas)[0]
    assert d["scores"].tolist() == pytest.approx([0.95, 0.7])
    d = postprocess([cand], sigmas=COCO17.sigmas, nms_thr=1.0, max_dets=3)[0]
    assert d["scores"].tolist() == pytest.approx([0.95, 0.9, 0.8])
    d = postprocess([cand], sigmas=COCO17.sigmas, pre_nms_topk=1)[0]
    assert d["scores"].tolist() == pytest.approx([0.95])
    with pytest.raises(ValueError):
        postprocess([cand], nms="oks")
    with pytest.raises(ValueError):
        postprocess([cand], sigmas=COCO17.sigmas, nms="soft")


def test_topk_threshold_and_clamp():
    torch.manual_seed(0)
    sz = sizes(128)
    out = {"strides": STRIDES,
           "coarse": [torch.randn(2, 2 * K, h, w) * 3 for h, w in sz],
           "refine": None,
           "cls": [torch.randn(2, 1, h, w) for h, w in sz]}
    cands = decode_candidates(out, score_thr=0.0, topk_per_level=5)
    for c in cands:
        counts = torch.bincount(c["levels"], minlength=4).tolist()
        assert counts == [min(5, h * w) for h, w in sz]
    # top-k is per level before the threshold; the threshold is strict
    cands = decode_candidates(out, score_thr=0.5, topk_per_level=5)
    for b, c in enumerate(cands):
        assert (c["scores"] > 0.5).all()
        for l, (h, w) in enumerate(sz):
            s = torch.sigmoid(out["cls"][l][b].flatten()).topk(min(5, h * w)).values
            assert int((c["levels"] == l).sum()) == int((s > 0.5).sum())
    c = decode_candidates(out, score_thr=0.0, image_sizes=[(100, 60), (128, 128)])[0]
    assert c["keypoints"][..., 0].min() >= 0 and c["keypoints"][..., 0].max() <= 60
    assert c["keypoints"][..., 1].max() <= 100


def test_tta_merge_and_rescale():
    g = gts()
    out = perfect_outputs(g)
    c1 = decode_candidates(out)[0]
    # the same image at scale 2 (offsets and grid double): mapped back it must coincide
    g2 = [g[0].clone()]
    g2[0][..., :2] *= 2
    c2 = rescale_candidates(decode_candidates(perfect_outputs(g2, img=2 * IMG))[0], scale=2.0)
    merged = merge_candidates([c1, c2])
    assert merged["keypoints"].shape == (c1["keypoints"].shape[0] + c2["keypoints"].shape[0], K, 2)
    assert merged["scores"].shape == merged["levels"].shape == (merged["keypoints"].shape[0],)
    d = postprocess([merged], sigmas=COCO17.sigmas)[0]
    assert d["keypoints"].shape[0] == 3                      # duplicates across scales suppressed
    match_sets(d["keypoints"][..., :2], g[0][:, :, :2])
    with pytest.raises(ValueError):
        merge_candidates([])
    with pytest.raises(ValueError):
        merge_candidates([c1, {"keypoints": c1["keypoints"], "scores": c1["scores"]}])


def test_to_coco_results():
    kp = torch.zeros(2, K, 3)
    kp[..., 0] = 20.0
    kp[..., 1] = 10.0
    kp[..., 2] = 1.0
    poses = {"keypoints": kp, "scores": torch.tensor([0.9, 0.4]), "boxes": torch.zeros(2, 4)}
    res = to_coco_results(poses, image_id=7, scale=2.0, offset=(4.0, 0.0))
    assert len(res) == 2
    r = res[0]
    assert r["image_id"] == 7 and r["category_id"] == 1 and r["score"] == pytest.approx(0.9)
    assert len(r["keypoints"]) == 3 * K
    assert r["keypoints"][:3] == pytest.approx([8.0, 5.0, 1.0])
    assert to_coco_results(poses, 1, scale=(2.0, 5.0))[1]["keypoints"][:3] == pytest.approx([10.0, 2.0, 1.0])


def test_everything_empty():
    sz = sizes(128)
    out = {"strides": STRIDES,
           "coarse": [torch.zeros(2, 2 * K, h, w) for h, w in sz],
           "refine": [torch.zeros(2, 2 * K, h, w) for h, w in sz],
           "cls": [torch.full((2, 1, h, w), -20.0) for h, w in sz]}
    cands = decode_candidates(out)
    assert [c["keypoints"].shape for c in cands] == [(0, K, 2)] * 2
    dets = postprocess(cands, sigmas=COCO17.sigmas)
    assert dets[0]["keypoints"].shape == (0, K, 3) and dets[0]["boxes"].shape == (0, 4)
    assert to_coco_results(dets[0], 3) == []
    merged = merge_candidates(cands)
    assert merged["keypoints"].shape == (0, K, 2)
