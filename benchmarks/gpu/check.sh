#!/usr/bin/env bash
# The GPU path on a single-GPU machine without network: install the carried wheels, then run
# check.py (GRPO + SFT a few steps in bf16 on CUDA, eval through local/ with device=cuda).
#     bash benchmarks/gpu/check.sh [--dry-run]        (wheels in .whl/, see wheelhouse.sh)
set -euo pipefail
cd "$(dirname "$0")/../.."
if [[ -d .whl ]] && ! python3 -c "import embench, trl, inspect_ai" 2>/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site:${PYTHONPATH:-}
  export PATH=/tmp/site/bin:$PATH
fi
export PYTHONUNBUFFERED=1
exec python3 benchmarks/gpu/check.py "$@"
