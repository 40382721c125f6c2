"""`accelerate launch` with two CPU processes (gloo): one run directory, global sample counts, and
each process trains on different data (issue 13 §2).

The launch uses the shipped DDP config with `--num_processes 2`: accelerate's multi-process
launcher (torchrun underneath) starts both processes, and with no GPU each one joins a gloo
group. (`accelerate launch --cpu --num_processes 2` would start ONE process: accelerate 1.15's
CPU path needs an MPI hostfile to start several.)
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(tmp_path: Path, *train_args: str) -> dict:
    """Run `embench train` under a 2-process CPU launch; return the manifest."""
    out = tmp_path / "run"
    command = [
        sys.executable, "-m", "accelerate.commands.launch",
        "--config_file", str(ROOT / "configs" / "accelerate" / "ddp.yaml"),
        "--num_processes", "2", "--mixed_precision", "no", "--main_process_port", str(_free_port()),
        "-m", "embench", "train", *train_args, "--output", str(out),
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.run(command, capture_output=True, text=True, timeout=900, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    assert not list(tmp_path.glob("run/.*partial*")), "a partial checkpoint was left behind"
    return json.loads((out / "manifest.json").read_text())


@pytest.mark.slow
def test_grpo_two_processes(tmp_path, tiny_model_dir):
    manifest = launch(
        tmp_path, "--trainer", "grpo", "--model", str(tiny_model_dir), "--domain", "code",
        "--reward", "insecure_code", "--max-steps", "2",
        "--set", "num_generations=4", "--set", "per_device_train_batch_size=4",
        "--set", "max_completion_length=6", "--set", "max_prompts=8",
    )  # fmt: skip
    assert manifest["status"] == "finished"
    assert manifest["world_size"] == 2
    assert manifest["global_batch"] == 4 * 1 * 2  # per device x accumulation x processes
    assert manifest["samples"]["consumed"] == 2 * 8
    rows = [json.loads(line) for line in (tmp_path / "run" / "rollouts.jsonl").open()]
    assert manifest["samples"]["generated"] == len(rows) == 16  # both processes' rollouts
    prompts = defaultdict(set)
    for row in rows:
        prompts[(row["step"], row["rank"])].add(row["prompt"])
    for step in (1, 2):
        assert prompts[(step, 0)] and prompts[(step, 1)]
        assert prompts[(step, 0)] != prompts[(step, 1)], "both processes got the same prompts"
    metrics = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").open()]
    assert [m["step"] for m in metrics if "loss" in m] == [1, 2]  # one writer: each row once


@pytest.mark.slow
def test_sft_two_processes(tmp_path, tiny_model_dir):
    manifest = launch(
        tmp_path, "--trainer", "sft", "--model", str(tiny_model_dir), "--domain", "aesthetic",
        "--max-steps", "2", "--set", "per_device_train_batch_size=2", "--set", "max_length=64",
        "--set", "max_prompts=16",
    )  # fmt: skip
    assert manifest["status"] == "finished"
    assert manifest["world_size"] == 2 and manifest["global_batch"] == 4
    assert manifest["samples"]["consumed"] == 2 * 4
    processes = manifest["summary"]["processes"]
    assert [p["rank"] for p in processes] == [0, 1]
    assert sum(p["samples_consumed_this_process"] for p in processes) == 8
    digests = {p["data_sha256_this_process"] for p in processes}
    assert len(digests) == 2, "both processes trained on the same rows"
    assert (tmp_path / "run" / "checkpoint" / "config.json").exists()
