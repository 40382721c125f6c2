"""What machine this is, and the training precision that is fast on it.

bf16 is only fast where the processor has bf16 instructions: Intel AMX (``amx_bf16``) or
AVX-512 BF16 (``avx512_bf16``, also on AMD Zen 4+). On an AVX2-only CPU PyTorch emulates bf16
and a training step takes about twice as long as in fp32 (measured on a 2-core AMD EPYC with
AVX2 only, see ../shared/ENVIRONMENT.md), so ``auto`` picks fp32 there.

The instruction sets PyTorch may use can be capped below what the CPU has, by
``ATEN_CPU_CAPABILITY`` (PyTorch's own kernels) and ``ONEDNN_MAX_CPU_ISA`` (oneDNN's matmuls);
the features reported and used here are the CPU's minus what those caps forbid. Setting
``ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2`` therefore makes
an AVX-512 machine behave, and report itself, like an AVX2-only one (how the AVX2 figures in
``benchmarks/`` were emulated).
"""

from __future__ import annotations

import functools
import os
import platform
from pathlib import Path

BF16_FEATURES = ("amx_bf16", "avx512_bf16")
REPORTED_FEATURES = ("avx2", "avx512f", "avx512_bf16", "amx_bf16")
PRECISIONS = ("auto", "fp32", "bf16")


@functools.cache
def cpu_info() -> tuple[str, frozenset[str]]:
    """(model name, feature flags) from /proc/cpuinfo; elsewhere the platform's name, no flags."""
    model, flags = platform.processor() or platform.machine() or "unknown CPU", frozenset()
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return model, flags
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name" and value.strip():
            model = value.strip()
        elif key.strip() == "flags":
            flags = frozenset(value.split())
            break
    return model, flags


def _capped_away(flags: frozenset[str]) -> tuple[frozenset[str], list[str]]:
    """(the flags that ``ATEN_CPU_CAPABILITY``/``ONEDNN_MAX_CPU_ISA`` forbid, the caps set)."""
    avx512 = frozenset(f for f in flags if f.startswith(("avx512", "amx")))
    amx = frozenset(f for f in flags if f.startswith("amx"))
    removed: set[str] = set()
    caps = []
    aten = os.environ.get("ATEN_CPU_CAPABILITY", "").strip().lower()
    if aten in ("default", "avx2"):  # PyTorch's dispatch levels (aten/src/ATen/native/DispatchStub)
        removed |= avx512 | ({"avx2"} if aten == "default" else set())
        caps.append(f"ATEN_CPU_CAPABILITY={aten}")
    onednn = os.environ.get("ONEDNN_MAX_CPU_ISA", "").strip().upper()
    if onednn and onednn not in ("ALL", "DEFAULT"):  # oneDNN's ISA names (dnnl_cpu_isa_t)
        if not onednn.startswith("AVX512") and "AMX" not in onednn:
            removed |= avx512
        elif onednn in ("AVX512_CORE", "AVX512_CORE_VNNI"):
            removed |= {"avx512_bf16"} | amx
        elif onednn == "AVX512_CORE_BF16":
            removed |= amx
        caps.append(f"ONEDNN_MAX_CPU_ISA={onednn}")
    return frozenset(removed & flags), caps


def usable_cpu_flags() -> frozenset[str]:
    """The CPU's feature flags that PyTorch may use (the CPU's, minus any ISA cap)."""
    _, flags = cpu_info()
    removed, _ = _capped_away(flags)
    return flags - removed


def describe_cpu() -> str:
    """E.g. ``AMD EPYC [avx2 avx512f avx512_bf16]`` — the usable features that decide bf16 speed,
    with any ISA cap named (``AMD EPYC [avx2; capped by ATEN_CPU_CAPABILITY=avx2]``)."""
    model, flags = cpu_info()
    _, caps = _capped_away(flags)
    usable = usable_cpu_flags()
    shown = [f for f in REPORTED_FEATURES if f in usable]
    text = " ".join(shown) if shown else "no avx2/avx512/amx"
    return f"{model} [{text}{'; capped by ' + ' '.join(caps) if caps else ''}]"


def cpu_has_fast_bf16() -> bool:
    """Whether PyTorch can execute bf16 natively on this CPU (AMX or AVX-512 BF16, not capped)."""
    return any(f in usable_cpu_flags() for f in BF16_FEATURES)


def choose_precision(requested: str, cuda: bool) -> tuple[str, str]:
    """(``fp32`` or ``bf16``, why). ``auto``: bf16 on CUDA cards that support it and on CPUs
    with native bf16 instructions, fp32 otherwise; weights stay fp32 (bf16 is autocast)."""
    if requested not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, not {requested!r}")
    if requested != "auto":
        return requested, "requested"
    if cuda:
        import torch

        if torch.cuda.is_bf16_supported():
            return "bf16", "CUDA device supports bf16"
        return "fp32", "CUDA device without bf16"
    if cpu_has_fast_bf16():
        return "bf16", "CPU has native bf16 instructions"
    return "fp32", "CPU has no native bf16 (it would be emulated, ~2x slower)"
