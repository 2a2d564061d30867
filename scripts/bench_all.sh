#!/usr/bin/env bash
# The full speed measurement, for a QUIET machine (nothing else running): the fast
# paths before/after (pose embedding, OKS-NMS), and `posedet bench table --preset-mode full`
# (PoseDet DLA-34@512, HRNet-W32@512, HRNet-W48@640 with every peer, the people-count sweep).
# Writes results/synthetic/bench/{embedding_t1,embedding_t<N>,nms,table}.json (each with its
# manifest, load average included). Estimated 8-12 minutes on a quiet 2-core Xeon with 2 threads
# (the table ~5, its people-count sweep ~3, embedding + NMS ~1.5); not yet run on a quiet machine.
#   THREADS=2 scripts/bench_all.sh           # default: all cores
#   CKPT_DIR=results/synthetic/synth_coco    # trained checkpoints (<backbone>/seed0/train/final.pt), if present
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
OUT=${OUT:-results/synthetic/bench}
THREADS=${THREADS:-$(nproc)}
CKPT_DIR=${CKPT_DIR:-results/synthetic/synth_coco}
mkdir -p "$OUT"
echo "load before: $(cat /proc/loadavg)"
t0=$(date +%s)
$PY -m posedet bench embedding --threads 1 --repeats 10 --slow-repeats 2 --out "$OUT/embedding_t1.json"
if [ "$THREADS" != 1 ]; then
  $PY -m posedet bench embedding --threads "$THREADS" --repeats 10 --slow-repeats 2 --out "$OUT/embedding_t$THREADS.json"
fi
$PY -m posedet bench nms --threads 1 --repeats 20 --slow-repeats 3 --out "$OUT/nms.json"
ck=()
[ -d "$CKPT_DIR" ] && ck=(--checkpoint-dir "$CKPT_DIR")
$PY -m posedet bench table --preset-mode full --threads "$THREADS" "${ck[@]}" --out "$OUT/table.json"
echo "load after: $(cat /proc/loadavg); $(( $(date +%s) - t0 )) s"
