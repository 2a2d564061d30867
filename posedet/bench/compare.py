"""``posedet bench compare A.json B.json``: how far two ``bench table`` runs agree.

For every PoseDet and peer row present in both files (matched on method, backbone, short side,
device and dtype; bare backbones and PoseDet's backbone + neck with ``--all``; the people-count
sweep with ``--sweep``) it prints A's and B's ``network_ms`` (median, with p10–p90), the ratio
B / A, and ``!`` where the ratio is outside 1 ± ``--tol`` (10 %). A row timed under load in
either file carries ``†``. ``--out`` writes the comparison as JSON. Exit status 0 either way.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

FLOORS = ("backbone", "PoseDet backbone+neck")


def _key(r: dict, sweep: bool) -> tuple:
    k = (r.get("method"), r.get("backbone"), r.get("short_side"), r.get("device"), r.get("dtype"))
    return k + ((r.get("people"),) if sweep else ())


def compare(a: dict, b: dict, tol: float = 0.10, floors: bool = False, sweep: bool = False) -> list[dict]:
    """One entry per row in both ``a`` and ``b`` (``bench table`` results): ``method``,
    ``backbone``, ``short_side``, ``device``, ``dtype`` (+ ``people`` for sweep rows), ``a_ms``,
    ``b_ms``, ``a_p10_ms`` … ``b_p90_ms``, ``ratio`` (B / A), ``outside`` (|ratio − 1| > tol),
    ``under_load`` (either row timed under load)."""
    out = []
    for part in ("rows", "sweep") if sweep else ("rows",):
        is_sweep = part == "sweep"
        bb = {_key(r, is_sweep): r for r in b.get(part) or []}
        for ra in a.get(part) or []:
            if not floors and ra.get("method") in FLOORS:
                continue
            rb = bb.get(_key(ra, is_sweep))
            if rb is None or not ra.get("network_ms") or rb.get("network_ms") is None:
                continue
            ratio = rb["network_ms"] / ra["network_ms"]
            e = {"part": part, "method": ra["method"], "backbone": ra.get("backbone"),
                 "short_side": ra.get("short_side"), "device": ra.get("device"), "dtype": ra.get("dtype")}
            if is_sweep:
                e["people"] = ra.get("people")
            for tag, r in (("a", ra), ("b", rb)):
                sp = r.get("spread") or {}
                e.update({f"{tag}_ms": r["network_ms"], f"{tag}_p10_ms": sp.get("p10_ms"),
                          f"{tag}_p90_ms": sp.get("p90_ms")})
            e.update(ratio=round(ratio, 4), outside=abs(ratio - 1.0) > tol,
                     under_load=bool(ra.get("timed_under_load") or rb.get("timed_under_load")))
            out.append(e)
    return out


def _ms(e: dict, tag: str) -> str:
    p10, p90 = e[f"{tag}_p10_ms"], e[f"{tag}_p90_ms"]
    rng = f" [{p10:.1f}–{p90:.1f}]" if p10 is not None and p90 is not None else ""
    return f"{e[f'{tag}_ms']:.1f}{rng}"


def format_compare(entries: list[dict], tol: float = 0.10) -> str:
    head = f"{'method':22s} {'backbone':13s} {'short':>5s} {'dev':>4s} {'ppl':>4s} {'A ms [p10–p90]':>24s} " \
           f"{'B ms [p10–p90]':>24s} {'B/A':>6s}"
    lines = [head, "-" * len(head)]
    for e in entries:
        mark = ("!" if e["outside"] else " ") + ("†" if e["under_load"] else "")
        lines.append(f"{e['method']:22s} {str(e['backbone']):13s} {str(e['short_side']):>5s} "
                     f"{str(e['device'])[:4]:>4s} {str(e.get('people', '')):>4s} {_ms(e, 'a'):>24s} "
                     f"{_ms(e, 'b'):>24s} {e['ratio']:6.3f} {mark}")
    n_out = sum(e["outside"] for e in entries)
    lines.append(f"{len(entries)} rows in both; {n_out} outside ±{tol:.0%} (!); † timed under load in A or B")
    return "\n".join(lines)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("a", help="first bench table JSON")
    p.add_argument("b", help="second bench table JSON")
    p.add_argument("--tol", type=float, default=0.10, help="flag |B/A − 1| above this (default 0.10)")
    p.add_argument("--all", action="store_true", help="also bare backbones and PoseDet backbone+neck")
    p.add_argument("--sweep", action="store_true", help="also the people-count sweep rows")
    p.add_argument("--out", default=None, help="write the comparison as JSON")


def main(args) -> int:
    a = json.loads(Path(args.a).read_text())
    b = json.loads(Path(args.b).read_text())
    entries = compare(a, b, args.tol, floors=args.all, sweep=args.sweep)
    print(format_compare(entries, args.tol))
    if args.out:
        from posedet.bench.protocol import write_json

        write_json({"a": args.a, "b": args.b, "tol": args.tol, "rows": entries}, args.out)
    return 0
