import math

import pytest
import torch
from torchvision.ops import sigmoid_focal_loss as tv_focal

from posedet.grid import grid_points, keypoints_to_offsets
from posedet.losses import (heatmap_focal_loss, heatmap_l2_loss, keypoint_distance_loss,
                            posedet_loss, sigmoid_focal_loss)
from posedet.skeletons import COCO17
from posedet.targets import assign_coarse, level_starts

K = 17
STRIDES = [8, 16, 32, 64]
IMG = 128


def sizes(img=IMG, strides=STRIDES):
    return [(math.ceil(img / s), math.ceil(img / s)) for s in strides]


# --------------------------------------------------------------------- keypoint distance


def test_distance_loss_zero_at_target_with_finite_grad():
    t = torch.rand(4, K, 2) * 100
    p = t.clone().requires_grad_(True)
    w = torch.ones(4, K)
    loss = keypoint_distance_loss(p, t, w, torch.full((4,), 8.0))
    assert loss.item() == 0.0
    loss.backward()
    assert torch.isfinite(p.grad).all() and p.grad.abs().sum() == 0


def test_distance_loss_value_clamp_weight_and_gradient_direction():
    t = torch.zeros(3, 2, 2)
    p = torch.zeros(3, 2, 2)
    p[0, 0] = torch.tensor([3.0 * 32, 4.0 * 32])      # distance 5·32 at stride 8 → 5 (at the clamp)
    p[1, 0] = torch.tensor([6.0 * 16, 8.0 * 16])      # distance 10·16 = 160 at stride 16 → 2.5
    p[2, 0] = torch.tensor([1000.0, 0.0])             # far: clamped to 5, no gradient
    p[1, 1] = torch.tensor([50.0, 50.0])              # unlabelled: ignored
    w = torch.tensor([[1.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    stride = torch.tensor([8.0, 16.0, 8.0])
    p.requires_grad_(True)
    loss = keypoint_distance_loss(p, t, w, stride)
    torch.testing.assert_close(loss, torch.tensor(5.0 + 2.5 + 5.0))
    loss.backward()
    assert p.grad[2].abs().sum() == 0 and p.grad[1, 1].abs().sum() == 0
    # gradient descent moves the prediction towards the target
    g = p.grad[1, 0]
    assert (g * (p[1, 0] - t[1, 0])).sum() > 0
    torch.testing.assert_close(g, torch.tensor([0.6, 0.8]) / 64)
    # a custom clamp
    assert keypoint_distance_loss(p.detach(), t, w, stride, clamp=1.0).item() == pytest.approx(3.0)


# --------------------------------------------------------------------------- focal losses


def test_sigmoid_focal_matches_torchvision():
    torch.manual_seed(0)
    x = torch.randn(2, 30)
    y = (torch.rand(2, 30) > 0.8).float()
    ref = tv_focal(x, y, alpha=0.25, gamma=2.0, reduction="sum") / y.sum()
    torch.testing.assert_close(sigmoid_focal_loss(x, y), ref)
    # ignored entries drop out; explicit num_pos; zero positives divide by 1
    valid = torch.ones(2, 30, dtype=torch.bool)
    valid[0, :10] = False
    ref2 = (tv_focal(x, y, reduction="none") * valid).sum() / 7.0
    torch.testing.assert_close(sigmoid_focal_loss(x, y, valid, num_pos=7), ref2)
    z = torch.zeros(2, 30)
    torch.testing.assert_close(sigmoid_focal_loss(x, z), tv_focal(x, z, reduction="sum"))


def test_heatmap_focal_manual_and_limits():
    target = torch.tensor([[[[1.0, 0.5], [0.0, 1.0]]]])
    logits = torch.tensor([[[[0.3, -0.2], [0.1, 2.0]]]])
    p = torch.sigmoid(logits)
    pos = target == 1
    manual = -((torch.log(p) * (1 - p) ** 2)[pos].sum()
               + (torch.log(1 - p) * p ** 2 * (1 - target) ** 4)[~pos].sum()) / 2
    torch.testing.assert_close(heatmap_focal_loss(logits, target), manual)
    good = torch.where(target == 1, torch.tensor(12.0), torch.tensor(-12.0))
    assert heatmap_focal_loss(good, target) < 1e-3 < heatmap_focal_loss(logits, target)
    # no peaks: finite, normalised by 1; a zero weight masks everything
    assert torch.isfinite(heatmap_focal_loss(torch.randn(1, 2, 4, 4), torch.zeros(1, 2, 4, 4)))
    assert heatmap_focal_loss(logits, target, torch.zeros(1, 1, 2, 2)) == 0
    # extreme logits stay finite
    assert torch.isfinite(heatmap_focal_loss(torch.full((1, 1, 2, 2), 100.0), target))


def test_heatmap_l2_is_mse_of_sigmoid():
    x, t = torch.randn(2, 3, 4, 4), torch.rand(2, 3, 4, 4)
    torch.testing.assert_close(heatmap_l2_loss(x, t), torch.mean((torch.sigmoid(x) - t) ** 2))
    w = torch.zeros(2, 1, 4, 4)
    w[0] = 1
    torch.testing.assert_close(heatmap_l2_loss(x, t, w), torch.mean((torch.sigmoid(x[0]) - t[0]) ** 2))


# ------------------------------------------------------------------------------ composite


def person(x0, y0, side, labelled=K):
    kp = torch.zeros(K, 3)
    g = torch.linspace(0, 1, K)
    kp[:, 0] = x0 + side * g
    kp[:, 1] = y0 + side * (1 - g) ** 2
    kp[:, 2] = 2
    kp[labelled:] = 0
    return kp


def make_gts():
    a, b = person(10, 10, 40), person(70, 60, 50)
    few = person(30, 90, 20, labelled=2)
    box = lambda k: torch.tensor([k[:, 0].min() - 2, k[:, 1].min() - 2, k[:, 0].max() + 2, k[:, 1].max() + 2])
    g0 = {"keypoints": torch.stack([a, b, few]), "boxes": torch.stack([box(a), box(b), box(few)])}
    g1 = {"keypoints": torch.zeros(0, K, 3), "boxes": torch.zeros(0, 4)}
    return [g0, g1]


def random_outputs(batch=2, refine=True, heatmaps=True, img=IMG, strides=STRIDES, seed=0):
    gen = torch.Generator().manual_seed(seed)
    sz = sizes(img, strides)
    mk = lambda c, h, w: (torch.randn(batch, c, h, w, generator=gen) * 0.5).requires_grad_(True)
    return {
        "strides": list(strides),
        "coarse": [mk(2 * K, h, w) for h, w in sz],
        "refine": [mk(2 * K, h, w) for h, w in sz] if refine else None,
        "cls": [mk(1, h, w) for h, w in sz],
        "heatmaps": [mk(K, h, w) for h, w in sz] if heatmaps else None,
    }


def test_posedet_loss_keys_finite_and_grads():
    out = random_outputs()
    res = posedet_loss(out, make_gts(), COCO17.sigmas)
    for k in ("loss_coarse", "loss_refine", "loss_cls", "loss_heatmap", "loss",
              "num_coarse_pos", "num_refine_pos", "num_cls_pos"):
        assert k in res and torch.isfinite(res[k]).all(), k
    assert res["num_coarse_pos"].item() == 2 and not res["num_coarse_pos"].requires_grad
    total = res["loss_coarse"] + res["loss_refine"] + res["loss_cls"] + res["loss_heatmap"]
    torch.testing.assert_close(res["loss"], total)
    res["loss"].backward()
    for name in ("coarse", "cls", "heatmaps"):
        assert any(t.grad is not None and t.grad.abs().sum() > 0 for t in out[name]), name
    assert all(torch.isfinite(t.grad).all() for t in out["coarse"] + out["cls"])


def test_posedet_loss_no_gt_and_flags():
    gts = [{"keypoints": torch.zeros(0, K, 3), "boxes": torch.zeros(0, 4)}] * 2
    out = random_outputs()
    res = posedet_loss(out, gts, COCO17.sigmas)
    assert all(torch.isfinite(v).all() for v in res.values())
    assert res["loss_coarse"] == 0 and res["loss_refine"] == 0 and res["num_cls_pos"] == 0
    res["loss"].backward()
    # refine off / IS off / l2 heatmaps / HRNet's three levels
    out = random_outputs(refine=False, heatmaps=False, strides=[8, 16, 32])
    res = posedet_loss(out, make_gts(), COCO17.sigmas, refine=False, intermediate_supervision=False)
    assert "loss_refine" not in res and "loss_heatmap" not in res and "num_refine_pos" not in res
    torch.testing.assert_close(res["loss"], res["loss_coarse"] + res["loss_cls"])
    res = posedet_loss(random_outputs(), make_gts(), COCO17.sigmas, heatmap_loss="l2", centroid="box")
    assert torch.isfinite(res["loss_heatmap"])
    with pytest.raises(ValueError):
        posedet_loss(random_outputs(refine=False), make_gts(), COCO17.sigmas)
    with pytest.raises(ValueError):
        posedet_loss(random_outputs(heatmaps=False), make_gts(), COCO17.sigmas)
    with pytest.raises(ValueError):
        posedet_loss(random_outputs(), make_gts(), COCO17.sigmas, heatmap_loss="l1")


def perfect_coarse(gts, strides=STRIDES, img=IMG, everywhere_gt=None):
    """Coarse offsets reproducing the assigned GT at every coarse positive (and, with
    ``everywhere_gt``, that person's pose at every other location)."""
    sz = sizes(img, strides)
    ca = assign_coarse([g["keypoints"] for g in gts], strides, sz)
    starts = level_starts(sz)
    maps = []
    for l, (s, (h, w)) in enumerate(zip(strides, sz)):
        pts = grid_points(h, w, s)                                              # [HW, 2]
        tgt = ca["target_xy"][:, starts[l]:starts[l + 1]]                       # [B, HW, K, 2]
        if everywhere_gt is not None:
            pos = ca["pos"][:, starts[l]:starts[l + 1], None, None]
            tgt = torch.where(pos, tgt, everywhere_gt[None, None].expand_as(tgt))
        off = keypoints_to_offsets(tgt, pts[None].expand(tgt.shape[0], -1, -1), s)   # [B, HW, 2K]
        maps.append(off.transpose(1, 2).reshape(-1, 2 * K, h, w).clone().requires_grad_(True))
    return maps


def test_perfect_predictions_give_zero_regression_losses():
    gts = make_gts()
    out = random_outputs()
    out["coarse"] = perfect_coarse(gts, everywhere_gt=gts[0]["keypoints"][1, :, :2])
    out["refine"] = [torch.zeros_like(c).requires_grad_(True) for c in out["coarse"]]
    res = posedet_loss(out, gts, COCO17.sigmas)
    assert res["loss_coarse"].item() == pytest.approx(0.0, abs=1e-5)
    assert res["loss_refine"].item() == pytest.approx(0.0, abs=1e-5)
    assert res["num_refine_pos"] > 0 and res["num_cls_pos"] > 0
    # a perturbed refine residual is penalised, the coarse loss is untouched
    out["refine"] = [torch.full_like(c, 0.3).requires_grad_(True) for c in out["coarse"]]
    res2 = posedet_loss(out, gts, COCO17.sigmas)
    assert res2["loss_refine"] > 0
    assert res2["loss_coarse"].item() == pytest.approx(0.0, abs=1e-5)
    res2["loss"].backward()
    assert all(torch.isfinite(c.grad).all() for c in out["coarse"])
