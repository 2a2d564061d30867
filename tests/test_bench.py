"""posedet.bench: the protocol helpers, the package layering, the micro-benchmarks' checks and a
tiny end-to-end `bench table` (tiny backbones and inputs; no timed asserts)."""
from __future__ import annotations

import ast
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

import posedet.bench as bench_pkg
from posedet.bench import protocol

BENCH_DIR = Path(bench_pkg.__file__).parent
ORDER = ["protocol", "baselines", "embedding", "nms", "scenes", "runners", "fps", "table"]


def _imports(path: Path) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return out


def test_layering_no_import_cycles():
    """Each bench module imports only lower ones; peers never import bench; __init__ imports none."""
    assert not any(m.startswith("posedet.bench") for m in _imports(BENCH_DIR / "__init__.py"))
    for i, name in enumerate(ORDER):
        higher = {f"posedet.bench.{n}" for n in ORDER[i:]}
        assert not (_imports(BENCH_DIR / f"{name}.py") & higher), name
    for p in (BENCH_DIR.parent / "peers").glob("*.py"):
        assert not any(m.startswith("posedet.bench") for m in _imports(p)), p.name
    for old in ("bench.py", "bench_fps.py", "bench_embedding.py"):
        assert not (BENCH_DIR.parent / old).exists()


def test_summarize_and_time_calls():
    s = protocol.summarize([0.003, 0.001, 0.002, 0.010])
    assert s["n"] == 4 and s["median_ms"] == pytest.approx(2.5) and s["min_ms"] == pytest.approx(1.0)
    assert s["max_ms"] == pytest.approx(10.0) and s["fps_median"] == pytest.approx(400.0)
    calls = []
    t = protocol.time_calls(lambda: calls.append(1), repeats=3, warmup=2)
    assert len(t) == 3 and len(calls) == 5
    r = protocol.time_interleaved({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, repeats=3,
                                  warmup=0, repeats_for={"b": 1})
    assert len(r["a"]) == 3 and len(r["b"]) == 1


def test_manifest_and_flops_and_threads():
    m = protocol.finish_manifest(protocol.manifest("cpu", 1, input_size=[8, 8]))
    for key in ("cpu", "torch", "torchvision", "threads", "loadavg_at_start", "loadavg_at_end", "input_size"):
        assert key in m
    conv = torch.nn.Conv2d(3, 4, 3, padding=1, bias=False)
    x = torch.randn(1, 3, 5, 6)
    assert protocol.count_flops(lambda: conv(x)) == 2 * 4 * 3 * 9 * 5 * 6
    before = torch.get_num_threads()
    with protocol.threads(1) as n:
        assert n == 1 == torch.get_num_threads()
    assert torch.get_num_threads() == before


def test_nms_bench_reports_identical_keep_lists(tmp_path):
    from posedet.bench.nms import main, run_nms_bench, synthetic_candidates

    kp, scores, people = synthetic_candidates(60, 6, 17, seed=1)
    assert kp.shape == (60, 17, 2) and people.shape == (6, 17, 2)
    r = run_nms_bench(num=60, people=6, repeats=1, slow_repeats=1)
    assert all(r["identical_keep_lists"].values()) and 1 <= r["kept"] <= 60
    out = tmp_path / "nms.json"
    args = SimpleNamespace(out=str(out), candidates=40, people=4, num_keypoints=17, threshold=0.2, repeats=1,
                           slow_repeats=1, threads=1)
    assert main(args) == 0 and json.loads(out.read_text())["manifest"]["candidates"] == 40


def test_scene_has_the_people_asked_for():
    from posedet.bench.scenes import make_scene

    s = make_scene(7, size=(96, 64), seed=3)
    assert s.image.shape == (64, 96, 3) and s.keypoints.shape == (7, 17, 2) and s.people == 7
    assert s.jpeg[:2] == b"\xff\xd8"
    again = make_scene(7, size=(96, 64), seed=3)
    assert np.array_equal(s.keypoints, again.keypoints)


def test_posedet_runner_plants_the_candidates():
    from posedet.bench.fps import time_runner
    from posedet.bench.runners import NeckRunner, PoseDetRunner
    from posedet.bench.scenes import make_scene

    torch.manual_seed(0)
    scene = make_scene(2, size=(128, 96), seed=0)
    r = PoseDetRunner("mobilenetv3_small_050", 96, 160, per_person=5)
    assert r.weights == "random" and r.candidates_mode.startswith("planted")
    row = time_runner(r, scene, warmup=0, repeats=1, e2e_repeats=1, forward_repeats=1)
    assert row["candidates"]["candidates_to_nms"] == 10 and 1 <= row["candidates"]["kept"] <= 10
    assert row["gflops"] > 0 and row["network_ms"] > 0 and row["end_to_end_ms"] > 0
    assert row["input_size"][0] % 64 == 0 and row["people"] == 2
    neck = time_runner(NeckRunner(r), scene, warmup=0, repeats=1, e2e_repeats=1, forward_repeats=1)
    assert neck["method"] == "PoseDet backbone+neck" and neck["gflops"] < row["gflops"]


def test_posedet_runner_with_a_standin_checkpoint(tmp_path):
    """A trained checkpoint of another backbone: its own candidates are fed to NMS."""
    from posedet.bench.fps import time_runner
    from posedet.bench.runners import PoseDetRunner
    from posedet.bench.scenes import make_scene
    from posedet.checkpoint import save_checkpoint
    from posedet.model.detector import PoseDet

    ckpt = _tiny_checkpoint(tmp_path)
    r = PoseDetRunner("dla34", 64, 96, checkpoint=str(ckpt))
    assert "stand-in" in r.weights
    row = time_runner(r, make_scene(1, size=(96, 64)), warmup=0, repeats=1, e2e_repeats=1, forward_repeats=1,
                      flops=False)
    assert row["candidates"]["candidates_to_nms"] is not None


def _tiny_checkpoint(tmp_path):
    from posedet.checkpoint import save_checkpoint
    from posedet.model.detector import PoseDet
    from posedet.skeletons import skeleton_for_num_keypoints
    from posedet.checkpoint import skeleton_dict

    model = PoseDet(backbone="mobilenetv3_small_050", num_keypoints=17, pretrained=False)
    with torch.no_grad():                                  # every location scores ~0.5
        for emb_out in (model.head.cls_out,):
            emb_out.bias.fill_(0.0)
    path = tmp_path / "final.pt"
    save_checkpoint(path, {"model": model.state_dict(), "config": {"model": {"backbone": "mobilenetv3_small_050"}},
                           "model_signature": model.model_signature(),
                           "skeleton": skeleton_dict(skeleton_for_num_keypoints(17))})
    return path


def test_tiny_table_end_to_end(tmp_path):
    from posedet.bench.table import format_table, ratios, run_table

    pytest.importorskip("scipy")                              # the HigherHRNet-style grouping ('peers' extra)
    res = run_table("quick", num_threads=1, methods=["PoseDet", "HigherHRNet-style", "backbone"],
                    overrides={"image_size": (96, 64), "sizes": {"mobilenetv3_small_050": 64, "hrnet_w18_small": 64},
                               "max_size": 96, "sweep_people": [1, 3], "sweep_short": 64, "table_people": 2,
                               "sweep_backbone": "mobilenetv3_small_050", "sweep_hrnet": "hrnet_w18_small"})
    methods = {(r["method"], r["backbone"]) for r in res["rows"]}
    assert ("PoseDet", "mobilenetv3_small_050") in methods and ("HigherHRNet-style", "hrnet_w18_small") in methods
    assert ("PoseDet backbone+neck", "hrnet_w18_small") in methods and ("backbone", "mobilenetv3_small_050") in methods
    keys = {"method", "backbone", "short_side", "device", "dtype", "network_ms", "spread", "end_to_end_ms", "fps",
            "gflops", "weights", "candidates"}
    assert all(keys <= set(r) for r in res["rows"])
    assert {(r["method"], r["people"]) for r in res["sweep"]} >= {("PoseDet", 1), ("PoseDet", 3),
                                                                  ("HigherHRNet-style", 3)}
    hh = [r for r in res["sweep"] if r["method"] == "HigherHRNet-style" and r["people"] == 3][0]
    assert hh["candidates"]["people_found"] == 3
    whats = {q["what"] for q in res["ratios"]}
    assert "PoseDet / HigherHRNet-style FPS" in whats and "PoseDet network / its backbone+neck" in whats
    assert res["manifest"]["mode"] == "quick" and res["manifest"]["loadavg_at_end"] is not None
    for r in res["rows"] + res["sweep"]:                     # per-row load, sampled before each timing
        assert set(r["load"]) >= {"loadavg_before", "other_cpu_cores_before", "loadavg_after", "waited_s", "busy",
                                  "timed_under_load"} and r["timed_under_load"] == r["load"]["timed_under_load"]
        assert r["load"]["waited_s"] == 0.0                  # quick mode never waits
    assert res["manifest"]["load_summary"]["rows"] == len(res["rows"]) + len(res["sweep"])
    hr = [r for r in res["rows"] if r["method"] == "HigherHRNet-style"][0]
    assert hr["candidates"]["grouped_at"] == hr["input_size"] and hr["max_size"] is None
    text = format_table(res)
    assert "people-count sweep" in text and "HigherHRNet-style" in text
    json.dumps(res)                                           # JSON-able
    assert ratios([]) == []


def test_cli_lists_the_bench_subcommands():
    from posedet.cli import build_parser

    parser, _ = build_parser(["bench", "table"])
    args = parser.parse_args(["bench", "table", "--preset-mode", "quick", "--out", "x.json",
                              "--checkpoint-dir", "results/synthetic/synth_coco"])
    assert args.bench == "table" and args.preset_mode == "quick" and args.checkpoint_dir.endswith("synth_coco")
    for sub in ("embedding", "nms", "fps"):
        assert parser.parse_args(["bench", sub, "--out", "y.json"]).bench == sub


def test_find_checkpoint(tmp_path):
    from posedet.bench.table import find_checkpoint

    p = tmp_path / "dla34" / "seed0" / "train"
    p.mkdir(parents=True)
    (p / "final.pt").write_bytes(b"")
    assert find_checkpoint(str(tmp_path), "dla34", {}) == str(p / "final.pt")
    assert find_checkpoint(str(tmp_path), "hrnet_w32", {}) is None
    assert find_checkpoint(None, "hrnet_w32", {"hrnet_w32": "x.pt"}) == "x.pt"
