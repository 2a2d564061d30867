"""The report's "Data sets" section: one row per synthetic data set and split found under
results/<preset>/data/ (and per split the preset declares), every cell read from that split's
``stats.json`` (``posedet synth``: the ``generation`` block holds the generator's difficulty keys;
persons per image, crowd levels and the occlusion rate are computed from the annotations), and one
contact sheet per data set (the train split's, else the first split's) copied into the report as a
JPEG thumbnail of at most ``figures.THUMBNAIL_BYTES``."""
from __future__ import annotations

from pathlib import Path

from posedet.report import figures as F
from posedet.report.collect import Inputs, sheet_split

__all__ = ["TIER_KEYS", "COLUMNS", "data_set_rows", "contact_sheets"]

# the generator's keys that place a data set in a tier (stats.json "generation")
TIER_KEYS = ("layout", "size", "density", "clutter", "max_people", "person_scale", "texture")
COLUMNS = ("data set", "split", "layout", "size", "density", "clutter", "max people", "person scale", "texture",
           "seed", "images", "persons / image", "crowd levels E / M / H (%)", "occluded (%)",
           "contact sheet")
MISSING = "—"


def _size(v) -> str:
    if isinstance(v, (list, tuple)) and len(v) == 2:
        return f"{v[0]}×{v[1]}"
    return str(v)


def _num(v) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def _cell(inputs: Inputs, path: Path, stats: dict | None, where, key: str, fmt=str, label: str | None = None) -> str:
    """``fmt(where[key])``; "—" (and the key listed as missing) when the stats file or the key is absent."""
    if stats is None:
        return MISSING                 # the file itself is listed already
    v = where.get(key) if isinstance(where, dict) else None
    if v is None:
        inputs.need(f"{label or key} in stats.json (written by posedet synth)", inputs.rel(path))
        return MISSING
    return fmt(v)


def _levels(f: dict) -> str:
    return " / ".join(f"{100 * f.get(k, 0.0):.0f}" for k in ("easy", "medium", "hard"))


def data_set_rows(inputs: Inputs, sheets: dict[str, tuple[str, str]] | None = None) -> list[dict]:
    """{column: cell} per (data set, split), plus ``_source`` (the stats file) and ``_sheet`` (the
    thumbnail's file name, on the row of the split it shows). A stats.json that is missing, or that
    lacks a key, prints "—" and is listed in ``inputs.missing``."""
    sheets = sheets or {}
    rows = []
    for name, splits in inputs.synthetic_splits().items():
        for split, folder in splits.items():
            path = folder / "stats.json"
            st = inputs.json(path, f"statistics of the synthetic set {name}/{split} (Data sets section)")
            st = st if isinstance(st, dict) else None
            gen = (st or {}).get("generation")
            gen = gen if isinstance(gen, dict) else {}
            row = {"data set": name, "split": split, "_source": inputs.rel(path)}
            for key in TIER_KEYS:
                row[key.replace("_", " ")] = _cell(inputs, path, st, gen, key, _size if key == "size" else _num,
                                                   f"generation.{key}")
            row["seed"] = _cell(inputs, path, st, gen, "seed", label="generation.seed")
            row["images"] = _cell(inputs, path, st, gen if "num_images" in gen else st, "num_images")
            row["persons / image"] = _cell(inputs, path, st, st, "persons_per_image_mean", lambda v: f"{v:.2f}")
            row["crowd levels E / M / H (%)"] = _cell(inputs, path, st, (st or {}).get("crowd_index"),
                                                      "level_fractions", _levels, "crowd_index.level_fractions")
            row["occluded (%)"] = _cell(inputs, path, st, (st or {}).get("keypoints"), "occlusion_rate",
                                        lambda v: f"{100 * v:.1f}", "keypoints.occlusion_rate")
            sheet = sheets.get(name)
            row["_sheet"] = sheet[1] if sheet and sheet[0] == split else None
            row["contact sheet"] = row["_sheet"] or ""
            rows.append(row)
    return rows


def contact_sheets(inputs: Inputs, out: Path, figs: list) -> dict[str, tuple[str, str]]:
    """Per data set, its contact sheet (the train split's, else the first split's that exists) as
    ``out/contact_sheet_<name>.jpg`` (at most ``F.THUMBNAIL_BYTES``); appends a figure entry (section
    "Data sets") to ``figs``; returns {name: (split, file name)}."""
    written = {}
    for name, splits in inputs.synthetic_splits().items():
        order = list(splits)
        first = sheet_split(order)
        cands = [first] + [s for s in order if s != first]
        split = next((s for s in cands if (splits[s] / "contact_sheet.png").is_file()), None)
        if split is None:
            if first is not None:
                inputs.need(f"contact sheet of the synthetic set {name} (Data sets section)",
                            inputs.rel(splits[first] / "contact_sheet.png"))
            continue
        src = splits[split] / "contact_sheet.png"
        dst = out / f"contact_sheet_{name}.jpg"
        try:
            w, h = F.save_image_capped(src, dst)
        except (OSError, ValueError) as e:
            inputs.need(f"a readable contact sheet of {name} ({type(e).__name__}: {e})", inputs.rel(src))
            continue
        written[name] = (split, dst.name)
        figs.append({"file": dst.name, "section": "Data sets",
                     "caption": f"Contact sheet of {name}/{split}: its first images with the annotated poses drawn "
                                f"(each title: image number and crowd index). Source: {inputs.rel(src)}, shown "
                                f"as a {w}×{h} px JPEG."})
    return written
