"""posedet.peers: builds on random weights, the associative-embedding decode's grouping rules,
Keypoint R-CNN's box count control, YOLO-pose (optional extra) and its planted NMS input."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from posedet.peers import higherhrnet as hh
from posedet.peers import keypoint_rcnn, yolo_pose


def _people(n, k=17, w=80, h=60, seed=0):
    rng = np.random.default_rng(seed)
    centres = np.stack([np.linspace(10, w - 10, n), np.full(n, h / 2)], 1)
    return centres[:, None, :] + rng.uniform(-4, 4, (n, k, 2))


def test_higherhrnet_shapes_and_aggregate():
    m = hh.build("hrnet_w18_small", 17)
    with torch.inference_mode():
        s1, s2 = m(torch.randn(1, 3, 64, 96))
    assert s1.shape == (1, 34, 16, 24) and s2.shape == (1, 17, 32, 48)
    heat, tags = hh.aggregate(s1, s2, 17)
    assert heat.shape == tags.shape == (17, 32, 48)


def test_ae_decode_recovers_planted_people():
    pytest.importorskip("scipy")
    people = _people(4)
    heat, tags = hh.planted_maps(people, (60, 80))
    r = hh.decode(heat, tags, scale=2.0, refine=False)
    assert r["candidates"] == 4 * 17 and len(r["scores"]) == 4
    found = sorted(r["keypoints"][:, :, :2].mean(1).tolist())
    want = sorted(((np.floor(people) + 0.5).mean(1) * 2).tolist())     # peaks on pixels, ±0.25 adjust, ×2
    assert np.allclose(found, want, atol=0.51)


def test_ae_tag_threshold_and_hungarian_matching():
    """Two joints' candidates: tags 0 / 3 for joint 0 and 0.4 / 3.3 for joint 1 group into two
    persons; a tag 1.5 away from every person starts a new one (tag threshold 1)."""
    pytest.importorskip("scipy")
    k = 3
    val = np.array([[0.9, 0.8], [0.7, 0.95], [0.9, 0.0]])
    xs = np.array([[1, 10], [2, 11], [20, 0]])
    ys = np.zeros((k, 2), int)
    tag = np.array([[0.0, 3.0], [3.3, 0.4], [1.5, 0.0]])
    people = hh._group(val, xs, ys, tag, 0.1, 1.0, True, False, 30)
    assert len(people) == 3
    by_first = {round(p[0, 3], 1): p for p in people if p[0, 2] > 0}
    assert by_first[0.0][1, 3] == pytest.approx(0.4) and by_first[3.0][1, 3] == pytest.approx(3.3)
    lone = [p for p in people if p[0, 2] == 0][0]
    assert lone[2, 3] == pytest.approx(1.5)


def test_ae_refine_fills_missing_joints():
    pytest.importorskip("scipy")
    people = _people(1)
    heat, tags = hh.planted_maps(people, (60, 80))
    heat[5] = 0.0
    heat[5, 30, 40] = 0.05                                              # below the detection threshold
    r = hh.decode(heat, tags, scale=1.0, refine=True)
    assert len(r["scores"]) == 1 and r["keypoints"][0, 5, 2] == pytest.approx(0.05)
    assert hh.to_coco(r, 7)[0]["image_id"] == 7


def test_keypoint_rcnn_runs_the_keypoint_head_on_the_asked_boxes():
    torch.manual_seed(0)
    m = keypoint_rcnn.build(min_size=64, max_size=96, detections=3)
    with torch.inference_mode():
        out = m([torch.rand(3, 64, 96)])
        assert keypoint_rcnn.keypoint_boxes(out) == 3 and out[0]["keypoints"].shape == (3, 17, 3)
        keypoint_rcnn.set_detections(m, 5)
        assert keypoint_rcnn.keypoint_boxes(m([torch.rand(3, 64, 96)])) == 5
    assert len(keypoint_rcnn.to_coco(out[0], 1, scale=2.0)) == 3


def test_yolo_pose_planted_prediction():
    if not yolo_pose.available():
        pytest.skip(yolo_pose.unavailable_reason())
    m = yolo_pose.build("n", 17)
    with torch.inference_mode():
        raw = m(torch.zeros(1, 3, 64, 96))
    pred = raw[0]
    assert pred.shape[1] == 4 + 1 + 3 * 17
    people = torch.from_numpy(_people(3, w=96, h=64)).float()
    planted = yolo_pose.planted_prediction(pred, people, per_person=4)
    assert int((planted[0, 4] > 0.25).sum()) == 12
    det = yolo_pose.decode(planted)[0]
    assert det.shape == (3, 6 + 51)
    assert len(yolo_pose.to_coco(det, 1)) == 3
