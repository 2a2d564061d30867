"""reports/<preset>/index.html: the findings first (each paper claim with its verdict), the one
deviations table, every table and figure (relative links), the missing inputs, the
paper-versus-authors'-code differences, provenance, and a link to the Snakemake report."""
from __future__ import annotations

import html
from pathlib import Path

from posedet.report.tables import LEGEND, Table, render_html

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
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1360px;padding:0 1em;color:#222;box-sizing:border-box}
.scroll{overflow-x:auto;max-width:100%}
table{border-collapse:collapse;margin:.8em 0;font-size:13px}
td,th{border:1px solid #bbb;padding:3px 7px;text-align:right;vertical-align:top}
td:first-child,th:first-child{text-align:left}
table.findings td,table.deviations td,table.differences td,table.provenance td,table.findings th,
table.deviations th,table.differences th,table.provenance th{text-align:left}
table.findings td,table.deviations td,table.differences td,table.provenance td{overflow-wrap:anywhere;min-width:6em}
caption{text-align:left;padding:4px 0}
.caption,.legend{font-size:12px;color:#444;max-width:1200px}
tr.verdict-holds td.verdict{background:#dff0d8}
tr.verdict-contradicted td.verdict{background:#f2dede}
tr.verdict-not-resolved td.verdict{color:#666}
tr.verdict-not-tested td.verdict{color:#666;font-style:italic}
table.findings details{margin-top:.3em;font-size:90%}
table.findings ul.cases{margin:.2em 0;padding-left:1.2em}
li.case.verdict-holds b{color:#3c763d}
li.case.verdict-contradicted b{color:#a94442}
.would-need{font-size:90%;color:#555}
figure{margin:1em 0}
figure img{max-width:100%;height:auto;border:1px solid #ddd}
figcaption{font-size:12px;color:#444}
code{background:#f3f3f3;padding:0 3px;overflow-wrap:anywhere}
.missing{color:#a00}
table.synthetic-data td{white-space:nowrap}
table.synthetic-data td:nth-child(-n+3),table.synthetic-data td:last-child{text-align:left}
.sheets{display:flex;flex-wrap:wrap;gap:1em}
.sheets figure{flex:0 1 420px;max-width:100%}
"""


def _esc(s) -> str:
    return html.escape("" if s is None else str(s))


def _kv_table(rows: list[dict], cols: list[str], cls: str) -> str:
    if not rows:
        return "<p>none found</p>"
    h = [f'<div class="scroll"><table class="{cls}"><thead><tr>' + "".join(f"<th>{_esc(c)}</th>" for c in cols)
         + "</tr></thead><tbody>"]
    for r in rows:
        h.append("<tr>" + "".join(f"<td>{_esc(r.get(c))}</td>" for c in cols) + "</tr>")
    h.append("</tbody></table></div>")
    return "\n".join(h)


def _figure(f: dict) -> str:
    """A figure with an anchor (its file stem); the image links to itself at full size."""
    src = _esc(f["file"])
    fid = _esc(Path(f["file"]).stem)
    return (f"<figure id='{fid}'><a href='{src}'><img src='{src}' alt='{src}'></a>"
            f"<figcaption>{_esc(f['caption'])}</figcaption></figure>")


def _deviations(rows: list[dict], source: str | None, declared: bool) -> list[str]:
    p = ["<h2 id='deviations'>Where this preset deviates from the paper</h2>",
         "<p>One row per switch: the recipe's declared <code>deviations:</code>"
         + (f" (<code>{_esc(source)}</code>)" if source else "") + ", then any switch of the trained models' resolved "
         "configs (<code>train/summary.json</code>) that differs from the paper's or the authors' code's value and "
         "that the recipe does not declare. A key the paper leaves unset is listed only with the authors' code's "
         "value.</p>"]
    if not declared:
        p.append("<p>The recipe declares no <code>deviations:</code> list.</p>")
    p.append(_kv_table(rows, ["switch", "value", "paper", "why", "source"], "deviations") if rows
             else "<p>No deviation found.</p>")
    return p


DATA_SETS = "Data sets"     # the figure section of the contact sheets, shown with the data-set table


def _extra_tables(tables: list[dict]) -> list[str]:
    """One generic table per extra evaluation (posedet.report.extra)."""
    p = ["<h2 id='extra-evaluations'>Extra evaluations</h2>",
         "<p>The preset's experiments beyond the paper's tables and figures, each as its own table.</p>"]
    for t in tables:
        tid = f"extra-{t['name']}"
        h = [f"<div class='scroll'><table class='extra' id='{_esc(tid)}'><caption><b>{_esc(t['title'])}</b>"
             "</caption><thead><tr>" + "".join(f"<th>{_esc(c)}</th>" for c in t["columns"]) + "</tr></thead><tbody>"]
        for r in t["rows"]:
            h.append(f"<tr id='{_esc(tid + '-' + r['id'])}'>" + "".join(f"<td>{_esc(c)}</td>" for c in r["cells"])
                     + "</tr>")
        if not t["rows"]:
            h.append(f"<tr><td colspan='{len(t['columns'])}' class='missing'>no model or set named</td></tr>")
        h.append("</tbody></table></div>")
        p.append("\n".join(h))
        p.append(f"<p class='caption'>{_esc(t['caption'])}</p>")
    return p


def _data_sets(preset_name: str, rows: list[dict], sheets: list[dict]) -> list[str]:
    """The synthetic data sets: their tier keys and statistics (from stats.json), and one contact
    sheet per data set."""
    from posedet.report.datasets import COLUMNS
    p = ["<h2 id='data-sets'>Data sets</h2>",
         f"<p>One row per synthetic data set and split under <code>results/{_esc(preset_name)}/data/</code>, read "
         "from its <code>stats.json</code>: the generator's keys that set its tier (<code>generation</code>) and what "
         "its annotations hold (persons per image; the share of images per crowd level, easy / medium / hard; "
         "occluded: the share of labelled keypoints flagged occluded, v = 1). One contact sheet per data set: the "
         "train split's, else the first split's.</p>"]
    if not rows:
        p.append(f"<p class='missing'>No synthetic data set found (no <code>results/{_esc(preset_name)}/data/"
                 "&lt;name&gt;/&lt;split&gt;/stats.json</code>).</p>")
        return p
    h = ["<div class='scroll'><table class='synthetic-data'><thead><tr>"
         + "".join(f"<th>{_esc(c)}</th>" for c in COLUMNS) + "</tr></thead><tbody>"]
    for r in rows:
        cells = []
        for c in COLUMNS:
            if c == "contact sheet" and r.get("_sheet"):
                cells.append(f"<td><a href='{_esc(r['_sheet'])}'>{_esc(r['_sheet'])}</a></td>")
            elif c == "split":
                cells.append(f"<td title='{_esc(r.get('_source'))}'>{_esc(r.get(c))}</td>")
            else:
                cells.append(f"<td>{_esc(r.get(c))}</td>")
        h.append(f"<tr id='data-{_esc(r['data set'])}-{_esc(r['split'])}'>" + "".join(cells) + "</tr>")
    h.append("</tbody></table></div>")
    p.append("\n".join(h))
    if sheets:
        p.append("<div class='sheets'>" + "".join(_figure(f) for f in sheets) + "</div>")
    return p


def write_index(out: Path, *, ctx, tables: list[Table], figures: list[dict], findings: list[dict],
                finding_sentences: list[str], provenance: dict, deviations: list[dict],
                deviations_source: str | None, findings_html: str = "",
                deviation_table: list[dict] | None = None, data_sets: list[dict] | None = None,
                extra_tables: list[dict] | None = None) -> Path:
    inputs = ctx.inputs
    p = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
         f"<meta name='viewport' content='width=device-width, initial-scale=1'>"
         f"<title>PoseDet report: {_esc(ctx.preset_name)}</title><style>{_CSS}</style></head><body>",
         f"<h1>PoseDet reproduction report — preset <code>{_esc(ctx.preset_name)}</code></h1>",
         "<p>Every measured number comes from a file under <code>results/" + _esc(ctx.preset_name) +
         "/</code>; the paper's numbers from <code>posedet/report/paper_numbers.csv</code> (cited per row). "
         "<a href='" + SNAKEMAKE_REPORT + "' id='snakemake-report'>Snakemake report</a> (rule code, runtimes, job "
         "graph).</p>",
         "<nav><a href='#findings'>Findings</a> · <a href='#deviations'>Deviations</a> · <a href='#tables'>Tables</a>"
         + (" · <a href='#extra-evaluations'>Extra evaluations</a>" if extra_tables else "")
         + " · <a href='#data-sets'>Data sets</a>"
         " · <a href='#figures'>Figures</a> · <a href='#missing'>Missing inputs</a> · "
         "<a href='#differences'>Paper vs code</a> · <a href='#provenance'>Provenance</a></nav>"]
    p.append(findings_html or "<section id='findings'><h2>Findings</h2><p>No findings computed.</p></section>")
    p += _deviations(deviation_table if deviation_table is not None else [], deviations_source, bool(deviations))

    p.append("<h2 id='tables'>Tables</h2>")
    p.append(f"<p class='legend'>{_esc(LEGEND)}</p>")
    for t in tables:
        p.append(render_html(t))
        p.append(f"<p>Files: <a href='{t.stem}.md'>{t.stem}.md</a> · <a href='{t.stem}.tex'>{t.stem}.tex</a> · "
                 f"<a href='{t.stem}.csv'>{t.stem}.csv</a> (every seed's value)</p>")

    sections: dict = {}
    for f in figures:
        sections.setdefault(f["section"], []).append(f)
    if extra_tables:
        p += _extra_tables(extra_tables)
    p += _data_sets(ctx.preset_name, data_sets or [], sections.pop(DATA_SETS, []))

    p.append("<h2 id='figures'>Figures</h2>")
    order = ["Figure 3", "Speed and accuracy", "Figure 4", "Figure 5", "Training"]
    for sec in order + [s for s in sections if s not in order]:
        if sec not in sections and sec not in ("Figure 3",):
            continue
        p.append(f"<h3>{_esc(sec)}</h3>")
        if sec == "Figure 3":
            p.append("<p>Per threshold: " + " ".join(f"{_esc(s)}" for s in finding_sentences)
                     + ("" if finding_sentences else "No study found.") + "</p>")
            cols = ["set", "protocol", "threshold", "poses_in", "oks_suppressed", "iou_suppressed", "metric",
                    "oks_metric", "iou_metric", "finding_holds"]
            p.append(_kv_table(findings, cols, "figure3-summary") + "<p><a href='figure3_summary.csv'>"
                     "figure3_summary.csv</a></p>")
        for f in sections.get(sec, []):
            p.append(_figure(f))

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
    p.append("<div class='scroll'><table class='provenance'><tbody>" + "".join(
        f"<tr><th>{_esc(k)}</th><td>{_esc(v)}</td></tr>" for k, v in (
            ("git commit", pv.get("git_commit")), ("modified tracked files", pv.get("git_dirty_files")),
            ("config hash (sha256 of the config files)", pv.get("config_hash")),
            ("platform", hw.get("platform")), ("CPU", hw.get("cpu")), ("cores", hw.get("cpu_count")),
            ("memory GiB", hw.get("memory_gib")), ("bench manifest", hw.get("bench_manifest")),
            ("evaluators used", ", ".join(pv.get("evaluators_used") or []) or None),
            ("report build seconds", pv.get("report_seconds")))) + "</tbody></table></div>")
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
