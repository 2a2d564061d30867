"""``posedet bench``: timing under one documented protocol (DESIGN.md, "FPS protocol").

    posedet bench table --preset-mode quick|full --out results/<preset>/bench/table.json
                        [--checkpoint-dir DIR | --checkpoint BACKBONE=PATH ...] [--device cuda] [--amp]
    posedet bench embedding --out E.json    pose embedding: fast path, before, deform_conv2d, 3×3 conv
    posedet bench nms --out N.json          OKS-NMS on 1,000 candidates: fast path and before
    posedet bench fps --out F.json          one PoseDet model (network and end-to-end)
    posedet bench loader --out L.json       training data loader, images/s per worker (512² crops)
    posedet bench compare A.json B.json     two table runs: B/A network ms per row, flags outside ±10 %

Modules (a lower one never imports a higher one; ``posedet.peers`` sits below all of them):
``protocol`` (timing, FLOPs, manifest), ``load`` (per-row load: wait while busy, record) ← ``baselines`` (the pre-fast-path code, for before/after)
← ``embedding``, ``nms``, ``scenes`` (synthetic images with N people) ← ``runners`` (one per
method: prepare / forward / post / candidate feed) ← ``fps`` (``time_runner``) ← ``table``.
This ``__init__`` only dispatches the subcommands, importing each module when it runs.

Protocol: batch 1, eval mode, ``torch.inference_mode()``, a fixed intra-op thread count
(recorded), warm-up calls before timing, ``torch.cuda.synchronize()`` around every timed call on
GPU, median and spread (min, p10, p90, max, MAD) over the timed calls; FLOPs of the forward by
``torch.utils.flop_counter`` and the achieved GFLOP/s; every file carries a ``manifest``.

``bench table`` JSON (read by the report):

* ``manifest``: ``cpu``, ``cpu_count``, ``gpu``, ``device``, ``threads``, ``interop_threads``,
  ``torch``, ``torchvision``, ``timm``, ``numpy``, ``scipy``, ``ultralytics``, ``cuda``, ``platform``,
  ``time``, ``loadavg_at_start`` / ``loadavg_at_end`` (``os.getloadavg()``), ``load_policy`` and
  ``load_summary`` (``rows``, ``rows_timed_under_load``, ``waited_s``; see ``load``), ``mode``,
  ``image_size`` [w, h], ``short_sides``, ``max_size``, ``table_people``, ``sweep_people``,
  ``sweep_short_side``, ``amp``, ``batch``, ``pose_source``, ``checkpoints`` (backbone → path or
  null), ``timed`` (what each figure covers), ``weights_note``, ``wall_s``;
* ``rows``: one per timed method, with ``method`` (``PoseDet``, ``PoseDet backbone+neck``,
  ``HigherHRNet-style``, ``Keypoint R-CNN``, ``YOLO11n-pose``, ``YOLO11s-pose``, ``backbone``),
  ``backbone``, ``short_side``, ``max_size``, ``input_size`` [h, w] (the tensor the network got),
  ``device``, ``dtype`` (``fp32`` | ``fp16-autocast``), ``network_ms`` (median), ``spread``
  (``min_ms``, ``p10_ms``, ``p90_ms``, ``max_ms``, ``mad_ms``, ``n``), ``end_to_end_ms`` (median)
  and ``end_to_end_spread``, ``forward_ms``, ``post_ms`` (network − forward), ``fps`` (1000 /
  network_ms), ``end_to_end_fps``, ``gflops`` (forward), ``achieved_gflops_per_s``, ``weights``
  (``random`` or ``trained: PATH``, or the stand-in note), ``timed_under_load`` and ``load``
  (per row: ``loadavg_before``, ``other_cpu_cores_before``, ``other_cpu_cores_during``,
  ``loadavg_after``, ``waited_s``, ``busy``, ``timed_under_load``, ``samples``; the busy rule is
  in ``posedet.bench.load``), ``candidates`` (counts the
  post-processing saw — PoseDet ``candidates_to_nms`` / ``kept``; HigherHRNet-style
  ``joint_candidates`` / ``people_found``; Keypoint R-CNN ``keypoint_head_boxes`` /
  ``rpn_post_nms_top_n``; YOLO ``candidates_to_nms`` / ``kept`` — and ``mode``: how they were
  obtained), ``people``, ``image_size``, ``repeats``;
* ``sweep``: ``method``, ``backbone``, ``short_side``, ``input_size``, ``device``, ``dtype``,
  ``people``, ``network_ms``, ``spread``, ``forward_ms``, ``post_ms``, ``candidates``, ``weights``,
  ``timed_under_load``, ``load``;
* ``ratios``: ``what`` (``PoseDet / HigherHRNet-style FPS``, ``PoseDet / Keypoint R-CNN FPS``,
  ``PoseDet network / its backbone+neck``), ``backbone``, ``short_side``, ``network``,
  ``end_to_end``;
* ``skipped``: ``method``, ``reason`` (e.g. ultralytics not installed);
* ``paper_fps``: the paper's Table 1 FPS (``method``, ``backbone``, ``fps``) for the report.
"""
from __future__ import annotations

import argparse
import importlib

SUBCOMMANDS = {
    "table": ("posedet.bench.table", "PoseDet (three backbones) and every peer, people-count sweep, one JSON"),
    "embedding": ("posedet.bench.embedding", "pose-embedding micro-benchmark (fast path vs before vs DCN vs 3x3 conv)"),
    "nms": ("posedet.bench.nms", "OKS-NMS on 1,000 candidates (fast path vs before)"),
    "fps": ("posedet.bench.fps", "one PoseDet model: network and end-to-end FPS"),
    "loader": ("posedet.bench.loader", "training data loader: images/s per worker on real JPEGs"),
    "compare": ("posedet.bench.compare", "two bench table JSONs: B/A network ms per row, rows outside ±10 %"),
}


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="bench", metavar="BENCH")
    sub.required = True
    for name, (modname, help_) in SUBCOMMANDS.items():
        sp = sub.add_parser(name, help=help_, description=help_)
        importlib.import_module(modname).add_arguments(sp)


def main(args) -> int:
    return int(importlib.import_module(SUBCOMMANDS[args.bench][0]).main(args) or 0)
