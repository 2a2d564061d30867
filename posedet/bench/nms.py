"""OKS-NMS micro-benchmark (``posedet bench nms``): greedy OKS-NMS of the model's inference on
N candidate poses (default 1,000, K = 17, ~30 people: each candidate is a jittered copy of one
of the people), before (``bench.baselines``: full [N, N, K] torch matrix, then the
per-candidate tensor loop) and after (``posedet.oks_nms.pose_oks_nms``: lazy rows of the kept
poses only, box-bound pruning, NumPy greedy pass), interleaved, with a check that both return
the same keep-list. Also the greedy pass alone on a precomputed matrix (``greedy_nms`` vs the
loop) for the GT upper-bound study's path."""
from __future__ import annotations

import json

import torch

from posedet.bench.baselines import greedy_nms_v0, pose_oks_nms_v0
from posedet.bench.protocol import finish_manifest, manifest, summarize, time_interleaved, write_json
from posedet.oks_nms import greedy_nms, pose_oks_matrix, pose_oks_nms
from posedet.skeletons import skeleton_for_num_keypoints


def synthetic_candidates(num: int = 1000, people: int = 30, k: int = 17, seed: int = 0,
                         image_size: tuple[int, int] = (704, 512), person_height: float = 120.0,
                         jitter: float = 0.04) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``num`` candidate poses [num, K, 2] (x, y px) around ``people`` random people in an image
    of ``image_size`` (w, h): each candidate copies a person and moves every keypoint by
    N(0, (jitter · person height)²); scores U(0.05, 1); returns (keypoints, scores, people poses)."""
    g = torch.Generator().manual_seed(seed)
    w, h = image_size
    centre = torch.rand(people, 1, 2, generator=g) * torch.tensor([w, h]) * 0.8 + torch.tensor([w, h]) * 0.1
    scale = person_height * (0.6 + 0.8 * torch.rand(people, 1, 1, generator=g))
    base = centre + (torch.rand(people, k, 2, generator=g) - 0.5) * scale * torch.tensor([0.5, 1.0])
    who = torch.arange(num) % max(1, people)
    kp = base[who] + torch.randn(num, k, 2, generator=g) * (jitter * scale[who])
    scores = 0.05 + 0.95 * torch.rand(num, generator=g)
    return kp, scores, base


def run_nms_bench(num: int = 1000, people: int = 30, k: int = 17, threshold: float = 0.2,
                  repeats: int = 10, slow_repeats: int = 3, threads: int = 1, seed: int = 0) -> dict:
    from posedet.bench.protocol import threads as fixed_threads

    sigmas = skeleton_for_num_keypoints(k).sigmas
    kp, scores, _ = synthetic_candidates(num, people, k, seed)
    with fixed_threads(threads) as nthreads:
        m = manifest("cpu", nthreads, what="greedy OKS-NMS of the model's inference (authors' OKS: all "
                     "keypoints, pair-mean keypoint-box area clamped >= 32^2, no /2; suppress OKS > thr)",
                     candidates=num, people=people, num_keypoints=k, threshold=threshold, repeats=repeats,
                     slow_repeats=slow_repeats,
                     before="posedet.bench.baselines.pose_oks_nms_v0 (torch [N,N,K] matrix + tensor loop)",
                     after="posedet.oks_nms.pose_oks_nms (lazy rows of kept poses, box-bound pruning)")
        matrix = pose_oks_matrix(kp, sigmas)
        fns = {
            "pose_oks_nms": lambda: pose_oks_nms(kp, scores, threshold, sigmas),
            "pose_oks_nms_v0": lambda: pose_oks_nms_v0(kp, scores, threshold, sigmas),
            "greedy_nms_on_matrix": lambda: greedy_nms(matrix, scores, threshold),
            "greedy_nms_v0_on_matrix": lambda: greedy_nms_v0(matrix, scores, threshold),
        }
        runs = time_interleaved(fns, repeats, warmup=1,
                                repeats_for={"pose_oks_nms_v0": slow_repeats, "greedy_nms_v0_on_matrix": slow_repeats})
    after = pose_oks_nms(kp, scores, threshold, sigmas).tolist()
    before = pose_oks_nms_v0(kp, scores, threshold, sigmas).tolist()
    oracle = greedy_nms_v0(matrix, scores, threshold).tolist()
    res = {name: summarize(r) for name, r in runs.items()}
    return {"manifest": finish_manifest(m), "results": res,
            "kept": len(after),
            "identical_keep_lists": {"pose_oks_nms_vs_v0": after == before,
                                     "pose_oks_nms_vs_loop_on_matrix": after == oracle,
                                     "greedy_nms_vs_loop": greedy_nms(matrix, scores, threshold).tolist() == oracle},
            "speedup_median": res["pose_oks_nms_v0"]["median_ms"] / res["pose_oks_nms"]["median_ms"]}


def add_arguments(parser) -> None:
    parser.add_argument("--out", required=True)
    parser.add_argument("--candidates", type=int, default=1000)
    parser.add_argument("--people", type=int, default=30)
    parser.add_argument("--num-keypoints", type=int, default=17)
    parser.add_argument("--threshold", type=float, default=0.2)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--slow-repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)


def main(args) -> int:
    r = run_nms_bench(args.candidates, args.people, args.num_keypoints, args.threshold, args.repeats,
                      args.slow_repeats, args.threads)
    write_json(r, args.out)
    print(json.dumps({k: round(v["median_ms"], 2) for k, v in r["results"].items()}
                     | {"kept": r["kept"], "identical": r["identical_keep_lists"],
                        "loadavg": r["manifest"]["loadavg_at_start"]}))
    return 0 if all(r["identical_keep_lists"].values()) else 1
