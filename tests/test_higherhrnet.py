"""The HigherHRNet-style peer's test-time settings (HigherHRNet's single-scale test, no flip):
input size rounded up to 64 without a cap, maps projected to the input resolution before NMS,
grouping there; hand-made maps, deterministic and fast."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from posedet.peers import higherhrnet as hh


def test_input_size_is_higherhrnets_multi_scale_size():
    assert hh.input_size(480, 640, 640) == ((640, 896), 640 / 480)     # long side rounded up, no 1000 cap
    assert hh.input_size(640, 480, 512) == ((704, 512), 512 / 480)
    assert hh.input_size(1000, 4000, 640)[0] == (640, 2560)             # no cap on the long side
    assert hh.DEFAULTS["nms_kernel"] == 5 and hh.DEFAULTS["max_num_people"] == 30
    assert hh.DEFAULTS["adjust"] and hh.DEFAULTS["refine"] and hh.DEFAULTS["detection_threshold"] == 0.1


def test_grouping_runs_at_input_resolution_and_finds_people():
    pytest.importorskip("scipy")
    rng = np.random.default_rng(0)
    H, W, k = 64, 128, 17
    centres = np.array([[24.0, 32.0], [64.0, 30.0], [104.0, 34.0]])
    people = centres[:, None, :] + rng.uniform(-8, 8, (3, k, 2))        # input pixels
    h4, t4 = hh.planted_maps(people / 4, (H // 4, W // 4), exact=True)
    h2, _ = hh.planted_maps(people / 2, (H // 2, W // 2), exact=True)
    s1, s2 = torch.cat([h4, t4])[None], h2[None]                        # the network's two outputs
    heat, tags = hh.aggregate(s1, s2, k)
    assert heat.shape == (k, H // 2, W // 2)
    heat, tags = hh.project(heat, tags, (H, W))
    assert heat.shape == tags.shape == (k, H, W)
    r = hh.decode(heat, tags, scale=1.0)
    assert r["map_size"] == [H, W] and r["candidates"] == 3 * k and len(r["scores"]) == 3
    found = r["keypoints"][np.argsort(r["keypoints"][:, :, 0].mean(1))]
    assert np.abs(found[:, :, :2] - people).max() < 2.5                 # input pixels, no ×2
    assert np.array_equal(hh.decode(heat, tags, scale=1.0)["keypoints"], r["keypoints"])   # deterministic


def test_joint_order_and_first_max_people_persons():
    pytest.importorskip("scipy")
    assert hh.JOINT_ORDER_COCO[:9] == (0, 1, 2, 3, 4, 5, 6, 11, 12)
    k = 2
    val = np.array([[0.9, 0.9, 0.9], [0.9, 0.0, 0.0]])
    xs = np.array([[1, 2, 3], [4, 0, 0]])
    ys = np.zeros((k, 3), int)
    tag = np.array([[0.0, 5.0, 10.0], [10.0, 0.0, 0.0]])
    # only the first 2 persons may be matched: joint 1's candidate (tag 10) starts a new person
    people = hh._group(val, xs, ys, tag, 0.1, 1.0, True, False, 2)
    assert len(people) == 4 and people[2][1, 2] == 0 and people[3][1, 3] == 10.0
    assert len(hh._group(val, xs, ys, tag, 0.1, 1.0, True, False, 30)) == 3


def test_runner_groups_at_the_input_size():
    pytest.importorskip("scipy")
    from posedet.bench.runners import HigherHRNetRunner

    r = HigherHRNetRunner("hrnet_w18_small", 64, 80)
    x, scale = r.prepare(np.zeros((60, 100, 3), np.uint8))
    assert tuple(x.shape[-2:]) == (64, 128) and r.max_size is None and scale == pytest.approx(64 / 60)
    heat = torch.zeros(1, 2 * 17, 16, 32)
    heat[0, 0, 5, 9] = 1.0
    res = r.post((heat, torch.zeros(1, 17, 32, 64)))
    assert res["map_size"] == [64, 128] and r.counts(res)["grouped_at"] == [64, 128]
