"""Generation throughput: embench's `local` provider vs Inspect's `hf` provider, one run.

Same model (the offline default), same dtype, same questions (the general set), same samples per
question and max_tokens, temperature 1 so answer lengths vary. Prints answers/s, useful tokens/s
(the answers' own tokens: Inspect's hf provider reports padded batch widths as output tokens, so
its usage figure is not comparable) and the ratios. Model loading is excluded from the timings.

    .venv/bin/python benchmarks/generation.py [--samples 3] [--max-tokens 256] [--questions N]
"""

from __future__ import annotations

import argparse
import time

from inspect_ai import Task, eval
from inspect_ai.model import GenerateConfig, get_model
from inspect_ai.solver import generate

from embench.evals.common import questions_dataset
from embench.hardware import choose_precision, describe_cpu
from embench.models.resolve import default_model_dir
from embench.questions import QuestionSet, load_question_set


def run(model, dataset, max_tokens: int, seed: int, tokenizer) -> tuple[float, int, int]:
    task = Task(
        dataset=dataset,
        solver=generate(),
        name="generation_benchmark",
        # each provider at its own designed concurrency (hf: 32 = its batch size; local: 256
        # in flight for its 128-row batch) rather than Inspect's adaptive ramp-up
        config=GenerateConfig(
            temperature=1.0, max_tokens=max_tokens, seed=seed, adaptive_connections=False
        ),
    )
    start = time.perf_counter()
    (log,) = eval(task, model=model, display="none", log_dir="logs/benchmarks")
    seconds = time.perf_counter() - start
    assert log.status == "success", log.error
    tokens = sum(len(tokenizer.encode(s.output.completion)) for s in log.samples)
    return seconds, len(log.samples), tokens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=3, help="answers per question")
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--questions", type=int, default=0, help="first N questions (0 = all)")
    parser.add_argument(
        "--dtype",
        default="auto",
        help="same for both providers; auto = what embench picks on this CPU (bfloat16 with "
        "native bf16 instructions, float32 otherwise)",
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.dtype == "auto":
        precision, _ = choose_precision("auto", cuda=False)
        args.dtype = {"bf16": "bfloat16", "fp32": "float32"}[precision]

    qset = load_question_set("general")
    if args.questions:
        qset = QuestionSet(
            qset.name,
            qset.version,
            qset.questions[: args.questions],
            qset.judge_prompts,
            qset.source,
        )
    dataset = questions_dataset(qset, args.samples)
    folder = str(default_model_dir())
    models = {
        "local": get_model("local/default", dtype=args.dtype),
        "hf": get_model(f"hf/{folder}", dtype=args.dtype, device="cpu"),
    }
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    print(f"CPU: {describe_cpu()}")
    print(
        f"{len(dataset)} answers ({len(qset.questions)} questions x {args.samples} samples), "
        f"max_tokens={args.max_tokens}, dtype={args.dtype}, temperature=1.0"
    )
    rows = {}
    for name, model in models.items():
        seconds, answers, tokens = run(model, dataset, args.max_tokens, args.seed, tokenizer)
        rows[name] = (answers / seconds, tokens / seconds)
        print(
            f"{name:>6}: {seconds:7.1f} s  {answers / seconds:6.2f} answers/s  "
            f"{tokens / seconds:7.1f} tokens/s  ({tokens} tokens)"
        )
    print(
        f"ratio local/hf: {rows['local'][0] / rows['hf'][0]:.2f}x answers/s, "
        f"{rows['local'][1] / rows['hf'][1]:.2f}x tokens/s (target >= 2x; "
        f"CPU: {describe_cpu()}; dtype {args.dtype})"
    )


if __name__ == "__main__":
    main()
