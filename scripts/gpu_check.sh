#!/usr/bin/env bash
# One-shot GPU check (run on a CUDA machine from the repository root, with a synthetic set in
# results/gpu_data made by `posedet synth`): CUDA pose-embedding check, CUDA FPS (fp32 and AMP)
# of the three paper backbones under the harness protocol, the bench table (fp32, AMP), and the
# CPU recipe trained on CUDA (400 steps, then 10 GPU minutes) with its val AP. Everything lands in
# $OUT (default ./gpu_out).
set -u
OUT=${OUT:-gpu_out}; mkdir -p "$OUT/parts"
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
PY=${PY:-python3}
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
$PY -c "import torch, torchvision, timm; print('torch', torch.__version__, 'tv', torchvision.__version__, 'timm', timm.__version__, 'cuda', torch.version.cuda)"
$PY -m posedet bench embedding --device cuda --check-cuda --threads 2 --repeats 20 --slow-repeats 5 --out "$OUT/parts/embedding_cuda.json" 2>&1 | tail -8
for spec in "dla34 512 0.2" "hrnet_w32 512 0.2" "hrnet_w48 640 0.2"; do
  set -- $spec
  for amp in "" "--amp"; do
    tag=$1_$2${amp:+_amp}
    $PY -m posedet bench fps --backbone $1 --short-side $2 --max-size 1000 --device cuda --threads 2 \
      --warmup 10 --repeats 50 $amp --out "$OUT/parts/fps_$tag.json" 2>&1 | tail -1
  done
done
# Table 1 with every peer and the people-count sweep, CUDA fp32 and AMP (one run each)
$PY -m posedet bench table --preset-mode full --device cuda --out "$OUT/parts/table_cuda.json" 2>&1 | tail -40
$PY -m posedet bench table --preset-mode full --device cuda --amp --no-sweep --out "$OUT/parts/table_cuda_amp.json" 2>&1 | tail -25
$PY - "$OUT" <<'PYEOF'
import json, sys, pathlib
out = pathlib.Path(sys.argv[1])
parts = {p.stem: json.loads(p.read_text()) for p in sorted((out / "parts").glob("*.json"))}
(out / "gpu_bench.json").write_text(json.dumps(parts, indent=1))
PYEOF
# The CPU recipe on CUDA (recipe issue): the same pretext start and 400-step recipe, images/s and
# AP on synth_crowdpose/val after the CPU run's number of images; then 10 GPU minutes, same recipe.
# Data: results/synthetic/data/synth_crowdpose/{train,val} (carry them, or let `posedet synth` make them).
D=results/synthetic/data/synth_crowdpose
POSE=${POSE:-../shared/data/crowdpose/crowdpose_val.json}
for split in train:20000:1000 val:21000:200; do
  IFS=: read name seed n <<< "$split"
  [ -f $D/$name/annotations.json ] || $PY -m posedet synth --layout crowdpose --num-images $n --size 256 \
      --seed $seed --density mixed --pose-source "$POSE" --out $D/$name --no-progress
done
$PY -m posedet pretrain --backbone mobilenetv3_small_050 --pose-source "$POSE" --seed 7 --iterations 400 \
  --out /tmp/gpu_pre 2>&1 | tail -1
for run in "recipe train.iterations=400" "ten_min train.iterations=100000 train.max_minutes=10 train.lr_steps=[0.99]"; do
  set -- $run; tag=$1; shift
  sets=(); for o in "$@"; do sets+=(--set "$o"); done
  timeout 700 $PY -m posedet train --config configs/recipes/synthetic_cpu.yaml "${sets[@]}" \
    --set model.init_backbone=/tmp/gpu_pre/backbone.pt --train-ann $D/train/annotations.json \
    --train-images $D/train/images --out /tmp/gpu_$tag --device cuda 2>&1 | tr '\r' '\n' | tail -2
  cp /tmp/gpu_$tag/summary.json "$OUT/train_summary_$tag.json" 2>/dev/null
  $PY -m posedet predict --checkpoint /tmp/gpu_$tag/final.pt --ann $D/val/annotations.json --images $D/val/images \
    --device cuda --out "$OUT/predictions_$tag.json" 2>&1 | tail -1
  $PY -m posedet evaluate --gt $D/val/annotations.json --results "$OUT/predictions_$tag.json" \
    --out "$OUT/metrics_$tag.json" 2>&1 | tail -1
done
rm -rf "$OUT/parts"
ls -la "$OUT"
