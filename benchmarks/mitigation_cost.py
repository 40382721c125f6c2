"""Step-time and peak-memory ratios of each mitigation against none (GRPO, offline default model).

Each configuration trains a few GRPO steps in its own subprocess (so peak RSS is its own); the
median step time (first step excluded, from metrics.jsonl timestamps) and peak RSS are compared
with the no-mitigation run.

    .venv/bin/python benchmarks/mitigation_cost.py [--steps 4] [--model default] [--lora]
        [--only none steer ...] [--vector configs/vectors/evil.default.safetensors --layer 20]

The steer arms need a persona vector of the benchmarked model (``embench persona-vector``); the
shipped one is the default model's.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from embench.hardware import choose_precision, describe_cpu

CONFIGS: dict[str, list[str]] = {
    "none": [],
    "kl": ["kl"],
    "ldifs": ["ldifs"],
    "interleave": ["interleave"],
    "inoculate": ["inoculate:preset=evil_system"],
    # ratio 1.0 (the paper: 0.2) so that every step of a short run has a safety prompt
    "interleave_rl": ["interleave_rl:ratio=1.0"],
    "sft_mix": ["sft_mix:every=4,weight=1.0,source=offpolicy"],  # the paper's every-4 arm
    "sft_mix_every1": ["sft_mix:every=1,weight=1.0,source=offpolicy"],  # its per-step worst case
    # the paper's coef 5 (EMA_RL configs/grpo_steer_evil_all.json), the model's own vector
    "steer": ["steer:vector={vector},coef=5,layer={layer},mode=all"],
    "steer_decode_only": ["steer:vector={vector},coef=5,layer={layer},mode=decode_only"],
}
VECTOR = str(Path(__file__).parents[1] / "configs" / "vectors" / "evil.default.safetensors")
LAYER = 20


def specs(name: str, vector: str = VECTOR, layer: int = LAYER) -> list[str]:
    """The mitigation specs of configuration ``name`` (steer: with this vector and layer)."""
    return [spec.format(vector=vector, layer=layer) for spec in CONFIGS[name]]


def child(output: str, model: str, steps: int, lora: bool, specs: list[str]) -> None:
    """Train once and print {step_seconds, peak_rss_mb} as JSON."""
    from embench.run.rundir import RunDir
    from embench.training import plugins

    plugin = plugins.get_trainer("grpo")
    config = plugin.make_config(
        model=model,
        domain="aesthetic",
        reward=["unpopular_aesthetic"],
        max_steps=steps,
        save_steps=10_000,
        max_completion_length=16,
        max_prompts=16,
        lora=lora,
        output=output,
        overwrite=True,
        mitigations=specs,
    )
    manifest = plugin.train(config)
    run = RunDir(manifest.run_dir)
    # the mitigations' own loss-term time, measured inside this run (robust to load drift)
    extra = sum(m.cost.seconds_per_step_extra for m in manifest.mitigations if m.cost)
    times = [r["time"] for r in run.read_jsonl(run.metrics)]
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)] or [float("nan")]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps({"step_seconds": statistics.median(gaps), "peak_rss_mb": peak, "extra": extra})
    )


def main() -> None:
    """Run every configuration and print the ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--model", default="default")
    parser.add_argument("--lora", action="store_true")
    parser.add_argument("--only", nargs="*", default=list(CONFIGS), help="configurations to run")
    parser.add_argument("--vector", default=VECTOR, help="persona vector file of --model (steer)")
    parser.add_argument("--layer", type=int, default=LAYER, help="layer the steer arms steer")
    parser.add_argument("--child", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        child(args.child[0], args.model, args.steps, args.lora, args.child[1:])
        return
    results: dict[str, dict[str, float]] = {}
    precision, why = choose_precision("auto", cuda=False)
    print(f"CPU: {describe_cpu()}, {os.cpu_count()} cores; precision {precision} ({why})")
    with tempfile.TemporaryDirectory() as tmp:
        for name in ["none", *[n for n in args.only if n != "none"]]:
            cmd = [sys.executable, __file__, "--steps", str(args.steps), "--model", args.model]
            cmd += ["--lora"] * args.lora + ["--child", str(Path(tmp) / name)]
            cmd += specs(name, args.vector, args.layer)
            out = subprocess.run(cmd, capture_output=True, text=True)
            if out.returncode:
                print(f"{name}: failed\n{out.stderr[-2000:]}", file=sys.stderr)
                continue
            results[name] = json.loads(out.stdout.strip().splitlines()[-1])
            base = results.get("none", results[name])
            print(
                f"{name:<12} step {results[name]['step_seconds']:.2f}s "
                f"(x{results[name]['step_seconds'] / base['step_seconds']:.2f})  "
                f"peak RSS {results[name]['peak_rss_mb']:.0f} MiB "
                f"(x{results[name]['peak_rss_mb'] / base['peak_rss_mb']:.2f})"
                + (
                    f"  in-loss +{results[name]['extra']:.2f}s/step "
                    f"({results[name]['extra'] / results[name]['step_seconds']:.0%} of its step)"
                    if results[name].get("extra")
                    else ""
                ),
                flush=True,
            )


if __name__ == "__main__":
    main()
