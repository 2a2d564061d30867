"""Small helpers the report's modules share (tables.py, findings.py, build.py): one copy each."""
from __future__ import annotations

import re

__all__ = ["md_escape", "norm", "PEER_ALIASES", "pick_bench", "preset_backbone", "preset_steps"]

# bench row names of the peer methods (normalised: lower case, letters and digits only)
PEER_ALIASES = {"ae": ("associativeembedding", "assocembedding", "ae", "hourglass"),
                "cmu_pose": ("cmupose", "openpose", "cmu"),
                "personlab": ("personlab",),
                "higher_hrnet": ("higherhrnet",),
                "point_anchors": ("pointanchors", "poianchors", "pointanchor"),
                "yolo11n_pose": ("yolo11npose", "yolo11n")}


def md_escape(s) -> str:
    """A Markdown table cell: '|' escaped, line breaks as spaces."""
    return str(s).replace("|", "\\|").replace("\r\n", " ").replace("\n", " ")


def norm(s) -> str:
    """A name for comparison: lower case, letters and digits only ('HRNet-W48' == 'hrnet_w48')."""
    return re.sub(r"[^a-z0-9]", "", str(s or "").lower())


def pick_bench(rows: list[dict], *, device_kind: str, peer: str | None = None, backbone: str | None = None,
               short_side: int | None = None, need: str = "fps") -> dict | None:
    """The bench row (as ``tables.bench_rows`` normalises them) of one method on one device: a peer's
    (``peer``: a key of PEER_ALIASES or a name; with ``backbone`` also its backbone) or PoseDet's on
    ``backbone``. Rows without ``need`` (e.g. 'fps', 'network_ms') are skipped; the row at
    ``short_side`` and in float32 is preferred."""
    cands = [r for r in rows if r["device_kind"] == device_kind and r.get(need) is not None]
    if peer is not None:
        al = PEER_ALIASES.get(peer, (norm(peer),))
        cands = [r for r in cands if "posedet" not in norm(r["name"])
                 and any(a in norm(r["name"]) for a in al)
                 and (backbone is None or norm(r["backbone"]) == norm(backbone))]
    else:
        cands = [r for r in cands if norm(r["backbone"]) == norm(backbone)
                 and ("posedet" in norm(r["name"]) or not r["name"] or norm(r["name"]) == norm(backbone))]
    if not cands:
        return None
    cands.sort(key=lambda r: (r["short_side"] != short_side,
                              norm(r["dtype"]) not in ("float32", "fp32", ""), r["name"]))
    return cands[0]


def preset_backbone(preset: dict, variant: str):
    """The backbone the preset's ``backbones:`` mapping trains in place of ``variant`` (a name, or a
    mapping with ``model``/``backbone``/``variant``); None where it maps none."""
    bb = preset.get("backbones") if isinstance(preset, dict) else None
    if isinstance(bb, dict) and variant in bb:
        v = bb[variant]
        return (v.get("model") or v.get("backbone") or v.get("variant")) if isinstance(v, dict) else v
    return None


def preset_steps(preset: dict, variant: str):
    """``train.iterations`` that the preset's ``backbones:`` entry of ``variant`` sets (its ``set:`` list),
    else None."""
    bb = preset.get("backbones") if isinstance(preset, dict) else None
    v = bb.get(variant) if isinstance(bb, dict) else None
    for s in (v.get("set") or []) if isinstance(v, dict) else []:
        k, _, val = str(s).partition("=")
        if k.strip() == "train.iterations":
            try:
                return int(float(val))
            except ValueError:
                return val.strip()
    return None
