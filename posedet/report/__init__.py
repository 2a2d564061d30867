"""`posedet report`: compile Tables 1–5, Figures 3–5 and index.html from a results tree.

    posedet report --preset NAME --results results/NAME --out reports/NAME [--recipe FILE] [--strict]

Modules: ``paper_numbers`` (the cited paper numbers' loader), ``collect`` (reads the results tree of
docs/results_layout.md), ``tables``, ``findings`` (each paper claim with a verdict computed from the
results; summary.md), ``figures``, ``html``, ``provenance``, ``build`` (all of it).
Missing inputs never stop the report: their cells print "—" and ``missing.txt`` / index.html list
them; ``--strict`` then exits 1. A ``--results`` folder that does not exist is an error: exit 2,
nothing written.
"""
from __future__ import annotations

import sys
from pathlib import Path

__all__ = ["add_arguments", "main"]


def add_arguments(parser) -> None:
    parser.add_argument("--preset", required=True, help="preset name (configs/presets/NAME.yaml): captions, "
                                                        "data sets, image roots")
    parser.add_argument("--results", required=True, help="results tree of the preset (results/NAME)")
    parser.add_argument("--out", required=True, help="report folder to write (reports/NAME)")
    parser.add_argument("--repo", default=None, help="repository root (default: the one holding posedet/)")
    parser.add_argument("--recipe", default=None, help="recipe YAML whose `deviations:` list the captions print "
                                                       "(default: the preset's `recipe:`/`deviations:`)")
    parser.add_argument("--no-data-hash", action="store_true", help="skip the sha256 of annotation files")
    parser.add_argument("--strict", action="store_true", help="exit 1 when any input is missing")


def main(args) -> int:
    from posedet.report.build import ResultsNotFound, build_report
    repo = Path(args.repo) if args.repo else Path(__file__).resolve().parents[2]
    try:
        res = build_report(args.preset, Path(args.results), Path(args.out), repo=repo, recipe=args.recipe,
                           hash_data=not args.no_data_hash)
    except ResultsNotFound as e:
        print(f"posedet report: error: {e}", file=sys.stderr)
        return 2
    out = Path(args.out)
    print(f"posedet report: {len(res['tables'])} tables, {len(res['figures'])} figures -> {res['index']}")
    if res["missing"]:
        print(f"posedet report: {len(res['missing'])} inputs missing (cells print '—'); see {out / 'missing.txt'}",
              file=sys.stderr)
        for where, what in res["missing"][:20]:
            print(f"  missing: {where}: {what}", file=sys.stderr)
        if len(res["missing"]) > 20:
            print(f"  ... and {len(res['missing']) - 20} more", file=sys.stderr)
        if args.strict:
            return 1
    return 0
