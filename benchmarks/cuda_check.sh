#!/bin/bash
# The CUDA measurements issue 6 asks for, as one script for a machine with an NVIDIA GPU (not run yet:
# no GPU has been lent to this project's sessions). Needs the project's Python packages importable
# (`make setup`, or fastai and its pure-Python dependencies on PYTHONPATH) and, for the accuracy part,
# the original notebook's split (default ../shared/data/ml-latest-small-seed-split; pass another folder).
#
#     bash benchmarks/cuda_check.sh [OUT_DIR] [SEED_SPLIT_DIR]
#
# Each step has its own time limit; a failing step does not stop the others.
OUT=${1:-reports/cuda}
SPLIT=${2:-../shared/data/ml-latest-small-seed-split}
PY=${PY:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
$PY -c "import torch, fastai; print('torch', torch.__version__, 'fastai', fastai.__version__, torch.cuda.get_device_name(0))"
echo "== training unit tests with CUDA visible (device 'auto' takes the GPU)"
timeout 120 $PY -m pytest -q -x tests/unit/test_train.py -p no:cacheprovider 2>&1 | tail -6
echo "== accuracy benchmark on CUDA (3 seeds; the same targets as on the CPU)"
timeout 300 $PY benchmarks/accuracy.py --seed-split "$SPLIT" --device cuda --threads 4 --compare mf \
    --out "$OUT/accuracy_cuda.json" 2>&1 | grep -v -i warn | tail -14
echo "== scale benchmark, full size, CUDA (samples/s, epoch, top-10 per 10,000 users, GPU peak memory)"
timeout 600 $PY benchmarks/scale.py --sizes 1.0 --device cuda --naive-steps 20 --out "$OUT/scale_cuda.json" \
    --figure "$OUT/scale_cuda.png" --table "$OUT/scale_cuda.md" 2>&1 | grep -v -i warn | tail -25
