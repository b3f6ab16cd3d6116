#!/usr/bin/env bash
# The GPU paths end to end, for a machine with CUDA: train MNIST 3-D on one GPU, data-parallel on all of them under
# torchrun (NCCL, one device per rank), evaluate and embed on the GPU, export to ONNX, and time CIFAR-10 epochs.
#
#     bash benchmarks/gpu_smoke.sh [OUT]        # OUT: a folder for checkpoints and logs (default runs/gpu-smoke)
#
# Prints one line per step and writes OUT/summary.txt; the epoch lines give the time to 99% MNIST test accuracy.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-runs/gpu-smoke}
mkdir -p "$OUT"
PY=${PYTHON:-python}
GPUS=$($PY -c "import torch; print(torch.cuda.device_count())")
if [ "$GPUS" -lt 1 ]; then echo "no CUDA device here: nothing to smoke-test" >&2; exit 2; fi
$PY -c "import torch; print('torch', torch.__version__, '|', torch.cuda.get_device_name(0), '|', torch.cuda.device_count(), 'GPU(s)')" | tee "$OUT/summary.txt"

step() { local name=$1; shift; local start=$SECONDS; "$@" > "$OUT/$name.json" 2> "$OUT/$name.log"
         echo "$name: $((SECONDS - start)) s, $(tail -c 300 "$OUT/$name.json")" | tee -a "$OUT/summary.txt"; }

step mnist-3d $PY -m arcdemo train --dataset mnist --dim 3 --epochs 3 --device cuda --out "$OUT/mnist-3d" --quiet
grep "epoch" "$OUT/mnist-3d.log" | tee -a "$OUT/summary.txt"
step mnist-128d $PY -m arcdemo train --dataset mnist --dim 128 --epochs 3 --device cuda --out "$OUT/mnist-128d" --quiet
grep "epoch" "$OUT/mnist-128d.log" | tee -a "$OUT/summary.txt"
step ddp $PY -m torch.distributed.run --standalone --nproc_per_node "$GPUS" -m arcdemo train --dataset mnist \
    --dim 3 --epochs 3 --batch-size $((128 * GPUS)) --device cuda --out "$OUT/mnist-ddp" --quiet
step eval $PY -m arcdemo eval --checkpoint "$OUT/mnist-3d" --device cuda
step embed $PY -m arcdemo embed --checkpoint "$OUT/mnist-3d" --device cuda --out "$OUT/mnist-3d-embeddings"
step export $PY -m arcdemo export --checkpoint "$OUT/mnist-3d" --format onnx --out "$OUT/mnist-3d"
step cifar10 $PY -m arcdemo train --preset cifar10-arcface-512d --epochs 10 --device cuda --out "$OUT/cifar10" --quiet
grep "epoch" "$OUT/cifar10.log" | tee -a "$OUT/summary.txt"
echo "summary: $OUT/summary.txt"
