"""The model's inference OKS-NMS (the authors' formula) against a plain loop."""
import math

import torch

from posedet.oks_nms import pose_oks_matrix, pose_oks_nms
from posedet.skeletons import COCO17


def _ref_oks(a, b, sigmas, min_area):
    def area(p):
        xs, ys = [q[0] for q in p], [q[1] for q in p]
        return max((max(xs) - min(xs)) * (max(ys) - min(ys)), min_area)
    pair = (area(a) + area(b)) / 2
    tot = 0.0
    for k, s in enumerate(sigmas):
        d2 = (a[k][0] - b[k][0]) ** 2 + (a[k][1] - b[k][1]) ** 2
        tot += math.exp(-d2 / ((2 * s) ** 2 * pair))
    return tot / len(sigmas)


def _ref_nms(poses, scores, thr, sigmas, min_area):
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    keep, dead = [], set()
    for i in order:
        if i in dead:
            continue
        keep.append(i)
        for j in order:
            if j not in dead and j != i and j not in keep and _ref_oks(poses[i], poses[j], sigmas, min_area) > thr:
                dead.add(j)
    return keep


def test_pose_oks_matrix_matches_loop():
    g = torch.Generator().manual_seed(0)
    kp = torch.rand(6, 17, 2, generator=g, dtype=torch.float64) * 120
    m = pose_oks_matrix(kp, COCO17.sigmas, min_area=32 ** 2)
    for i in range(6):
        for j in range(6):
            assert abs(m[i, j].item() - _ref_oks(kp[i].tolist(), kp[j].tolist(), COCO17.sigmas, 32 ** 2)) < 1e-5
    assert torch.allclose(m, m.T) and torch.allclose(m.diagonal(), torch.ones(6, dtype=m.dtype))


def test_pose_oks_nms_matches_loop_on_random_clusters():
    g = torch.Generator().manual_seed(1)
    for trial in range(20):
        centres = torch.rand(3, 1, 2, generator=g) * 200
        kp = (centres.repeat_interleave(5, 0) + torch.randn(15, 17, 2, generator=g) * 15)
        scores = torch.randint(0, 4, (15,), generator=g).float()              # many ties
        for thr in (0.2, 0.5, 0.9):
            keep = pose_oks_nms(kp, scores, thr, COCO17.sigmas).tolist()
            assert keep == _ref_nms(kp.tolist(), scores.tolist(), thr, COCO17.sigmas, 32 ** 2), (trial, thr)
    assert pose_oks_nms(kp, scores, 1.0, COCO17.sigmas).numel() == 15
