"""The paper's published numbers (``paper_numbers.csv`` beside this file), one row per table row.

Every row names its table (1-5), a row key (``dla34``, ``jr_off``, ``kpt_oks_is`` ...), the
method/backbone/input size and the ablation switches it was printed with, the metrics by the same
names ``posedet evaluate`` writes (``AP``, ``AP50``, ``AP75``, ``APM``, ``APL``, ``AP_easy``,
``AP_medium``, ``AP_hard``; in percent, as printed) and the citation (table, row, line of the paper
text). Missing cells are ``None``.
"""
from __future__ import annotations

import csv
from functools import lru_cache
from pathlib import Path

__all__ = ["PAPER_NUMBERS_FILE", "METRICS", "load_paper_numbers", "paper_rows", "paper_row"]

PAPER_NUMBERS_FILE = Path(__file__).with_name("paper_numbers.csv")
METRICS = ("FPS", "AP", "AP50", "AP75", "APM", "APL", "AP_easy", "AP_medium", "AP_hard")
_TEXT = ("row", "method", "backbone", "jr", "centroid", "nms", "is", "citation")


def _parse(rec: dict) -> dict:
    out: dict = {"table": int(rec["table"])}
    for k in _TEXT:
        out[k] = rec[k] or None
    out["input_size"] = int(rec["input_size"]) if rec["input_size"] else None
    for m in METRICS:
        out[m] = float(rec[m]) if rec[m] not in ("", None) else None
    return out


@lru_cache(maxsize=4)
def _load(path: str) -> tuple:
    with open(path, newline="") as f:
        lines = [ln for ln in f if not ln.startswith("#")]
    rows = [_parse(r) for r in csv.DictReader(lines)]
    seen = set()
    for r in rows:
        key = (r["table"], r["row"])
        if key in seen:
            raise ValueError(f"{path}: duplicate row {key}")
        seen.add(key)
        if not r["citation"]:
            raise ValueError(f"{path}: row {key} has no citation")
    return tuple(rows)


def load_paper_numbers(path: str | Path = PAPER_NUMBERS_FILE) -> list[dict]:
    """All rows of the data file (fresh dicts)."""
    return [dict(r) for r in _load(str(path))]


def paper_rows(table: int, path: str | Path = PAPER_NUMBERS_FILE) -> list[dict]:
    """The rows of one table, in the paper's order."""
    return [r for r in load_paper_numbers(path) if r["table"] == table]


def paper_row(table: int, row: str, path: str | Path = PAPER_NUMBERS_FILE) -> dict | None:
    return next((r for r in paper_rows(table, path) if r["row"] == row), None)
