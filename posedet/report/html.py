"""reports/<preset>/index.html: every table and figure (relative links), provenance, the
paper-versus-authors'-code differences, the preset's deviations, a link to the Snakemake report."""
from __future__ import annotations

import html
from pathlib import Path

from posedet.report.tables import Table, render_html

__all__ = ["write_index", "PAPER_VS_CODE", "SNAKEMAKE_REPORT"]

SNAKEMAKE_REPORT = "snakemake_report.html"

# (topic, paper, authors' code / harness default, switch that selects the other) — DESIGN.md
PAPER_VS_CODE = (
    ("Intermediate-supervision heatmap loss", "L2 loss", "CornerNet-style focal loss (α=2, β=4), weight 0.1",
     "loss.heatmap_loss: focal | l2"),
    ("Training OKS (refine / classification assignment)", "OKS (unspecified)",
     "annotated box area w·h, no COCO '/2'; refine positives ≥ 0.7, cls ≥ 0.6 / < 0.5", "— (code behaviour)"),
    ("Inference OKS-NMS", "OKS-NMS", "pair-mean keypoint-extent area clamped ≥ 32², all keypoints, no '/2'; "
     "threshold 0.2 (COCO) / 0.3 (CrowdPose)", "infer.min_area, infer.nms_thr, infer.nms: oks | iou"),
    ("Figure 3 OKS (GT upper bound)", "OKS-NMS on GT poses",
     "tools/analyze_nms.py: kept pose is the reference (its labelled keypoints, its keypoint-box area), training "
     "OKS without '/2', suppress at OKS ≥ thr, persons with flag sum ≤ 1 left out",
     "posedet upper-bound --protocol authors | eval"),
    ("Pose-embedding DCN offsets", "coarse offsets", "0.9 · detached + 0.1 · live coarse offsets (gradient ×0.1)",
     "— (code behaviour)"),
    ("Keypoint count of the DCN", "K keypoints", "odd K only: CrowdPose padded with a made-up 15th point; the "
     "harness takes any K", "— (harness: any K)"),
    ("Schedule details", "Adam 1e-4, ×0.1 at epochs 180 / 200, 210 epochs",
     "also 5-step linear warm-up from lr/3, gradient-norm clip 35", "train.warmup_iters, train.warmup_ratio, "
     "train.grad_clip_norm"),
    ("Table 4 check mark", "✓ printed on the 51.7 AP row", "that row is without refinement (text: +21.2 AP75 from "
     "refinement)", "— (the report prints it corrected)"),
    ("Released-code defects not copied", "—", "HRNet COCO configs test at (800, 512) instead of (1000, 640); the "
     "HRNet-W48 CrowdPose config builds DLA-34; CrowdPose metric dictionary mislabels AP(E)/AP(M) and drops AP(H); "
     "fixed-name result files collide; flip TTA mirrors with the wrong width when scale ≠ 1",
     "— (the harness uses the paper's sizes and named metrics)"),
)

_CSS = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1400px;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.8em 0;font-size:13px}
td,th{border:1px solid #bbb;padding:3px 7px;text-align:right}
td:first-child,th:first-child{text-align:left}
caption{text-align:left;padding:4px 0}
.caption{font-size:12px;color:#444;max-width:1200px}
figure{margin:1em 0}
figure img{max-width:100%;border:1px solid #ddd}
figcaption{font-size:12px;color:#444}
code{background:#f3f3f3;padding:0 3px}
.missing{color:#a00}
"""


def _esc(s) -> str:
    return html.escape("" if s is None else str(s))


def _kv_table(rows: list[dict], cols: list[str], cls: str) -> str:
    if not rows:
        return "<p>none found</p>"
    h = [f'<table class="{cls}"><thead><tr>' + "".join(f"<th>{_esc(c)}</th>" for c in cols) + "</tr></thead><tbody>"]
    for r in rows:
        h.append("<tr>" + "".join(f"<td>{_esc(r.get(c))}</td>" for c in cols) + "</tr>")
    h.append("</tbody></table>")
    return "\n".join(h)


def write_index(out: Path, *, ctx, tables: list[Table], figures: list[dict], findings: list[dict],
                finding_sentences: list[str], provenance: dict, deviations: list[dict],
                deviations_source: str | None) -> Path:
    inputs = ctx.inputs
    p = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
         f"<title>PoseDet report: {_esc(ctx.preset_name)}</title><style>{_CSS}</style></head><body>",
         f"<h1>PoseDet reproduction report — preset <code>{_esc(ctx.preset_name)}</code></h1>",
         "<p>Every measured number comes from a file under <code>results/" + _esc(ctx.preset_name) +
         "/</code>; the paper's numbers from <code>posedet/report/paper_numbers.csv</code> (cited per row). "
         "Measured values are fractions ×100. <a href='" + SNAKEMAKE_REPORT + "' id='snakemake-report'>Snakemake "
         "report</a> (rule code, runtimes, job graph; written by <code>snakemake --report</code> beside this "
         "page).</p>",
         "<nav><a href='#tables'>Tables</a> · <a href='#figures'>Figures</a> · <a href='#missing'>Missing inputs</a> · "
         "<a href='#differences'>Paper vs code</a> · <a href='#deviations'>Preset deviations</a> · "
         "<a href='#provenance'>Provenance</a></nav>"]
    p.append("<h2 id='tables'>Tables</h2>")
    for t in tables:
        p.append(render_html(t))
        p.append(f"<p>Files: <a href='{t.stem}.md'>{t.stem}.md</a> · <a href='{t.stem}.tex'>{t.stem}.tex</a> · "
                 f"<a href='{t.stem}.csv'>{t.stem}.csv</a> (every seed's value)</p>")

    p.append("<h2 id='figures'>Figures</h2>")
    sections: dict = {}
    for f in figures:
        sections.setdefault(f["section"], []).append(f)
    order = ["Figure 3", "Speed and accuracy", "Figure 4", "Figure 5", "Training"]
    for sec in order + [s for s in sections if s not in order]:
        if sec not in sections and sec not in ("Figure 3",):
            continue
        p.append(f"<h3>{_esc(sec)}</h3>")
        if sec == "Figure 3":
            p.append("<p>Does the paper's finding hold? " + " ".join(f"{_esc(s)}" for s in finding_sentences)
                     + ("" if finding_sentences else "No study found.") + "</p>")
            cols = ["set", "protocol", "threshold", "poses_in", "oks_suppressed", "iou_suppressed", "metric",
                    "oks_metric", "iou_metric", "finding_holds"]
            p.append(_kv_table(findings, cols, "figure3-summary") + "<p><a href='figure3_summary.csv'>"
                     "figure3_summary.csv</a></p>")
        for f in sections.get(sec, []):
            p.append(f"<figure><img src='{_esc(f['file'])}' alt='{_esc(f['file'])}'>"
                     f"<figcaption>{_esc(f['caption'])}</figcaption></figure>")

    p.append("<h2 id='missing'>Missing inputs</h2>")
    if inputs.missing:
        p.append(f"<p class='missing'>{len(inputs.missing)} inputs missing (their cells print “—”; also in "
                 "<a href='missing.txt'>missing.txt</a>):</p><ul class='missing-list'>")
        p += [f"<li><code>{_esc(w)}</code>: {_esc(what)}</li>" for w, what in inputs.missing]
        p.append("</ul>")
    else:
        p.append("<p id='nothing-missing'>Nothing missing.</p>")

    p.append("<h2 id='differences'>Paper versus the authors' code</h2><p>Where the two differ the harness follows "
             "the code by default (it produced the published numbers) and exposes the other as a switch.</p>")
    p.append(_kv_table([dict(zip(("topic", "paper", "authors' code (harness default)", "switch"), r))
                        for r in PAPER_VS_CODE],
                       ["topic", "paper", "authors' code (harness default)", "switch"], "differences"))

    p.append("<h2 id='deviations'>Where this preset deviates from the paper</h2>")
    if deviations:
        p.append(f"<p>Declared by the recipe (<code>{_esc(deviations_source)}</code>):</p>")
        p.append(_kv_table(deviations, ["switch", "value", "paper", "why"], "deviations"))
    else:
        p.append("<p>The recipe declares no <code>deviations:</code> list.</p>")
    models = [(r.dataset, r.variant) for r in inputs.runs()]
    auto = ctx.config_deviations(sorted(set(models)))
    p.append("<p>Read from the trained models' resolved configs (<code>train/summary.json</code>), switches "
             "that differ from the paper's values (switch=value (paper: value)):</p>")
    p.append("<ul>" + "".join(f"<li><code>{_esc(a)}</code></li>" for a in auto) + "</ul>" if auto
             else "<p>none (or no summary.json found)</p>")
    data = []
    for name, ds in (ctx.preset.get("datasets") or {}).items():
        if isinstance(ds, dict):
            data.append({"data set": name, "kind": ds.get("kind"), "title": ds.get("title") or ds.get("layout")})
    if data:
        p.append("<p>Data sets of the preset (the paper: COCO 2017 train / test-dev and CrowdPose trainval / test):</p>")
        p.append(_kv_table(data, ["data set", "kind", "title"], "datasets"))

    p.append("<h2 id='provenance'>Provenance</h2>")
    pv = provenance
    hw = pv.get("hardware", {})
    p.append("<table class='provenance'><tbody>" + "".join(
        f"<tr><th>{_esc(k)}</th><td>{_esc(v)}</td></tr>" for k, v in (
            ("git commit", pv.get("git_commit")), ("modified tracked files", pv.get("git_dirty_files")),
            ("config hash (sha256 of the config files)", pv.get("config_hash")),
            ("platform", hw.get("platform")), ("CPU", hw.get("cpu")), ("cores", hw.get("cpu_count")),
            ("memory GiB", hw.get("memory_gib")), ("bench manifest", hw.get("bench_manifest")),
            ("evaluators used", ", ".join(pv.get("evaluators_used") or []) or None),
            ("report build seconds", pv.get("report_seconds")))) + "</tbody></table>")
    p.append("<h3>Library versions</h3>" + _kv_table([{"library": k, "version": v} for k, v in
                                                       (pv.get("versions") or {}).items()], ["library", "version"],
                                                      "versions"))
    p.append("<h3>Config files</h3>" + _kv_table(pv.get("config_files") or [], ["file", "sha256"], "configs"))
    p.append("<h3>Data checksums (annotation files)</h3>" + _kv_table(pv.get("data_checksums") or [],
                                                                       ["file", "bytes", "sha256"], "checksums"))
    p.append("<h3>Wall time per stage</h3>" + _kv_table(pv.get("wall_times") or [],
                                                         ["stage", "item", "seconds", "note", "source"], "walltimes"))
    p.append("<p>All of it: <a href='provenance.json'>provenance.json</a>.</p></body></html>")
    path = Path(out) / "index.html"
    tmp = path.with_suffix(".html.tmp")
    tmp.write_text("\n".join(p) + "\n")
    tmp.replace(path)
    return path
