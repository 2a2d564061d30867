"""The ``posedet`` command: one subcommand per workflow step.

Each subcommand lives in its own module exposing ``add_arguments(parser)`` and
``main(args) -> int``; modules are imported only when their subcommand runs, so
``posedet --help`` stays fast and a broken optional dependency only breaks its own step.
"""
from __future__ import annotations

import argparse
import importlib
import sys

SUBCOMMANDS = {
    "check": ("posedet.check", "preflight of a run: data, images, weights, device; prints the plan"),
    "synth": ("posedet.data.synth", "generate the embedded synthetic data set"),
    "pretrain": ("posedet.pretrain", "pre-train a backbone on a synthetic pretext task (no downloads)"),
    "train": ("posedet.train", "train a PoseDet variant"),
    "predict": ("posedet.predict", "run inference, write COCO-format results"),
    "curve": ("posedet.curve", "learning curve: evaluate a run's snapshots on a val set"),
    "evaluate": ("posedet.evaluate", "score results with the official COCO / CrowdPose metrics"),
    "upper-bound": ("posedet.upper_bound", "ground-truth upper-bound NMS study (Figure 3)"),
    "bench": ("posedet.bench", "timing benchmarks (FPS table with peers, embedding, NMS)"),
    "report": ("posedet.report", "compile tables and figures into reports/"),
    "peer-train": ("posedet.peers.yolo_train", "train YOLO11n-pose beside PoseDet (same data and budget)"),
    "peer-predict": ("posedet.peers.yolo_predict", "COCO keypoint results of a peer-train checkpoint"),
    "weights": ("posedet.model.weights", "stage / check the backbones' ImageNet weights (offline compute nodes)"),
}


def build_parser(argv: list[str]) -> tuple[argparse.ArgumentParser, dict]:
    parser = argparse.ArgumentParser(prog="posedet", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    modules = {}
    # Only import the module of the subcommand actually asked for.
    wanted = next((a for a in argv if not a.startswith("-")), None)
    for name, (modname, help_) in SUBCOMMANDS.items():
        p = sub.add_parser(name, help=help_, description=help_)
        if name == wanted:
            try:
                mod = importlib.import_module(modname)
            except ModuleNotFoundError as e:
                if e.name != modname:
                    raise
                parser.exit(2, f"posedet {name}: not implemented yet ({modname} does not exist)\n")
            mod.add_arguments(p)
            modules[name] = mod
    return parser, modules


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser, modules = build_parser(argv)
    args = parser.parse_args(argv)
    try:
        return int(modules[args.command].main(args) or 0)
    except KeyboardInterrupt:
        print("posedet: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
