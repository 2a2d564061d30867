"""``build_report``: read results/<preset>/, write reports/<preset>/ (tables, figures, index.html).

Given the run's plan (``plan=``, posedet/plan.py; the workflow passes ``results/<preset>/plan.json``)
it reads only the files the plan names, takes the preset as the run resolved it (``--config``
overrides applied) and the recipe's declared deviations from what the models trained with.

Outputs (names fixed, see docs/report.md):
  summary.md (the findings), table{1..5}.{md,tex,csv}, figure3_<set>.png, figure3_summary.{md,csv},
  figure_speed_accuracy.png, figure4_<dataset>_<set>.jpg, figure5_<set>.jpg,
  figure_training_<dataset>.png, figure_learning_curve.png, figure_people_sweep.png (when the bench
  has a sweep), contact_sheet_<data set>.jpg (one per synthetic data set), missing.txt,
  provenance.json, index.html (with the "Data sets" section and one table per extra evaluation:
  an experiment that is not table1..5 / figure*). Figure files of an earlier run that this
  run does not write are removed (the upper-bound rule's figure3_upper_bound_* files are not the
  report's and are left alone).
"""
from __future__ import annotations

import csv
import io
import json
import sys
import time
from pathlib import Path

import yaml

from posedet.report import datasets as DS
from posedet.report import extra as EX
from posedet.report import figures as F
from posedet.report import findings as FD
from posedet.report.collect import Inputs
from posedet.report.common import pick_bench as _pick_bench
from posedet.report.paper_numbers import paper_rows
from posedet.report.tables import (
    TABLE1_BACKBONES, Context, ablation_models, bench_rows, build_tables, deviation_rows,
    render_latex, render_markdown, write_csv,
)

__all__ = ["build_report", "upper_bound_studies", "figure3_findings", "load_deviations", "trained_deviations",
           "ResultsNotFound"]

# figure files the report writes (figure3_upper_bound_* belong to the upper-bound rule)
_OWN_FIGURES = ("figure3_*.png", "figure4_*.png", "figure4_*.jpg", "figure5_*.png", "figure5_*.jpg", "figure_*.png",
                "contact_sheet_*.jpg")


class ResultsNotFound(FileNotFoundError):
    """The results folder to report on does not exist."""

MAX_QUAL_IMAGES = 4


# ============================================================================== inputs

def load_deviations(preset: dict, repo: Path | None, recipe: str | None) -> tuple[list[dict], str | None]:
    """The recipe's ``deviations:`` list of {switch, value, paper, why} and where it came from: the
    ``--recipe`` file, else the preset's ``recipe:`` (file or mapping), else the preset's own
    ``deviations:``. ([], None) when none is declared."""
    cands = []
    if recipe:
        cands.append(recipe)
    if isinstance(preset, dict):
        if preset.get("recipe") is not None:
            cands.append(preset["recipe"])
        if preset.get("deviations") is not None:
            cands.append({"deviations": preset["deviations"], "_from": preset.get("_file", "preset")})
    for c in cands:
        doc, src = c, None
        if isinstance(c, (str, Path)):
            p = Path(c)
            if not p.is_absolute() and repo is not None and not p.is_file():
                p = repo / p
            try:
                doc, src = yaml.safe_load(p.read_text()), str(p)
            except (OSError, yaml.YAMLError):
                continue
        elif isinstance(c, dict):
            src = c.get("_from", "preset recipe")
        devs = doc.get("deviations") if isinstance(doc, dict) else None
        if isinstance(devs, list):
            return [d for d in devs if isinstance(d, dict)], src
    return [], None


def trained_deviations(inputs: Inputs, plan) -> tuple[list[dict], str | None]:
    """The declared deviations of what the plan's PoseDet models trained with: the ``deviations:``
    list of each model's resolved config (``train/summary.json`` ``config``; the recipe it trained
    with), in model order without repeats; before any model has a summary, the list the plan
    recorded from the run's recipe. ([], source) when the recipe declares none."""
    seen, out, found = set(), [], []
    for m in plan.models:
        if m.kind != "posedet":
            continue
        s = inputs.json(inputs.path(m.summary))
        cfg = s.get("config") if isinstance(s, dict) else None
        devs = cfg.get("deviations") if isinstance(cfg, dict) else None
        if not isinstance(devs, list):
            continue
        found.append(m)
        for d in devs:
            key = json.dumps(d, sort_keys=True, default=str)
            if isinstance(d, dict) and key not in seen:
                seen.add(key)
                out.append(d)
    recipe = inputs.rel(plan.recipe)
    if found:
        return out, (f"{recipe}, as the models trained with it (the config in train/summary.json of "
                     f"{len(found)} of {sum(m.kind == 'posedet' for m in plan.models)} models)")
    return [dict(d) for d in plan.deviations], f"{recipe}, as the run's plan.json recorded it"


def upper_bound_studies(inputs: Inputs) -> dict[str, dict[str, dict]]:
    """{set: {protocol: study}} of results/<preset>/upper_bound/<set>.<protocol>.json: the plan's
    studies (a missing one is listed), else every file found (a legacy ``<set>.json`` counts under
    the protocol its JSON names, else 'eval')."""
    out: dict = {}
    for stem, planned, p in inputs.upper_bound_files():
        res = inputs.json(p, f"Figure 3 study ({planned} protocol)" if planned else None)
        if not isinstance(res, dict) or "rows" not in res:
            continue
        if planned:
            set_name, proto = stem, planned
        else:
            set_name, _, proto = stem.rpartition(".")
        if not set_name or proto not in ("authors", "eval"):
            set_name, proto = stem, res.get("oks_protocol") or "eval"
        res.setdefault("_file", inputs.rel(p))
        out.setdefault(set_name, {})[proto] = res
    return out


def figure3_findings(studies: dict[str, dict[str, dict]]) -> list[dict]:
    """Per (set, protocol, threshold < 1): suppressed counts and AP(H) (or AP) of OKS vs IoU, and
    whether the paper's finding is seen there (``findings.suppresses_fewer``: IoU-NMS suppresses more
    true poses; AP(H) is shown, not judged: Figure 3's one rule counts suppressions, docs/report.md)."""
    rows = []
    for set_name, by_proto in sorted(studies.items()):
        for proto, res in sorted(by_proto.items()):
            by = {(r["nms"], round(float(r["threshold"]), 4)): r for r in res["rows"]}
            key = "AP_hard" if any(r.get("AP_hard") is not None for r in res["rows"]) else "AP"
            for thr in sorted({t for _, t in by}):
                o, i = by.get(("oks", thr)), by.get(("iou", thr))
                if o is None or i is None or thr >= 1.0:
                    continue
                holds = FD.suppresses_fewer(o["num_suppressed"], i["num_suppressed"])
                rows.append({"set": set_name, "protocol": proto, "threshold": thr, "metric": key,
                             "oks_suppressed": o["num_suppressed"], "iou_suppressed": i["num_suppressed"],
                             "oks_metric": o.get(key), "iou_metric": i.get(key),
                             "poses_in": o.get("num_detections_in"), "finding_holds": holds})
    return rows


def _findings_md(rows: list[dict]) -> str:
    if not rows:
        return "No upper-bound study found (results/<preset>/upper_bound/<set>.<protocol>.json).\n"
    lines = ["| Set | Protocol | NMS thr | GT poses in | suppressed OKS | suppressed IoU | metric | OKS ×100 | "
             "IoU ×100 | finding holds |", "|---|---|---:|---:|---:|---:|---|---:|---:|---|"]
    for r in rows:
        f = lambda v: "—" if v is None else f"{100 * v:.1f}"  # noqa: E731
        lines.append(f"| {r['set']} | {r['protocol']} | {r['threshold']:g} | {r['poses_in']} | {r['oks_suppressed']} | "
                     f"{r['iou_suppressed']} | {r['metric']} | {f(r['oks_metric'])} | {f(r['iou_metric'])} | "
                     f"{'yes' if r['finding_holds'] else 'no'} |")
    return "\n".join(lines) + "\n"


def findings_sentences(rows: list[dict]) -> list[str]:
    out = []
    groups: dict = {}
    for r in rows:
        groups.setdefault((r["set"], r["protocol"]), []).append(r)
    for (s, proto), rs in groups.items():
        n_hold = sum(r["finding_holds"] for r in rs)
        res = FD.compare_counts([(r["threshold"], r["oks_suppressed"], r["iou_suppressed"]) for r in rs])
        at = {r["threshold"]: r for r in rs}
        detail = "; ".join(
            f"at {t:g}: IoU suppresses {at[t]['iou_suppressed']} vs OKS {at[t]['oks_suppressed']}, "
            f"{at[t]['metric']} {100 * at[t]['oks_metric']:.1f} (OKS) vs {100 * at[t]['iou_metric']:.1f} (IoU)"
            for t in (0.3, 0.5) if t in at and at[t]["oks_metric"] is not None and at[t]["iou_metric"] is not None)
        verdict = FD.HOLDS if res["verdict"] == FD.HOLDS else f"{res['verdict']} ({res['reason']})"
        out.append(f"{s}, {proto} protocol: the paper's finding (OKS-NMS suppresses fewer true poses than IoU-NMS) "
                   f"{verdict} — IoU-NMS suppresses more at {n_hold} of {len(rs)} thresholds below 1.0"
                   + (f" ({detail})" if detail else "") + ".")
    return out


# ============================================================================== figures

def _figure3(inputs: Inputs, out: Path, figs: list, studies) -> None:
    for set_name, by_proto in sorted(studies.items()):
        protos = [p for p in ("authors", "eval") if p in by_proto] + [p for p in by_proto if p not in ("authors", "eval")]
        png = out / f"figure3_{set_name}.png"
        title = (f"Figure 3: GT upper bound of OKS-NMS vs IoU-NMS on {by_proto[protos[0]].get('name', set_name)} "
                 f"(protocols: {', '.join(protos)})")
        F.plot_upper_bound([by_proto[p] for p in protos], png, title, labels=[f"{p} protocol" for p in protos])
        # with a plan, a planned study that is absent is listed where it is read (upper_bound_studies)
        missing = [p for p in ("authors", "eval") if p not in by_proto] if inputs.plan is None else []
        for p in missing:
            inputs.need(f"Figure 3 study, {p} protocol", f"results/<preset>/upper_bound/{set_name}.{p}.json")
        figs.append({"file": png.name, "section": "Figure 3",
                     "caption": f"Ground-truth upper bound on {set_name} (model-free: the annotated poses as "
                                f"detections): AP by crowd level and the share of poses suppressed against the NMS "
                                f"threshold, solid OKS-NMS, dashed IoU-NMS, one colour per OKS protocol "
                                f"({', '.join(protos)}). The paper's finding (OKS-NMS suppresses fewer true poses): "
                                + "; ".join(f"{p} protocol {FD.figure3_verdict(by_proto[p])['verdict']}" for p in protos)
                                + ". Sources: " + ", ".join(by_proto[p]["_file"] for p in protos) + "."})


def _speed_accuracy(ctx: Context, out: Path, figs: list) -> None:
    brows, _, manifest = bench_rows(ctx.inputs)
    ds = ctx.dataset("coco")
    set_slug = ctx.eval_set("coco", ds, "dla34", "table1") if ds else None
    from posedet.report.collect import aggregate
    points = []
    ours = {k for k, _ in TABLE1_BACKBONES}
    for p in paper_rows(1):
        is_ours = p["row"] in ours
        label = f"{p['method'].replace(' (Ours)', '')} {p['backbone']}" if is_ours else p["method"]
        points.append({"label": label, "fps": p["FPS"], "ap": p["AP"],
                       "group": "PoseDet, paper" if is_ours else "peers, paper"})
        for dev in ("gpu", "cpu"):
            b = _pick_bench(brows, peer=None if is_ours else p["row"], backbone=p["backbone"],
                            short_side=p["input_size"], device_kind=dev)
            if b is None:
                continue
            if is_ours and ds:
                agg = aggregate(ctx.inputs.seed_values(ds, p["row"], set_slug, "refined", "oks", "AP"))
                if agg["mean"] is not None:
                    points.append({"label": label, "fps": b["fps"], "ap": agg["mean"],
                                   "group": f"PoseDet, measured FPS ({dev.upper()}) / stand-in AP"})
            elif not is_ours:
                points.append({"label": label, "fps": b["fps"], "ap": p["AP"],
                               "group": f"peers, measured FPS ({dev.upper()}) / paper AP"})
    png = out / "figure_speed_accuracy.png"
    note = ("Paper points: the paper's Table 1 (GTX 1080Ti). Measured FPS: results/<preset>/bench/table.json "
            "(network time). Measured AP: the preset's stand-in models on " + str(set_slug) + ".")
    F.plot_speed_accuracy(points, png, "Speed against accuracy (Table 1's models)", note)
    figs.append({"file": png.name, "section": "Speed and accuracy", "caption": note})


def _set_files(ctx: Context, set_slug: str, metrics_json: dict | None) -> tuple[Path | None, Path | None]:
    """(annotation file, image root) of a set: from the preset, else the evaluation's provenance."""
    from posedet import presets as P
    ann = root = None
    preset = ctx.preset
    planned = ctx.inputs.set_files(set_slug)
    if planned is not None:
        ann, root = planned
    elif preset.get("datasets") and preset.get("_file"):
        try:
            name = P.unslug(preset, set_slug)
            base = str(ctx.inputs.results)
            ann = Path(P.annotation_file(preset, name, base))
            r = P.image_root(preset, name, base)
            root = Path(r) if r else None
        except (P.PresetError, KeyError, ValueError):
            ann = root = None
    if (ann is None or not ann.is_file()) and isinstance(metrics_json, dict):
        gt = (metrics_json.get("provenance") or {}).get("gt")
        if gt and Path(gt).is_file():
            ann = Path(gt)
    if ann is not None and root is None:
        for cand in (ann.parent / "images", ann.parent):
            if cand.is_dir():
                root = cand
                break
    return ann, root


def _crowded_images(gt: dict, n: int) -> list[dict]:
    counts: dict = {}
    for a in gt.get("annotations", []):
        if any(v > 0 for v in a.get("keypoints", [])[2::3]):
            counts[a["image_id"]] = counts.get(a["image_id"], 0) + 1
    imgs = [im for im in gt.get("images", []) if counts.get(im["id"])]
    imgs.sort(key=lambda im: (-(im.get("crowdIndex") or 0.0), -counts[im["id"]], im["id"]))
    return imgs[:n]


def _draw_rows(ctx, run, set_slug, modes: list[tuple[str, str]], title: str, png: Path) -> bool:
    """GT row plus one row per (label, mode) of predictions on the most crowded images of a set."""
    import numpy as np

    from posedet.data.reader import read_image
    from posedet.draw import draw_poses
    from posedet.skeletons import skeleton_for_num_keypoints

    mj = ctx.inputs.json(run.path / "metrics" / f"{set_slug}.{modes[-1][1]}.oks.json")
    ann_path, root = _set_files(ctx, set_slug, mj)
    gt = ctx.inputs.json(ann_path, f"annotations of {set_slug} (qualitative figures)") if ann_path else None
    if not isinstance(gt, dict):
        ctx.inputs.need("annotations for the qualitative figures", set_slug)
        return False
    preds = {}
    for label, mode in modes:
        p = ctx.inputs.predictions(run, set_slug, mode)
        if not isinstance(p, list):
            return False
        preds[mode] = p
    k = len(gt["categories"][0]["keypoints"]) if gt.get("categories") else None
    if not k:
        return False
    skel = skeleton_for_num_keypoints(k)
    chosen = _crowded_images(gt, MAX_QUAL_IMAGES)
    images = []
    for im in chosen:
        arr = read_image((root or Path(".")) / im["file_name"]) if root else None
        if arr is None:
            ctx.inputs.need("image file (qualitative figures)", str((root or Path("?")) / im["file_name"]))
            arr = np.full((im.get("height", 256), im.get("width", 256), 3), 255, np.uint8)
        images.append(arr)
    if not chosen:
        return False
    gt_by = {}
    for a in gt["annotations"]:
        gt_by.setdefault(a["image_id"], []).append(a)

    def kp(anns):
        return np.asarray([a["keypoints"] for a in anns], dtype=np.float64).reshape(len(anns), k, 3)

    rows = [("ground truth", [draw_poses(img, kp(gt_by.get(im["id"], [])), skel, flags=True)
                              for img, im in zip(images, chosen)])]
    for label, mode in modes:
        by = {}
        for d in preds[mode]:
            by.setdefault(d["image_id"], []).append(d)
        drawn = []
        for img, im in zip(images, chosen):
            n_gt = len(gt_by.get(im["id"], []))
            ds = sorted(by.get(im["id"], []), key=lambda d: -d.get("score", 0.0))[:max(1, n_gt)]
            pk = kp(ds)
            if len(ds):
                pk[..., 2] = 1.0         # predicted keypoints carry score 1 (draw all)
            drawn.append(draw_poses(img, pk, skel, [d.get("score", 0.0) for d in ds], flags=False))
        rows.append((label, drawn))
    titles = [f"image {im['id']}" + (f", crowdIndex {im['crowdIndex']:.2f}" if im.get("crowdIndex") is not None else "")
              for im in chosen]
    F.plot_pose_rows(rows, png, title, titles)
    return True


def _qualitative(ctx: Context, out: Path, figs: list) -> None:
    ds_c, models = ablation_models(ctx)
    base = models.get((True, "keypoints", True)) if ds_c else None
    exp5 = ctx.experiment("figure5")
    if exp5 and exp5["train"] and exp5["variants"]:
        ds_c, base = exp5["train"], exp5["variants"][0]
        if not ctx.inputs.seeds(ds_c, base):
            base = None
    # Figure 5: coarse vs refined of the Table 4 JR model, every set it was evaluated on
    if ds_c and base:
        run = ctx.inputs.seeds(ds_c, base)[0]
        for set_slug in (exp5["eval"] if exp5 and exp5["eval"] else ctx.inputs.sets_evaluated(ds_c, base)):
            png = out / f"figure5_{set_slug}.jpg"
            if _draw_rows(ctx, run, set_slug, [("coarse", "coarse"), ("refined", "refined")],
                          f"Figure 5 style: coarse (bypass) vs refined poses, {ds_c}/{base}/seed{run.seed} on "
                          f"{set_slug} (top-scoring predictions, as many as GT persons)", png):
                figs.append({"file": png.name, "section": "Figure 5",
                             "caption": f"Coarse (middle) vs refined (bottom) poses of {ds_c}/{base} on {set_slug}; "
                                        f"top row: ground truth. Predictions: "
                                        f"{ctx.inputs.rel(run.path / 'predictions')}/{set_slug}.{{coarse,refined}}.oks.json."})
    else:
        ctx.inputs.need("Figure 5: the JR model (refine on, keypoint centroid, IS on) on a CrowdPose-like set",
                        f"results/{ctx.preset_name}/")
    # Figure 4: predictions on crowded images: the preset's figure4* experiments, else each data
    # set's baseline model on every set it was evaluated on
    jobs = []
    for name in sorted((ctx.preset.get("experiments") or {}) if isinstance(ctx.preset, dict) else {}):
        e = ctx.experiment(name) if name.startswith("figure4") else None
        if e and e["train"] and e["variants"]:
            jobs.append((e["train"], e["variants"][0], e["eval"] or None))
    if not jobs:
        for kind in ("crowdpose", "coco"):
            ds = ctx.dataset(kind)
            var = ctx.base_variant(ds)
            if ds and var:
                jobs.append((ds, var, None))
    for ds, var, sets in jobs:
        runs = ctx.inputs.seeds(ds, var)
        if not runs:
            ctx.inputs.need("Figure 4: a trained model", f"results/{ctx.preset_name}/{ds}/{var}/seed<k>/")
            continue
        run = runs[0]
        for set_slug in sets or ctx.inputs.sets_evaluated(ds, var):
            png = out / f"figure4_{ds}_{set_slug}.jpg"
            if _draw_rows(ctx, run, set_slug, [("PoseDet", "refined")],
                          f"Figure 4 style: PoseDet on the most crowded images of {set_slug} "
                          f"({ds}/{var}/seed{run.seed})", png):
                figs.append({"file": png.name, "section": "Figure 4",
                             "caption": f"Ground truth (top) and PoseDet ({ds}/{var}, refined, OKS-NMS; bottom) on "
                                        f"the most crowded images of {set_slug}. No Point Anchors model is trained "
                                        f"here, so the paper's upper row is replaced by the ground truth."})


def _training(ctx: Context, out: Path, figs: list) -> None:
    by_ds: dict = {}
    curves = {}
    for run in ctx.inputs.runs():
        if ctx.is_peer(run.variant):
            continue             # a peer keeps its own trainer's logs
        log = ctx.inputs.train_log(run)
        if log:
            by_ds.setdefault(run.dataset, {})[f"{run.variant}/seed{run.seed}"] = log
        else:
            ctx.inputs.need("training log", ctx.inputs.rel(run.path / "train" / "train_log.jsonl"))
        c = ctx.inputs.curve(run)
        if isinstance(c, dict):
            curves[f"{run.dataset}/{run.variant}/seed{run.seed}"] = c
    for ds, logs in sorted(by_ds.items()):
        png = out / f"figure_training_{ds}.png"
        F.plot_training_curves(logs, png, f"Training curves on {ds} (train_log.jsonl)")
        figs.append({"file": png.name, "section": "Training",
                     "caption": f"Loss terms against the optimiser step for every model trained on {ds}."})
    if curves:
        png = out / "figure_learning_curve.png"
        F.plot_learning_curve(curves, png, "Learning curve: AP of training snapshots (curve.json)")
        sets = sorted({str(c.get("set")) for c in curves.values() if c.get("set")})
        figs.append({"file": png.name, "section": "Training",
                     "caption": "AP, AP50, AP75 (×100) of the snapshots against training minutes and images seen"
                                + (f", evaluated on {', '.join(sets)}" if sets else "") + "."})
    else:
        ctx.inputs.need("learning curve", f"results/{ctx.preset_name}/<dataset>/<variant>/seed<k>/curve.json")


def _sweep(ctx: Context, out: Path, figs: list) -> None:
    _, sweep, _ = bench_rows(ctx.inputs)
    if sweep:
        png = out / "figure_people_sweep.png"
        F.plot_people_sweep(sweep, png, "Inference time against the number of people (bench sweep)")
        figs.append({"file": png.name, "section": "Speed and accuracy",
                     "caption": "Median network and end-to-end time per image against the people in it "
                                "(results/<preset>/bench/table.json)."})


# ============================================================================== main

def build_report(preset_name: str | None, results: Path | None, out: Path, *, repo: Path | None = None,
                 recipe: str | None = None, hash_data: bool = True, log=print, plan=None,
                 plan_file: Path | None = None) -> dict:
    """Write the report; returns {'tables', 'figures', 'missing', 'index', 'findings' (one
    ``findings.Claim`` per paper claim), 'cases' (its ``Finding``s, one per case), 'deviations',
    'data_sets', 'extra_tables'}. With ``plan`` (a posedet.plan.Plan; ``plan_file``: where it was
    read, whose folder places the plan's relative paths) the preset, the results folder and every
    file read come from the plan (``preset_name`` and ``results`` may be None).
    Raises ``ResultsNotFound`` (and writes nothing) when the results folder is not a folder."""
    t0 = time.perf_counter()
    base = None
    if plan is not None:
        from posedet.plan import plan_base
        base = plan_base(plan_file, plan) if plan_file is not None else Path.cwd()
        preset_name, results = plan.preset, base / plan.results
    results, out = Path(results), Path(out)
    if not results.is_dir():
        raise ResultsNotFound(f"results folder {results} does not exist (run the workflow first, or pass the "
                              f"right --results); nothing written")
    out.mkdir(parents=True, exist_ok=True)
    preset: dict = {}
    if plan is not None:
        preset = plan.preset_config
    elif repo is not None:
        from posedet import presets as P
        try:
            preset = P.load_preset(preset_name, repo)
        except (P.PresetError, OSError, yaml.YAMLError) as e:
            log(f"posedet report: warning: preset {preset_name!r} not loaded ({e}); captions say less")
    inputs = Inputs(results=results, preset=preset, repo=repo, plan=plan, base=base)
    if plan is not None and not recipe:
        deviations, dev_src = trained_deviations(inputs, plan)
    else:
        deviations, dev_src = load_deviations(preset, repo, recipe)
    ctx = Context(inputs=inputs, preset_name=preset_name, deviations=deviations)

    tables = build_tables(ctx)
    for t in tables:
        (out / f"{t.stem}.md").write_text(render_markdown(t))
        (out / f"{t.stem}.tex").write_text(render_latex(t))
        write_csv(t, out / f"{t.stem}.csv")

    figs: list[dict] = []
    studies = upper_bound_studies(inputs)
    if not studies:
        inputs.need("Figure 3 studies", f"results/{preset_name}/upper_bound/<set>.<protocol>.json")
    _figure3(inputs, out, figs, studies)
    findings = figure3_findings(studies)
    (out / "figure3_summary.md").write_text(_findings_md(findings) + "\n" + "\n".join(findings_sentences(findings)) + "\n")
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=["set", "protocol", "threshold", "metric", "poses_in", "oks_suppressed",
                                        "iou_suppressed", "oks_metric", "iou_metric", "finding_holds"],
                       lineterminator="\n")
    w.writeheader()
    w.writerows(findings)
    (out / "figure3_summary.csv").write_text(buf.getvalue())
    for name, fn in (("speed", _speed_accuracy), ("qualitative", _qualitative), ("training", _training),
                     ("sweep", _sweep)):
        try:
            fn(ctx, out, figs)
        except Exception as e:     # a figure must not take the report down; say what failed
            inputs.need(f"figure step '{name}' failed: {type(e).__name__}: {e}", "posedet.report.build")
            print(f"posedet report: warning: figure step {name} failed: {e!r}", file=sys.stderr)

    try:
        sheets = DS.contact_sheets(inputs, out, figs)
    except Exception as e:     # as a figure step: say what failed, go on
        inputs.need(f"data-set contact sheets failed: {type(e).__name__}: {e}", "posedet.report.datasets")
        sheets = {}
    data_sets = DS.data_set_rows(inputs, sheets)
    extras = EX.extra_tables(ctx)

    claims = FD.collect_findings(ctx, studies)
    (out / "summary.md").write_text(FD.render_markdown(claims, preset_name))

    from posedet.report.provenance import collect_provenance
    if plan is not None:
        extra = [p for p in (Path(plan.recipe), Path(plan_file) if plan_file else None) if p and p.is_file()]
    else:
        extra = [Path(dev_src)] if dev_src and Path(dev_src).is_file() else []
    prov = collect_provenance(inputs, extra, hash_data=hash_data)
    prov["report_seconds"] = round(time.perf_counter() - t0, 2)
    (out / "provenance.json").write_text(json.dumps(prov, indent=1, default=str) + "\n")
    missing_lines = [f"{where}\t{what}" for where, what in inputs.missing]
    (out / "missing.txt").write_text("".join(ln + "\n" for ln in missing_lines))

    posedet_models = sorted({(r.dataset, r.variant) for r in inputs.runs() if not ctx.is_peer(r.variant)})
    dev_table = deviation_rows(ctx, posedet_models)
    _remove_stale_figures(out, {f["file"] for f in figs})

    from posedet.report.html import write_index
    index = write_index(out, ctx=ctx, tables=tables, figures=figs, findings=findings,
                        finding_sentences=findings_sentences(findings), provenance=prov,
                        deviations=deviations, deviations_source=dev_src,
                        findings_html=FD.render_html(claims), deviation_table=dev_table,
                        data_sets=data_sets, extra_tables=extras)
    return {"tables": tables, "figures": figs, "missing": list(inputs.missing), "index": index,
            "findings": FD.collect_claims(claims), "cases": claims, "deviations": dev_table, "data_sets": data_sets, "extra_tables": extras}


def _remove_stale_figures(out: Path, written: set[str]) -> None:
    """Delete the report's own figure files that this run did not write (an earlier run's, or an
    older format's), so that the folder holds only what index.html shows."""
    for pattern in _OWN_FIGURES:
        for p in out.glob(pattern):
            if p.name not in written and not p.name.startswith("figure3_upper_bound_"):
                p.unlink(missing_ok=True)
