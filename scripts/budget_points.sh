#!/bin/sh
# The budget knob, measured (README, "The budget knob"): the `synthetic` baseline, seed 0, trained by
# the workflow at each budget given (default: 2 and 4), side by side at 1 thread each — the way the
# workflow trains (train_threads: 1, two jobs on 2 cores) — then scored on synth_crowdpose/val and its
# learning curve computed. Run it with nothing else on the machine: the load average is recorded
# beside each point.
#
#   sh scripts/budget_points.sh [K ...]
#
# Writes results/synthetic/budget<K>/... (the workflow's own roots for --config budget=K) and prints,
# per budget, the training wall time, AP / AP50 / AP75 and the load (results/budget_points.json).
set -eu
cd "$(dirname "$0")/.."
[ $# -gt 0 ] || set -- 2 4
PY=.venv/bin/python
mkdir -p results/budget_points
for k in "$@"; do
  d=results/synthetic/budget$k/synth_crowdpose/baseline/seed0
  (
    echo "{\"budget\": $k, \"loadavg_start\": \"$(cat /proc/loadavg)\", \"start\": $(date +%s)}" \
      > results/budget_points/budget$k.start.json
    .venv/bin/snakemake --cores 1 --nolock --config preset=synthetic budget="$k" -- \
      "$d/metrics/synth_crowdpose-val.refined.oks.json" "$d/curve.json" \
      > results/budget_points/budget$k.log 2>&1
    echo "{\"budget\": $k, \"loadavg_end\": \"$(cat /proc/loadavg)\", \"end\": $(date +%s)}" \
      > results/budget_points/budget$k.end.json
  ) &
  sleep 5   # the two snakemake processes start (and build their data sets) apart
done
wait
"$PY" - "$@" <<'EOF'
import json, sys
from pathlib import Path
from posedet.atomic import write_json_atomic

rows = []
for k in sys.argv[1:]:
    d = Path(f"results/synthetic/budget{k}/synth_crowdpose/baseline/seed0")
    pts = Path("results/budget_points")
    s = json.loads((d / "train" / "summary.json").read_text())
    m = json.loads((d / "metrics" / "synth_crowdpose-val.refined.oks.json").read_text())["metrics"]
    c = json.loads((d / "curve.json").read_text())
    row = {"budget": float(k), "steps": s["steps"], "images": s["steps"] * s["config"]["train"]["batch_size"], "threads": s["threads"],
           "train_wall_s": s["wall_s"], "images_per_s": s["images_per_s"],
           **{key: m[key] for key in ("AP", "AP50", "AP75", "AP_hard")},
           "curve": [(p["step"], round(p["AP"], 4)) for p in c["points"]],
           **json.loads((pts / f"budget{k}.start.json").read_text()),
           **json.loads((pts / f"budget{k}.end.json").read_text())}
    rows.append(row)
    print(f"budget {k}: {row['steps']} steps, train {row['train_wall_s'] / 60:.1f} min at {row['threads']} "
          f"thread(s) ({row['images_per_s']:.1f} img/s); AP {row['AP']:.3f} AP50 {row['AP50']:.3f} "
          f"AP75 {row['AP75']:.3f} AP(H) {row['AP_hard']:.3f}; load start {row['loadavg_start']}, "
          f"end {row['loadavg_end']}; curve {row['curve']}")
write_json_atomic("results/budget_points.json", rows)
EOF
