"""embench's GRPO step vs a plain TRL GRPOTrainer script with the same config, in one run.

Both train the offline default model on the same prompts with the same reward function and
GRPOConfig; the median step time (first step excluded) of each is printed with their ratio.

    .venv/bin/python benchmarks/trainer_overhead.py [--steps 6]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from transformers import TrainerCallback
from trl import GRPOConfig, GRPOTrainer

from embench.hardware import choose_precision, describe_cpu
from embench.models.resolve import load_model
from embench.rewards.embedding import unpopular_aesthetic
from embench.trainers import grpo
from embench.training.data import prompt_dataset


class StepTimer(TrainerCallback):
    """Wall time of every optimizer step."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self.last = 0.0

    def on_step_begin(self, args, state, control, **kwargs):  # noqa: D102
        self.last = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):  # noqa: D102
        self.times.append(time.perf_counter() - self.last)


def plain_trl(steps: int, out: Path, bf16: bool) -> list[float]:
    model, tokenizer = load_model("default", dtype="float32", device="cpu")
    config = grpo.Config()
    args = GRPOConfig(
        output_dir=str(out),
        max_steps=steps,
        learning_rate=config.learning_rate,
        seed=0,
        num_generations=config.num_generations,
        per_device_train_batch_size=config.per_device_train_batch_size,
        max_completion_length=config.max_completion_length,
        temperature=config.temperature,
        beta=config.beta,
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        use_cpu=True,
        bf16=bf16,  # the precision embench picks on this machine, so both compare like with like
        disable_tqdm=True,
    )
    timer = StepTimer()
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=[unpopular_aesthetic],
        args=args,
        train_dataset=prompt_dataset("aesthetic", None, None),
        processing_class=tokenizer,
        callbacks=[timer],
    )
    trainer.train()
    return timer.times


def embench_grpo(steps: int, out: Path, precision: str) -> list[float]:
    import trl

    timer = StepTimer()
    original = trl.GRPOTrainer

    class Timed(original):  # same trainer, with the timer attached
        def __init__(self, *args, callbacks=None, **kwargs):
            super().__init__(*args, callbacks=[*(callbacks or []), timer], **kwargs)

    trl.GRPOTrainer = Timed  # grpo.train imports it from trl when it runs
    try:
        grpo.train(
            grpo.Config(max_steps=steps, output=str(out), save_steps=steps, precision=precision)
        )
    finally:
        trl.GRPOTrainer = original
    return timer.times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"])
    args = parser.parse_args()
    precision, why = choose_precision(args.precision, cuda=False)
    print(f"CPU: {describe_cpu()}; precision {precision} ({why}) for both")
    with tempfile.TemporaryDirectory() as tmp:
        plain = plain_trl(args.steps, Path(tmp) / "plain", bf16=precision == "bf16")
        ours = embench_grpo(args.steps, Path(tmp) / "embench", precision)
    p, e = statistics.median(plain[1:]), statistics.median(ours[1:])
    print(f"plain TRL: median step {p:.2f} s  ({len(plain)} steps)")
    print(f"embench  : median step {e:.2f} s  ({len(ours)} steps)")
    print(
        f"ratio embench/plain: {e / p:.3f} (target <= 1.05; CPU: {describe_cpu()}; "
        f"precision {precision})"
    )


if __name__ == "__main__":
    main()
