"""Tables 1–5 of the paper, laid out as printed, each measured number beside the published one.

Each ``build_tableN(ctx)`` returns a ``Table``: display header and cells (measured values ×100,
mean ± spread over seeds), the caption (where the preset deviates from the paper), and one CSV
record per (row, metric) that keeps every seed's value. ``render_markdown`` / ``render_latex`` /
``render_html`` / ``write_csv`` write it out. A measured number that should exist but whose file is
missing prints "—" (and ``ctx.inputs.missing`` lists the file); a cell with nothing to measure (a
peer method that is not trained here, a paper cell the paper leaves empty) is blank.
"""
from __future__ import annotations

import csv
import html
import io
import re
from dataclasses import dataclass, field
from pathlib import Path

from posedet.report.collect import Inputs, aggregate, within_spread
from posedet.report.common import PEER_ALIASES  # noqa: F401  (peers of Table 1: bench row name fragments)
from posedet.report.common import md_escape as _md_escape, norm as _norm, pick_bench as _pick_bench
from posedet.report.paper_numbers import paper_row, paper_rows

__all__ = ["Table", "Context", "build_tables", "render_markdown", "render_latex", "render_html",
           "write_csv", "fmt_cell", "MISSING", "bench_rows", "TABLE1_BACKBONES", "PEER_LABELS", "LEGEND",
           "DEVIATIONS_LINK", "deviation_rows"]

MISSING = "—"
NEAR = "≈"           # marks a difference smaller than the seed spread
T1_METRICS = ("AP", "AP50", "AP75", "APM", "APL")
CROWD_METRICS = ("AP", "AP50", "AP75", "AP_easy", "AP_medium", "AP_hard")
T5_METRICS = ("AP_easy", "AP_medium", "AP_hard")
HEAD = {"FPS": "FPS", "AP": "AP", "AP50": "AP50", "AP75": "AP75", "APM": "APM", "APL": "APL",
        "AP_easy": "APE", "AP_medium": "APM", "AP_hard": "APH"}
# Table 1's PoseDet rows: paper row key = variant name (docs/results_layout.md), paper input size
TABLE1_BACKBONES = (("hrnet_w48", "HRNet-W48"), ("hrnet_w32", "HRNet-W32"), ("dla34", "DLA-34"))
TABLE2_BACKBONES = (("hrnet_w48", "HRNet-W48"), ("hrnet_w32", "HRNet-W32"))
ABLATION_BASES = ("baseline", "hrnet_w48")   # the CrowdPose baseline's variant name (configs/variants.yaml)
ABLATION_BASE = ABLATION_BASES[0]
# peers trained by the workflow beside PoseDet (results/<preset>/<dataset>/<peer>/seed<k>/, the same
# layout as a PoseDet variant; a preset lists them under experiments.<table>.peers)
PEER_LABELS = {"yolo11n_pose": "YOLO11n-pose"}
PEER_ROW = "{label} (trained here, same data and budget)"
DEVIATIONS_LINK = "[deviations table](index.html#deviations)"
LEGEND = ("Cells: ×100, the mean over seeds with ± sample std (n ≥ 3) or [min–max] (n = 2); ≈ marks a "
          "difference to the reference row within the seed spread; — an input file is missing; blank: nothing "
          "to measure.")
# switches that are bookkeeping, not deviations from the paper
_NOT_DEVIATIONS = {"name", "deviations", "train.snapshot_every", "train.log_every", "train.ckpt_every", "train.num_workers",
                   "train.deterministic", "train.find_unused_parameters", "train.seed",
                   "model.embedding_save_memory", "model.skeleton", "model.num_keypoints",
                   "model.refine", "model.intermediate_supervision", "loss.centroid",
                   "infer.coarse_only", "infer.tta", "infer.nms", "model.backbone"}
# where the config default is not the paper's value (no network here: no ImageNet download)
_PAPER_VALUES = {"model.pretrained": True}
# keys whose config default is None ("the paper does not set it"): listed as a deviation only where the
# authors' code sets a value, given here (DESIGN.md; posedet/model/detector.py resolves None to it)
_AUTHORS_VALUES = {"model.neck_channels": "128 (DLA-34 FPN) / 256 (HRNet HRFPN)",
                   "model.head_channels": "the neck's width (128 / 256)",
                   "model.embed_channels": "the head's width",
                   "model.num_levels": "4 (FPN, strides 8–64) / 3 (HRFPN, strides 8–32)",
                   "model.init_backbone": "ImageNet weights (model.pretrained)",
                   "train.iterations": "none: 210 epochs (train.epochs)",
                   "train.max_minutes": "none: the full schedule",
                   "infer.nms_thr": "0.2 (COCO) / 0.3 (CrowdPose)"}
_KNOWN_WHY = {"model.pretrained": "nothing is downloaded at run time; the start is model.init_backbone"}


# ============================================================================== the table object

@dataclass
class Table:
    number: int
    title: str
    header: list[str]
    rows: list[list[str]]
    caption: list[str] = field(default_factory=list)      # at most three sentences
    records: list[dict] = field(default_factory=list)     # CSV: one per (row, metric)
    stem: str = ""
    row_ids: list[str] = field(default_factory=list)      # anchors: index.html#<stem>-<row id>

    def __post_init__(self):
        self.stem = self.stem or f"table{self.number}"


@dataclass
class Context:
    inputs: Inputs
    preset_name: str
    deviations: list[dict] = field(default_factory=list)   # recipe {switch, value, paper, why}

    @property
    def preset(self) -> dict:
        return self.inputs.preset or {}

    def report_cfg(self) -> dict:
        r = self.preset.get("report")
        return r if isinstance(r, dict) else {}

    # ---------------------------------------------------------------- experiments (preset)
    def experiment(self, name: str) -> dict | None:
        """The preset's ``experiments.<name>`` as {train, variants: [names], eval: [set slugs]}."""
        e = (self.preset.get("experiments") or {}).get(name) if isinstance(self.preset, dict) else None
        if not isinstance(e, dict):
            return None
        v = e.get("variants") or []
        return {"train": e.get("train"), "variants": list(v.keys()) if isinstance(v, dict) else list(v),
                "eval": [str(x).replace("/", "-") for x in e.get("eval") or []], "title": e.get("title"),
                "peers": list(e.get("peers") or [])}

    def is_peer(self, variant: str) -> bool:
        """A peer method trained beside PoseDet (not a PoseDet variant): a known peer name or one a
        preset experiment lists under ``peers:``."""
        if variant in PEER_LABELS:
            return True
        exps = self.preset.get("experiments") if isinstance(self.preset, dict) else None
        return any(isinstance(e, dict) and variant in (e.get("peers") or []) for e in (exps or {}).values())

    def peers(self, experiment: str, dataset: str | None) -> list[str]:
        """The peers of a table: the experiment's ``peers:``, plus any peer with results on its data set."""
        listed = list((self.experiment(experiment) or {}).get("peers") or [])
        found = [v for v in self.inputs.variants(dataset) if self.is_peer(v)] if dataset else []
        return listed + [v for v in found if v not in listed]

    def posedet_variants(self, dataset: str) -> list[str]:
        return [v for v in self.inputs.variants(dataset) if not self.is_peer(v)]

    def base_variant(self, dataset: str | None) -> str | None:
        """The CrowdPose-like set's baseline model: 'baseline', else 'hrnet_w48', else the first."""
        if dataset is None:
            return None
        vs = self.posedet_variants(dataset)
        return next((b for b in ABLATION_BASES if b in vs), vs[0] if vs else None)

    # ---------------------------------------------------------------- data sets
    def dataset(self, kind: str) -> str | None:
        """The results' training set standing in for COCO (``kind='coco'``) or CrowdPose."""
        chosen = (self.report_cfg().get("datasets") or {}).get(kind)
        if chosen:
            return chosen
        exp = self.experiment({"coco": "table1", "crowdpose": "table4"}.get(kind, ""))
        if exp and exp["train"]:
            return exp["train"]
        names = self.inputs.datasets()
        if kind == "crowdpose":
            cands = [n for n in names if "crowdpose" in n]
        else:
            cands = [n for n in names if "coco" in n and "crowdpose" not in n]
        return sorted(cands, key=lambda n: (n.startswith("synth"), n))[0] if cands else None

    def eval_set(self, kind: str, dataset: str | None, variant: str | None = None,
                 experiment: str | None = None) -> str | None:
        chosen = (self.report_cfg().get("sets") or {}).get(kind)
        if chosen:
            return chosen.replace("/", "-")
        exp = self.experiment(experiment) if experiment else None
        if exp and exp["eval"]:
            return exp["eval"][0]
        if dataset is None:
            return None
        sets = self.inputs.sets_evaluated(dataset, variant) or self.inputs.sets_evaluated(dataset)
        for pref in (f"{dataset}-test", f"{dataset}-val"):
            if pref in sets:
                return pref
        own = [s for s in sets if s.startswith(dataset)]
        return (own or sets or [f"{dataset}-test"])[0]

    def describe_set(self, set_slug: str | None, paper_set: str) -> str:
        """A clause naming the measured set beside the paper's."""
        if set_slug is None:
            return f"no trained model found (the paper: {paper_set})"
        real = {"coco-test": "COCO test-dev", "coco-val": "COCO val2017", "crowdpose-test": "CrowdPose test",
                "crowdpose-val": "CrowdPose val"}
        if set_slug in real:
            name = real[set_slug]
            return f"{name}, as the paper" if name == paper_set else f"{name} (the paper: {paper_set})"
        kind = "synthetic" if set_slug.startswith("synth") else "stand-in"
        split = set_slug.rsplit("-", 1)[-1]
        return (f"{set_slug} ({kind} data, its {split} split) instead of {paper_set}, so values compare in "
                f"direction only")

    # ---------------------------------------------------------------- deviations
    def config_deviations(self, models: list[tuple[str, str]]) -> list[dict]:
        """{switch, value, paper} for every switch of the models' resolved configs that differs from
        the paper's/authors' value (the config defaults). A key whose default is None (the paper does
        not set it) is listed only where the authors' code sets a value (``_AUTHORS_VALUES``)."""
        from posedet.config import Config, config_to_dict, flatten_config
        defaults = flatten_config(config_to_dict(Config()))
        defaults.update(_PAPER_VALUES)
        seen: dict[str, set] = {}
        for ds, var in models:
            if self.is_peer(var):
                continue
            cfg = self.inputs.model_config(ds, var)
            if cfg is None:
                continue
            for k, v in flatten_config(cfg).items():
                if k in _NOT_DEVIATIONS or k not in defaults or v == defaults[k]:
                    continue
                if defaults[k] is None and k not in _AUTHORS_VALUES:
                    continue
                seen.setdefault(k, set()).add("none" if v is None else _short(v))
        return [{"switch": k, "value": " / ".join(sorted(vs)),
                 "paper": _AUTHORS_VALUES[k] if defaults[k] is None else _short(defaults[k])}
                for k, vs in sorted(seen.items())]

    def backbone_note(self, models: list[tuple[str, str, str]]) -> str | None:
        """'HRNet-W48 → <trained backbone>, …' for (dataset, variant, paper name) triples."""
        parts = []
        for ds, var, paper_name in models:
            cfg = self.inputs.model_config(ds, var)
            bb = (cfg or {}).get("model", {}).get("backbone") if cfg else None
            if bb is None:
                bb = _preset_backbone(self.preset, var)
            if bb and _norm(bb) != _norm(paper_name) and f"{paper_name} → {bb}" not in parts:
                parts.append(f"{paper_name} → {bb}")
        return ", ".join(parts) if parts else None

    def deviation_sentence(self, models: list[tuple[str, str, str]]) -> str:
        """The caption's one clause on how the table differs from the paper, linking the deviations
        table; ``models``: (dataset, variant, paper backbone name)."""
        bn = self.backbone_note(models)
        n = len(deviation_rows(self, [(d, v) for d, v, _ in models]))
        if bn:
            return f"It differs from the paper in its backbone stand-ins ({bn}) and the other switches of the " \
                   f"{DEVIATIONS_LINK}."
        if n:
            return f"It differs from the paper in the switches of the {DEVIATIONS_LINK}."
        return f"Its models use the paper's values (the {DEVIATIONS_LINK} lists none for them)."


def deviation_rows(ctx: Context, models: list[tuple[str, str]]) -> list[dict]:
    """The one deviations table: {switch, value, paper, why, source}. The recipe's ``deviations:``
    first, then every switch of the models' resolved configs that differs from the paper's or the
    authors' value and that no recipe entry names (``why`` then says it is undeclared)."""
    rows = [{"switch": str(d.get("switch")), "value": _short(d.get("value")), "paper": _short(d.get("paper")),
             "why": str(d.get("why") or ""), "source": "recipe deviations:"} for d in ctx.deviations]
    declared = {k.strip() for d in ctx.deviations for k in str(d.get("switch") or "").split(",")}
    for c in ctx.config_deviations(models):
        if c["switch"] in declared:
            continue
        rows.append({**c, "why": _KNOWN_WHY.get(c["switch"], "set by the recipe or the preset; not in the recipe's "
                                                             "deviations: list"),
                     "source": "resolved config (train/summary.json)"})
    return rows


def _preset_backbone(preset: dict, variant: str):
    bb = preset.get("backbones") if isinstance(preset, dict) else None
    if isinstance(bb, dict) and variant in bb:
        v = bb[variant]
        return v.get("backbone") or v.get("variant") if isinstance(v, dict) else v
    return None


def _short(v) -> str:
    if v is None:
        return "unset"
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, (list, tuple)):
        return "[" + ",".join(_short(x) for x in v) + "]"
    return str(v)


# ============================================================================== cells

def fmt_cell(agg: dict | None, *, expected: bool = True, near: bool = False, digits: int = 1) -> str:
    """Measured cell: 'mean' (n=1), 'mean [lo–hi]' (n=2), 'mean ± std' (n≥3); '—' when expected
    but missing, '' when nothing is expected; a trailing '≈' when ``near``."""
    if agg is None or agg.get("mean") is None:
        return MISSING if expected else ""
    m = f"{agg['mean']:.{digits}f}"
    if agg["spread_kind"] == "std":
        m += f" ± {agg['spread']:.{digits}f}"
    elif agg["spread_kind"] == "range":
        m += f" [{agg['lo']:.{digits}f}–{agg['hi']:.{digits}f}]"
    return m + (f" {NEAR}" if near else "")


def _paper(v, integer: bool = False) -> str:
    if v is None:
        return ""
    return f"{v:g}" if integer else f"{v:.1f}"


def _record(table: int, row: str, metric: str, paper, agg: dict | None, source: str, near=None, **desc) -> dict:
    agg = agg or {"n": 0, "mean": None, "spread": None, "spread_kind": None, "seeds": {}}
    rec = {"table": table, "row": row, **desc, "metric": metric, "paper": paper,
           "measured_mean": None if agg["mean"] is None else round(agg["mean"], 4),
           "spread": None if agg["spread"] is None else round(agg["spread"], 4),
           "spread_kind": agg["spread_kind"], "n": agg["n"],
           "within_seed_spread": near, "source": source}
    for s, v in agg["seeds"].items():
        rec[f"seed{s}"] = round(v, 4)
    return rec


def _seeds_clause(aggs: list[dict]) -> str:
    ns = sorted({a["n"] for a in aggs if a and a["n"]})
    if not ns:
        return "no seed measured yet"
    if ns == [1]:
        return "one seed per model, so no spread"
    if len(ns) == 1:
        return f"n = {ns[0]} seeds per model"
    return f"n = {ns[0]}–{ns[-1]} seeds per cell"


def _data_sentence(ctx: Context, set_slug: str | None, paper_set: str, aggs: list[dict]) -> str:
    """The caption's second sentence: the data measured (beside the paper's) and the seeds."""
    if set_slug is None:
        return f"No trained model found yet (the paper used {paper_set})."
    return f"Measured on {ctx.describe_set(set_slug, paper_set)}; {_seeds_clause(aggs)}."


# ============================================================================== bench (Table 1 FPS)

def bench_rows(inputs: Inputs) -> tuple[list[dict], list[dict], dict | None]:
    """(method rows, people-count sweep rows, manifest) of ``bench/table.json``, normalised:
    name, backbone, short_side, device ('gpu'|'cpu' in ``device_kind``), dtype, network_ms,
    end_to_end_ms, fps, weights."""
    path = getattr(inputs, "bench_path", None) or inputs.results / "bench" / "table.json"   # the plan's
    d = inputs.json(path, "FPS bench table (Table 1 FPS columns, speed figure)")
    if not isinstance(d, dict):
        return [], [], None
    rows, sweep = [], []
    raw = list(d.get("rows") or [])
    for key in ("sweep", "people_sweep", "people_count_sweep", "people"):
        if isinstance(d.get(key), list):
            sweep.extend(_bench_norm(r) for r in d[key] if isinstance(r, dict))
    has_sweep_list = bool(sweep)
    for r in raw:
        if not isinstance(r, dict):
            continue
        n = _bench_norm(r)
        # with a separate sweep list, every `rows` entry is a table row (posedet bench table
        # records the table image's people count on each row)
        in_sweep = not has_sweep_list and (n["people"] is not None or "sweep" in str(r.get("kind", "")))
        (sweep if in_sweep else rows).append(n)
    return rows, sweep, d.get("manifest")


def _ms(v):
    if isinstance(v, dict):
        v = v.get("median", v.get("p50"))
    return float(v) if isinstance(v, (int, float)) else None


def _first(r: dict, *keys):
    for k in keys:
        if r.get(k) is not None:
            return r[k]
    return None


def _bench_norm(r: dict) -> dict:
    net = _ms(_first(r, "network_ms", "network_ms_median", "network"))
    e2e = _ms(_first(r, "end_to_end_ms", "end_to_end_ms_median", "end_to_end"))
    fps = _first(r, "fps", "fps_network", "network_fps")
    if isinstance(fps, dict):
        fps = fps.get("network", fps.get("median"))
    fps = float(fps) if isinstance(fps, (int, float)) else (1000.0 / net if net else None)
    dev = str(_first(r, "device", "device_kind") or "")
    short = _first(r, "input_short_side", "short_side", "input_size", "input")
    try:
        short = int(short) if short is not None else None
    except (TypeError, ValueError):
        short = None
    people = _first(r, "people", "num_people", "people_count", "persons")
    return {"name": str(_first(r, "name", "method", "model") or ""), "backbone": r.get("backbone"),
            "short_side": short, "device": dev,
            "device_kind": "gpu" if re.search(r"cuda|gpu", dev, re.I) else "cpu",
            "dtype": r.get("dtype"), "network_ms": net, "end_to_end_ms": e2e, "fps": fps,
            "weights": r.get("weights"), "people": people, **_bench_spread_load(r), "raw": r}


def _bench_spread_load(r: dict) -> dict:
    """``p10_ms`` / ``p90_ms`` of the network figure (``spread``), ``timed_under_load`` and
    ``other_cpu_cores`` (the most other processes used, before or during the timing; ``load``)."""
    sp = r.get("spread") if isinstance(r.get("spread"), dict) else {}
    load = r.get("load") if isinstance(r.get("load"), dict) else {}
    others = [v for v in (load.get("other_cpu_cores_before"), load.get("other_cpu_cores_during"))
              if isinstance(v, (int, float))]
    return {"p10_ms": _ms(sp.get("p10_ms")), "p90_ms": _ms(sp.get("p90_ms")),
            "timed_under_load": bool(r.get("timed_under_load", load.get("timed_under_load", False))),
            "other_cpu_cores": max(others) if others else None}


UNDER_LOAD = "†"      # beside a speed timed while other processes used the machine (bench row 'load')


def _fps_cell(b: dict | None, paper_input: int | None, expected: bool, always_size: bool = False) -> str:
    """FPS (from the median), '@N' for another input size, † where the row was timed under load."""
    if b is None:
        return MISSING if expected else ""
    s = f"{b['fps']:.1f}"
    if b["short_side"] and (always_size or (paper_input is not None and b["short_side"] != paper_input)):
        s += f" @{b['short_side']}"
    return s + (UNDER_LOAD if b.get("timed_under_load") else "")


def _fps_range_cell(b: dict | None) -> str:
    """The p10–p90 range of the timed calls as FPS (1000 / p90 ms – 1000 / p10 ms), beside the
    median's cell; blank where the row has no spread."""
    if b is None or not b.get("p10_ms") or not b.get("p90_ms"):
        return ""
    return f"{1000.0 / b['p90_ms']:.1f}–{1000.0 / b['p10_ms']:.1f}"


def _under_load_note(picked: list[dict]) -> str | None:
    """The caption's footnote for the cells marked †, or None."""
    loaded = [b for b in picked if b and b.get("timed_under_load")]
    if not loaded:
        return None
    cores = [b["other_cpu_cores"] for b in loaded if b.get("other_cpu_cores") is not None]
    used = f"other processes used up to {max(cores):.1f} cores" if cores else "the machine was busy"
    return (f"{UNDER_LOAD} timed under load ({used} while it was timed): the figure is likely too slow "
            f"(each bench row's 'load').")


# ============================================================================== Tables 1–5

def _measured(ctx: Context, dataset, variant, set_slug, mode, nms, metric) -> dict | None:
    if dataset is None or set_slug is None:
        return None
    vals = ctx.inputs.seed_values(dataset, variant, set_slug, mode, nms, metric)
    return aggregate(vals)


def _peer_cells(ctx: Context, table: int, ds, peer: str, set_slug, metrics, records: list, aggs: list,
                **desc) -> list[str]:
    """Measured cells (paper cell blank) of a peer trained here, one pair per metric."""
    cells = []
    for m in metrics:
        agg = _measured(ctx, ds, peer, set_slug, "refined", "oks", m) if ds else None
        aggs.append(agg)
        cells += ["", fmt_cell(agg)]
        records.append(_record(table, peer, m, None, agg, f"{ds}/{peer}/seed*/metrics/{set_slug}.refined.oks.json",
                               method=PEER_ROW.format(label=PEER_LABELS.get(peer, peer)), variant=peer, **desc))
    return cells


def _trained_as(ctx: Context, ds, var) -> str:
    if not ds:
        return ""
    runs = ctx.inputs.seeds(ds, var)
    if not runs:
        return MISSING
    cfg = ctx.inputs.model_config(ds, var)
    if cfg is None:                       # a peer: its summary names the model it built
        s = ctx.inputs.summary(runs[0])
        return str((s or {}).get("model") or var) if isinstance(s, dict) else var
    return (cfg.get("model") or {}).get("backbone") or _preset_backbone(ctx.preset, var) or var


def _peer_input_size(ctx: Context, ds, peer) -> str:
    runs = ctx.inputs.seeds(ds, peer) if ds else []
    s = ctx.inputs.summary(runs[0]) if runs else None
    return str(s["imgsz"]) if isinstance(s, dict) and s.get("imgsz") else ""


def build_table1(ctx: Context) -> Table:
    ds = ctx.dataset("coco")
    set_slug = ctx.eval_set("coco", ds, "dla34", "table1") if ds else None
    brows, _, manifest = bench_rows(ctx.inputs)
    devices = [k for k in ("gpu", "cpu") if any(r["device_kind"] == k for r in brows)] or ["gpu"]
    header = ["Method", "Backbone", "Input size", "Trained as", "FPS (paper)"]
    for d in devices:
        header += [f"FPS {d.upper()} (meas.)", f"FPS {d.upper()} p10–p90 (meas.)"]
    for m in T1_METRICS:
        header += [f"{HEAD[m]} (paper)", f"{HEAD[m]} (meas.)"]
    rows, records, aggs, ids, picked = [], [], [], [], []
    posedet = {k for k, _ in TABLE1_BACKBONES}
    for p in paper_rows(1):
        is_ours = p["row"] in posedet
        var = p["row"] if is_ours else None
        trained = _trained_as(ctx, ds, var) if is_ours else ""
        cells = [p["method"], p["backbone"] or "", str(p["input_size"] or ""), trained, _paper(p["FPS"], True)]
        for d in devices:
            b = _pick_bench(brows, peer=None if is_ours else p["row"], backbone=p["backbone"],
                            short_side=p["input_size"], device_kind=d)
            cells += [_fps_cell(b, p["input_size"], expected=is_ours), _fps_range_cell(b)]
            picked.append(b)
            if b is not None or is_ours:
                records.append(_fps_record(p["row"], d, p["FPS"], b, method=p["method"], backbone=p["backbone"],
                                           input_size=b["short_side"] if b else p["input_size"]))
        for m in T1_METRICS:
            agg = _measured(ctx, ds, var, set_slug, "refined", "oks", m) if is_ours else None
            if is_ours and ds is None and m == T1_METRICS[0]:
                ctx.inputs.need(f"Table 1 AP of PoseDet {p['backbone']}: a trained COCO-like data set",
                                f"results/{ctx.preset_name}/<coco-like dataset>/{var}/")
            aggs.append(agg)
            cells += [_paper(p[m]), fmt_cell(agg, expected=is_ours)]
            if is_ours:
                records.append(_record(1, p["row"], m, p[m], agg,
                                       f"{ds}/{var}/seed*/metrics/{set_slug}.refined.oks.json",
                                       method=p["method"], backbone=p["backbone"], input_size=p["input_size"]))
        rows.append(cells)
        ids.append(p["row"])
    peers = ctx.peers("table1", ds)
    for peer in peers:
        label = PEER_LABELS.get(peer, peer)
        cells = [PEER_ROW.format(label=label), "", _peer_input_size(ctx, ds, peer), _trained_as(ctx, ds, peer), ""]
        for d in devices:
            b = _pick_bench(brows, peer=peer, device_kind=d)
            cells += [_fps_cell(b, None, expected=False, always_size=True), _fps_range_cell(b)]
            picked.append(b)
            if b is not None:
                records.append(_fps_record(peer, d, None, b, method=PEER_ROW.format(label=label), backbone=None,
                                           input_size=b["short_side"]))
        cells += _peer_cells(ctx, 1, ds, peer, set_slug, T1_METRICS, records, aggs)
        rows.append(cells)
        ids.append(peer)
    peer_txt = (" and of " + ", ".join(PEER_LABELS.get(p, p) for p in peers) + " trained here on the same data and "
                "budget") if peers else ""
    cap = [f"Keypoint AP (single scale, OKS-NMS) of PoseDet with three backbones{peer_txt}, beside the paper's "
           f"Table 1 (its FPS: GTX 1080Ti), with {_fps_clause(brows, manifest)}; the other methods' AP cells are "
           f"the paper's."]
    if _under_load_note(picked):
        cap.append(_under_load_note(picked))
    cap.append(_data_sentence(ctx, set_slug, "COCO test-dev", aggs))
    cap.append(ctx.deviation_sentence([(ds, k, name) for k, name in TABLE1_BACKBONES] if ds else []))
    return Table(1, "Accuracy and speed on COCO without TTA", header, rows, cap, records, row_ids=ids)


def _fps_record(row: str, device: str, paper, b: dict | None, **desc) -> dict:
    agg = None if b is None else {"n": 1, "mean": b["fps"], "spread": None, "spread_kind": None, "seeds": {}}
    return _record(1, row, f"FPS_{device}", paper, agg, "bench/table.json", **desc,
                   device=b["device"] if b else device, weights=b["weights"] if b else None,
                   network_ms=b["network_ms"] if b else None, network_ms_p10=b.get("p10_ms") if b else None,
                   network_ms_p90=b.get("p90_ms") if b else None,
                   timed_under_load=b.get("timed_under_load") if b else None,
                   other_cpu_cores=b.get("other_cpu_cores") if b else None)


def _fps_clause(brows: list[dict], manifest) -> str:
    if not brows:
        return f"no FPS timed yet (results/<preset>/bench/table.json absent, cells {MISSING})"
    m = manifest if isinstance(manifest, dict) else {}
    where = ", ".join(str(m[k]) for k in ("gpu", "gpu_model", "cpu", "cpu_model") if m.get(k))
    threads = f", {m['threads']} threads" if m.get("threads") else ""
    return (f"network FPS timed by `posedet bench` (batch 1, forward + decode + NMS, median, beside it "
            f"p10–p90 of the timed calls; '@N': another input size) on {where or 'this machine'}{threads}")


def _tta_table(ctx: Context, number: int, kind: str, metrics, ours: tuple, paper_set: str, title: str) -> Table:
    ds = ctx.dataset(kind)
    exp = ctx.experiment(f"table{number}")
    if exp and exp["train"]:
        ds = exp["train"]
    variant_of = {k: k for k, _ in ours}
    if number == 3:
        variant_of["hrnet_w48"] = (exp["variants"][0] if exp and exp["variants"] else ctx.base_variant(ds)) \
            or "hrnet_w48"
    set_slug = ctx.eval_set(kind, ds, variant_of[ours[0][0]], f"table{number}") if ds else None
    header = ["Method"] + (["Backbone"] if number == 2 else [])
    for m in metrics:
        header += [f"{HEAD[m]} (paper)", f"{HEAD[m]} (meas.)"]
    rows, records, aggs, ids = [], [], [], []
    our_keys = {k for k, _ in ours}
    for p in paper_rows(number):
        is_ours = p["row"] in our_keys
        cells = [p["method"]] + ([p["backbone"] or ""] if number == 2 else [])
        var = variant_of.get(p["row"])
        for m in metrics:
            agg = _measured(ctx, ds, var, set_slug, "tta", "oks", m) if is_ours else None
            aggs.append(agg)
            cells += [_paper(p[m]), fmt_cell(agg, expected=is_ours)]
            if is_ours:
                records.append(_record(number, p["row"], m, p[m], agg,
                                       f"{ds}/{var}/seed*/metrics/{set_slug}.tta.oks.json",
                                       method=p["method"], backbone=p["backbone"], variant=var))
        rows.append(cells)
        ids.append(p["row"])
    if ds is None:
        ctx.inputs.need(f"Table {number}: a trained {kind}-like data set", f"results/{ctx.preset_name}/")
    scales = None
    for k, _ in ours:
        cfg = ctx.inputs.model_config(ds, variant_of[k]) if ds else None
        scales = scales or ((cfg or {}).get("infer") or {}).get("tta_scales")
    scales_txt = ", ".join(str(x) for x in scales) if scales else "300, …, 800"
    who = "PoseDet with two backbones" if number == 2 else f"the CrowdPose-layout baseline ({variant_of['hrnet_w48']})"
    cap = [f"Keypoint AP with TTA (short sides {{{scales_txt}}} plus flip, one NMS) of {who}, beside the paper's "
           f"Table {number}; the other methods' cells are the paper's."]
    cap.append(_data_sentence(ctx, set_slug, paper_set, aggs))
    cap.append(ctx.deviation_sentence([(ds, variant_of[k], name) for k, name in ours] if ds else []))
    return Table(number, title, header, rows, cap, records, row_ids=ids)


def build_table2(ctx: Context) -> Table:
    return _tta_table(ctx, 2, "coco", T1_METRICS, TABLE2_BACKBONES, "COCO test-dev",
                      "Accuracy on COCO with TTA")


def build_table3(ctx: Context) -> Table:
    return _tta_table(ctx, 3, "crowdpose", CROWD_METRICS, (("hrnet_w48", "HRNet-W48"),), "CrowdPose test",
                      "Accuracy on CrowdPose with TTA")


# ------------------------------------------------------------------------------ ablations

_HINTS = {"refine": ("norefine", "nojr", "jroff", "coarse", "withoutrefine"),
          "box": ("box",), "nois": ("nois", "isoff", "noint", "nointermediate", "noheatmap")}


def ablation_models(ctx: Context) -> tuple[str | None, dict]:
    """(crowdpose-like data set, {(refine, centroid, IS): variant}) of the trained ablation models."""
    ds = ctx.dataset("crowdpose")
    if ds is None:
        return None, {}
    variants = ctx.posedet_variants(ds)
    sw = {v: ctx.inputs.switches(ds, v) for v in variants}
    base = ctx.base_variant(ds)
    base_bb = sw.get(base, {}).get("backbone")
    cells: dict = {}
    for v in variants:
        s = sw[v]
        key = (s["refine"], s["centroid"], s["intermediate_supervision"])
        cells.setdefault(key, []).append(v)

    def rank(v, key):
        n = _norm(v)
        hints = 0
        if not key[0]:
            hints += any(h in n for h in _HINTS["refine"])
        if key[1] == "box":
            hints += any(h in n for h in _HINTS["box"])
        if not key[2]:
            hints += any(h in n for h in _HINTS["nois"])
        same_bb = base_bb is not None and sw[v].get("backbone") == base_bb
        return (v not in ABLATION_BASES, ABLATION_BASES.index(v) if v in ABLATION_BASES else 0,
                not same_bb, -hints, v)

    return ds, {k: sorted(vs, key=lambda v: rank(v, k))[0] for k, vs in cells.items()}


def build_table4(ctx: Context) -> Table:
    ds, models = ablation_models(ctx)
    base = models.get((True, "keypoints", True))
    off = models.get((False, "keypoints", True))
    set_slug = ctx.eval_set("crowdpose_ablation", ds, base, "table4") if ds else None
    spec = [  # (row key, JR label, variant, mode, paper row)
        ("jr_off", "✗ (trained without the refine branch)", off, "refined", "jr_off"),
        ("jr_on", "✓", base, "refined", "jr_on"),
        ("jr_on_coarse", "✓ model, coarse-only output", base, "coarse", None),
    ]
    header = ["JR", "Variant"]
    for m in CROWD_METRICS:
        header += [f"{HEAD[m]} (paper)", f"{HEAD[m]} (meas.)"]
    aggs = {}
    for key, _, var, mode, _ in spec:
        for m in CROWD_METRICS:
            a = None
            if ds and var:
                a = _measured(ctx, ds, var, set_slug, mode, "oks", m)
                if mode == "refined" and key == "jr_off" and (a is None or a["n"] == 0):
                    # a model without the refine branch may be stored as its coarse output
                    alt = _measured(ctx, ds, var, set_slug, "coarse", "oks", m)
                    a = alt if alt and alt["n"] else a
            elif ds:
                ctx.inputs.need(f"Table 4 model '{key}' (refine={'off' if key == 'jr_off' else 'on'})",
                                f"results/{ctx.preset_name}/{ds}/")
            aggs[(key, m)] = a
    rows, records = [], []
    for key, label, var, mode, prow in spec:
        p = paper_row(4, prow) if prow else None
        cells = [label, var or MISSING]
        for m in CROWD_METRICS:
            a = aggs[(key, m)]
            near = within_spread(a, aggs[("jr_on", m)]) if key != "jr_on" and a and aggs[("jr_on", m)] else None
            cells += [_paper(p[m]) if p else "", fmt_cell(a, near=bool(near))]
            records.append(_record(4, key, m, p[m] if p else None, a,
                                   f"{ds}/{var}/seed*/metrics/{set_slug}.{mode}.oks.json", near=near,
                                   jr=label, variant=var, mode=mode))
        rows.append(cells)
    ids = [k for k, *_ in spec]
    peer_aggs: list = []
    for peer in ctx.peers("table4", ds):
        rows.append([PEER_ROW.format(label=PEER_LABELS.get(peer, peer)), peer]
                    + _peer_cells(ctx, 4, ds, peer, set_slug, CROWD_METRICS, records, peer_aggs, mode="refined"))
        ids.append(peer)
    cap = ["Keypoint AP of PoseDet with and without a trained refine branch (JR), and of the JR model's own "
           "coarse output, single scale with OKS-NMS, in the layout of the paper's Table 4, whose ✓ (printed on "
           "the 51.7 AP row, which is *without* refinement) is shown corrected; ≈: within the seed spread of the "
           "✓ row."]
    cap.append(_data_sentence(ctx, set_slug, "CrowdPose test", list(aggs.values()) + peer_aggs))
    cap.append(ctx.deviation_sentence([(ds, v, "HRNet-W48") for v in (base, off) if v] if ds else []))
    return Table(4, "Effect of joint refinement on CrowdPose", header, rows, cap, records, row_ids=ids)


def build_table5(ctx: Context) -> Table:
    ds, models = ablation_models(ctx)
    base = models.get((True, "keypoints", True))
    set_slug = ctx.eval_set("crowdpose_ablation", ds, base, "table5") if ds else None
    header = ["Centroid type", "NMS type", "IS", "Variant"]
    for m in T5_METRICS:
        header += [f"{HEAD[m]} (paper)", f"{HEAD[m]} (meas.)"]
    aggs, spec = {}, []
    for p in paper_rows(5):
        centroid, nms, is_on = p["centroid"], p["nms"], p["is"] == "on"
        var = models.get((True, centroid, is_on))
        if var is None and ds:
            ctx.inputs.need(f"Table 5 model (centroid={centroid}, IS={'on' if is_on else 'off'})",
                            f"results/{ctx.preset_name}/{ds}/")
        spec.append((p, var))
        for m in T5_METRICS:
            aggs[(p["row"], m)] = _measured(ctx, ds, var, set_slug, "refined", nms, m) if var else None
    rows, records, ids = [], [], []
    prev_c = prev_n = None
    for p, var in spec:
        c_label = {"box": "Bounding box", "keypoints": "Keypoints"}[p["centroid"]]
        n_label = p["nms"].upper() if p["nms"] == "oks" else "IoU"
        cells = [c_label if c_label != prev_c else "", n_label if (c_label, n_label) != (prev_c, prev_n) else "",
                 "✓" if p["is"] == "on" else "", var or MISSING]
        prev_c, prev_n = c_label, n_label
        for m in T5_METRICS:
            a, ref = aggs[(p["row"], m)], aggs[("kpt_oks_is", m)]
            near = within_spread(a, ref) if p["row"] != "kpt_oks_is" and a and ref else None
            cells += [_paper(p[m]), fmt_cell(a, near=bool(near))]
            records.append(_record(5, p["row"], m, p[m], a,
                                   f"{ds}/{var}/seed*/metrics/{set_slug}.refined.{p['nms']}.json", near=near,
                                   centroid=p["centroid"], nms=p["nms"], intermediate_supervision=p["is"],
                                   variant=var))
        rows.append(cells)
        ids.append(p["row"])
    peer_aggs: list = []
    for peer in ctx.peers("table5", ds):
        rows.append([PEER_ROW.format(label=PEER_LABELS.get(peer, peer)), "its own", "", peer]
                    + _peer_cells(ctx, 5, ds, peer, set_slug, T5_METRICS, records, peer_aggs))
        ids.append(peer)
    used = sorted({v for _, v in spec if v})
    cap = ["Keypoint AP by crowd level of four PoseDet models (keypoint or box centroid, with or without "
           "intermediate supervision, IS), each evaluated with OKS-NMS and IoU-NMS, in the layout of the paper's "
           "Table 5; ≈: within the seed spread of the keypoints / OKS / IS row."]
    cap.append(_data_sentence(ctx, set_slug, "CrowdPose test", list(aggs.values()) + peer_aggs))
    cap.append(ctx.deviation_sentence([(ds, v, "HRNet-W48") for v in used] if ds else []))
    return Table(5, "Effect of keypoint-based operations on CrowdPose", header, rows, cap, records, row_ids=ids)


def build_tables(ctx: Context) -> list[Table]:
    return [build_table1(ctx), build_table2(ctx), build_table3(ctx), build_table4(ctx), build_table5(ctx)]


# ============================================================================== rendering

def render_markdown(t: Table) -> str:
    lines = [f"**Table {t.number}: {t.title}.**", "",
             "| " + " | ".join(_md_escape(h) for h in t.header) + " |",
             "|" + "|".join("---" if i < 2 else "---:" for i in range(len(t.header))) + "|"]
    for r in t.rows:
        lines.append("| " + " | ".join(_md_escape(c) for c in r) + " |")
    lines.append("")
    lines.append(" ".join(t.caption))
    lines.append("")
    lines.append(f"*{LEGEND}*")
    return "\n".join(lines) + "\n"


_LATEX_SPECIAL = {"&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{", "}": r"\}",
                  "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "\\": r"\textbackslash{}"}
_LATEX_UNICODE = {"±": r"$\pm$", "–": "--", "—": "---", "≈": r"$\approx$", "✓": r"\checkmark{}",
                  "✗": r"$\times$", "→": r"$\rightarrow$", "×": r"$\times$", "≥": r"$\geq$", "≤": r"$\leq$",
                  "…": r"\ldots{}", "²": r"$^2$", "·": r"$\cdot$", "σ": r"$\sigma$", "’": "'"}


def latex_escape(s: str) -> str:
    out = []
    for ch in str(s):
        if ch in _LATEX_SPECIAL:
            out.append(_LATEX_SPECIAL[ch])
        elif ch in _LATEX_UNICODE:
            out.append(_LATEX_UNICODE[ch])
        elif ord(ch) < 128:
            out.append(ch)
        else:
            out.append("?")
    return "".join(out)


def render_latex(t: Table) -> str:
    """A ``table`` float with a booktabs ``tabular`` (needs \\usepackage{booktabs, amssymb})."""
    first_num = next((i for i, h in enumerate(t.header) if "(paper)" in h or "(meas.)" in h), len(t.header))
    cols = "l" * first_num + "r" * (len(t.header) - first_num)
    cap = latex_escape(_strip_links(" ".join(t.caption))).replace("*", "")
    lines = [r"\begin{table*}[t]", r"\centering", r"\scriptsize", rf"\begin{{tabular}}{{{cols}}}", r"\toprule",
             " & ".join(latex_escape(h) for h in t.header) + r" \\", r"\midrule"]
    for r in t.rows:
        lines.append(" & ".join(latex_escape(c) for c in r) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}",
              rf"\caption{{Table {t.number}: {latex_escape(t.title)}. {cap}}}",
              rf"\label{{tab:posedet-{t.stem}}}", r"\end{table*}"]
    return "\n".join(lines) + "\n"


def render_html(t: Table) -> str:
    """The table in a horizontally scrolling box, each row with an anchor ``<stem>-<row id>``, and its
    caption (links to index.html become in-page links)."""
    h = ['<div class="scroll">', f'<table class="results" id="{t.stem}" data-table="{t.number}">',
         f"<caption><b>Table {t.number}: {html.escape(t.title)}.</b></caption>", "<thead><tr>"]
    h += [f"<th>{html.escape(c)}</th>" for c in t.header]
    h.append("</tr></thead><tbody>")
    for i, r in enumerate(t.rows):
        rid = f' id="{html.escape(t.stem)}-{html.escape(t.row_ids[i])}"' if i < len(t.row_ids) else ""
        h.append(f"<tr{rid}>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>")
    h.append("</tbody></table></div>")
    h.append('<p class="caption">' + " ".join(_md_inline(c) for c in t.caption) + "</p>")
    return "\n".join(h)


_LINK = re.compile(r"\[([^\]]+)\]\(([^)\s]+)\)")


def _strip_links(s: str) -> str:
    return _LINK.sub(r"\1", s)


def _md_inline(s: str) -> str:
    s = html.escape(s)
    s = re.sub(r"`([^`]+)`", r"<code>\1</code>", s)
    s = _LINK.sub(lambda m: f"<a href='{m.group(2).replace('index.html#', '#')}'>{m.group(1)}</a>", s)
    return re.sub(r"\*([^*]+)\*", r"<em>\1</em>", s)


def write_csv(t: Table, path: Path) -> None:
    keys: list[str] = []
    for rec in t.records:
        for k in rec:
            if k not in keys:
                keys.append(k)
    seeds = sorted((k for k in keys if re.fullmatch(r"seed\d+", k)), key=lambda k: int(k[4:]))
    keys = [k for k in keys if k not in seeds] + seeds
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=keys or ["table"], lineterminator="\n")
    w.writeheader()
    for rec in t.records:
        w.writerow({k: ("" if rec.get(k) is None else rec.get(k)) for k in keys})
    path.write_text(buf.getvalue())
