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
#   DEADLINE_MIN=8 JOBS=3 bash benchmarks/gpu_grid.sh \
#     --preset plus --models ELCRec+ --datasets sports :: \
#     --preset fast --models SASRec-CE --datasets sports
# Arguments go to `elcrec benchmark`; groups separated by `::` run side by
# side, each with JOBS cells at once.  Measured on an H200 (2026-11-27): 8
# `paper` cells kept it 99-100 % busy and each ELCRec epoch took 8.7 s, as
# slow as the CPU; the GPU is time-sliced between processes, so run few.
# The cells live in $GRID (default /tmp/elcrec_grid, outside the copied tree),
# so a second call on the still-warm machine resumes them from their
# checkpoints.  Back under $OUT: runs.tgz (configs, metrics, logs; no
# checkpoints; with grid<N>.log per group and gpu.log, the utilisation every
# 10 s), and for up to 3 cells the deadline interrupted ckpt_<n>.tgz (last.pt)
# and best_<n>.tgz (best.pt), one file each (the tool returns at most 8 files
# of 16 MiB), so that they can resume on the CPU once the machine is gone
# (untar all into the work folder, $ELCREC_WORK/grid, then `elcrec benchmark
# ... --tables-only` copies the finished cells' summaries into benchmarks/grid).
# Both are needed: a cell brought back
# with last.pt alone trains on and then has no best weights to test
# (2026-11-28: three Yelp cells were lost that way).  Measured
# 2026-11-28: six per-target Yelp cells shared the H200 at 18-19 s
# (SASRec-CE) and 37-40 s (ELCRec+) per epoch; three ELCRec+ cells alone
# took 33-38 s, so halving the processes did not speed each one up
# (4x the 2-core CPU's 145 s).
set -u
OUT=${OUT:-/tmp/gpu_out}
GRID=${GRID:-/tmp/elcrec_grid}
mkdir -p "$OUT" "$GRID"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD/src PYTHONUNBUFFERED=1 CUBLAS_WORKSPACE_CONFIG=:4096:8
export OMP_NUM_THREADS=2  # faiss k-means in each of the parallel cells
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv >"$OUT/gpu.log"
(while sleep 10; do
    nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader >>"$OUT/gpu.log"
done) &
MONITOR=$!
run_group() {  # $1: group number, then the benchmark's arguments
    local n=$1
    shift
    python3 -m elcrec.cli benchmark "$@" --device cuda --data-dir .gpu_data --threads 1 \
        --jobs "${JOBS:-3}" --deadline-min "${DEADLINE_MIN:-8}" --work "$GRID" \
        --results "$GRID/results$n" >"$OUT/grid$n.log" 2>&1
}
group=()
pids=()
n=0
for arg in "$@" ::; do
    if [ "$arg" = "::" ]; then
        n=$((n + 1))
        run_group $n "${group[@]}" &
        pids+=($!)
        group=()
    else
        group+=("$arg")
    fi
done
wait "${pids[@]}"
kill $MONITOR
tail -n 5 "$OUT"/grid*.log
# The logs go inside runs.tgz, to leave the tool's 8 files for checkpoints.
cp "$OUT"/gpu.log "$OUT"/grid*.log "$GRID"/
tar czf "$OUT/runs.tgz" -C "$GRID" --exclude='*.pt' --exclude='tb' --exclude='sequences.npz' . &&
    rm "$OUT"/gpu.log "$OUT"/grid*.log
n=0
for ckpt in "$GRID"/*/*/*/seed*/last.pt; do
    cell=$(dirname "$ckpt")
    [ -e "$ckpt" ] && [ ! -e "$cell/test_metrics.json" ] && [ $n -lt 3 ] || continue
    n=$((n + 1))
    # last.pt resumes the cell; best.pt (once an epoch has been validated) is
    # what its test pass loads at the end.  Separate files: together they
    # outgrow 16 MiB on Yelp.
    tar czf "$OUT/ckpt_$n.tgz" -C "$GRID" "${ckpt#"$GRID"/}"
    [ -e "$cell/best.pt" ] && tar czf "$OUT/best_$n.tgz" -C "$GRID" "${cell#"$GRID"/}/best.pt"
done
ls -la "$OUT"
