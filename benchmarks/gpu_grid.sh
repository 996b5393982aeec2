#!/usr/bin/env bash
# Run benchmark-grid cells on a lent GPU machine (the `device` tool), where
# nothing can be installed from the network and the run must end inside one
# call.  What it needs travels with the working tree:
#   .whl/       the faiss-cpu wheel for the machine's Python (3.12), see below
#   .gpu_data/  copies of the benchmark files (never committed)
# Prepare them here, once:
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#     --implementation cp --platform manylinux_2_28_x86_64 -d .whl faiss-cpu==1.15.1
#   mkdir -p .gpu_data && cp "$ELCREC_DATA_DIR"/*.txt .gpu_data/
# Then, through the device tool (carry .whl and .gpu_data):
#   DEADLINE_MIN=8 JOBS=3 bash benchmarks/gpu_grid.sh --models ELCRec ICLRec --datasets beauty
# JOBS: cells sharing the GPU.  Measured on an H200 (2026-11-27): 8 `paper`
# cells kept it 99-100 % busy and each ELCRec epoch took 8.7 s, as slow as
# the CPU; run few cells at once.
# Arguments go to `elcrec benchmark`.  Finished and interrupted cells come back
# under $OUT: runs.tgz (configs, metrics, logs, tables), best_beauty.tgz (the
# Beauty ELCRec checkpoints), grid.log and gpu.log (utilisation every 10 s).
set -u
OUT=${OUT:-/tmp/gpu_out}
mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD/src PYTHONUNBUFFERED=1 CUBLAS_WORKSPACE_CONFIG=:4096:8
export OMP_NUM_THREADS=2  # faiss k-means in each of the parallel cells
WORK=benchmarks/grid
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv >"$OUT/gpu.log"
(while sleep 10; do
    nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader >>"$OUT/gpu.log"
done) &
MONITOR=$!
python3 -m elcrec.cli benchmark "$@" --device cuda --data-dir .gpu_data --threads 1 \
    --jobs "${JOBS:-3}" --deadline-min "${DEADLINE_MIN:-8}" --work "$WORK" \
    --results "$WORK/results" 2>&1 | tee "$OUT/grid.log"
kill $MONITOR
tar czf "$OUT/runs.tgz" --exclude='*.pt' --exclude='tb' --exclude='sequences.npz' "$WORK"
tar czf "$OUT/best_beauty.tgz" $WORK/paper/beauty/ELCRec/seed*/{best.pt,config.json,data.json,sequences.npz} 2>/dev/null
ls -la "$OUT"
