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
