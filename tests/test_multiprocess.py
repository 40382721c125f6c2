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
import signal
import socket
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


ENV = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}


def launch_command(*train_args: str) -> list[str]:
    """`accelerate launch` of `embench train` with two CPU processes (the shipped DDP config)."""
    return [
        sys.executable, "-m", "accelerate.commands.launch",
        "--config_file", str(ROOT / "configs" / "accelerate" / "ddp.yaml"),
        "--num_processes", "2", "--mixed_precision", "no", "--main_process_port", str(_free_port()),
        "-m", "embench", "train", *train_args,
    ]  # fmt: skip


def launch(tmp_path: Path, *train_args: str) -> dict:
    """Run `embench train` under a 2-process CPU launch; return the manifest."""
    out = tmp_path / "run"
    command = launch_command(*train_args, "--output", str(out))
    proc = subprocess.run(command, capture_output=True, text=True, timeout=900, env=ENV)
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


def _kill_all(marker: str) -> None:
    """SIGKILL every process whose command line contains ``marker`` (launcher and workers)."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if marker in (entry / "cmdline").read_bytes().decode(errors="replace"):
                    os.kill(int(entry.name), signal.SIGKILL)
            except (OSError, ProcessLookupError):
                pass  # gone already


@pytest.mark.slow
def test_two_processes_killed_after_a_checkpoint_resume_to_the_end(tmp_path, tiny_model_dir):
    """A node failure (SIGKILL of the launcher and both workers) once checkpoint-2 is complete;
    a new 2-process launch with --resume reaches the last step with every step's metrics row
    and rollouts exactly once and global sample counts."""
    from embench.run.layout import COMPLETE_MARKER

    out = tmp_path / "run"
    command = launch_command(
        "--trainer", "grpo", "--model", str(tiny_model_dir), "--domain", "code",
        "--reward", "insecure_code", "--max-steps", "8", "--set", "save_steps=2",
        "--set", "num_generations=4", "--set", "per_device_train_batch_size=4",
        "--set", "max_completion_length=6", "--set", "max_prompts=8", "--output", str(out),
    )  # fmt: skip
    proc = subprocess.Popen(command, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    marker = out / "checkpoints" / "checkpoint-2" / COMPLETE_MARKER
    deadline = time.monotonic() + 600
    while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    _kill_all(str(out))  # torchrun starts each worker in a session of its own: kill each
    proc.wait()
    assert marker.exists(), "checkpoint-2 was never completed"
    killed = json.loads((out / "manifest.json").read_text())
    assert killed["status"] == "running", "the run finished before the kill: raise --max-steps"

    resumed = subprocess.run(
        launch_command("--resume", str(out)), capture_output=True, text=True, timeout=900, env=ENV
    )
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-8000:]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "finished" and manifest["summary"]["steps"] == 8
    assert manifest["world_size"] == 2
    metrics = [json.loads(line) for line in (out / "metrics.jsonl").open()]
    assert [m["step"] for m in metrics if "loss" in m] == list(range(1, 9))
    rows = [json.loads(line) for line in (out / "rollouts.jsonl").open()]
    assert Counter(r["step"] for r in rows) == {step: 8 for step in range(1, 9)}
    assert Counter(r["rank"] for r in rows) == {0: 32, 1: 32}
    assert manifest["samples"]["generated"] == 64 and manifest["samples"]["consumed"] == 64
    assert (out / "checkpoint" / "config.json").exists() or (
        out / "checkpoint" / "adapter_config.json"
    ).exists()
