"""`posedet report`: compile Tables 1–5, Figures 3–5 and index.html from a results tree.

    posedet report --plan results/NAME/plan.json --out reports/NAME [--strict]
    posedet report --preset NAME --results results/NAME --out reports/NAME [--recipe FILE] [--strict]

The workflow passes the run's plan (``results/NAME/plan.json``, rule ``plan``; posedet/plan.py): the
report then reads only the files the plan names, with the preset as the run resolved it (its
``--config``) and the deviations of the recipe the models trained with. ``--preset``/``--results``
alone: the results folder's plan.json when it has one, else (a tree from before plan.json) every
model folder found under it, with the preset reloaded by name.

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
    parser.add_argument("--plan", default=None, help="the run's plan.json (results/NAME/plan.json): the preset, "
                                                     "the results folder and every file the report reads")
    parser.add_argument("--preset", default=None, help="preset name (configs/presets/NAME.yaml): captions, "
                                                       "data sets, image roots; with --plan, must be the plan's")
    parser.add_argument("--results", default=None, help="results tree of the preset (results/NAME); with --plan, "
                                                        "must be the plan's")
    parser.add_argument("--out", required=True, help="report folder to write (reports/NAME)")
    parser.add_argument("--repo", default=None, help="repository root (default: the one holding posedet/)")
    parser.add_argument("--recipe", default=None, help="recipe YAML whose `deviations:` list the captions print "
                                                       "(default: the preset's `recipe:`/`deviations:`)")
    parser.add_argument("--no-data-hash", action="store_true", help="skip the sha256 of annotation files")
    parser.add_argument("--strict", action="store_true", help="exit 1 when any input is missing")


def _load_plan(args):
    """(plan, plan file) of the arguments, or (None, None); raises ValueError on a plan that cannot be
    read or that disagrees with --preset / --results."""
    from posedet.plan import load_plan, plan_base
    path = Path(args.plan) if args.plan else (Path(args.results) / "plan.json" if args.results else None)
    if path is None or (not args.plan and not path.is_file()):
        return None, None
    try:
        plan = load_plan(path)
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ValueError(f"plan {path} cannot be read ({type(e).__name__}: {e})") from None
    if args.preset and args.preset != plan.preset:
        raise ValueError(f"--preset {args.preset} is not the plan's preset ({plan.preset}, {path})")
    if args.results:
        planned = (plan_base(path, plan) / plan.results).resolve()
        if Path(args.results).resolve() != planned:
            raise ValueError(f"--results {args.results} is not the plan's results folder ({plan.results}, {path})")
    return plan, path


def main(args) -> int:
    from posedet.report.build import ResultsNotFound, build_report
    repo = Path(args.repo) if args.repo else Path(__file__).resolve().parents[2]
    try:
        plan, plan_file = _load_plan(args)
    except ValueError as e:
        print(f"posedet report: error: {e}", file=sys.stderr)
        return 2
    if plan is None and not (args.preset and args.results):
        print("posedet report: error: pass --plan results/NAME/plan.json (or --preset and --results)",
              file=sys.stderr)
        return 2
    try:
        res = build_report(args.preset, Path(args.results) if args.results else None, Path(args.out), repo=repo,
                           recipe=args.recipe, hash_data=not args.no_data_hash, plan=plan, plan_file=plan_file)
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
