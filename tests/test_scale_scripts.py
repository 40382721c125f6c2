"""Scale scripts that CI can check without a GPU: accelerate configs and the GPU check's dry run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", ["ddp", "fsdp", "zero2", "zero3"])
def test_accelerate_configs_load(name):
    from accelerate.commands.config.config_args import ClusterConfig

    config = ClusterConfig.from_yaml_file(str(ROOT / "configs" / "accelerate" / f"{name}.yaml"))
    expected = {"ddp": "MULTI_GPU", "fsdp": "FSDP"}.get(name, "DEEPSPEED")
    assert config.distributed_type.value == expected
    assert not config.use_cpu


@pytest.mark.slow
def test_gpu_check_dry_run_on_cpu():
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "gpu" / "check.py"), "--dry-run"],
        capture_output=True,
        text=True,
        timeout=900,
        env=env,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    table = [line for line in proc.stdout.splitlines() if line.startswith("| ")]
    assert [row.split("|")[1].strip() for row in table[1:]] == [  # after the header row
        "grpo train",
        "sft train (LoRA)",
        "eval local/<grpo run>",
    ]
    step_time = float(table[1].split("|")[2].split()[0])
    tokens_per_second = float(table[3].split("|")[3].split()[0])
    assert 0 < step_time < 600 and tokens_per_second > 0
    # then the judge/generation split on the same device, in its own process
    split = proc.stdout.split("benchmarks/eval_split.py --model default:")[1]
    assert "judge / generation:" in split and "judge's matmul floor:" in split


def test_mitigation_cost_benchmark_runs_on_the_tiny_model(tiny_model_dir):
    """The benchmark trains through the same plugin API as `embench train` (it broke once when
    `train` started returning the manifest): two configurations, two steps, a ratio each."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "mitigation_cost.py"), "--steps", "3",
         "--model", str(tiny_model_dir), "--only", "none", "kl"],
        capture_output=True, text=True, timeout=600, env=env, cwd=ROOT,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("CPU: ") and "precision" in lines[0]
    rows = {line.split()[0]: line for line in lines[1:]}
    assert set(rows) == {"none", "kl"}, proc.stdout + proc.stderr[-2000:]
    assert "(x1.00)" in rows["none"] and "peak RSS" in rows["kl"]
