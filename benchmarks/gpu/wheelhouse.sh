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
# datasets and their own missing dependencies (pyarrow is in the image). Everything carried must fit
# in 64 MiB, so the default model's 93 MB weights wheel cannot travel: the model's shape does
# (config + tokenizer, ~3.5 MB, in .gpu-model/), and check.py builds seeded random weights from it.
packages=(
  "trl==1.16.0" "inspect-ai==0.3.285" "datasets==5.2.0" "gguf==0.19.0" "bandit==1.9.2"
  "pydantic" "pydantic-core" "annotated-types" "typing-inspection" "jsonlines" "ijson"
  "nest-asyncio" "shortuuid" "mmh3" "tenacity" "textual" "jsonschema" "jsonschema-specifications"
  "referencing" "rpds-py" "jsonpatch" "jsonpointer" "semver" "docstring-parser" "beautifulsoup4"
  "soupsieve" "dill" "multiprocess" "xxhash" "zipp" "debugpy" "python-dotenv"
  "universal-pathlib" "frozendict" "stevedore" "pbr" "platformdirs" "linkify-it-py" "uc-micro-py"
  "mdit-py-plugins" "sniffio" "typing-extensions" "tiktoken" "psutil" "ruamel.yaml"
  "botocore" "jmespath" "nest-asyncio2" "zipfile-zstd" "zstandard"
)
python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 --platform manylinux1_x86_64 --platform any \
  -d "$out" "${packages[@]}"
# inspect_ai's docker sandbox binaries (29 MB) and web viewer (11 MB) are not used by check.py and
# do not fit the lease: drop them (and their RECORD lines) from its wheel
python3 - "$out" <<'PY'
import glob, os, sys, zipfile

[wheel] = glob.glob(os.path.join(sys.argv[1], "inspect_ai-*.whl"))
drop = ("inspect_ai/binaries/", "inspect_ai/_view/dist/")
with zipfile.ZipFile(wheel) as zin, zipfile.ZipFile(wheel + ".tmp", "w", zipfile.ZIP_DEFLATED) as zout:
    for item in zin.infolist():
        if item.filename.startswith(drop):
            continue
        data = zin.read(item.filename)
        if item.filename.endswith(".dist-info/RECORD"):
            lines = data.decode().splitlines(True)
            data = "".join(line for line in lines if not line.startswith(drop)).encode()
        zout.writestr(item, data)
os.replace(wheel + ".tmp", wheel)
PY
# embench itself, and the default model's shape (converted once into the embench cache)
python3 -m pip wheel -q --no-deps -w "$out" .
python3 - <<'PY'
import shutil
from pathlib import Path

from embench.models.resolve import default_model_dir

source, shape = default_model_dir(), Path(".gpu-model")
shape.mkdir(exist_ok=True)
for item in source.iterdir():
    if item.suffix != ".safetensors":
        shutil.copy2(item, shape / item.name)
PY
du -sh "$out" .gpu-model; ls "$out"
