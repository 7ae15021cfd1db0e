#!/usr/bin/env bash
# The GPU checks, as one script for a lent GPU machine (see the device tool's README):
# the CUDA tests, then the torch-on-CUDA CUBA baseline. Needs torch with CUDA, numba,
# h5py, scipy, tqdm, matplotlib there; MNIST in $NEUROSIM_DATA (carry a copy).
set -uo pipefail
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
OUT="${OUT:-/tmp/gpu_check}"; mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import torch, numba, h5py; print('torch', torch.__version__, 'numba', numba.__version__, 'h5py', h5py.__version__)"
python3 -m pytest -q -p no:cacheprovider tests/test_cuda.py -rs 2>&1 | tee "$OUT/test_cuda.txt"
tests=${PIPESTATUS[0]}
timeout 300 python3 benchmarks/gpu_cuba_baseline.py --sizes "${SIZES:-4000,64000,1000000}" \
    --duration "${DURATION:-100}" 2>&1 | tee "$OUT/cuba_baseline.txt"
bench=${PIPESTATUS[0]}
echo "gpu_check: tests exit $tests, baseline exit $bench"
exit $(( tests != 0 ? tests : bench ))
