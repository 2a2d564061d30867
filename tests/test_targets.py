import math

import pytest
import torch

from posedet.skeletons import COCO17
from posedet.targets import (assign_coarse, assign_refine_cls, candidate_keypoints,
                             candidate_strides, flatten_levels, heatmap_targets, heatmap_weights,
                             level_starts)

STRIDES = [8, 16, 32, 64]
K = 17


def feat_sizes(img, strides=STRIDES):
    return [(math.ceil(img / s), math.ceil(img / s)) for s in strides]


def square_person(x0, y0, side, k=K, labelled=None):
    """A person whose labelled keypoints span exactly [x0, x0+side]² (corners + centre fill)."""
    kp = torch.zeros(k, 3)
    corners = [(x0, y0), (x0 + side, y0), (x0, y0 + side), (x0 + side, y0 + side)]
    for n in range(k):
        if n < 4:
            x, y = corners[n]
        else:
            x, y = x0 + side / 2, y0 + side / 2
        kp[n] = torch.tensor([x, y, 2.0])
    if labelled is not None:
        kp[labelled:, :] = 0
    return kp


def positive_levels(res, sizes):
    starts = level_starts(sizes)
    cells = torch.nonzero(res["pos"][0]).squeeze(1).tolist()
    out = []
    for c in cells:
        lvl = max(l for l in range(len(sizes)) if starts[l] <= c)
        out.append(lvl)
    return out, cells


@pytest.mark.parametrize("side,stride", [(63, 8), (64, 16), (127, 16), (128, 32), (255, 32), (256, 64), (600, 64)])
def test_level_choice_boundaries(side, stride):
    sizes = feat_sizes(1024)
    res = assign_coarse([square_person(100, 100, side)[None]], STRIDES, sizes)
    levels, _ = positive_levels(res, sizes)
    assert len(levels) == 1
    assert STRIDES[levels[0]] == stride
    assert res["strides"][res["pos"][0]].item() == stride


@pytest.mark.parametrize("side,stride", [(127, 16), (128, 32), (256, 32), (600, 32)])
def test_level_choice_three_levels(side, stride):
    strides = [8, 16, 32]
    sizes = feat_sizes(1024, strides)
    res = assign_coarse([square_person(100, 100, side)[None]], strides, sizes)
    levels, _ = positive_levels(res, sizes)
    assert [strides[l] for l in levels] == [stride]
    # max_level_stride clamps a four-level pyramid the same way
    sizes4 = feat_sizes(1024)
    res4 = assign_coarse([square_person(100, 100, side)[None]], STRIDES, sizes4, max_level_stride=32)
    levels4, _ = positive_levels(res4, sizes4)
    assert [STRIDES[l] for l in levels4] == [stride]


def test_non_square_level_uses_geometric_mean():
    # w = 32, h = 128: (log2 8 + log2 32) / 2 = 4 → stride 16
    kp = torch.zeros(K, 3)
    kp[0] = torch.tensor([100.0, 100.0, 2])
    kp[1] = torch.tensor([132.0, 100.0, 2])
    kp[2] = torch.tensor([100.0, 228.0, 2])
    sizes = feat_sizes(512)
    levels, _ = positive_levels(assign_coarse([kp[None]], STRIDES, sizes), sizes)
    assert [STRIDES[l] for l in levels] == [16]


def test_centroid_keypoints_vs_box():
    kp = torch.zeros(K, 3)
    pts = [(100, 100), (104, 100), (100, 104), (104, 104), (300, 300)]   # box 200×200 → stride 32
    for n, (x, y) in enumerate(pts):
        kp[n] = torch.tensor([x, y, 2.0])
    sizes = feat_sizes(512)
    starts = level_starts(sizes)
    a = assign_coarse([kp[None]], STRIDES, sizes, centroid="keypoints")
    b = assign_coarse([kp[None]], STRIDES, sizes, centroid="box")
    ca = torch.nonzero(a["pos"][0]).item() - starts[2]
    cb = torch.nonzero(b["pos"][0]).item() - starts[2]
    w = sizes[2][1]
    # mean = (141.6, 141.6) → grid (4, 4) at 128; box centre (200, 200) → grid (6, 6) at 192
    assert divmod(ca, w) == (4, 4)
    assert divmod(cb, w) == (6, 6)
    with pytest.raises(ValueError):
        assign_coarse([kp[None]], STRIDES, sizes, centroid="middle")


def test_conflict_goes_to_nearer_person_and_ties_to_first():
    sizes = feat_sizes(256)
    starts = level_starts(sizes)
    # two 40-px persons (stride 8), centres (83, 80) and (78, 80): both nearest to grid (10, 10)
    a = square_person(63, 60, 40)
    b = square_person(58, 60, 40)
    res = assign_coarse([torch.stack([a, b])], STRIDES, sizes)
    cell = starts[0] + 10 * sizes[0][1] + 10
    assert res["pos"][0].sum() == 1
    assert res["gt_index"][0, cell] == 1
    torch.testing.assert_close(res["target_xy"][0, cell], b[:, :2])
    # exact tie → the earlier person
    res = assign_coarse([torch.stack([a, a.clone()])], STRIDES, sizes)
    assert res["pos"][0].sum() == 1 and res["gt_index"][0, cell] == 0
    # far apart → two positives
    c = square_person(160, 160, 40)
    res = assign_coarse([torch.stack([a, c])], STRIDES, sizes)
    assert res["pos"][0].sum() == 2
    assert set(res["gt_index"][0][res["pos"][0]].tolist()) == {0, 1}


def test_few_keypoints_skipped_and_targets():
    sizes = feat_sizes(256)
    few = square_person(20, 20, 40, labelled=2)
    ok = square_person(150, 150, 40, labelled=3)
    res = assign_coarse([torch.stack([few, ok]), torch.zeros(0, K, 3)], STRIDES, sizes)
    assert res["pos"].shape == (2, level_starts(sizes)[-1])
    assert res["pos"][0].sum() == 1 and res["pos"][1].sum() == 0
    cell = torch.nonzero(res["pos"][0]).item()
    assert res["gt_index"][0, cell] == 1
    assert res["weight"][0, cell].tolist() == [1.0] * 3 + [0.0] * (K - 3)
    torch.testing.assert_close(res["target_xy"][0, cell], ok[:, :2])
    assert (res["gt_index"][1] == -1).all()
    # min_keypoints is a knob
    res2 = assign_coarse([torch.stack([few, ok])], STRIDES, sizes, min_keypoints=2)
    assert res2["pos"][0].sum() == 2


def test_centre_outside_map_is_clamped():
    sizes = feat_sizes(128)
    p = square_person(130, 130, 20)          # entirely right/below a 128-px map
    res = assign_coarse([p[None]], STRIDES, sizes)
    cell = torch.nonzero(res["pos"][0]).item()
    h, w = sizes[0]
    assert cell == (h - 1) * w + (w - 1)


def test_layout_helpers():
    sizes = [(4, 5), (2, 3)]
    strides = [8, 16]
    assert level_starts(sizes) == [0, 20, 26]
    cs = candidate_strides(strides, sizes)
    assert cs.shape == (26,) and cs[:20].eq(8).all() and cs[20:].eq(16).all()
    maps = [torch.arange(2 * 3 * 4 * 5.).reshape(2, 3, 4, 5), torch.zeros(2, 3, 2, 3)]
    flat = flatten_levels(maps)
    assert flat.shape == (2, 26, 3)
    assert flat[1, 7, 2] == maps[0][1, 2, 1, 2]          # p = i·W + j = 1·5 + 2
    offs = [torch.zeros(1, 2 * K, h, w) for h, w in sizes]
    xy = candidate_keypoints(offs, strides)
    assert xy.shape == (1, 26, K, 2)
    assert xy[0, 7, 0].tolist() == [16.0, 8.0] and xy[0, 20 + 4, 0].tolist() == [16.0, 16.0]


# ------------------------------------------------------------------------- refine / cls


def uniform_sigmas(value=0.1):
    return [value] * K


def shifted(pose_xy, d):
    """Shift every keypoint by d along x."""
    out = pose_xy.clone()
    out[..., 0] += d
    return out


def shift_for_oks(oks, area, sigma=0.1):
    # uniform σ: OKS = exp(−d² / (area · (2σ)²))
    return math.sqrt(-math.log(oks) * area * (2 * sigma) ** 2)


def test_refine_cls_thresholds():
    gt = square_person(50, 50, 100)
    box = torch.tensor([[40.0, 40.0, 160.0, 170.0]])
    area = 120.0 * 130.0
    targets = [1.0, 0.75, 0.65, 0.55, 0.45]
    cands = [shifted(gt[:, :2], shift_for_oks(o, area) if o < 1 else 0.0) for o in targets]
    cands.append(shifted(gt[:, :2], 1000.0))
    xy = torch.stack(cands)[None]                                                 # [1, 6, K, 2]
    res = assign_refine_cls(xy, [{"keypoints": gt[None], "boxes": box}], uniform_sigmas(),
                            refine_low_quality_thr=None)
    torch.testing.assert_close(res["max_oks"][0, :5], torch.tensor(targets), atol=1e-4, rtol=0)
    assert res["max_oks"][0, 5] < 1e-6
    assert res["refine_pos"][0].tolist() == [True, True, False, False, False, False]
    assert res["cls_label"][0].tolist() == [1, 1, 1, 0, 0, 0]
    assert res["cls_ignore"][0].tolist() == [False, False, False, True, False, False]
    assert res["cls_weight"][0].tolist() == [1, 1, 1, 0, 1, 1]
    torch.testing.assert_close(res["refine_target_xy"][0, 1], gt[:, :2])
    assert res["refine_weight"][0, 1].sum() == K and res["refine_weight"][0, 2].sum() == 0
    assert res["refine_gt_index"][0].tolist() == [0, 0, -1, -1, -1, -1]
    # box_areas, when given, replaces the clipped box
    res2 = assign_refine_cls(xy, [{"keypoints": gt[None], "boxes": box, "box_areas": torch.tensor([4 * area])}],
                             uniform_sigmas(), refine_low_quality_thr=None)
    assert (res2["max_oks"][0, 1:5] > res["max_oks"][0, 1:5]).all()


def test_refine_low_quality_match():
    gt = square_person(50, 50, 100)
    box = torch.tensor([[50.0, 50.0, 150.0, 150.0]])
    area = 100.0 * 100.0
    xy = torch.stack([shifted(gt[:, :2], shift_for_oks(o, area)) for o in (0.6, 0.55, 0.3)])[None]
    gts = [{"keypoints": gt[None], "boxes": box}]
    off = assign_refine_cls(xy, gts, uniform_sigmas(), refine_low_quality_thr=None)
    on = assign_refine_cls(xy, gts, uniform_sigmas(), refine_low_quality_thr=0.52)
    assert not off["refine_pos"].any()
    assert on["refine_pos"][0].tolist() == [True, False, False]
    assert on["refine_gt_index"][0].tolist() == [0, -1, -1]
    # classification is unaffected
    assert torch.equal(on["cls_label"], off["cls_label"])


def test_refine_cls_multi_gt_and_exclusions():
    a = square_person(20, 20, 60)
    b = square_person(200, 200, 60)
    few = square_person(120, 20, 60, labelled=2)
    kps = torch.stack([a, few, b])
    boxes = torch.tensor([[20.0, 20, 80, 80], [120, 20, 180, 80], [200, 200, 260, 260]])
    xy = torch.stack([b[:, :2], a[:, :2], few[:, :2]])[None]
    res = assign_refine_cls(xy, [{"keypoints": kps, "boxes": boxes}], COCO17.sigmas)
    assert res["refine_gt_index"][0, :2].tolist() == [2, 0]
    assert res["cls_gt_index"][0, :2].tolist() == [2, 0]
    # the 2-keypoint person takes no part (the authors' number_keypoints_thr = 3)
    assert res["cls_label"][0, 2] == 0 and not res["cls_ignore"][0, 2]
    res1 = assign_refine_cls(xy, [{"keypoints": kps, "boxes": boxes}], COCO17.sigmas, min_keypoints=1)
    assert res1["cls_label"][0, 2] == 1 and res1["refine_gt_index"][0, 2] == 1


def test_refine_cls_no_gt_all_negative():
    xy = torch.rand(2, 50, K, 2) * 100
    gts = [{"keypoints": torch.zeros(0, K, 3), "boxes": torch.zeros(0, 4)},
           {"keypoints": square_person(0, 0, 10, labelled=1)[None], "boxes": torch.tensor([[0.0, 0, 10, 10]])}]
    res = assign_refine_cls(xy, gts, COCO17.sigmas)
    assert not res["refine_pos"].any()
    assert (res["cls_label"] == 0).all() and (res["cls_weight"] == 1).all()
    assert torch.isfinite(res["max_oks"]).all()


def test_refine_cls_shape_errors():
    with pytest.raises(ValueError):
        assign_refine_cls(torch.zeros(1, 5, K * 2), [{"keypoints": torch.zeros(0, K, 3)}], COCO17.sigmas)
    with pytest.raises(ValueError):
        assign_refine_cls(torch.zeros(2, 5, K, 2), [{"keypoints": torch.zeros(0, K, 3)}], COCO17.sigmas)


# ------------------------------------------------------------------------------- heatmaps


def test_heatmap_peak_at_grid_location():
    kp = torch.zeros(2, K, 3)
    kp[0, 0] = torch.tensor([37.0, 21.0, 2])       # stride 8 → (i, j) = (round 2.625, round 4.625) = (3, 5)
    kp[0, 1] = torch.tensor([300.0, 10.0, 2])      # outside a 128-px image: skipped
    kp[1, 0] = torch.tensor([45.0, 21.0, 1])       # second person, same keypoint type → (3, 6)
    kp[1, 2] = torch.tensor([60.0, 60.0, 0])       # unlabelled
    sizes = feat_sizes(128)
    hms = heatmap_targets([kp, torch.zeros(0, K, 3)], STRIDES, sizes, sigma=2.0)
    assert [tuple(h.shape) for h in hms] == [(2, K, s[0], s[1]) for s in sizes]
    h8 = hms[0][0, 0]
    assert h8[3, 5] == 1.0 and h8[3, 6] == 1.0 and h8.max() == 1.0
    torch.testing.assert_close(h8[4, 5], torch.tensor(math.exp(-1 / 8)))
    assert h8[3, 6 + 8] == 0 and h8[3, 6 + 7] > 0  # square window of half-width 3σ + 1
    assert hms[0][0, 1].max() == 0 and hms[0][0, 2].max() == 0
    assert hms[0][1].max() == 0                    # image without GT
    h16 = hms[1][0, 0]                             # stride 16: (round 1.3, round 2.3) and (1, round 2.8)
    assert h16[1, 2] == 1.0 and h16[1, 3] == 1.0


def test_heatmap_weights_mask_unlabelled_person():
    kp = torch.zeros(2, K, 3)
    kp[0, 0] = torch.tensor([10.0, 10.0, 2])
    boxes = torch.tensor([[0.0, 0, 30, 30], [40, 40, 64, 64]])
    wts = heatmap_weights([kp], [boxes], [8, 16], [(8, 8), (4, 4)])
    w8 = wts[0][0, 0]
    assert w8.shape == (8, 8)
    assert w8[5:, 5:].eq(0).all() and w8[:5].eq(1).all() and w8[:, :5].eq(1).all()
    assert wts[1][0, 0, 3, 3] == 0 and wts[1][0, 0, 2, 2] == 1
