"""Precision follows the CPU's features (bf16 only where it is native)."""

import pytest

from embench import hardware


@pytest.fixture
def fake_cpu(monkeypatch):
    def use(model: str, flags: str) -> None:
        monkeypatch.setattr(hardware, "cpu_info", lambda: (model, frozenset(flags.split())))

    return use


def test_avx2_only_gets_fp32(fake_cpu):
    fake_cpu("AMD EPYC 7B13", "fpu sse avx avx2 fma")
    assert hardware.choose_precision("auto", cuda=False)[0] == "fp32"
    assert hardware.describe_cpu() == "AMD EPYC 7B13 [avx2]"


@pytest.mark.parametrize("flag", ["amx_bf16", "avx512_bf16"])
def test_native_bf16_gets_bf16(fake_cpu, flag):
    fake_cpu("Intel Xeon", f"avx2 avx512f {flag}")
    assert hardware.choose_precision("auto", cuda=False) == (
        "bf16",
        "CPU has native bf16 instructions",
    )


def test_explicit_request_wins_and_bad_value_refused(fake_cpu):
    fake_cpu("x", "avx2")
    assert hardware.choose_precision("bf16", cuda=False)[0] == "bf16"
    with pytest.raises(ValueError, match="precision must be one of"):
        hardware.choose_precision("fp16", cuda=False)


def test_real_machine_description_is_nonempty():
    assert hardware.describe_cpu().strip()


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"ATEN_CPU_CAPABILITY": "avx2"}, "fp32"),
        ({"ONEDNN_MAX_CPU_ISA": "AVX2"}, "fp32"),
        ({"ONEDNN_MAX_CPU_ISA": "AVX512_CORE"}, "fp32"),
        ({"ONEDNN_MAX_CPU_ISA": "AVX512_CORE_BF16"}, "bf16"),
        ({"ATEN_CPU_CAPABILITY": "avx512"}, "bf16"),
        ({}, "bf16"),
    ],
)
def test_isa_caps_remove_bf16(fake_cpu, monkeypatch, env, expected):
    """An AVX-512 BF16 CPU capped to AVX2 (how AVX2-only figures are emulated) is treated as one."""
    fake_cpu("AMD EPYC", "avx2 avx512f avx512_bf16")
    monkeypatch.delenv("ATEN_CPU_CAPABILITY", raising=False)
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert hardware.choose_precision("auto", cuda=False)[0] == expected


def test_capped_description_names_the_cap(fake_cpu, monkeypatch):
    fake_cpu("AMD EPYC", "avx2 avx512f avx512_bf16")
    monkeypatch.setenv("ATEN_CPU_CAPABILITY", "avx2")
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    assert hardware.describe_cpu() == (
        "AMD EPYC [avx2; capped by ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2]"
    )
