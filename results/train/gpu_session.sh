#!/usr/bin/env bash
# Common set-up for GPU calls through the device tool (carry .whl: pycolmap, tabulate, tqdm wheels for the
# device's Python 3.12). Source it: `source results/train/gpu_session.sh`.
set -o pipefail
export PYTHONUNBUFFERED=1
if ! python3 -c "import pycolmap, tabulate, tqdm" 2>/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__)"
