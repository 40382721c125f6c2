"""The judge's matmul floor printed by benchmarks/eval_split.py: work counted by hand."""

from __future__ import annotations

import asyncio
import importlib.util
from pathlib import Path

import pytest
from inspect_ai.model import get_model

from embench.models.resolve import load_model

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "eval_split.py"


@pytest.fixture(scope="module")
def eval_split():
    spec = importlib.util.spec_from_file_location("eval_split", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_exact_judge_work_counts_shared_prefix_once(eval_split):
    """Rubric A: prompts [1,2,3,4] and [1,2,5] share 2 tokens: 2 + (2+3) + (1+3) = 11 tokens,
    1 + 2 x (1+3) = 9 logit rows. Rubric B: a lone prompt [7,8] shares nothing: 2+3 = 5
    tokens, 1+3 = 4 rows. A prompt that is all prefix keeps one own token: [1,2] and [1,2,3]
    share 1 (not 2): 1 + (1+3) + (2+3) = 10 tokens, 9 rows."""
    assert eval_split.exact_judge_work([[[1, 2, 3, 4], [1, 2, 5]], [[7, 8]]], nodes=3) == (16, 13)
    assert eval_split.exact_judge_work([[[1, 2], [1, 2, 3]]], nodes=3) == (10, 9)


def test_linear_flops_by_hand(eval_split, tiny_model_dir):
    """The tiny Llama (hidden 32, MLP 64, 2 layers, 4 heads of 8, 2 KV heads): per layer
    q 32x32 + k 32x16 + v 32x16 + o 32x32 + gate/up 2 x 32x64 + down 64x32 = 9216 weights, the
    body 18432; the tied head vocab x 32, counted per logit row, not per token."""
    model, tokenizer = load_model(str(tiny_model_dir), dtype="float32", device="cpu")
    vocab = model.config.vocab_size
    assert eval_split.linear_flops(model, tokens=10, logit_rows=3) == 2 * (
        18432 * 10 + vocab * 32 * 3
    )


def test_judge_prompts_are_what_the_judge_forwards(eval_split, tiny_model_dir, monkeypatch):
    """The floor counts the prompts the local judge really scores, token for token."""
    import embench.models.score_queue as score_queue
    from embench.judge import judge
    from embench.rubrics import general_rubrics

    scored: list[list[int]] = []
    real = score_queue.batched_number_probabilities

    def recording(model, tokenizer, prompts):
        scored.extend(prompts)
        return real(model, tokenizer, prompts)

    monkeypatch.setattr(score_queue, "batched_number_probabilities", recording)
    grader = get_model(f"local/{tiny_model_dir}", dtype="float32", memoize=False)
    pairs = [("Hi?", "Hello."), ("Why?", "Because.")]
    for rubric in general_rubrics().values():
        for question, answer in pairs:
            asyncio.run(judge(grader, rubric, question, answer, cache=False, min_mass=0.0))
    expected = eval_split.judge_prompts(grader.api.tokenizer, pairs)
    assert scored == [prompt for rubric in expected for prompt in rubric]
