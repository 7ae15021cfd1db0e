#!/usr/bin/env bash
# The GPU checks, as one script for a lent GPU machine (see the device tool's README), in
# under 8 minutes: the CUDA tests; the torch step on CUDA (static with CUDA graphs against
# the per-entry step at 64k; the static step for 1 s at 1M and 4M neurons, with first-run
# totals and peak GPU memory); the Diehl & Cook MNIST replay at batch 256; and Brian2CUDA
# beside it where it is installed. Needs torch with CUDA, numba, h5py, scipy,
# tqdm, matplotlib there; MNIST in $NEUROSIM_DATA (carry a copy). Each part has its own
# timeout, so one that hangs does not take the others with it, and no part runs past the
# whole script's budget (GPU_CHECK_SECONDS, default 470): a part gets what is left, and
# one with under 10 s left is skipped.
set -uo pipefail
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
OUT="${OUT:-/tmp/gpu_check}"; mkdir -p "$OUT"
BUDGET="${GPU_CHECK_SECONDS:-470}"
case "$BUDGET" in ''|*[!0-9]*) echo "gpu_check.sh: GPU_CHECK_SECONDS must be a whole number of seconds, got '$BUDGET'" >&2; exit 2;; esac
status=0
part() {  # part NAME SECONDS COMMAND...: run, keep its output, remember a failure
    local name=$1 limit=$2; shift 2
    local left=$((BUDGET - SECONDS))
    if [ "$left" -lt 10 ]; then
        echo "== $name: skipped, ${left} s of the ${BUDGET} s budget left"
        status=124
        return
    fi
    [ "$limit" -le "$left" ] || limit=$left
    echo "== $name (limit ${limit} s)"
    local t0=$SECONDS
    timeout -k 5 "$limit" "$@" 2>&1 | tee "$OUT/$name.txt"
    local rc=${PIPESTATUS[0]}
    echo "== $name: exit $rc after $((SECONDS - t0)) s"
    [ "$rc" -eq 0 ] || status=$rc
}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import torch, numba, h5py; print('torch', torch.__version__, 'numba', numba.__version__, 'h5py', h5py.__version__)"
part tests 150 python3 -m pytest -q -p no:cacheprovider tests/test_cuda.py -rs
part step_64k 60 python3 benchmarks/torch_step.py --device cuda --sizes 64000 --duration 200
# the targets: 1 s of biological time at 1M and 4M neurons; "build_and_warmup_s" plus the
# run is the first-run total (build, compile, capture, run)
part step_1m_4m 200 python3 benchmarks/torch_step.py --device cuda --sizes 1000000,4000000 \
    --duration 1000 --paths static
if [ -d "${NEUROSIM_DATA:-}" ]; then
    part mnist_b256 90 python3 examples/mnist_stdp.py --device cuda --batch 256 --train 2560 \
        --test 512 --assign 2560 --data "$NEUROSIM_DATA" --log "$OUT/mnist.h5" --no-progress
fi
if python3 -c "import brian2cuda" 2>/dev/null; then
    part brian2cuda 120 python3 benchmarks/cuba.py --device cuda --sizes 1000000 --tools brian2-cuda
fi
echo "gpu_check: exit $status"
exit $status
