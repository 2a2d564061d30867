"""``posedet bench table``: Table 1's FPS column with every peer, and the people-count sweep, in
one run on the same synthetic images (see the package docstring for the JSON keys).

Rows (each on the same ``table_people``-person image, resized to the row's short side, long side
≤ ``max_size``):

* PoseDet DLA-34 at 512, HRNet-W32 at 512, HRNet-W48 at 640 (Table 1's three), and each one's
  backbone + neck alone (the floor of the head's overhead);
* the HigherHRNet-style peer on HRNet-W32 at 512 and HRNet-W48 at 640 (the same timm backbones);
* Keypoint R-CNN R50-FPN and YOLO11n/s-pose at every short side of the table (512, 640);
* each bare backbone (dla34, hrnet_w32, hrnet_w48 and Keypoint R-CNN's R50-FPN).

Sweep: PoseDet DLA-34, the HigherHRNet-style W32, Keypoint R-CNN and YOLO11n-pose at the sweep's
short side, on images with 1 … 30 people (fixed size), network figure only.

Ratios: PoseDet ÷ HigherHRNet-style at the same backbone and input (FPS ratio = peer ms ÷
PoseDet ms) and PoseDet ÷ Keypoint R-CNN at the same input.

``quick`` mode: a 160×120 image at short side 128 for every row (max 192), the first call as the
warm-up, 1–2 timed calls, sweep at 1 and 10 people: the same code paths in about a minute on
one loaded core (the smoke preset and CI); its numbers are not for reading.
``full``: 640×480 images, the paper's sizes, ≤ 10 timed calls per row capped at ~``budget_s``
seconds of timing per row, sweep at 1, 5, 10, 20, 30 people.

Load: before every row (table and sweep) ``posedet.bench.load.LoadGuard`` samples the machine's
load; while other processes use more than 0.5 core it waits (full: up to 3 × 10 s per row, 300 s
per run; quick: never) and then times the row; a row still busy, or loaded during its timing,
carries ``timed_under_load: true``. Every row records ``load`` (the samples, the wait); the
printed table marks such rows with † (``--load-wait``, ``--load-tries``, ``--busy-cores``).
Every figure is the median of the timed calls, with p10 and p90 in ``spread``.

Devices: ``--device`` (``cpu`` by default; ``auto``: CUDA when there is one; ``cuda`` without
CUDA: exit 2) may be given more than once (``--device cuda --device cpu``): the whole table is
timed on each device in turn, in one JSON — every row and sweep row carries its ``device``, each
``ratios`` / ``skipped`` entry too, and the manifest holds ``devices`` (in order) and
``per_device`` (each run's own manifest: threads, GPU, load, wall time); its top-level fields
are the first device's. The report shows one FPS column per device kind (GPU, CPU).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from posedet.bench.protocol import finish_manifest, manifest, threads, write_json
from posedet.devices import DeviceError, resolve_device

MODES = {
    "quick": {"image_size": (160, 120), "sizes": {"dla34": 128, "hrnet_w32": 128, "hrnet_w48": 128},
              "max_size": 192, "warmup": 0, "repeats": 2, "budget_s": 1.0, "table_people": 5,
              "sweep_people": [1, 10], "sweep_short": 128, "sweep_repeats": 1, "yolo_scales": ["n"]},
    "full": {"image_size": (640, 480), "sizes": {"dla34": 512, "hrnet_w32": 512, "hrnet_w48": 640},
             "max_size": 1000, "warmup": 2, "repeats": 10, "budget_s": 12.0, "table_people": 10,
             "sweep_people": [1, 5, 10, 20, 30], "sweep_short": 512, "sweep_repeats": 5,
             "yolo_scales": ["n", "s"]},
}
PAPER_FPS = {("PoseDet", "dla34"): 42, ("PoseDet", "hrnet_w32"): 18, ("PoseDet", "hrnet_w48"): 10,
             ("HigherHRNet-style", "hrnet_w48"): 4}


def find_checkpoint(checkpoint_dir: str | None, backbone: str, explicit: dict[str, str]) -> str | None:
    """``--checkpoint BACKBONE=PATH`` first, else ``DIR/<backbone>/seed0/train/final.pt``."""
    if backbone in explicit:
        return explicit[backbone]
    if checkpoint_dir:
        for cand in (Path(checkpoint_dir) / backbone / "seed0" / "train" / "final.pt",
                     Path(checkpoint_dir) / backbone / "train" / "final.pt"):
            if cand.is_file():
                return str(cand)
    return None


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def run_table(mode: str = "quick", device: str = "cpu", amp: bool = False, num_threads: int | None = None,
              checkpoint_dir: str | None = None, checkpoints: dict[str, str] | None = None,
              pose_source: str | None = None, peers: bool = True, sweep: bool = True,
              methods: list[str] | None = None, overrides: dict | None = None,
              load_policy: dict | None = None) -> dict:
    """``load_policy``: :class:`posedet.bench.load.LoadPolicy` fields overriding the mode's
    (tests: a short wait, other thresholds)."""
    from posedet.bench import runners as R
    from posedet.bench.fps import time_runner
    from posedet.bench.load import POLICIES, LoadGuard
    from posedet.bench.scenes import default_pose_source, load_prior, make_scene

    cfg = dict(MODES[mode], **(overrides or {}))          # overrides: tests (tiny sizes, backbones)
    checkpoints = checkpoints or {}
    dev = str(resolve_device(device))        # auto -> cuda | cpu; DeviceError if CUDA is absent
    nthreads = num_threads or os.cpu_count()
    want = (lambda name: methods is None or name in methods)
    guard = LoadGuard(nthreads, log=_log, **{**POLICIES.get(mode, {}), **(load_policy or {})})
    t_start = time.perf_counter()
    with threads(nthreads):
        src = pose_source or default_pose_source()
        prior = load_prior(src)
        scene = make_scene(cfg["table_people"], cfg["image_size"], prior=prior, pose_source=src)
        m = manifest(dev, nthreads, mode=mode, device_requested=str(device))
        rows, sweep_rows, skipped, weights = [], [], [], {}
        quick = mode == "quick"
        kw = dict(warmup=cfg["warmup"], repeats=cfg["repeats"], budget_s=cfg["budget_s"],
                  min_repeats=2 if quick else 3, e2e_repeats=1 if quick else None,
                  forward_repeats=1 if quick else None)

        def add(make, label):
            try:
                r = make()
            except Exception as e:                         # a peer that cannot be built here
                skipped.append({"method": label, "reason": f"{type(e).__name__}: {e}"})
                _log(f"  skip {label}: {e}")
                return None
            with guard.row(label) as load:
                row = time_runner(r, scene, **kw)
            rows.append(guard.mark(row, load))
            _log(f"  {row['method']:22s} {row['backbone']:13s} {str(row['input_size']):11s} network "
                 f"{row['network_ms']:9.1f} ms  e2e {row['end_to_end_ms']:9.1f} ms  {row['candidates']}")
            return r

        short_sides = sorted(set(cfg["sizes"].values()))
        for bb, short in cfg["sizes"].items():
            if want("PoseDet"):
                ck = find_checkpoint(checkpoint_dir, bb, checkpoints)
                weights[bb] = ck
                pd = add(lambda: R.PoseDetRunner(bb, short, cfg["max_size"], dev, amp, ck), f"PoseDet {bb}")
                if pd is not None:
                    add(lambda: R.NeckRunner(pd), f"PoseDet backbone+neck {bb}")
            if peers and want("HigherHRNet-style") and bb.startswith("hrnet"):
                add(lambda: R.HigherHRNetRunner(bb, short, cfg["max_size"], dev, amp), f"HigherHRNet-style {bb}")
            if want("backbone"):
                add(lambda: R.BackboneRunner(bb, short, cfg["max_size"], dev, amp), f"backbone {bb}")
        if peers:
            from posedet.peers import yolo_pose

            yolo_ok = yolo_pose.available()
            if not yolo_ok:
                skipped.append({"method": "YOLO11-pose", "reason": yolo_pose.unavailable_reason()})
                _log(f"  skip YOLO11-pose: {yolo_pose.unavailable_reason()}")
            for short in short_sides:
                if want("Keypoint R-CNN"):
                    kr = add(lambda: R.KeypointRCNNRunner(short, cfg["max_size"], dev, amp), f"Keypoint R-CNN {short}")
                    if kr is not None and want("backbone"):
                        add(lambda: R.BackboneRunner("resnet50_fpn", short, cfg["max_size"], dev, amp, krcnn=kr),
                            f"backbone resnet50_fpn {short}")
                if yolo_ok and want("YOLO-pose"):
                    for s in cfg["yolo_scales"]:
                        add(lambda: R.YoloPoseRunner(s, short, cfg["max_size"], dev, amp), f"YOLO11{s}-pose {short}")
        if sweep:
            short = cfg["sweep_short"]
            makers = []
            sweep_bb = cfg.get("sweep_backbone", "dla34")
            sweep_hh = cfg.get("sweep_hrnet", "hrnet_w32")
            if want("PoseDet"):
                ck = find_checkpoint(checkpoint_dir, sweep_bb, checkpoints)
                makers.append((f"PoseDet {sweep_bb}",
                               lambda: R.PoseDetRunner(sweep_bb, short, cfg["max_size"], dev, amp, ck)))
            if peers:
                if want("HigherHRNet-style"):
                    makers.append((f"HigherHRNet-style {sweep_hh}",
                                   lambda: R.HigherHRNetRunner(sweep_hh, short, cfg["max_size"], dev, amp)))
                if want("Keypoint R-CNN"):
                    makers.append(("Keypoint R-CNN", lambda: R.KeypointRCNNRunner(short, cfg["max_size"], dev, amp)))
                if want("YOLO-pose") and yolo_ok:
                    makers.append(("YOLO11n-pose", lambda: R.YoloPoseRunner("n", short, cfg["max_size"], dev, amp)))
            scenes = [make_scene(n, cfg["image_size"], prior=prior, pose_source=src) for n in cfg["sweep_people"]]
            for label, make in makers:
                try:
                    r = make()
                except Exception as e:
                    skipped.append({"method": f"sweep {label}", "reason": f"{type(e).__name__}: {e}"})
                    continue
                for sc in scenes:
                    with guard.row(f"sweep {label} people {sc.people}") as load:
                        row = time_runner(r, sc, warmup=0 if quick else 1, repeats=cfg["sweep_repeats"],
                                          e2e_repeats=1, forward_repeats=1, flops=False, end_to_end=False,
                                          budget_s=cfg["budget_s"] / 2, min_repeats=1 if mode == "quick" else 3)
                    sweep_rows.append(guard.mark({k: row[k] for k in (
                        "method", "backbone", "short_side", "input_size", "device", "dtype", "people", "network_ms",
                        "spread", "forward_ms", "post_ms", "candidates", "weights")}, load))
                    _log(f"  sweep {label:28s} people {sc.people:3d}: {row['network_ms']:9.1f} ms "
                         f"(post {row['post_ms']:7.1f} ms) {row['candidates']}")
        m.update(image_size=list(cfg["image_size"]), short_sides=cfg["sizes"],
                     max_size=cfg["max_size"], table_people=cfg["table_people"], sweep_people=cfg["sweep_people"],
                     sweep_short_side=cfg["sweep_short"], amp=amp, batch=1, pose_source=scene.pose_source,
                     checkpoints=weights, **guard.manifest_fields(),
                     timed={"network": "forward + decode + NMS / the peer's grouping or RoI heads, on the "
                                       "prepared input tensor",
                            "end_to_end": "JPEG file read + decode + resize + normalise (+ pad) + network",
                            "forward": "the network's forward alone", "post": "network − forward"},
                     weights_note="random weights unless a row's 'weights' names a checkpoint; the speed of a "
                                  "forward does not depend on them; candidate-dependent stages get the "
                                  "candidates described in each row's 'candidates.mode'")
    out = {"manifest": finish_manifest(m), "rows": rows, "sweep": sweep_rows, "skipped": skipped,
           "ratios": ratios(rows), "paper_fps": [{"method": a, "backbone": b, "fps": v} for (a, b), v in PAPER_FPS.items()]}
    out["manifest"]["wall_s"] = time.perf_counter() - t_start
    return out


def run_tables(devices: list[str], mode: str = "quick", **kw) -> dict:
    """``run_table`` on each device in turn (``auto`` resolved; a device already timed is not timed
    again), merged into one result: rows, sweep rows, ratios and skipped entries of every device
    (each tagged with its ``device``), the first device's manifest with ``devices`` and
    ``per_device`` added. One device: ``run_table``'s result plus ``devices``."""
    runs, seen = [], set()
    resolved = [str(resolve_device(d)) for d in devices]     # every device checked before timing starts
    for want, dev in zip(devices, resolved):
        if dev in seen:
            _log(f"posedet bench table: --device {want} is {dev}, already timed; skipped")
            continue
        seen.add(dev)
        _log(f"posedet bench table: timing on {dev}")
        runs.append(run_table(mode, dev, **kw))
    if not runs:
        raise DeviceError("posedet bench table: no device to time")
    out = dict(runs[0])
    for key in ("rows", "sweep", "ratios", "skipped"):
        out[key] = []
        for res in runs:
            dev = res["manifest"]["device"]
            out[key] += [dict(r, device=r.get("device", dev)) for r in res[key]]
    out["manifest"] = dict(runs[0]["manifest"], devices=[r["manifest"]["device"] for r in runs],
                           per_device={r["manifest"]["device"]: r["manifest"] for r in runs})
    if len(runs) > 1:
        out["manifest"]["wall_s"] = sum(r["manifest"].get("wall_s", 0.0) for r in runs)
    return out


def ratios(rows: list[dict]) -> list[dict]:
    """PoseDet ÷ HigherHRNet-style (same backbone and input) and PoseDet ÷ Keypoint R-CNN (same
    input), as FPS ratios (= the peer's ms ÷ PoseDet's ms), network and end-to-end; and each
    PoseDet network ÷ its backbone + neck."""
    pd = {(r["backbone"], r["short_side"]): r for r in rows if r["method"] == "PoseDet"}
    out = []
    for r in rows:
        if r["method"] == "HigherHRNet-style" and (r["backbone"], r["short_side"]) in pd:
            p = pd[(r["backbone"], r["short_side"])]
            out.append({"what": "PoseDet / HigherHRNet-style FPS", "backbone": r["backbone"],
                        "short_side": r["short_side"], "network": r["network_ms"] / p["network_ms"],
                        "end_to_end": r["end_to_end_ms"] / p["end_to_end_ms"]})
        if r["method"] == "Keypoint R-CNN":
            for (bb, s), p in pd.items():
                if s == r["short_side"]:
                    out.append({"what": "PoseDet / Keypoint R-CNN FPS", "backbone": bb, "peer_backbone": r["backbone"],
                                "short_side": s, "network": r["network_ms"] / p["network_ms"],
                                "end_to_end": r["end_to_end_ms"] / p["end_to_end_ms"]})
        if r["method"] == "PoseDet backbone+neck" and (r["backbone"], r["short_side"]) in pd:
            p = pd[(r["backbone"], r["short_side"])]
            out.append({"what": "PoseDet network / its backbone+neck", "backbone": r["backbone"],
                        "short_side": r["short_side"], "network": p["network_ms"] / r["network_ms"]})
    return out


def format_table(res: dict) -> str:
    head = (f"{'method':22s} {'backbone':13s} {'short':>5s} {'input':>10s} {'dev':>4s} {'dtype':>5s} "
            f"{'net ms':>9s} {'p10-p90':>15s} {'e2e ms':>9s} {'FPS':>7s} {'GFLOPs':>8s} {'GFLOP/s':>8s}  candidates")
    lines = [head, "-" * len(head)]
    dag = (lambda r: "†" if r.get("timed_under_load") else " ")  # noqa: E731
    for r in res["rows"]:
        sp = r["spread"]
        cand = {k: v for k, v in r["candidates"].items() if k != "mode"}
        lines.append(f"{r['method']:22s} {r['backbone']:13s} {r['short_side']:5d} "
                     f"{'x'.join(map(str, r['input_size'] or [])):>10s} {r['device'][:4]:>4s} {r['dtype'][:5]:>5s} "
                     f"{r['network_ms']:8.1f}{dag(r)} {sp['p10_ms']:7.1f}-{sp['p90_ms']:<7.1f} {r['end_to_end_ms']:9.1f} "
                     f"{r['fps']:7.2f} {(r['gflops'] or 0):8.1f} {(r['achieved_gflops_per_s'] or 0):8.1f}  {cand}")
    if res.get("sweep"):
        lines.append("")
        lines.append("people-count sweep (network ms):")
        key = (lambda r: (r["method"], r["backbone"], r.get("device", "")))  # noqa: E731
        methods = sorted({key(r) for r in res["sweep"]}, key=str)
        people = sorted({r["people"] for r in res["sweep"]})
        lines.append(f"{'method':40s} " + " ".join(f"{p:>9d}" for p in people))
        several = len({m[2] for m in methods}) > 1
        for mth in methods:
            vals = {r["people"]: r for r in res["sweep"] if key(r) == mth}
            label = f"{mth[0]} {mth[1]}" + (f" ({mth[2]})" if several else "")
            lines.append(f"{label:40s} " + " ".join(
                f"{vals[p]['network_ms']:8.1f}{dag(vals[p])}" if p in vals else f"{'nan':>9s}" for p in people))
    if res.get("ratios"):
        lines.append("")
        for q in res["ratios"]:
            e2e = f", end-to-end {q['end_to_end']:.2f}" if "end_to_end" in q else ""
            on = f", {q['device']}" if q.get("device") else ""
            lines.append(f"{q['what']} ({q['backbone']} @ {q['short_side']}{on}): network {q['network']:.2f}{e2e}")
    loaded = [r for r in res["rows"] + res.get("sweep", []) if r.get("timed_under_load")]
    if loaded:
        most = max((r["load"].get("other_cpu_cores_during") or r["load"].get("other_cpu_cores_before") or 0.0)
                   for r in loaded)
        lines.append(f"† timed under load: {len(loaded)} row(s), other processes used up to {most:.1f} cores "
                     "(each row's 'load' in the JSON)")
    for s in res.get("skipped", []):
        on = f" on {s['device']}" if s.get("device") else ""
        lines.append(f"skipped {s['method']}{on}: {s['reason']}")
    m = res["manifest"]
    for dev, dm in (m.get("per_device") or {m.get("device"): m}).items():
        lines.append(f"[{dm['mode']}, {dev}] {dm['cpu']} / {dm['gpu']}, {dm['threads']} threads, torch {dm['torch']}, "
                     f"load {dm['loadavg_at_start']} -> {dm.get('loadavg_at_end')}, {dm.get('wall_s', 0):.0f} s")
    return "\n".join(lines)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--preset-mode", choices=sorted(MODES), default="full",
                   help="quick: tiny input, few repeats (< 1 min; smoke preset, CI); full: the paper's sizes")
    p.add_argument("--out", required=True, help="results/<preset>/bench/table.json")
    p.add_argument("--checkpoint-dir", default=None,
                   help="trained PoseDet checkpoints: DIR/<backbone>/seed0/train/final.pt "
                        "(e.g. results/synthetic/synth_coco)")
    p.add_argument("--checkpoint", action="append", default=[], metavar="BACKBONE=PATH",
                   help="a trained checkpoint for one backbone (repeatable)")
    p.add_argument("--device", action="append", default=None, metavar="DEVICE",
                   help="cpu (default) | auto | cuda | cuda:N; repeat to time each device in turn "
                        "(--device cuda --device cpu), one JSON")
    p.add_argument("--amp", action="store_true", help="fp16 autocast (CUDA)")
    p.add_argument("--threads", type=int, default=None, help="intra-op threads (default: all cores)")
    p.add_argument("--pose-source", default=None, help="pose prior for the synthetic images")
    p.add_argument("--no-peers", action="store_true")
    p.add_argument("--no-sweep", action="store_true")
    p.add_argument("--methods", nargs="*", default=None,
                   help="only these: PoseDet, HigherHRNet-style, 'Keypoint R-CNN', YOLO-pose, backbone")
    p.add_argument("--load-wait", type=float, default=None, metavar="S",
                   help="seconds to wait, per try, while other processes keep the machine busy (full: 10)")
    p.add_argument("--load-tries", type=int, default=None, metavar="N",
                   help="waits per row at most before timing it under load (full: 3, quick: 0)")
    p.add_argument("--busy-cores", type=float, default=None, metavar="C",
                   help="busy when other processes use more than C cores (default 0.5)")


def main(args) -> int:
    explicit = {}
    for spec in args.checkpoint:
        bb, sep, path = spec.partition("=")
        if not sep:
            raise SystemExit(f"posedet bench table: --checkpoint takes BACKBONE=PATH, got {spec!r}")
        explicit[bb] = path
    devs = [d for spec in (args.device or ["cpu"]) for d in spec.split(",") if d.strip()]
    try:
        res = run_tables(devs, args.preset_mode, amp=args.amp, num_threads=args.threads,
                         checkpoint_dir=args.checkpoint_dir, checkpoints=explicit, pose_source=args.pose_source,
                         peers=not args.no_peers, sweep=not args.no_sweep, methods=args.methods,
                         load_policy={k: v for k, v in (("wait_s", args.load_wait), ("tries", args.load_tries),
                                                        ("busy_other_cores", args.busy_cores)) if v is not None})
    except DeviceError as e:
        print(f"posedet bench table: {e}", file=sys.stderr)
        return 2
    write_json(res, args.out)
    print(format_table(res))
    print(f"wrote {args.out}")
    return 0
