"""Extra evaluations: every experiment of the preset that is not one of the paper's tables or
figures (``table1`` … ``table5``, ``figure*``), e.g. ``hard_tier`` (the final baseline evaluated on
the hard tier), gets one generic table in index.html: a row per (model, set, mode, NMS) the
experiment names, with AP, AP50, AP75, AR50, AP(E/M/H) read from the metrics files
(``<dataset>/<variant>/seed<k>/metrics/<set>.<mode>.<nms>.json``), mean ± spread over the seeds.

Seeds: a ``seeded`` experiment (or variant) expects every ``seed<k>/`` folder of the model; otherwise
seed 0 (any other seed's file that exists is counted, none is asked for). A missing file prints "—"
and is listed in the missing inputs; a metric the set does not have (AP(E/M/H) on a set without a
crowd index) is blank."""
from __future__ import annotations

import re

from posedet.report.collect import aggregate
from posedet.report.tables import MISSING, Context, fmt_cell

__all__ = ["PAPER_EXPERIMENT", "METRICS", "COLUMNS", "extra_experiments", "extra_tables"]

PAPER_EXPERIMENT = re.compile(r"^(table[1-5]|figure.*)$")
METRICS = (("AP", "AP"), ("AP50", "AP50"), ("AP75", "AP75"), ("AR50", "AR50"), ("AP_easy", "AP(E)"),
           ("AP_medium", "AP(M)"), ("AP_hard", "AP(H)"))
COLUMNS = ("variant", "seeds", "set", "mode", "NMS") + tuple(label for _, label in METRICS)


def extra_experiments(preset: dict) -> list[str]:
    """Names of the preset's experiments that are not the paper's tables or figures, in its order."""
    exps = (preset or {}).get("experiments") if isinstance(preset, dict) else None
    return [str(n) for n, e in (exps or {}).items() if isinstance(e, dict) and not PAPER_EXPERIMENT.match(str(n))]


def _models(e: dict) -> list[tuple[str, list[str], list[str], bool, bool]]:
    """(variant, modes, nms kinds, seeded, peer) of an experiment, as the workflow runs them
    (posedet.presets.experiments: a variant's own modes/nms/seeded over the experiment's)."""
    vs = e.get("variants") or {}
    if isinstance(vs, (list, tuple)):
        vs = {v: {} for v in vs}
    out = []
    for v, opts in vs.items():
        opts = opts if isinstance(opts, dict) else {}
        out.append((str(v), list(opts.get("modes", e.get("modes", ["refined"]))),
                    list(opts.get("nms", e.get("nms", ["oks"]))), bool(opts.get("seeded", e.get("seeded", False))),
                    False))
    for p in e.get("peers") or []:          # a peer's own output and NMS (rules/peers.smk)
        out.append((str(p), ["refined"], ["oks"], bool(e.get("seeded", False)), True))
    return out


def _row(ctx: Context, title: str, train: str, variant: str, set_slug: str, mode: str, nms: str,
         seeded: bool) -> list[str]:
    inputs = ctx.inputs
    runs = inputs.seeds(train, variant)
    expected = [r for r in runs if seeded or r.seed == 0]
    if not expected:
        where = inputs.results / train / variant / ("seed<k>" if seeded else "seed0")
        inputs.need(f"trained model ({title})", inputs.rel(where))
    per_seed = {}
    for r in runs:
        path = r.path / "metrics" / f"{set_slug}.{mode}.{nms}.json"
        what = f"metrics ({mode}, {nms}-NMS) of {train}/{variant}/seed{r.seed} ({title})" if r in expected else None
        d = inputs.json(path, what)
        if isinstance(d, dict) and isinstance(d.get("metrics"), dict):
            per_seed[r.seed] = d["metrics"]
    cells = [variant, ", ".join(str(k) for k in sorted(per_seed)) or MISSING, set_slug, mode, nms.upper()]
    for key, _ in METRICS:
        vals = {k: float(m[key]) for k, m in per_seed.items() if isinstance(m.get(key), (int, float))}
        # no file: "—"; files without this metric (a set with no crowd index): blank
        cells.append(fmt_cell(aggregate(vals), expected=not per_seed or bool(vals)))
    return cells


def extra_tables(ctx: Context) -> list[dict]:
    """One table per extra experiment: {name, title, columns, rows: [{id, cells}], caption}."""
    exps = ctx.preset.get("experiments") or {}
    out = []
    for name in extra_experiments(ctx.preset):
        e = exps[name]
        title = str(e.get("title") or name)
        train = str(e.get("train") or "")
        sets = [str(s).replace("/", "-") for s in e.get("eval") or []]
        rows = []
        for variant, modes, kinds, seeded, peer in _models(e):
            for s in sets:
                for mode in modes:
                    for nms in kinds:
                        cells = _row(ctx, title, train, variant, s, mode, nms, seeded)
                        rows.append({"id": f"{variant}-{s}-{mode}-{nms}", "cells": cells, "peer": peer})
        if not train or not rows:
            ctx.inputs.need(f"experiment {name}: a train set, variants and eval sets", ctx.inputs.rel(
                ctx.preset.get("_file") or f"configs/presets/{ctx.preset_name}.yaml"))
        caption = (f"Experiment {name}: the models trained on {train or MISSING}, evaluated on "
                   f"{', '.join(sets) or MISSING}; cells ×100 from {train}/<variant>/seed<k>/metrics/"
                   f"<set>.<mode>.<nms>.json, the mean over the seeds listed (± sample std for n ≥ 3, [min–max] "
                   f"for n = 2). A blank cell: the set has no such metric (no crowd index); —: a file is missing.")
        out.append({"name": name, "title": title, "columns": list(COLUMNS), "rows": rows, "caption": caption})
    return out
