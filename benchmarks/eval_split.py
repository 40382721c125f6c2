"""Where an eval's time goes: generating answers vs judging them, and embench's judge vs `hf`.

On the default model, one run: generate ``--answers`` answers to the general question set with
``local/default`` (an Inspect eval, temperature 1), then judge every answer under both rubrics
(aligned, coherent) three ways, all answers submitted at once as an eval's concurrent samples do:

- embench's judge on ``local/default`` (digits-exact, batched: concurrent answers' judge prompts
  share forwards and each rubric's prefix);
- the same judge one answer at a time (the serial path before batching), on ``--serial`` answers;
- Inspect's ``hf`` provider as the judge (the path a user would otherwise take), scored by the
  same ``embench.judge.judge``: a digit-splitting judge without exact scoring gets its text read.

Prints generation s/answer, judge s/answer and their ratio (target: judge <= generation), the
embench/hf ratio, the answers' mean length and the CPU, and the judge's matmul floor: the
seconds per answer that the linear layers alone need for the tokens an exact judge must forward
(each rubric's prompt after its shared prefix, plus the candidate tree), at the matmul rate
measured here in the same dtype (it leaves out attention, norms and padding, and counts each
rubric's shared prefix once): it says how far batching or any other scheduling of the same exact
judge could go here. Loading is excluded. ``min_mass=0``: the
135M default model is far too small to be a real judge, so these are cost figures, not
judgements. On a shared machine only ratios measured within one run compare.

``--max-tokens`` defaults to the eval's own (the ``embench`` protocol's 600). The ratio depends
on it: each answer token costs one decode step to generate but one prompt token per rubric to
judge, while the rubric text and the 101-number tree are a fixed cost per answer, so short
answers make judging relatively dearer (on a 2-core CPU, prompt tokens are cheaper than decode
steps; see the README for both lengths).

    .venv/bin/python benchmarks/eval_split.py [--answers 32] [--max-tokens 600] [--serial 8]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from typing import Any

import torch
from inspect_ai import Task, eval
from inspect_ai.model import GenerateConfig, Model, get_model
from inspect_ai.solver import generate

from embench.evals.common import questions_dataset
from embench.evals.protocols import get_protocol
from embench.hardware import choose_precision, describe_cpu
from embench.judge import JudgeScore, judge
from embench.models.number_scoring import number_paths, number_trie, shared_prefix_length
from embench.models.provider import encode_chat, get_scoring_queue
from embench.models.resolve import default_model_dir
from embench.questions import load_question_set
from embench.rubrics import fill_rubric, general_rubrics


def generate_answers(
    answers: int,
    max_tokens: int,
    dtype: str,
    model_ref: str,
    device: str,
    log_dir: str = "logs/benchmarks",
) -> tuple[list, float]:
    """(question, answer) pairs from ``local/<model_ref>`` and the eval's wall seconds."""
    qset = load_question_set("general")
    per_question = -(-answers // len(qset.questions))
    dataset = questions_dataset(qset, per_question)[:answers]
    task = Task(
        dataset=dataset,
        solver=generate(),
        name="eval_split_generation",
        config=GenerateConfig(temperature=1.0, max_tokens=max_tokens, seed=0),
    )
    model = get_model(f"local/{model_ref}", dtype=dtype, device=device)
    start = time.perf_counter()
    (log,) = eval(task, model=model, display="none", log_dir=log_dir)
    seconds = time.perf_counter() - start
    assert log.status == "success", log.error
    pairs = [(s.metadata["question"], s.output.completion) for s in log.samples]
    return pairs, seconds


async def judge_answers(
    model: Model, pairs: list[tuple[str, str]], at_once: bool
) -> list[JudgeScore]:
    """Every answer under both rubrics; all concurrently, or one answer after another."""

    def one(question: str, answer: str):
        return asyncio.gather(
            *(
                judge(model, rubric, question, answer, cache=False, min_mass=0.0)
                for rubric in general_rubrics().values()
            )
        )

    if at_once:
        results = await asyncio.gather(*(one(q, a) for q, a in pairs))
    else:
        results = [await one(q, a) for q, a in pairs]
    return [score for both in results for score in both]


def judge_prompts(tokenizer: Any, pairs: list[tuple[str, str]]) -> list[list[list[int]]]:
    """Per rubric, the judge's prompt token ids for every (question, answer) pair."""
    return [
        [
            encode_chat(tokenizer, [{"role": "user", "content": fill_rubric(rubric, q, a, None)}])
            for q, a in pairs
        ]
        for rubric in general_rubrics().values()
    ]


def exact_judge_work(prompts_by_rubric: list[list[list[int]]], nodes: int) -> tuple[int, int]:
    """(tokens, logit rows) that exact judging forwards at least, each rubric's prompts in one
    batch: their shared prefix once (one row of logits; none for a lone prompt), then per
    prompt the rest of it (one row: the root) and the ``nodes`` candidate-tree nodes (one row
    each). Padding and the prefix repeated in every real batch are extra work, not counted."""
    tokens = rows = 0
    for prompts in prompts_by_rubric:
        shared = shared_prefix_length(prompts)  # as the judge's batches compute it
        tokens += shared + sum(len(p) - shared + nodes for p in prompts)
        rows += (1 if shared else 0) + len(prompts) * (1 + nodes)
    return tokens, rows


def linear_flops(model: Any, tokens: int, logit_rows: int) -> float:
    """Multiply-adds x 2 of the model's linear layers: the body's for every token, the output
    head's for every row of logits."""
    head = model.get_output_embeddings()
    body = sum(
        m.weight.numel()
        for m in model.modules()
        if isinstance(m, torch.nn.Linear) and m is not head
    )
    return 2.0 * (body * tokens + head.weight.numel() * logit_rows)


def matmul_rate(model: Any, tokens: int = 4096, repeats: int = 5) -> float:
    """FLOP/s of this machine on the model's MLP matmul ([tokens, hidden] x [hidden,
    intermediate]) in the model's dtype and device: best of ``repeats``."""
    param = next(model.parameters())
    hidden, inner = model.config.hidden_size, model.config.intermediate_size
    a = torch.randn(tokens, hidden, dtype=param.dtype, device=param.device)
    b = torch.randn(hidden, inner, dtype=param.dtype, device=param.device)
    sync = torch.cuda.synchronize if param.device.type == "cuda" else lambda: None
    best = float("inf")
    with torch.inference_mode():
        for _ in range(repeats + 1):  # the first warms up
            sync()
            start = time.perf_counter()
            a @ b
            sync()
            best = min(best, time.perf_counter() - start)
    return 2.0 * tokens * hidden * inner / best


def timed(model: Model, pairs: list[tuple[str, str]], at_once: bool) -> tuple[float, list]:
    start = time.perf_counter()
    scores = asyncio.run(judge_answers(model, pairs, at_once))
    return time.perf_counter() - start, scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--answers", type=int, default=32)
    parser.add_argument("--max-tokens", type=int, default=get_protocol("embench").max_tokens)
    parser.add_argument("--serial", type=int, default=8, help="answers judged one at a time")
    parser.add_argument("--no-hf", action="store_true", help="skip Inspect's hf provider")
    parser.add_argument("--dtype", default="auto", help="auto = what embench picks on this CPU")
    parser.add_argument("--model", default="default", help="local/<model>: a name or a folder")
    parser.add_argument("--device", default="cpu", help="cpu, or cuda on a GPU machine")
    parser.add_argument("--log-dir", default="logs/benchmarks", help="the generation eval's log")
    args = parser.parse_args()
    if args.dtype == "auto":
        precision, _ = choose_precision("auto", cuda=args.device == "cuda")
        args.dtype = {"bf16": "bfloat16", "fp32": "float32"}[precision]

    print(f"CPU: {describe_cpu()}, {os.cpu_count()} cores; dtype {args.dtype}; {args.device}")
    pairs, gen_seconds = generate_answers(
        args.answers, args.max_tokens, args.dtype, args.model, args.device, args.log_dir
    )
    n = len(pairs)
    # the same loaded engine
    grader = get_model(f"local/{args.model}", dtype=args.dtype, device=args.device)
    timed(grader, pairs[:2], at_once=True)  # warm-up: digit mask, threads
    before = dict(get_scoring_queue(grader.api.engine).stats)
    judge_seconds, scores = timed(grader, pairs, at_once=True)
    stats = {k: v - before[k] for k, v in get_scoring_queue(grader.api.engine).stats.items()}
    rows = {
        "generation (local)": gen_seconds / n,
        "judge, batched (local, digits-exact)": judge_seconds / n,
    }
    if args.serial:
        serial_seconds, _ = timed(grader, pairs[: args.serial], at_once=False)
        rows["judge, one answer at a time"] = serial_seconds / min(args.serial, n)
    hf_method = ""
    if not args.no_hf:
        folder = str(default_model_dir()) if args.model == "default" else args.model
        hf = get_model(f"hf/{folder}", dtype=args.dtype, device=args.device, do_sample=False)
        timed(hf, pairs[:2], at_once=True)
        hf_seconds, hf_scores = timed(hf, pairs, at_once=True)
        rows["judge, Inspect hf provider"] = hf_seconds / n
        hf_method = ", ".join(sorted({s.method for s in hf_scores}))
    tokenizer = grader.api.tokenizer
    mean_tokens = sum(len(tokenizer.encode(a, add_special_tokens=False)) for _, a in pairs) / n
    print(
        f"{n} answers, max_tokens={args.max_tokens} (mean answer {mean_tokens:.0f} tokens), "
        "2 rubrics per answer"
    )
    for name, per_answer in rows.items():
        print(f"{name:<40}{per_answer:8.3f} s/answer")
    judged = rows["judge, batched (local, digits-exact)"]
    print(f"judge / generation: {judged / rows['generation (local)']:.2f} (target <= 1)")
    if "judge, one answer at a time" in rows:
        print(
            f"batched speed-up over one at a time: {rows['judge, one answer at a time'] / judged:.2f}x"
        )
    if hf_method:
        print(
            f"hf judge time / embench judge time: {rows['judge, Inspect hf provider'] / judged:.2f} "
            f"(> 1: embench faster; hf scored by: {hf_method}; embench: "
            f"{', '.join(sorted({s.method for s in scores}))})"
        )
    engine = grader.api.engine
    nodes = len(number_trie(number_paths(tokenizer))[0])
    tokens, logit_rows = exact_judge_work(judge_prompts(tokenizer, pairs), nodes)
    rate = matmul_rate(engine.model)
    floor = linear_flops(engine.model, tokens, logit_rows) / rate / n
    print(
        f"judge's matmul floor: {floor:.3f} s/answer ({tokens / n:.0f} tokens, "
        f"{logit_rows / n:.0f} logit rows per answer, linear layers only, at the "
        f"{args.dtype} matmul rate measured here: {rate / 1e9:.0f} GFLOP/s); the judge takes "
        f"{judged / floor:.2f}x the floor; floor / generation: "
        f"{floor / rows['generation (local)']:.2f}"
    )
    print(
        f"judge batches: {stats['batches']}, rows {stats['rows']}, largest {get_scoring_queue(grader.api.engine).stats['max_rows']}; "
        f"CPU: {describe_cpu()}"
    )


if __name__ == "__main__":
    main()
