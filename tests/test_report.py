"""`posedet report` on tiny fake results trees written here (no training): every number in a table
comes from a file, spreads and near-differences are marked, the files are valid, and missing inputs
print "—" and are listed instead of crashing."""
from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest

from posedet import cli
from posedet.report.build import build_report, figure3_findings, upper_bound_studies
from posedet.report.collect import Inputs, aggregate, within_spread
from posedet.report.paper_numbers import load_paper_numbers, paper_row
from posedet.report.tables import fmt_cell, latex_escape

K_CROWD = 14
CROWD_KPTS = ["left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
              "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle", "head", "neck"]


# ============================================================================== the fake tree

def _write(path: Path, obj) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj) if not isinstance(obj, str) else obj)
    return path


def _config(refine=True, centroid="keypoints", is_on=True, backbone="mobilenetv3_small_050"):
    from posedet.config import Config, config_to_dict
    cfg = config_to_dict(Config())
    cfg["model"].update(refine=refine, intermediate_supervision=is_on, backbone=backbone, neck_channels=64)
    cfg["loss"]["centroid"] = centroid
    cfg["train"].update(input_size=256, iterations=175, epochs=None)
    return cfg


def _crowd_metrics(ap, **over):
    m = {"AP": ap, "AP50": min(1.0, ap + 0.2), "AP75": ap - 0.05, "AR": ap + 0.1, "AR50": 0.9, "AR75": 0.5,
         "AP_easy": ap + 0.1, "AP_medium": ap, "AP_hard": ap - 0.1}
    m.update(over)
    return m


def _tiny_crowd_set(root: Path) -> Path:
    """Two 64×64 images with two persons each (crowdIndex), images on disk."""
    import cv2
    rng = np.random.default_rng(0)
    images, anns = [], []
    for i in (1, 2):
        img = (rng.random((64, 64, 3)) * 255).astype(np.uint8)
        (root / "images").mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(root / "images" / f"{i:03d}.png"), img)
        images.append({"id": i, "file_name": f"{i:03d}.png", "width": 64, "height": 64, "crowdIndex": 0.3 * i})
        for j in range(2):
            xy = rng.uniform(8, 56, (K_CROWD, 2))
            kp = [c for x, y in xy for c in (float(x), float(y), 2)]
            anns.append({"id": 10 * i + j, "image_id": i, "category_id": 1, "iscrowd": 0, "num_keypoints": K_CROWD,
                         "keypoints": kp, "bbox": [8, 8, 48, 48]})
    gt = {"images": images, "annotations": anns,
          "categories": [{"id": 1, "name": "person", "keypoints": CROWD_KPTS, "skeleton": []}]}
    return _write(root / "annotations.json", gt)


def _preds(gt_path: Path, jitter: float) -> list:
    gt = json.loads(gt_path.read_text())
    out = []
    for a in gt["annotations"]:
        kp = np.asarray(a["keypoints"], float).reshape(-1, 3)
        kp[:, :2] += jitter
        kp[:, 2] = 1.0
        out.append({"image_id": a["image_id"], "category_id": 1, "keypoints": kp.ravel().tolist(), "score": 0.9})
    return out


def _ub_study(name, protocol, iou_sup, oks_sup, iou_aph, oks_aph):
    rows = []
    for thr in (0.3, 0.5, 1.0):
        for kind, sup, aph in (("oks", oks_sup, oks_aph), ("iou", iou_sup, iou_aph)):
            s = 0 if thr == 1.0 else sup[thr]
            a = 1.0 if thr == 1.0 else aph[thr]
            rows.append({"nms": kind, "threshold": thr, "AP": a, "AP50": a, "AP75": a, "AP_easy": 1.0,
                         "AP_medium": 1.0, "AP_hard": a, "AR": a, "num_detections_in": 100, "num_kept": 100 - s,
                         "num_suppressed": s})
    return {"name": name, "study": "gt_upper_bound_nms", "oks_protocol": protocol, "metric": "crowdpose",
            "nms_kinds": ["oks", "iou"], "thresholds": [0.3, 0.5, 1.0], "rows": rows,
            "provenance": {"evaluator": "xtcocotools", "evaluator_version": "1.14.3", "seconds_total": 12.5}}


# per-seed APs of the ablation models (fractions): the numbers the tables must show
T4_ON = [0.50, 0.52, 0.54]         # mean 52.0, std 2.0
T4_OFF = [0.30, 0.34]              # mean 32.0, range 30.0–34.0
T4_COARSE = [0.51, 0.53, 0.55]     # mean 53.0: within the spread of JR on (|Δ| = 1.0 < 2.0)


def make_tree(tmp: Path, *, preset_name: str = "fake", with_repo: bool = True) -> dict:
    """results/<preset>/ with Table 1 backbones (synth_coco), the ablation models (synth_crowdpose),
    Figure 3 studies, a bench table, logs, curve; plus a fake repo (preset + recipe) when asked."""
    res = tmp / "results" / preset_name
    data = res / "data" / "synth_crowdpose" / "val"
    gt_crowd = _tiny_crowd_set(data)
    coco_gt = str(gt_crowd)
    # ---- Table 1 / 2: synth_coco backbones, one seed each
    t1 = {"dla34": 0.1234, "hrnet_w32": 0.2345, "hrnet_w48": 0.3456}
    for var, ap in t1.items():
        run = res / "synth_coco" / var / "seed0"
        _write(run / "metrics" / "synth_coco-val.refined.oks.json",
               {"metrics": {"AP": ap, "AP50": 0.6789, "AP75": 0.0987, "APM": 0.0555, "APL": 0.4444},
                "provenance": {"gt": coco_gt, "evaluator": "pycocotools", "evaluator_version": "2.0.8"}})
        _write(run / "train" / "summary.json", {"wall_s": 61.5, "status": "complete",
                                                "config": _config(backbone=f"{var}_standin")})
        _write(run / "train" / "train_log.jsonl",
               "".join(json.dumps({"step": s, "loss": 2.0 / s, "loss_cls": 1.0 / s}) + "\n" for s in (10, 20, 30))
               + '{"event": "done", "step": 30}\n{"step": 40, "lo')     # a line cut by a kill
    _write(res / "synth_coco" / "hrnet_w48" / "seed0" / "metrics" / "synth_coco-val.tta.oks.json",
           {"metrics": {"AP": 0.4321, "AP50": 0.7, "AP75": 0.3, "APM": 0.2, "APL": 0.5}})
    # ---- Tables 3-5: synth_crowdpose ablations
    crowd = res / "synth_crowdpose"
    base, off = "baseline", "no_refine"
    for k, (on_ap, c_ap) in enumerate(zip(T4_ON, T4_COARSE)):
        run = crowd / base / f"seed{k}"
        _write(run / "train" / "summary.json", {"wall_s": 100.0 + k, "config": _config()})
        _write(run / "metrics" / "synth_crowdpose-val.refined.oks.json",
               {"metrics": _crowd_metrics(on_ap), "provenance": {"gt": str(gt_crowd), "evaluator": "xtcocotools",
                                                                 "evaluator_version": "1.14.3"}})
        _write(run / "metrics" / "synth_crowdpose-val.refined.iou.json", {"metrics": _crowd_metrics(on_ap - 0.1)})
        _write(run / "metrics" / "synth_crowdpose-val.coarse.oks.json", {"metrics": _crowd_metrics(c_ap)})
        _write(run / "metrics" / "synth_crowdpose-val.tta.oks.json", {"metrics": _crowd_metrics(0.6111)})
        _write(run / "predictions" / "synth_crowdpose-val.refined.oks.json", _preds(gt_crowd, 0.5))
        _write(run / "predictions" / "synth_crowdpose-val.coarse.oks.json", _preds(gt_crowd, 3.0))
        if k == 0:
            _write(run / "curve.json", {"set": "synth_crowdpose/val", "points": [
                {"minutes": 1.0, "images_seen": 80, "step": 10, "AP": 0.1, "AP50": 0.3, "AP75": 0.05},
                {"minutes": 2.0, "images_seen": 160, "step": 20, "AP": 0.2, "AP50": 0.4, "AP75": 0.1}]})
    for k, ap in enumerate(T4_OFF):
        run = crowd / off / f"seed{k}"
        _write(run / "train" / "summary.json", {"wall_s": 90.0, "config": _config(refine=False)})
        _write(run / "metrics" / "synth_crowdpose-val.refined.oks.json", {"metrics": _crowd_metrics(ap)})
    for var, cen, is_on, ap in (("box_centroid", "box", True, 0.4567), ("no_is", "keypoints", False, 0.4678),
                                ("box_no_is", "box", False, 0.4789)):
        run = crowd / var / "seed0"
        _write(run / "train" / "summary.json", {"wall_s": 80.0, "config": _config(centroid=cen, is_on=is_on)})
        for nms, d in (("oks", 0.0), ("iou", -0.02)):
            _write(run / "metrics" / f"synth_crowdpose-val.refined.{nms}.json", {"metrics": _crowd_metrics(ap + d)})
    # ---- Figure 3: the finding holds under "authors", not under "eval"
    _write(res / "upper_bound" / "crowdpose_val.authors.json",
           _ub_study("crowdpose_val", "authors", {0.3: 40, 0.5: 20}, {0.3: 10, 0.5: 5},
                     {0.3: 0.60, 0.5: 0.80}, {0.3: 0.90, 0.5: 0.95}))
    _write(res / "upper_bound" / "crowdpose_val.eval.json",
           _ub_study("crowdpose_val", "eval", {0.3: 5, 0.5: 2}, {0.3: 30, 0.5: 12},
                     {0.3: 0.97, 0.5: 0.99}, {0.3: 0.70, 0.5: 0.88}))
    # ---- bench
    _write(res / "bench" / "table.json", {
        "manifest": {"cpu": "FakeCPU 9000", "gpu": "FakeGPU H1", "threads": 2, "torch": "2.x"},
        "rows": [
            {"name": "posedet", "backbone": "dla34", "input_short_side": 512, "device": "cuda", "dtype": "float32",
             "network_ms": {"median": 20.0}, "end_to_end_ms": 30.0, "fps": 50.0, "weights": "random"},
            {"name": "posedet", "backbone": "hrnet_w48", "input_short_side": 640, "device": "cpu",
             "dtype": "float32", "network_ms": 400.0, "end_to_end_ms": 450.0, "fps": 2.5, "weights": "random"},
            {"name": "higherhrnet", "backbone": "hrnet_w48", "input_short_side": 640, "device": "cuda",
             "dtype": "float32", "network_ms": 125.0, "fps": 8.0, "weights": "random"},
            {"name": "posedet", "backbone": "dla34", "input_short_side": 512, "device": "cuda", "people": 5,
             "network_ms": 21.0, "end_to_end_ms": 31.0},
            {"name": "posedet", "backbone": "dla34", "input_short_side": 512, "device": "cuda", "people": 20,
             "network_ms": 22.0, "end_to_end_ms": 32.0}]})
    # ---- Snakemake benchmark file
    _write(res / "benchmarks" / "train" / "synth_coco-dla34-seed0.tsv", "s\th:m:s\tmax_rss\n61.9\t0:01:01\t900\n")
    out = {"results": res, "preset": preset_name, "gt_crowd": gt_crowd, "repo": None}
    if with_repo:
        repo = tmp / "repo"
        _write(repo / "configs" / "presets" / f"{preset_name}.yaml",
               "name: fake\nrecipe: configs/recipe_cpu.yaml\ndatasets:\n  synth_crowdpose:\n    kind: synthetic\n"
               "    layout: crowdpose\n    size: 64\n    seed: 1\n    splits: {val: 2}\n")
        _write(repo / "configs" / "recipe_cpu.yaml",
               "deviations:\n  - {switch: train.input_size, value: 256, paper: 512, why: two CPU cores}\n"
               "  - {switch: model.neck_channels, value: 64, paper: 128, why: speed}\n")
        out["repo"] = repo
    return out


def _build(tree, tmp: Path, **kw):
    out = tmp / "reports" / tree["preset"]
    res = build_report(tree["preset"], tree["results"], out, repo=tree["repo"], log=lambda *a: None, **kw)
    return out, res


def _md_rows(md: str) -> list[list[str]]:
    rows = []
    for ln in md.splitlines():
        if ln.startswith("| ") and not ln.startswith("|---"):
            rows.append([c.strip() for c in re.split(r"(?<!\\)\|", ln.strip())[1:-1]])
    return rows


def _cell(md: str, row_pred, col: str) -> str:
    rows = _md_rows(md)
    header = rows[0]
    hits = [r for r in rows[1:] if row_pred(r)]
    assert len(hits) == 1, (hits, md)
    return hits[0][header.index(col)]


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("rep")
    tree = make_tree(tmp)
    out, res = _build(tree, tmp)
    return tree, out, res


# ============================================================================== paper numbers

def test_paper_numbers_file_cites_every_row():
    rows = load_paper_numbers()
    assert {r["table"] for r in rows} == {1, 2, 3, 4, 5}
    assert all(r["citation"] and f"Table {r['table']}" in r["citation"] for r in rows)
    assert paper_row(1, "dla34")["FPS"] == 42 and paper_row(1, "dla34")["AP"] == 59.2
    # Table 4 as corrected (DESIGN.md): 51.7 AP is WITHOUT joint refinement
    assert paper_row(4, "jr_off")["AP"] == 51.7 and paper_row(4, "jr_off")["jr"] == "off"
    assert paper_row(4, "jr_on")["AP75"] == 76.1
    assert len([r for r in rows if r["table"] == 5]) == 8
    assert paper_row(5, "kpt_oks_is")["AP_hard"] == 56.9


# ============================================================================== statistics

def test_aggregate_and_spread_kinds():
    a3 = aggregate({0: 0.50, 1: 0.52, 2: 0.54})
    assert a3["mean"] == pytest.approx(52.0) and a3["spread_kind"] == "std" and a3["spread"] == pytest.approx(2.0)
    assert fmt_cell(a3) == "52.0 ± 2.0"
    a2 = aggregate({0: 0.30, 1: 0.34})
    assert a2["spread_kind"] == "range" and fmt_cell(a2) == "32.0 [30.0–34.0]"
    a1 = aggregate({3: 0.1234})
    assert a1["spread"] is None and fmt_cell(a1) == "12.3" and a1["seeds"] == {3: pytest.approx(12.34)}
    assert fmt_cell(aggregate({})) == "—" and fmt_cell(None, expected=False) == ""
    assert within_spread(aggregate({0: 0.51, 1: 0.53, 2: 0.55}), a3) is True
    assert within_spread(a2, a3) is False
    assert within_spread(a1, aggregate({0: 0.2})) is None        # no spread known: not marked


# ============================================================================== tables from files

def test_table1_cells_come_from_the_files(report):
    tree, out, _ = report
    md = (out / "table1.md").read_text()
    dla = lambda r: r[0] == "PoseDet (Ours)" and r[1] == "DLA-34"  # noqa: E731
    assert _cell(md, dla, "AP (meas.)") == "12.3"
    assert _cell(md, dla, "AP (paper)") == "59.2"
    assert _cell(md, dla, "AP50 (meas.)") == "67.9" and _cell(md, dla, "APL (meas.)") == "44.4"
    assert _cell(md, dla, "FPS (paper)") == "42"
    assert _cell(md, dla, "FPS GPU (meas.)") == "50.0"
    assert _cell(md, dla, "Trained as") == "dla34_standin"
    w48 = lambda r: r[0] == "PoseDet (Ours)" and r[1] == "HRNet-W48"  # noqa: E731
    assert _cell(md, w48, "AP (meas.)") == "34.6" and _cell(md, w48, "FPS CPU (meas.)") == "2.5"
    assert _cell(md, w48, "FPS GPU (meas.)") == "—"          # not benched on GPU: missing
    hh = lambda r: r[0] == "Higher HRNet (2020)"  # noqa: E731
    assert _cell(md, hh, "FPS GPU (meas.)") == "8.0"          # a peer the bench timed
    assert _cell(md, hh, "AP (meas.)") == ""                  # peers are not trained: blank, not missing
    assert _cell(md, hh, "AP (paper)") == "65.7"
    assert "synth_coco-val" in md and "instead of COCO test-dev" in md
    assert "random" in md and "network time does not depend on trained weights" in md
    assert "HRNet-W48 → hrnet_w48_standin" in md


def test_tta_tables(report):
    _, out, _ = report
    md2 = (out / "table2.md").read_text()
    assert _cell(md2, lambda r: r[0] == "PoseDet (Ours)" and r[1] == "HRNet-W48", "AP (meas.)") == "43.2"
    assert _cell(md2, lambda r: r[0] == "PoseDet (Ours)" and r[1] == "HRNet-W32", "AP (meas.)") == "—"
    md3 = (out / "table3.md").read_text()
    assert _cell(md3, lambda r: r[0] == "PoseDet (Ours)", "AP (meas.)") == "61.1 ± 0.0"
    assert _cell(md3, lambda r: r[0] == "PoseDet (Ours)", "APH (paper)") == "58.2"


def test_table4_spread_and_marks(report):
    _, out, _ = report
    md = (out / "table4.md").read_text()
    on = lambda r: r[0] == "✓"  # noqa: E731
    offr = lambda r: r[0].startswith("✗")  # noqa: E731
    coarse = lambda r: "coarse-only" in r[0]  # noqa: E731
    assert _cell(md, on, "AP (meas.)") == "52.0 ± 2.0" and _cell(md, on, "AP (paper)") == "65.9"
    assert _cell(md, offr, "AP (meas.)") == "32.0 [30.0–34.0]" and _cell(md, offr, "AP (paper)") == "51.7"
    assert _cell(md, offr, "Variant") == "no_refine"
    assert _cell(md, coarse, "AP (meas.)") == "53.0 ± 2.0 ≈"       # |Δ| = 1.0 < std 2.0
    assert _cell(md, coarse, "AP (paper)") == ""
    assert "*without* refinement" in md
    assert "mean ± sample std (n ≥ 3)" in md and "mean [min–max] (n = 2)" in md
    # the recipe's deviations and the resolved-config deviations reach the caption
    assert "train.input_size=256 (paper: 512)" in md
    assert "model.neck_channels=64 (paper: unset)" in md


def test_table5_models_from_resolved_configs(report):
    _, out, _ = report
    md = (out / "table5.md").read_text()
    rows = _md_rows(md)
    assert len(rows) == 1 + 8
    header = rows[0]
    by_var_nms = {}
    c_cur = n_cur = None
    for r in rows[1:]:
        c_cur = r[0] or c_cur
        n_cur = r[1] or n_cur
        by_var_nms[(c_cur, n_cur, r[2])] = r
    r = by_var_nms[("Bounding box", "OKS", "✓")]
    assert r[header.index("Variant")] == "box_centroid" and r[header.index("APH (meas.)")] == "35.7"
    r = by_var_nms[("Bounding box", "IoU", "")]
    assert r[header.index("Variant")] == "box_no_is" and r[header.index("APE (meas.)")] == "55.9"
    r = by_var_nms[("Keypoints", "IoU", "✓")]
    assert r[header.index("APM (meas.)")] == "42.0 ± 2.0" and r[header.index("APM (paper)")] == "66.1"
    r = by_var_nms[("Keypoints", "OKS", "")]
    assert r[header.index("Variant")] == "no_is" and r[header.index("APH (paper)")] == "56.6"


def test_csv_keeps_every_seed_and_is_valid(report):
    _, out, _ = report
    for n in range(1, 6):
        with open(out / f"table{n}.csv", newline="") as f:
            recs = list(csv.DictReader(f))
        assert recs and all(r["table"] == str(n) for r in recs)
    with open(out / "table4.csv", newline="") as f:
        recs = list(csv.DictReader(f))
    on_ap = next(r for r in recs if r["row"] == "jr_on" and r["metric"] == "AP")
    assert [float(on_ap[f"seed{k}"]) for k in range(3)] == pytest.approx([50.0, 52.0, 54.0])
    assert on_ap["spread_kind"] == "std" and on_ap["n"] == "3" and float(on_ap["paper"]) == 65.9
    off_ap = next(r for r in recs if r["row"] == "jr_off" and r["metric"] == "AP")
    assert off_ap["seed2"] == "" and off_ap["spread_kind"] == "range" and off_ap["within_seed_spread"] == "False"
    coarse = next(r for r in recs if r["row"] == "jr_on_coarse" and r["metric"] == "AP")
    assert coarse["within_seed_spread"] == "True" and coarse["paper"] == ""


def test_latex_is_well_formed(report):
    _, out, res = report
    for t in res["tables"]:
        tex = (out / f"{t.stem}.tex").read_text()
        assert tex.isascii(), t.stem
        assert tex.count(r"\begin{") == tex.count(r"\end{")
        assert tex.count("{") - tex.count(r"\{") == tex.count("}") - tex.count(r"\}")
        body = tex.split(r"\midrule")[1].split(r"\bottomrule")[0]
        colspec = re.search(r"\\begin\{tabular\}\{([lr]+)\}", tex).group(1)
        for line in [ln for ln in body.splitlines() if ln.strip()]:
            assert len(re.findall(r"(?<!\\)&", line)) == len(colspec) - 1, line
            assert line.endswith(r"\\")
        assert not re.search(r"(?<!\\)[%#_]", tex.replace(r"\_", "")), t.stem
    assert latex_escape("52.0 ± 2.0 ≈ a_b 5%") == r"52.0 $\pm$ 2.0 $\approx$ a\_b 5\%"


# ============================================================================== Figure 3

def test_figure3_both_protocols_and_finding(report):
    tree, out, res = report
    studies = upper_bound_studies(Inputs(results=tree["results"]))
    assert set(studies["crowdpose_val"]) == {"authors", "eval"}
    rows = figure3_findings(studies)
    holds = {(r["protocol"], r["threshold"]): r["finding_holds"] for r in rows}
    assert holds == {("authors", 0.3): True, ("authors", 0.5): True, ("eval", 0.3): False, ("eval", 0.5): False}
    md = (out / "figure3_summary.md").read_text()
    assert "authors protocol: the paper's finding" in md and " holds — at 2 of 2" in md
    assert "eval protocol: the paper's finding (IoU-NMS suppresses more true poses than OKS-NMS, AP(H) higher " \
           "with OKS) does not hold" in md
    assert "at 0.3: IoU suppresses 40 vs OKS 10, AP_hard 90.0 (OKS) vs 60.0 (IoU)" in md
    assert (out / "figure3_crowdpose_val.png").read_bytes()[:4] == b"\x89PNG"


# ============================================================================== figures, html

def test_figures_written(report):
    _, out, res = report
    names = {f["file"] for f in res["figures"]}
    for n in ("figure3_crowdpose_val.png", "figure_speed_accuracy.png", "figure5_synth_crowdpose-val.png",
              "figure4_synth_crowdpose_synth_crowdpose-val.png", "figure_training_synth_coco.png",
              "figure_learning_curve.png", "figure_people_sweep.png"):
        assert n in names, names
        assert (out / n).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", n


def test_index_html_links_everything(report):
    tree, out, res = report
    page = (out / "index.html").read_text()
    for n in range(1, 6):
        assert f'id="table{n}"' in page and f"table{n}.tex" in page
    for src in re.findall(r"<img src='([^']+)'", page):
        assert (out / src).is_file() and not src.startswith("/")
    assert "snakemake_report.html" in page
    assert "loss.heatmap_loss" in page and "--protocol authors" in page   # paper-vs-code, with switches
    assert "two CPU cores" in page and "recipe_cpu.yaml" in page         # the recipe's deviations
    prov = json.loads((out / "provenance.json").read_text())
    assert prov["config_hash"] and len(prov["config_hash"]) == 64
    assert any(r["file"].endswith("annotations.json") and len(r["sha256"]) == 64 for r in prov["data_checksums"])
    stages = {(w["stage"], w["item"]): w["seconds"] for w in prov["wall_times"]}
    assert stages[("train", "synth_coco/dla34/seed0")] == 61.5
    assert stages[("upper_bound", "crowdpose_val.authors")] == 12.5
    assert stages[("train", "train/synth_coco-dla34-seed0")] == 61.9
    assert "xtcocotools 1.14.3" in prov["evaluators_used"] and prov["versions"]["matplotlib"]


# ============================================================================== missing inputs

def test_missing_metric_prints_dash_and_is_listed(tmp_path):
    tree = make_tree(tmp_path, with_repo=False)
    (tree["results"] / "synth_coco" / "hrnet_w32" / "seed0" / "metrics" / "synth_coco-val.refined.oks.json").unlink()
    (tree["results"] / "bench" / "table.json").unlink()
    (tree["results"] / "upper_bound" / "crowdpose_val.eval.json").unlink()
    out, res = _build(tree, tmp_path)
    md = (out / "table1.md").read_text()
    assert _cell(md, lambda r: r[0] == "PoseDet (Ours)" and r[1] == "HRNet-W32", "AP (meas.)") == "—"
    assert _cell(md, lambda r: r[0] == "PoseDet (Ours)" and r[1] == "DLA-34", "AP (meas.)") == "12.3"
    assert _cell(md, lambda r: r[0] == "PoseDet (Ours)" and r[1] == "DLA-34", "FPS GPU (meas.)") == "—"
    missing = (out / "missing.txt").read_text()
    assert "synth_coco/hrnet_w32/seed0/metrics/synth_coco-val.refined.oks.json" in missing
    assert "bench/table.json" in missing and "crowdpose_val.eval.json" in missing
    page = (out / "index.html").read_text()
    assert "inputs missing" in page and "synth_coco-val.refined.oks.json" in page
    assert "The recipe declares no" in page                               # no recipe: handled


def test_empty_tree_does_not_crash_and_strict_exits_1(tmp_path, capsys):
    res_dir, out = tmp_path / "results" / "nothing", tmp_path / "reports" / "nothing"
    assert cli.main(["report", "--preset", "nothing", "--results", str(res_dir), "--out", str(out)]) == 0
    for n in range(1, 6):
        assert (out / f"table{n}.md").is_file() and (out / f"table{n}.tex").is_file()
    assert (out / "index.html").is_file() and "—" in (out / "table4.md").read_text()
    assert "Nothing missing" not in (out / "index.html").read_text()
    assert "inputs missing" in capsys.readouterr().err
    assert cli.main(["report", "--preset", "nothing", "--results", str(res_dir), "--out", str(out),
                     "--strict"]) == 1


def test_complete_tree_lists_nothing_missing_in_the_tables(report):
    _, out, res = report
    metrics_missing = [w for w, what in res["missing"] if what.startswith("metrics")]
    # Table 2's HRNet-W32 TTA run is the only measured table cell the fake tree leaves out
    assert metrics_missing == ["results/fake/synth_coco/hrnet_w32/seed0/metrics/synth_coco-val.tta.oks.json"]


def test_preset_experiments_choose_models_and_sets(tmp_path):
    tree = make_tree(tmp_path)
    preset = tree["repo"] / "configs" / "presets" / "fake.yaml"
    preset.write_text(preset.read_text() + (
        "backbones: {dla34: dla34_cpu, hrnet_w32: hrnet_w18_small, hrnet_w48: hrnet_w18_small_v2}\n"
        "experiments:\n"
        "  table1: {train: synth_coco, variants: [dla34, hrnet_w32, hrnet_w48], eval: [synth_coco/val]}\n"
        "  table3: {train: synth_crowdpose, variants: [baseline], eval: [synth_crowdpose/val], modes: [tta]}\n"
        "  table4: {train: synth_crowdpose, variants: {baseline: {modes: [refined, coarse]}, no_refine: {}},\n"
        "           eval: [synth_crowdpose/val]}\n"
        "  figure4: {train: synth_crowdpose, variants: [baseline], eval: [synth_crowdpose/val]}\n"
        "  figure5: {train: synth_crowdpose, variants: [baseline], eval: [synth_crowdpose/val]}\n"))
    out, res = _build(tree, tmp_path)
    md3 = (out / "table3.md").read_text()
    assert _cell(md3, lambda r: r[0] == "PoseDet (Ours)", "AP (meas.)") == "61.1 ± 0.0"
    names = {f["file"] for f in res["figures"]}
    assert {"figure4_synth_crowdpose_synth_crowdpose-val.png", "figure5_synth_crowdpose-val.png"} <= names
    # images found through the preset's data layout (results/<preset>/data/<name>/<split>/images)
    assert not [w for w, what in res["missing"] if "image file" in what]


def test_bench_rows_with_a_people_count_stay_table_rows_when_a_sweep_list_exists(tmp_path):
    # `posedet bench table` records the table image's people count on every row and gives the
    # sweep as its own list: the rows must still fill Table 1's FPS column
    from posedet.report import tables as T

    doc = {"manifest": {}, "rows": [{"method": "PoseDet", "backbone": "dla34", "short_side": 512,
                                      "device": "cpu", "network_ms": 500.0, "fps": 2.0, "people": 10}],
           "sweep": [{"method": "PoseDet", "backbone": "dla34", "people": 1, "device": "cpu",
                      "network_ms": 510.0}]}
    (tmp_path / "bench").mkdir()
    (tmp_path / "bench" / "table.json").write_text(json.dumps(doc))

    class FakeInputs:
        results = tmp_path

        def json(self, p, what):
            return json.loads(Path(p).read_text())

    rows, sweep, _ = T.bench_rows(FakeInputs())
    assert [r["fps"] for r in rows] == [2.0] and [r["people"] for r in sweep] == [1]
