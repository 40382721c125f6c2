"""What machine this is, and the training precision that is fast on it.

bf16 is only fast where the processor has bf16 instructions: Intel AMX (``amx_bf16``) or
AVX-512 BF16 (``avx512_bf16``, also on AMD Zen 4+). On an AVX2-only CPU PyTorch emulates bf16
and a training step takes about twice as long as in fp32 (measured on a 2-core AMD EPYC with
AVX2 only, see ../shared/ENVIRONMENT.md), so ``auto`` picks fp32 there.
"""

from __future__ import annotations

import functools
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


def describe_cpu() -> str:
    """E.g. ``AMD EPYC [avx2 avx512f avx512_bf16]`` — the features that decide bf16 speed."""
    model, flags = cpu_info()
    shown = [f for f in REPORTED_FEATURES if f in flags]
    return f"{model} [{' '.join(shown) if shown else 'no avx2/avx512/amx'}]"


def cpu_has_fast_bf16() -> bool:
    """Whether the CPU executes bf16 natively (AMX or AVX-512 BF16)."""
    _, flags = cpu_info()
    return any(f in flags for f in BF16_FEATURES)


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
