"""Post-processing micro-benchmark (``posedet bench nms``): decode and OKS-NMS.

OKS-NMS: greedy OKS-NMS of the model's inference on
N candidate poses (default 1,000, K = 17, ~30 people: each candidate is a jittered copy of one
of the people), before (``bench.baselines``: full [N, N, K] torch matrix, then the
per-candidate tensor loop) and after (``posedet.oks_nms.pose_oks_nms``: lazy rows of the kept
poses only, box-bound pruning, NumPy greedy pass), interleaved, with a check that both return
the same keep-list. Also the greedy pass alone on a precomputed matrix (``greedy_nms`` vs the
loop) for the GT upper-bound study's path.

Decode: ``decode_candidates`` (gathers the top-k locations, then adds the refine residual) vs
``decode_candidates_v0`` (added the residual over every location first) on random outputs of
PoseDet's shapes at 512×704 (strides 8–64, K = 17, ~``candidates`` logits above the threshold),
with a check that both return the same candidates."""
from __future__ import annotations

import json

import torch

from posedet.bench.baselines import decode_candidates_v0, greedy_nms_v0, pose_oks_nms_v0
from posedet.bench.protocol import finish_manifest, manifest, summarize, time_interleaved, write_json
from posedet.decode import decode_candidates
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


def synthetic_outputs(size=(512, 704), strides=(8, 16, 32, 64), k: int = 17, above: int = 1000, seed: int = 0) -> dict:
    """Random PoseDet outputs (cls logits, coarse offsets, refine residuals) with about ``above``
    locations scoring above 0.05 in total."""
    g = torch.Generator().manual_seed(seed)
    h, w = size
    sizes = [(h // s, w // s) for s in strides]
    total = sum(a * b for a, b in sizes)
    frac = min(1.0, above / total)
    cls, coarse, refine = [], [], []
    for hh, ww in sizes:
        lg = torch.full((1, 1, hh, ww), -6.0)
        hit = torch.rand(1, 1, hh, ww, generator=g) < frac
        lg[hit] = torch.randn(int(hit.sum()), generator=g).abs() + 0.5
        cls.append(lg)
        coarse.append(torch.randn(1, 2 * k, hh, ww, generator=g) * 3)
        refine.append(torch.randn(1, 2 * k, hh, ww, generator=g) * 0.2)
    return {"strides": list(strides), "cls": cls, "coarse": coarse, "refine": refine, "heatmaps": None}


def run_decode_bench(repeats: int = 20, above: int = 1000, threads: int = 1) -> dict:
    from posedet.bench.protocol import threads as fixed_threads

    out = synthetic_outputs(above=above)
    with fixed_threads(threads):
        runs = time_interleaved({"decode_candidates": lambda: decode_candidates(out, 0.05, 500, True),
                                 "decode_candidates_v0": lambda: decode_candidates_v0(out, 0.05, 500, True)},
                                repeats, warmup=2)
    a, b = decode_candidates(out, 0.05, 500, True)[0], decode_candidates_v0(out, 0.05, 500, True)[0]
    same = all(torch.equal(a[key], b[key]) for key in ("keypoints", "scores", "levels"))
    res = {name: summarize(r) for name, r in runs.items()}
    return {"input": "random outputs of PoseDet's shapes at 512x704, strides 8-64", "candidates": int(a["scores"].numel()),
            "results": res, "identical": same,
            "speedup_median": res["decode_candidates_v0"]["median_ms"] / res["decode_candidates"]["median_ms"]}


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
    dec = run_decode_bench(repeats=max(3, repeats), threads=threads)
    return {"manifest": finish_manifest(m), "results": res, "decode": dec,
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
                     | {"decode_ms": {k: round(v["median_ms"], 2) for k, v in r["decode"]["results"].items()},
                        "decode_identical": r["decode"]["identical"],
                        "kept": r["kept"], "identical": r["identical_keep_lists"],
                        "loadavg": r["manifest"]["loadavg_at_start"]}))
    return 0 if all(r["identical_keep_lists"].values()) and r["decode"]["identical"] else 1
