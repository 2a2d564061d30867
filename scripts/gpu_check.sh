#!/usr/bin/env bash
# One-shot GPU check (run on a CUDA machine from the repository root, with a synthetic set in
# results/gpu_data made by `posedet synth`): CUDA pose-embedding check, CUDA FPS (fp32 and AMP)
# of the three paper backbones under the harness protocol, and a short AMP training run +
# predictions. Everything lands in $OUT (default ./gpu_out).
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
timeout 100 $PY -m posedet train --config configs/variants/dla34_cpu20.yaml --set train.amp=true \
  --set train.iterations=150 --set train.batch_size=16 --set train.max_minutes=1 --set train.log_every=10 \
  --train-ann results/gpu_data/annotations.json --train-images results/gpu_data/images \
  --out /tmp/gpu_run --device cuda 2>&1 | tr '\r' '\n' | tail -3
cp /tmp/gpu_run/train_log.jsonl /tmp/gpu_run/summary.json "$OUT/" 2>/dev/null
timeout 60 $PY -m posedet predict --checkpoint /tmp/gpu_run/final.pt --config configs/variants/dla34_cpu20.yaml \
  --ann results/gpu_data/annotations.json --images results/gpu_data/images --device cuda \
  --out "$OUT/gpu_predictions.json" 2>&1 | tr '\r' '\n' | tail -2
rm -rf "$OUT/parts"
ls -la "$OUT"
