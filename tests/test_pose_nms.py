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


# ------------------------------------------------------------------ fast paths vs the reference loop

from posedet.oks_nms import greedy_nms  # noqa: E402


def _reference_greedy(overlap, scores, thr):
    """The original per-candidate loop (the oracle of the fast passes), as the bench keeps it."""
    from posedet.bench.baselines import greedy_nms_v0

    return greedy_nms_v0(overlap, scores, thr).tolist()


def _crowd(g, n, people, spread=30.0, jitter=6.0):
    centres = torch.rand(people, 1, 2, generator=g) * 400
    base = centres + torch.randn(people, 17, 2, generator=g) * spread
    who = torch.randint(0, people, (n,), generator=g)
    kp = base[who] + torch.randn(n, 17, 2, generator=g) * jitter
    if n >= 4:
        kp[1] = kp[0]                                   # exact duplicate: OKS exactly 1
        kp[3] = kp[2, :1]                               # all points equal: zero-area box (min_area)
    return kp


def test_greedy_nms_fast_pass_equals_reference_loop():
    g = torch.Generator().manual_seed(11)
    for trial in range(60):
        n = int(torch.randint(0, 120, (1,), generator=g))
        ov = torch.rand(n, n, generator=g)
        if n:
            ov[torch.rand(n, n, generator=g) < 0.3] = 0.5  # many values exactly at a threshold
        scores = torch.randint(0, 5, (n,), generator=g).float()  # ties
        for thr in (0.0, 0.3, 0.5, 0.9, 1.0):
            assert greedy_nms(ov, scores, thr).tolist() == _reference_greedy(ov, scores, thr), (trial, thr)


def test_pose_oks_nms_lazy_equals_reference_loop_over_the_matrix():
    g = torch.Generator().manual_seed(12)
    suppressed = 0
    for trial in range(40):
        n = int(torch.randint(1, 160, (1,), generator=g))
        people = int(torch.randint(1, 12, (1,), generator=g))
        kp = _crowd(g, n, people)
        if trial % 2:
            scores = torch.randint(0, 3, (n,), generator=g).float()     # many ties
        else:
            scores = torch.rand(n, generator=g)
        m = pose_oks_matrix(kp, COCO17.sigmas)
        for thr in (0.0, 0.2, 0.3, 0.7, 1.0):
            want = _reference_greedy(m, scores, thr)
            got = pose_oks_nms(kp, scores, thr, COCO17.sigmas).tolist()
            assert got == want, (trial, thr)
            suppressed += len(want) < n
    assert suppressed > 50


def test_pose_oks_matrix_is_exactly_symmetric_and_far_poses_have_oks_zero():
    g = torch.Generator().manual_seed(13)
    kp = _crowd(g, 30, 4)
    m = pose_oks_matrix(kp, COCO17.sigmas)
    assert torch.equal(m, m.T) and float(m.max()) <= 1.0
    far = torch.cat([kp[:1], kp[:1] + 10_000])
    assert pose_oks_matrix(far, COCO17.sigmas)[0, 1].item() == 0.0
    assert pose_oks_nms(far, torch.tensor([0.9, 0.8]), 0.0, COCO17.sigmas).tolist() == [0, 1]
