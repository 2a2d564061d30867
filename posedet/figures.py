"""Plot functions for the report's figures (matplotlib, object API: no global pyplot state).

``plot_upper_bound`` draws Figure 3 (ground-truth upper bound of OKS-NMS vs IoU-NMS) from the
JSON that ``posedet upper-bound`` writes.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

__all__ = ["plot_upper_bound", "save_figure_atomic"]

_NMS_STYLE = {"oks": ("OKS-NMS", "-", "o"), "iou": ("IoU-NMS", "--", "s")}
# (metric key, panel title); AP(H) first: the paper's Figure 3 plots it
_UB_PANELS = (("AP_hard", "AP$^{H}$ (hard: crowdIndex ≥ 0.8)"), ("AP_medium", "AP$^{M}$ (medium)"),
              ("AP_easy", "AP$^{E}$ (easy: crowdIndex < 0.2)"), ("AP", "AP (all images)"),
              ("AR", "AR (all images)"), ("suppressed", "GT poses suppressed (%)"))


def save_figure_atomic(fig: Figure, out_png: str | os.PathLike, dpi: int = 150) -> None:
    out = Path(out_png)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.stem}.", suffix=out.suffix or ".png", dir=out.parent)
    os.close(fd)
    try:
        FigureCanvasAgg(fig)
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight")
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def plot_upper_bound(metrics_list: list[dict], out_png: str | os.PathLike, title: str) -> None:
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
