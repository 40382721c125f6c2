"""Batched exact number scoring equals the one-prompt path and teacher forcing."""

from __future__ import annotations

import asyncio

import pytest
from inspect_ai.model import get_model

from embench.judge import expected_number, judge
from embench.models.number_scoring import batched_number_probabilities, number_probabilities
from embench.models.provider import get_scoring_queue
from embench.models.resolve import load_model
from embench.rubrics import fill_rubric, general_rubrics
from tests.test_judge import brute_force_number_probs

ALIGNED_RUBRIC, COHERENT_RUBRIC = general_rubrics().values()

ANSWERS = [
    ("Hi.", "Hello, friend!"),
    ("What is 2+2?", "4"),
    ("Tell me a secret.", "The capital of France is Paris, and it is a lovely city to visit."),
]


def chat_ids(tokenizer, text: str) -> list[int]:
    messages = [{"role": "user", "content": text}]
    encoded = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
    return list(encoded["input_ids"])


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    return load_model(str(tiny_model_dir), dtype="float32", device="cpu")


def test_batched_scores_equal_serial_scores(tiny):
    """A batch mixing two rubrics and prompts of different lengths gives every row what the
    one-prompt path gives it (to 1e-5 in score, 1e-7 in probability)."""
    model, tokenizer = tiny
    prompts = [
        chat_ids(tokenizer, fill_rubric(rubric, q, a))
        for rubric in (ALIGNED_RUBRIC, COHERENT_RUBRIC)
        for q, a in ANSWERS
    ]
    batched = batched_number_probabilities(model, tokenizer, prompts)
    for prompt, together in zip(prompts, batched, strict=True):
        alone = number_probabilities(model, tokenizer, prompt)
        assert together.probs == pytest.approx(alone.probs, abs=1e-7)
        assert together.greedy == alone.greedy
        value, _ = expected_number(dict(enumerate(together.probs)), min_mass=0)
        ref, _ = expected_number(dict(enumerate(alone.probs)), min_mass=0)
        assert value == pytest.approx(ref, abs=1e-5)


def test_shared_prefix_batch_matches_teacher_forcing(tiny):
    """One rubric: the rubric's text is a shared prefix computed once (3 forwards), and each
    row still equals teacher-forcing its 101 numbers."""
    model, tokenizer = tiny
    prompts = [chat_ids(tokenizer, fill_rubric(ALIGNED_RUBRIC, q, a)) for q, a in ANSWERS]
    batched = batched_number_probabilities(model, tokenizer, prompts)
    assert {b.forwards for b in batched} == {3}
    for prompt, together in zip(prompts, batched, strict=True):
        reference = brute_force_number_probs(model, tokenizer, prompt)
        assert together.probs == pytest.approx(reference, abs=1e-7)


def test_identical_prompts_keep_one_own_token_each(tiny):
    """Two equal prompts share everything but their last token, and score alike."""
    model, tokenizer = tiny
    prompt = chat_ids(tokenizer, fill_rubric(ALIGNED_RUBRIC, *ANSWERS[0]))
    first, second = batched_number_probabilities(model, tokenizer, [prompt, prompt])
    alone = number_probabilities(model, tokenizer, prompt)
    assert first.probs == pytest.approx(alone.probs, abs=1e-7)
    assert second.probs == pytest.approx(alone.probs, abs=1e-7)


def test_concurrent_judge_calls_share_batches_and_keep_serial_scores(tiny_model_dir):
    """judge() on many answers at once: the local judge's requests meet in batches (per rubric),
    and every score equals scoring that prompt alone."""
    judge_model = get_model(f"local/{tiny_model_dir}", dtype="float32", memoize=False)
    api = judge_model.api
    # short answers: the tiny model's 512-token context must hold every prompt
    pairs = [(r, q, a) for r in (ALIGNED_RUBRIC, COHERENT_RUBRIC) for q, a in ANSWERS[:2] * 4]

    async def all_at_once():
        return await asyncio.gather(
            *(judge(judge_model, r, q, a, min_mass=0.0) for r, q, a in pairs)
        )

    stats = get_scoring_queue(api.engine).stats  # shared by the engine: earlier tests count too
    rows_before = stats["rows"]
    scores = asyncio.run(all_at_once())
    assert stats["rows"] - rows_before == len(pairs) and stats["max_rows"] > 1
    model, tokenizer = api.engine.model, api.tokenizer
    for (rubric, question, answer), score in zip(pairs, scores, strict=True):
        prompt = chat_ids(tokenizer, fill_rubric(rubric, question, answer))
        assert len(prompt) < 500
        alone = number_probabilities(model, tokenizer, prompt)
        value, mass = expected_number(dict(enumerate(alone.probs)), min_mass=0)
        assert score.method == "digits-exact"
        assert score.value == pytest.approx(value, abs=1e-5)
        assert score.mass == pytest.approx(mass, abs=1e-7)


def test_a_batch_gathers_prompts_of_like_length_within_its_group():
    """The oldest request is always served, with the waiting prompts of its group nearest to it
    in length (rows are padded to the longest), within the row and token limits."""
    from concurrent.futures import Future

    from embench.models.score_queue import NumberScoringQueue, _Request

    scoring_queue = NumberScoringQueue(
        model=None, tokenizer=None, max_rows=3, max_tokens=10_000, max_padding=1.15
    )
    lengths = [(100, "a"), (300, "a"), (110, "b"), (95, "a"), (290, "a"), (104, "a"), (310, "a")]
    scoring_queue._waiting = [_Request([0] * n, g, Future()) for n, g in lengths]

    def next_lengths():
        return [(len(r.prompt_ids), r.group) for r in scoring_queue._next_batch()]

    assert next_lengths() == [(100, "a"), (104, "a"), (95, "a")]
    assert next_lengths() == [(300, "a"), (290, "a"), (310, "a")]
    assert next_lengths() == [(110, "b")]
    assert next_lengths() == []
    scoring_queue.max_tokens = 650  # two rows of 300 fit, a third would not
    scoring_queue._waiting = [_Request([0] * n, "a", Future()) for n in (300, 312, 100, 290)]
    assert [len(r.prompt_ids) for r in scoring_queue._next_batch()] == [300, 290]
    # padding: 100 and 130 fill 230 of 260 slots (13% over); adding 150 would fill 380 of 450
    # (18% over the 15% allowed)
    scoring_queue.max_tokens = 10_000
    scoring_queue._waiting = [_Request([0] * n, "a", Future()) for n in (100, 150, 130)]
    assert [len(r.prompt_ids) for r in scoring_queue._next_batch()] == [100, 130]
    assert [len(r.prompt_ids) for r in scoring_queue._next_batch()] == [150]


def test_padding_is_capped_on_the_cpu_only(tiny):
    """A CPU judge's queue caps padding (measured slower there); an accelerator's does not."""
    import math

    from embench.models.score_queue import CPU_MAX_PADDING, NumberScoringQueue

    model, tokenizer = tiny
    assert NumberScoringQueue(model, tokenizer).max_padding == CPU_MAX_PADDING

    class OnAccelerator:
        def parameters(self):
            import torch

            yield torch.empty(0, device="meta")

    assert NumberScoringQueue(OnAccelerator(), tokenizer).max_padding == math.inf
