"""fp32 vs bf16 autocast on this CPU, for the two halves of a GRPO step on the default model.

    python benchmarks/cpu_precision.py

Prints the CPU (model and bf16-relevant features), the precision `auto` picks here, and the
fp32/bf16 time ratio of (a) a forward+backward over a 16x64-token batch and (b) sampling 16
continuations of 16 tokens — measured alternately in one run (best of 3 each). A ratio > 1 means
bf16 is faster; `auto` should pick bf16 only where it is.
"""

from __future__ import annotations

import time

import torch
from transformers import AutoModelForCausalLM

from embench.hardware import choose_precision, describe_cpu
from embench.models.resolve import default_model_dir


def main() -> None:
    model = AutoModelForCausalLM.from_pretrained(default_model_dir(), dtype=torch.float32)
    batch = torch.randint(0, 1000, (16, 64), generator=torch.Generator().manual_seed(0))

    def train_step(bf16: bool) -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = model(input_ids=batch, labels=batch).loss
        loss.backward()
        model.zero_grad()

    def sample(bf16: bool) -> None:
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            model.generate(batch[:, :16], max_new_tokens=16, do_sample=True, pad_token_id=0)

    print(f"CPU: {describe_cpu()}; torch threads {torch.get_num_threads()}")
    precision, why = choose_precision("auto", cuda=False)
    print(f"auto precision here: {precision} ({why})")
    for name, work in (("forward+backward 16x64", train_step), ("sample 16x16 tokens", sample)):
        work(False)  # warm-up
        work(True)
        best = {False: float("inf"), True: float("inf")}
        for _ in range(3):
            for bf16 in (False, True):
                started = time.perf_counter()
                work(bf16)
                best[bf16] = min(best[bf16], time.perf_counter() - started)
        print(
            f"{name}: fp32 {best[False]:.2f} s, bf16 autocast {best[True]:.2f} s, "
            f"fp32/bf16 = {best[False] / best[True]:.2f}x"
        )


if __name__ == "__main__":
    main()
