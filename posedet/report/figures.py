"""Plot functions for the report's figures (matplotlib Agg, object API: no global pyplot state).

* ``plot_upper_bound``     — Figure 3 (ground-truth upper bound of OKS-NMS vs IoU-NMS) from the JSONs
  that ``posedet upper-bound`` writes (one colour per study: a data set or an OKS protocol);
* ``plot_speed_accuracy``  — AP against FPS (Table 1's models, peers);
* ``plot_pose_rows``       — rows of images with poses drawn (Figure 4 / Figure 5 style);
* ``plot_training_curves`` — loss terms against the step, from ``train_log.jsonl`` records;
* ``plot_learning_curve``  — AP against training minutes / images seen, from ``curve.json``;
* ``plot_people_sweep``    — network time against the number of people in the image (bench sweep);
* ``save_image_capped``    — an image file (a data set's contact sheet) as a size-capped JPEG thumbnail.
"""
from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

__all__ = ["plot_upper_bound", "save_figure_atomic", "save_image_capped", "MAX_IMAGE_BYTES", "THUMBNAIL_BYTES",
           "plot_speed_accuracy", "plot_pose_rows", "plot_training_curves", "plot_learning_curve",
           "plot_people_sweep"]

_NMS_STYLE = {"oks": ("OKS-NMS", "-", "o"), "iou": ("IoU-NMS", "--", "s")}
# (metric key, panel title); AP(H) first: the paper's Figure 3 plots it
_UB_PANELS = (("AP_hard", "AP$^{H}$ (hard: crowdIndex ≥ 0.8)"), ("AP_medium", "AP$^{M}$ (medium)"),
              ("AP_easy", "AP$^{E}$ (easy: crowdIndex < 0.2)"), ("AP", "AP (all images)"),
              ("AR", "AR (all images)"), ("suppressed", "GT poses suppressed (%)"))


MAX_IMAGE_BYTES = 1_000_000     # every image under reports/ stays at or below 1 MB


def _render(fig: Figure, dpi: float, jpeg: bool, quality: int, quantize: bool) -> bytes:
    buf = io.BytesIO()
    if jpeg:
        fig.savefig(buf, format="jpeg", dpi=dpi, bbox_inches="tight",
                    pil_kwargs={"quality": quality, "optimize": True})
        return buf.getvalue()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    if not quantize:
        return buf.getvalue()
    from PIL import Image          # a matplotlib dependency
    buf.seek(0)
    img = Image.open(buf).convert("RGB").quantize(colors=256)     # line plots: a palette PNG, ~3x smaller
    out = io.BytesIO()
    img.save(out, format="PNG", optimize=True)
    return out.getvalue()


def save_figure_atomic(fig: Figure, out_png: str | os.PathLike, dpi: int = 150,
                       max_bytes: int | None = MAX_IMAGE_BYTES, quantize: bool | None = None) -> None:
    """Write ``fig`` atomically as PNG (a 256-colour palette unless ``quantize=False``) or, for a
    ``.jpg`` name, JPEG; re-rendered at a lower resolution (and JPEG quality) until it is at most
    ``max_bytes``."""
    out = Path(out_png)
    out.parent.mkdir(parents=True, exist_ok=True)
    jpeg = out.suffix.lower() in (".jpg", ".jpeg")
    quantize = (not jpeg) if quantize is None else quantize
    FigureCanvasAgg(fig)
    d, q = float(dpi), 85
    data = _render(fig, d, jpeg, q, quantize)
    for _ in range(8):
        if max_bytes is None or len(data) <= max_bytes:
            break
        d, q = d * 0.8, max(60, q - 5)
        data = _render(fig, d, jpeg, q, quantize)
    _write_atomic(out, data)


def _write_atomic(out: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{out.stem}.", suffix=out.suffix or ".png", dir=out.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)           # mkstemp makes 0600; a report is read by others
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


THUMBNAIL_BYTES = 300_000       # a data set's contact sheet, as the report shows it


def save_image_capped(src: str | os.PathLike, out_jpg: str | os.PathLike, max_bytes: int = THUMBNAIL_BYTES,
                      max_side: int = 1000) -> tuple[int, int]:
    """Write the image file ``src`` (a contact sheet) atomically as a JPEG of at most ``max_side``
    pixels a side, re-encoded smaller (0.8x the size, lower quality) until it is at most
    ``max_bytes``, as ``save_figure_atomic`` does; returns the written (width, height)."""
    from PIL import Image          # a matplotlib dependency

    out = Path(out_jpg)
    out.parent.mkdir(parents=True, exist_ok=True)
    with Image.open(src) as im:
        img = im.convert("RGB")
    scale = min(1.0, max_side / max(img.size))
    q = 85

    def encode(s: float, quality: int) -> tuple[bytes, tuple[int, int]]:
        size = (max(1, round(img.width * s)), max(1, round(img.height * s)))
        small = img if size == img.size else img.resize(size, Image.LANCZOS)
        buf = io.BytesIO()
        small.save(buf, format="JPEG", quality=quality, optimize=True)
        return buf.getvalue(), size

    data, size = encode(scale, q)
    for _ in range(16):
        if len(data) <= max_bytes:
            break
        scale, q = scale * 0.8, max(60, q - 5)
        data, size = encode(scale, q)
    if len(data) > max_bytes:
        raise ValueError(f"{src}: no JPEG of at most {max_bytes} bytes found")
    _write_atomic(out, data)
    return size


def plot_upper_bound(metrics_list: list[dict], out_png: str | os.PathLike, title: str,
                     labels: list[str] | None = None) -> None:
    """Figure 3: AP(H), AP(M), AP(E), AP, AR and the share of GT poses suppressed against the NMS
    threshold, OKS-NMS solid and IoU-NMS dashed; one colour per study in ``metrics_list`` (each
    a result of ``posedet upper-bound``). A metric a study lacks (no crowdIndex) is left out."""
    if not metrics_list:
        raise ValueError("plot_upper_bound: no study results to plot")
    fig = Figure(figsize=(13, 7.5), layout="constrained")
    axes = fig.subplots(2, 3, sharex=True).ravel()
    colours = ["tab:blue", "tab:red", "tab:green", "tab:purple", "tab:orange", "tab:brown"]
    for ax, (key, panel_title) in zip(axes, _UB_PANELS):
        drawn = False
        for si, study in enumerate(metrics_list):
            colour = colours[si % len(colours)]
            if labels is not None:
                label_prefix = f"{labels[si]}: "
            else:
                label_prefix = f"{study.get('name', f'set {si}')}: " if len(metrics_list) > 1 else ""
            for kind in study.get("nms_kinds", ("oks", "iou")):
                rows = sorted((r for r in study["rows"] if r["nms"] == kind), key=lambda r: r["threshold"])
                if key == "suppressed":
                    pts = [(r["threshold"], 100.0 * r["num_suppressed"] / max(r["num_detections_in"], 1))
                           for r in rows]
                else:
                    pts = [(r["threshold"], r[key]) for r in rows if r.get(key) is not None]
                if not pts:
                    continue
                name, ls, marker = _NMS_STYLE.get(kind, (kind, ":", "^"))
                xs, ys = zip(*pts)
                ax.plot(xs, ys, ls=ls, marker=marker, ms=4, color=colour, label=label_prefix + name)
                drawn = True
        ax.set_title(panel_title, fontsize=10)
        ax.grid(True, alpha=0.3)
        if not drawn:
            ax.text(0.5, 0.5, "n/a (no crowdIndex)", ha="center", va="center", transform=ax.transAxes,
                    color="grey")
        elif key != "suppressed":
            ax.set_ylim(top=1.01)
    for ax in axes[3:]:
        ax.set_xlabel("NMS threshold")
    axes[0].set_ylabel("AP")
    axes[3].set_ylabel("AP")
    with_lines = [ax for ax in axes if ax.get_lines()]
    if with_lines:
        with_lines[0].legend(loc="lower right", fontsize=9)
    fig.suptitle(title, fontsize=12)
    fig.text(0.5, -0.01, "GT poses as detections, all scored 1: kept poses are (almost always) correct, so AP ≈ the "
             "share of COCO's 101 recall points reached and moves in steps of 1/101; suppressed % is the direct count.",
             ha="center", va="top", fontsize=8, color="dimgrey")
    save_figure_atomic(fig, out_png)


# ----------------------------------------------------------------------------- speed vs accuracy

def plot_speed_accuracy(points: list[dict], out_png: str | os.PathLike, title: str, note: str = "") -> None:
    """AP against FPS. ``points``: dicts with ``label``, ``fps``, ``ap``, ``group`` (legend entry:
    e.g. 'PoseDet, measured FPS / measured AP'), ``marker`` and ``colour`` optional."""
    fig = Figure(figsize=(8, 5.5), layout="constrained")
    ax = fig.subplots()
    groups: dict = {}
    for p in points:
        if p.get("fps") is None or p.get("ap") is None:
            continue
        groups.setdefault(p["group"], []).append(p)
    styles = [("tab:blue", "o"), ("tab:red", "s"), ("tab:green", "^"), ("tab:purple", "D"), ("tab:orange", "v")]
    for gi, (group, pts) in enumerate(groups.items()):
        colour, marker = styles[gi % len(styles)]
        ax.scatter([p["fps"] for p in pts], [p["ap"] for p in pts], c=colour, marker=marker, s=45, label=group,
                   zorder=3)
        for p in pts:
            ax.annotate(p["label"], (p["fps"], p["ap"]), textcoords="offset points", xytext=(5, 4), fontsize=7,
                        color=colour)
    if not groups:
        ax.text(0.5, 0.5, "no points: FPS or AP files missing", ha="center", va="center", transform=ax.transAxes,
                color="grey")
    else:
        ax.set_xscale("log")
        ax.legend(fontsize=8, loc="best")
    ax.set_xlabel("FPS (log scale)")
    ax.set_ylabel("AP (×100)")
    ax.grid(True, alpha=0.3, which="both")
    ax.set_title(title, fontsize=11)
    if note:
        fig.text(0.5, -0.01, note, ha="center", va="top", fontsize=7, color="dimgrey", wrap=True)
    save_figure_atomic(fig, out_png)


# ----------------------------------------------------------------------------- qualitative

def plot_pose_rows(rows: list[tuple[str, list]], out_png: str | os.PathLike, title: str,
                   col_titles: list[str] | None = None, dpi: int = 120) -> None:
    """A grid of RGB images (already drawn): ``rows`` = [(row label, [image array, ...]), ...]; a
    ``.jpg`` name writes JPEG (photographs: far smaller than PNG)."""
    nrows = max(1, len(rows))
    ncols = max([len(imgs) for _, imgs in rows] + [1])
    fig = Figure(figsize=(3.2 * ncols, 3.2 * nrows + 0.6), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for ri, (label, imgs) in enumerate(rows):
        for ci in range(ncols):
            ax = axes[ri][ci]
            ax.set_xticks([])
            ax.set_yticks([])
            if ci < len(imgs):
                ax.imshow(imgs[ci])
            else:
                ax.set_axis_off()
            if ci == 0:
                ax.set_ylabel(label, fontsize=9)
            if ri == 0 and col_titles and ci < len(col_titles):
                ax.set_title(col_titles[ci], fontsize=8)
    fig.suptitle(title, fontsize=11)
    save_figure_atomic(fig, out_png, dpi=dpi)


# ----------------------------------------------------------------------------- training

def plot_training_curves(logs: dict[str, list[dict]], out_png: str | os.PathLike, title: str) -> None:
    """Every ``loss*`` term of ``train_log.jsonl`` records against the step; one line per run label."""
    terms: list[str] = []
    for recs in logs.values():
        for r in recs:
            for k in r:
                if k.startswith("loss") and k not in terms and isinstance(r[k], (int, float)):
                    terms.append(k)
    terms = sorted(terms, key=lambda k: (k != "loss", k))[:6] or ["loss"]
    ncols = min(3, len(terms))
    nrows = (len(terms) + ncols - 1) // ncols
    fig = Figure(figsize=(4.3 * ncols, 3.2 * nrows + 0.5), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax, term in zip(axes, terms):
        for label, recs in logs.items():
            pts = [(r["step"], r[term]) for r in recs if "event" not in r and isinstance(r.get(term), (int, float))
                   and "step" in r]
            if pts:
                xs, ys = zip(*pts)
                ax.plot(xs, ys, lw=1.2, label=label)
        ax.set_title(term, fontsize=9)
        ax.set_xlabel("step")
        ax.grid(True, alpha=0.3)
    for ax in axes[len(terms):]:
        ax.set_axis_off()
    if axes[0].get_lines():
        axes[0].legend(fontsize=7)
    else:
        axes[0].text(0.5, 0.5, "no train_log.jsonl records", ha="center", va="center",
                     transform=axes[0].transAxes, color="grey")
    fig.suptitle(title, fontsize=11)
    save_figure_atomic(fig, out_png)


def plot_learning_curve(curves: dict[str, dict], out_png: str | os.PathLike, title: str,
                        metrics: tuple[str, ...] = ("AP", "AP50", "AP75")) -> None:
    """AP (and AP50, AP75) against training minutes and against images seen, from ``curve.json``
    documents ({"points": [{"minutes", "images_seen", "step", "AP", ...}], ...}); values ×100."""
    fig = Figure(figsize=(11, 4.2), layout="constrained")
    axes = fig.subplots(1, 2)
    styles = {"AP": "-", "AP50": "--", "AP75": ":"}
    drawn = False
    for ci, (label, curve) in enumerate(curves.items()):
        pts = [p for p in (curve or {}).get("points", []) if isinstance(p, dict)]
        colour = f"C{ci % 10}"
        for ax, xkey, xlabel in ((axes[0], "minutes", "training minutes"), (axes[1], "images_seen", "images seen")):
            for m in metrics:
                xy = sorted((p[xkey], 100.0 * p[m]) for p in pts
                            if isinstance(p.get(xkey), (int, float)) and isinstance(p.get(m), (int, float)))
                if xy:
                    xs, ys = zip(*xy)
                    ax.plot(xs, ys, ls=styles.get(m, "-"), marker="o", ms=3, color=colour, label=f"{label} {m}")
                    drawn = True
            ax.set_xlabel(xlabel)
            ax.set_ylabel("×100")
            ax.grid(True, alpha=0.3)
    if drawn:
        axes[0].legend(fontsize=7)
    else:
        axes[0].text(0.5, 0.5, "no curve.json points", ha="center", va="center", transform=axes[0].transAxes,
                     color="grey")
    fig.suptitle(title, fontsize=11)
    save_figure_atomic(fig, out_png)


def plot_people_sweep(rows: list[dict], out_png: str | os.PathLike, title: str) -> None:
    """Network (and end-to-end) ms against the number of people; one line per (name, device)."""
    fig = Figure(figsize=(7, 4.5), layout="constrained")
    ax = fig.subplots()
    series: dict = {}
    for r in rows:
        if r.get("people") is None:
            continue
        series.setdefault(f"{r['name'] or r.get('backbone')} ({r['device'] or r['device_kind']})", []).append(r)
    for label, rs in series.items():
        rs = sorted(rs, key=lambda r: r["people"])
        for key, ls in (("network_ms", "-"), ("end_to_end_ms", "--")):
            pts = [(r["people"], r[key]) for r in rs if r.get(key) is not None]
            if pts:
                xs, ys = zip(*pts)
                ax.plot(xs, ys, ls=ls, marker="o", ms=3, label=f"{label} {key[:-3].replace('_', '-')}")
    ax.set_xlabel("people in the image")
    ax.set_ylabel("ms (median)")
    ax.grid(True, alpha=0.3)
    if ax.get_lines():
        ax.legend(fontsize=7)
    ax.set_title(title, fontsize=11)
    save_figure_atomic(fig, out_png)
