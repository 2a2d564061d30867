#!/usr/bin/env bash
# One prepared GPU check: 10 minutes at most (every part under `timeout`; the script ends by END =
# 600 s, so a device lease of 15 minutes keeps its ~12 with the machine's start and the transfers).
# Run it from the repository root on a CUDA machine with the project's Python (PY; default
# .venv/bin/python, else python3) holding torch, timm, snakemake, a COCO evaluator and, for the
# peer, ultralytics + polars (`make install`):
#
#   bash scripts/gpu_check.sh                       # writes $OUT (default ./gpu_out)
#
# Part A, the CUDA bench (GPU otherwise idle): pose-embedding check against deform_conv2d, FPS of
#   the three paper backbones at the paper's sizes in fp32 and AMP, `posedet bench table` (fp32 with
#   the people sweep; AMP without) -> $OUT/gpu_bench.json.
# Part B, the synthetic_gpu preset's hard tier (configs/presets/synthetic_gpu.yaml):
#   B1 the crowdpose-layout train (10,000 images) and val (500) splits, made by the workflow on the
#      CPU *while part A runs* (2 of the machine's cores; the bench records its own thread count);
#   B2 the PoseDet baseline seed 0 (refined + coarse-only) and YOLO11n-pose seed 0 trained on
#      synth_crowdpose_hard/train and scored on its val split, through the workflow, at
#      `--config budget=$GPU_BUDGET` (default 0.05: 300 steps x 32 = 9,600 images, the peer 1 epoch;
#      the recipe's 30-min cap becomes 1.5 min) under results/synthetic_gpu/budget<K>/.
#   What it measures: each model's images/s on the GPU (train summaries, train_log.jsonl) — the
#   number that replaces the estimate in configs/recipes/synthetic_gpu.yaml — and a first AP at a
#   twentieth of the budget (wiring, not the result).
#   -> $OUT/hard_tier.json (timings, metrics, summaries, generation speed) and
#      $OUT/gpu_check_files.tar.gz (the raw metrics, summaries, train logs, job logs, part logs).
# $OUT/gpu_check.log has everything printed. At most 4 files land in $OUT.
#
# Environment: OUT, PY, CORES (default nproc), GPU_BUDGET (0.05), A_END (part A ends by this many
#   seconds after the start: 360), END (everything ends by: 600), SHARED_DATA (the folder with
#   crowdpose/crowdpose_val.json and samples/, when ../shared/data is not beside the checkout, e.g.
#   a copy carried inside it), EVALUATOR (official | faster-coco-eval; default: official, or
#   faster-coco-eval when xtcocotools is missing), SM_DIR (Snakemake's --directory),
#   GPU_CHECK_DRY_RUN=1 (no GPU: print the plan with `snakemake -n` and exit; tests/test_gpu_preset.py).
# On a lent device machine only the checkout travels, and its python3 has torch, timm and opencv but
#   not snakemake, the COCO evaluators, ultralytics or polars: copy ../shared/data into a folder of
#   the checkout that .git/info/exclude ignores (e.g. .gpu_shared/data) and those packages' wheels
#   into .whl, carry both, pip-install the wheels into /tmp/site (PYTHONPATH=/tmp/site), then run
#   `SHARED_DATA=.gpu_shared/data PY=python3 bash scripts/gpu_check.sh` with a ~660-s timeout.
set -u
T0=$(date +%s)
OUT=${OUT:-gpu_out}
mkdir -p "$OUT"
DRY=${GPU_CHECK_DRY_RUN:-0}
if [ -z "${PY:-}" ]; then
  if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python3; fi
fi
CORES=${CORES:-$(nproc)}
BUDGET=${GPU_BUDGET:-0.05}
A_END=${A_END:-360}
END=${END:-600}
SHARED_DATA=${SHARED_DATA:-}
EVALUATOR=${EVALUATOR:-}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/gpu_check.XXXXXX")
mkdir -p "$WORK/parts" "$WORK/logs"
TIMING=$WORK/timing.tsv
printf 'part\trc\tseconds\ttimeout_s\n' > "$TIMING"
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
exec > >(tee -a "$OUT/gpu_check.log") 2>&1

elapsed() { echo $(( $(date +%s) - T0 )); }

# part NAME CAP LIMIT CMD...: CMD under `timeout min(CAP, LIMIT - elapsed)` (skipped under 15 s),
# its output in $WORK/logs/NAME.log (the last $TAIL lines printed), rc and seconds in $TIMING.
part() {
  local name=$1 cap=$2 limit=$3 left t s rc d
  shift 3
  left=$(( limit - $(elapsed) ))
  t=$(( cap < left ? cap : left ))
  if [ "$t" -lt 15 ]; then
    echo "== part $name: SKIPPED (${left} s left before the ${limit}-s mark)"
    printf '%s\tskipped\t0\t%s\n' "$name" "$t" >> "$TIMING"
    return 124
  fi
  echo "== part $name: start at +$(elapsed) s (timeout ${t} s)"
  s=$(date +%s.%N)
  timeout -k 10 "$t" "$@" > "$WORK/logs/$name.log" 2>&1
  rc=$?
  d=$(awk -v a="$s" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
  tail -n "${TAIL:-8}" "$WORK/logs/$name.log" | tr '\r' '\n' | tail -n "${TAIL:-8}"
  echo "== part $name: rc=$rc, ${d} s$([ "$rc" = 124 ] && echo ' (TIMED OUT)')"
  printf '%s\t%s\t%s\t%s\n' "$name" "$rc" "$d" "$t" >> "$TIMING"
  return "$rc"
}

# ---------------------------------------------------------------- part 0: what this machine has
echo "== gpu_check: $(date -u +%FT%TZ), PY=$PY, cores=$CORES, budget=$BUDGET, A by +${A_END} s, all by +${END} s"
"$PY" - "$WORK/preflight.env" "$DRY" "$SHARED_DATA" <<'PYEOF'
import importlib.util as u, sys
from pathlib import Path
env, dry, shared = sys.argv[1], sys.argv[2] == "1", sys.argv[3]
have = {m: bool(u.find_spec(m)) for m in
        ("torch", "timm", "snakemake", "ultralytics", "polars", "xtcocotools", "pycocotools", "faster_coco_eval")}
cuda = False
if have["torch"] and not dry:
    import torch, torchvision, timm
    cuda = torch.cuda.is_available()
    print("torch", torch.__version__, "tv", torchvision.__version__, "timm", timm.__version__,
          "cuda", torch.version.cuda, "device", torch.cuda.get_device_name(0) if cuda else None)
print("modules:", " ".join(f"{m}={'yes' if v else 'NO'}" for m, v in have.items()))
pose = ""
try:
    from posedet import presets as P
    pre = P.load_preset("synthetic_gpu", ".", overrides={"shared_data": shared} if shared else None)
    pose = P._fill("{shared_data}/crowdpose/crowdpose_val.json", pre, "the pose prior")
except Exception as e:  # noqa: BLE001 - reported, the parts that need it are skipped
    print("preset synthetic_gpu:", type(e).__name__, e)
have_pose = bool(pose) and Path(pose).is_file()
print("pose prior:", pose or "-", "(found)" if have_pose else "(MISSING: set SHARED_DATA=DIR)")
with open(env, "w") as f:
    f.write(f"HAVE_CUDA={int(cuda)}\nHAVE_SNAKEMAKE={int(have['snakemake'])}\n"
            f"HAVE_PEER={int(have['ultralytics'] and have['polars'])}\nHAVE_XTCOCO={int(have['xtcocotools'])}\n"
            f"HAVE_FCE={int(have['faster_coco_eval'])}\nHAVE_POSE={int(have_pose)}\nPOSE='{pose}'\n")
PYEOF
# shellcheck disable=SC1091
. "$WORK/preflight.env"
if [ "$DRY" != 1 ]; then
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1 || true
  if [ "$HAVE_CUDA" != 1 ]; then echo "gpu_check: CUDA is not available to $PY"; exit 2; fi
fi
if [ -z "$EVALUATOR" ] && [ "$HAVE_XTCOCO" != 1 ] && [ "$HAVE_FCE" = 1 ]; then
  EVALUATOR=faster-coco-eval
  echo "gpu_check: xtcocotools missing: scoring with faster-coco-eval (same numbers; tests cross-check)"
fi

# ---------------------------------------------------------------- part B's workflow targets
SNAKE=("$PY" -m snakemake --snakefile workflow/Snakefile --keep-going)
[ -n "${SM_DIR:-}" ] && SNAKE+=(--directory "$SM_DIR")
CONF=(preset=synthetic_gpu "budget=$BUDGET")
[ -n "$SHARED_DATA" ] && CONF+=("shared_data=$SHARED_DATA")
[ -n "$EVALUATOR" ] && CONF+=("evaluator=$EVALUATOR")
SUFFIX=$("$PY" -c "import sys; from posedet import presets as P; print(P.budget_suffix(P.budget({'budget': sys.argv[1]})))" "$BUDGET") \
  || { echo "gpu_check: bad GPU_BUDGET=$BUDGET"; exit 2; }
RES=results/synthetic_gpu$SUFFIX
RESDIR=${SM_DIR:-.}/$RES
SET=synth_crowdpose_hard
DATA_T=("$RES/data/$SET/train/annotations.json" "$RES/data/$SET/val/annotations.json")
MODEL_T=("$RES/$SET/baseline/seed0/metrics/$SET-val.refined.oks.json"
         "$RES/$SET/baseline/seed0/metrics/$SET-val.coarse.oks.json")
if [ "$HAVE_PEER" = 1 ]; then
  MODEL_T+=("$RES/$SET/yolo11n_pose/seed0/metrics/$SET-val.refined.oks.json")
else
  echo "gpu_check: ultralytics/polars missing: YOLO11n-pose is left out (make install's peers extra)"
fi
echo "gpu_check: workflow targets under $RES: ${#DATA_T[@]} data, ${#MODEL_T[@]} metrics"

if [ "$DRY" = 1 ]; then
  for t in data train_eval; do
    if [ "$t" = data ]; then targets=("${DATA_T[@]}"); else targets=("${MODEL_T[@]}"); fi
    echo "== dry run: $t"
    "${SNAKE[@]}" -n --cores "$CORES" --config "${CONF[@]}" -- "${targets[@]}" || exit 1
  done
  rm -rf "$WORK"
  exit 0
fi
if [ "$HAVE_SNAKEMAKE" != 1 ] || [ "$HAVE_POSE" != 1 ]; then
  echo "gpu_check: part B needs snakemake and the pose prior: only part A runs"
fi

# ---------------------------------------------------------------- B1 in the background (CPU)
DATA_PID=
if [ "$HAVE_SNAKEMAKE" = 1 ] && [ "$HAVE_POSE" = 1 ]; then
  TAIL=4 part data $(( END - 180 )) "$END" "${SNAKE[@]}" --cores 4 --config "${CONF[@]}" -- "${DATA_T[@]}" &
  DATA_PID=$!
fi

# ---------------------------------------------------------------- part A: the CUDA bench
POSE_ARG=(); [ "$HAVE_POSE" = 1 ] && POSE_ARG=(--pose-source "$POSE")
part embedding 90 "$A_END" "$PY" -m posedet bench embedding --device cuda --check-cuda --threads 2 \
  --repeats 20 --slow-repeats 5 --out "$WORK/parts/embedding_cuda.json"
for spec in "dla34 512" "hrnet_w32 512" "hrnet_w48 640"; do
  set -- $spec
  for amp in "" "--amp"; do
    tag=$1_$2${amp:+_amp}
    TAIL=1 part "fps_$tag" 40 "$A_END" "$PY" -m posedet bench fps --backbone "$1" --short-side "$2" --max-size 1000 \
      --device cuda --threads 2 --warmup 10 --repeats 50 $amp "${POSE_ARG[@]}" --out "$WORK/parts/fps_$tag.json"
  done
done
# Table 1 with every peer and the people-count sweep, CUDA fp32 and AMP (8 threads: B1 runs beside)
TAIL=40 part bench_table 180 "$A_END" "$PY" -m posedet bench table --preset-mode full --device cuda --threads 8 \
  "${POSE_ARG[@]}" --out "$WORK/parts/table_cuda.json"
TAIL=25 part bench_table_amp 100 "$A_END" "$PY" -m posedet bench table --preset-mode full --device cuda --amp \
  --no-sweep --threads 8 "${POSE_ARG[@]}" --out "$WORK/parts/table_cuda_amp.json"
"$PY" - "$WORK/parts" "$OUT/gpu_bench.json" <<'PYEOF'
import json, pathlib, sys
parts = {p.stem: json.loads(p.read_text()) for p in sorted(pathlib.Path(sys.argv[1]).glob("*.json"))}
pathlib.Path(sys.argv[2]).write_text(json.dumps(parts, indent=1))
print(f"gpu_check: {len(parts)} bench parts -> {sys.argv[2]}")
PYEOF

# ---------------------------------------------------------------- B2: baseline + YOLO11n-pose (GPU)
if [ -n "$DATA_PID" ]; then
  echo "== waiting for part data (at +$(elapsed) s)"
  wait "$DATA_PID"
  data_rc=$?
  if [ "$data_rc" = 0 ]; then
    part train_eval 300 "$END" "${SNAKE[@]}" --cores "$CORES" --config "${CONF[@]}" -- "${MODEL_T[@]}"
  else
    echo "gpu_check: part data failed (rc=$data_rc): no training"
  fi
fi

# ---------------------------------------------------------------- bundle into $OUT
"$PY" - "$RESDIR" "$SET" "$TIMING" "$OUT/hard_tier.json" "$BUDGET" "$(elapsed)" <<'PYEOF'
import csv, json, sys
from pathlib import Path
res, s, timing, out, budget, total = Path(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6]

def load(p):
    try:
        return json.loads(Path(p).read_text())
    except (OSError, ValueError):
        return None

doc = {"budget": float(budget), "total_s": int(total),
       "parts": list(csv.DictReader(open(timing), delimiter="\t")), "data": {}, "models": {}}
for split in ("train", "val"):
    st = load(res / "data" / s / split / "stats.json") or {}
    doc["data"][split] = {"generation": st.get("generation"), "persons_per_image_mean": st.get("persons_per_image_mean")}
for model in ("baseline", "yolo11n_pose"):
    run = res / s / model / "seed0"
    log = run / "train" / "train_log.jsonl"
    lines = [json.loads(l) for l in log.read_text().splitlines() if l.strip()] if log.is_file() else []
    doc["models"][model] = {
        "summary": load(run / "train" / "summary.json"),
        "metrics": {p.name: (load(p) or {}).get("metrics") for p in sorted((run / "metrics").glob("*.json"))},
        "train_log": lines,
    }
Path(out).write_text(json.dumps(doc, indent=1, default=str))
print("== summary (budget %s, %s s in all)" % (budget, total))
for r in doc["parts"]:
    print(f"  part {r['part']:22s} rc={r['rc']:>7s} {float(r['seconds']):7.1f} s (timeout {r['timeout_s']} s)")
for split, d in doc["data"].items():
    g = d["generation"] or {}
    print(f"  data {split:5s}: {g.get('num_images')} images, {g.get('images_per_s')} img/s (one process)")
for model, d in doc["models"].items():
    sm = d["summary"] or {}
    print(f"  {model:13s}: status={sm.get('status')} images/s={sm.get('images_per_s')} "
          f"wall_s={sm.get('train_s') or sm.get('wall_s')} device={sm.get('device')}")
    for name, m in d["metrics"].items():
        if m:
            print(f"    {name}: AP {m.get('AP', float('nan')):.3f}  AP50 {m.get('AP50', float('nan')):.3f}  "
                  f"AP75 {m.get('AP75', float('nan')):.3f}")
print(f"gpu_check: -> {out}")
PYEOF
# the raw files: this run's metrics, summaries, train logs, job logs, data stats, part logs
: > "$WORK/files.lst"
if [ -d "$RESDIR" ]; then
  (cd "${SM_DIR:-.}" && find "$RES" \( -path "*/$SET/*/seed0/train/summary.json" -o -path "*/$SET/*/seed0/train/train_log.jsonl" \
      -o -path "*/$SET/*/seed0/metrics/*.json" -o -path "$RES/logs/*" -o -path "$RES/data/$SET/*/stats.json" \
      -o -path "$RES/data/$SET/val/contact_sheet.png" \) -type f -print0 > "$WORK/files.lst")
fi
tar -czf "$OUT/gpu_check_files.tar.gz" -C "${SM_DIR:-.}" --null -T "$WORK/files.lst" -C "$WORK" timing.tsv logs parts
FAILED=$(awk -F'\t' 'NR > 1 && $2 != "0" { printf "%s ", $1 }' "$TIMING")
rm -rf "$WORK"
echo "gpu_check: done at +$(elapsed) s; ${FAILED:+parts not finished: $FAILED}"
ls -la "$OUT"
sleep 1
[ -z "$FAILED" ]
