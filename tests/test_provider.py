"""The continuous-batching engine and the `local` Inspect provider on a tiny random model."""

import asyncio

import pytest
import torch
from inspect_ai.model import ChatMessageSystem, ChatMessageUser, GenerateConfig, get_model

from embench.models.engine import GenerationEngine, GenerationRequest, kv_bytes_per_token
from embench.models.resolve import load_model

PROMPTS = [
    "hi",
    "The capital of France is",
    "If you could have one wish, what would it be?",
    "0 1 2 3",
    "Humans and AI can work together. Money, power, world, dinner.",
]


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    return load_model(str(tiny_model_dir), dtype="float32")


def encode(tokenizer, text):
    return tokenizer.apply_chat_template(
        [{"role": "user", "content": text}], add_generation_prompt=True, tokenize=True
    )["input_ids"]


def test_greedy_matches_transformers_generate_with_rows_joining_midway(tiny):
    model, tokenizer = tiny
    engine = GenerationEngine(model, tokenizer, max_batch_size=2)  # forces continuous refills
    prompts = [encode(tokenizer, p) for p in PROMPTS]
    results = engine.generate(
        [
            GenerationRequest(p, max_new_tokens=12 + 3 * i, temperature=0)
            for i, p in enumerate(prompts)
        ]
    )
    for i, (p, result) in enumerate(zip(prompts, results, strict=True)):
        expected = model.generate(
            torch.tensor([p]),
            max_new_tokens=12 + 3 * i,
            do_sample=False,
            pad_token_id=tokenizer.pad_token_id,
        )[0, len(p) :].tolist()
        expected = (
            expected[: expected.index(tokenizer.eos_token_id)]
            if tokenizer.eos_token_id in expected
            else expected
        )
        assert result.token_ids == expected
        assert len(result.token_ids) <= 12 + 3 * i
    assert engine.stats["prefills"] >= 3  # rows joined a running batch


def test_kv_budget_caps_rows_in_flight_and_keeps_answers_exact(tiny):
    """Rows wait for KV memory instead of joining: never more rows than the budget allows, and
    every greedy answer still equals transformers' own generate."""
    model, tokenizer = tiny
    prompts = [encode(tokenizer, p) for p in PROMPTS]
    longest = max(len(p) for p in prompts) + 10
    config = model.config
    per_token = (
        2
        * config.num_hidden_layers
        * config.num_key_value_heads
        * (config.hidden_size // config.num_attention_heads)
        * 4
    )  # keys and values of every layer, fp32
    assert kv_bytes_per_token(model) == per_token
    engine = GenerationEngine(
        model, tokenizer, max_batch_size=64, max_kv_bytes=2 * longest * per_token
    )
    results = engine.generate(
        [GenerationRequest(p, max_new_tokens=10, temperature=0) for p in prompts]
    )
    assert engine.stats["max_rows"] == 2 < len(prompts)
    for p, result in zip(prompts, results, strict=True):
        expected = model.generate(
            torch.tensor([p]), max_new_tokens=10, do_sample=False,
            pad_token_id=tokenizer.pad_token_id,
        )[0, len(p) :].tolist()  # fmt: skip
        if tokenizer.eos_token_id in expected:
            expected = expected[: expected.index(tokenizer.eos_token_id)]
        assert result.token_ids == expected


def test_logprobs_match_log_softmax(tiny):
    model, tokenizer = tiny
    engine = GenerationEngine(model, tokenizer)
    p = encode(tokenizer, "hi")
    (result,) = engine.generate(
        [GenerationRequest(p, max_new_tokens=1, temperature=0, top_logprobs=5)]
    )
    with torch.no_grad():
        logits = model(torch.tensor([p])).logits[0, -1]
    expected = torch.log_softmax(logits.float(), -1).topk(5)
    first = result.logprobs[0]
    assert [t for t, _ in first.top] == expected.indices.tolist()
    assert [v for _, v in first.top] == pytest.approx(expected.values.tolist(), abs=1e-4)
    assert first.token_id == expected.indices[0]


def test_top_p_and_top_k_restrict_sampling(tiny):
    model, tokenizer = tiny
    engine = GenerationEngine(model, tokenizer)
    p = encode(tokenizer, "hi")
    with torch.no_grad():
        best = int(model(torch.tensor([p])).logits[0, -1].argmax())
    results = engine.generate(
        [GenerationRequest(p, max_new_tokens=1, temperature=1.0, top_k=1, seed=i) for i in range(6)]
        + [
            GenerationRequest(p, max_new_tokens=1, temperature=1.0, top_p=1e-6, seed=i)
            for i in range(6)
        ]
    )
    for r in results:
        assert (r.token_ids or [tokenizer.eos_token_id])[0] in (best, tokenizer.eos_token_id)


def generate(model_name, messages, **config):
    model = get_model(model_name, memoize=False)
    return asyncio.run(model.generate(messages, config=GenerateConfig(**config)))


def test_provider_honours_config(tiny_model_dir):
    name = f"local/{tiny_model_dir}"
    out = generate(name, "hi", max_tokens=5, temperature=0.7, num_choices=3, seed=1)
    assert len(out.choices) == 3
    assert out.usage.output_tokens <= 15
    again = generate(name, "hi", max_tokens=5, temperature=0.7, num_choices=3, seed=1)
    # a seed reproduces the set of answers (fresh provider, same request sequence)
    assert [c.message.text for c in again.choices] == [c.message.text for c in out.choices]
    greedy = generate(name, "hi", max_tokens=4, temperature=0, logprobs=True, top_logprobs=3)
    assert len(greedy.choices[0].logprobs.content[0].top_logprobs) == 3
    assert greedy.choices[0].stop_reason in ("max_tokens", "stop")


def test_provider_sends_system_prompt(tiny_model_dir, monkeypatch):
    from embench.models import provider

    seen = []
    original = provider.LocalModelAPI._encode_chat
    monkeypatch.setattr(
        provider.LocalModelAPI,
        "_encode_chat",
        lambda self, messages: seen.append(messages) or original(self, messages),
    )
    generate(
        f"local/{tiny_model_dir}",
        [ChatMessageSystem(content="Reply in JSON."), ChatMessageUser(content="hi")],
        max_tokens=2,
    )
    assert seen[0][0] == {"role": "system", "content": "Reply in JSON."}


def test_provider_counts_tokens_with_its_tokenizer(tiny_model_dir):
    model = get_model(f"local/{tiny_model_dir}", memoize=False)
    _, tokenizer = load_model(str(tiny_model_dir))
    text = "The capital of France is Paris."
    assert asyncio.run(model.api.count_text_tokens(text)) == len(tokenizer.encode(text))


def test_provider_rejects_unknown_model_args(tiny_model_dir):
    # Inspect's PrerequisiteError: its CLI prints the line without a traceback
    with pytest.raises(Exception, match="unknown model args for local/: colour") as caught:
        get_model(f"local/{tiny_model_dir}", memoize=False, colour="red")
    assert type(caught.value).__name__ == "PrerequisiteError"
    with pytest.raises(Exception, match="-M batch_size='x': must be an integer >= 1"):
        get_model(f"local/{tiny_model_dir}", memoize=False, batch_size="x")
    with pytest.raises(Exception, match="-M reasoning_tags='<think>'"):
        get_model(f"local/{tiny_model_dir}", memoize=False, reasoning_tags="<think>")


def test_inverse_cdf_sampling_follows_the_distribution():
    from embench.models.engine import inverse_cdf

    probs = torch.tensor([[0.1, 0.0, 0.6, 0.3]]).repeat(20000, 1)
    picks = inverse_cdf(probs, torch.rand(20000, 1, generator=torch.Generator().manual_seed(0)))
    freq = torch.bincount(picks, minlength=4) / 20000
    assert freq[1] == 0  # a zero-probability token is never drawn
    assert freq.tolist() == pytest.approx([0.1, 0.0, 0.6, 0.3], abs=0.015)


def test_min_p_keeps_tokens_above_a_share_of_the_top_one():
    """min_p 0.3 on p = [0.5, 0.2, 0.16, 0.14]: the floor is 0.15, so the last token goes and the
    rest renormalise to [0.5, 0.2, 0.16] / 0.86 (hand-computed)."""
    from embench.models.engine import _sampling_probs

    logits = torch.tensor([[0.5, 0.2, 0.16, 0.14]]).log()
    probs = _sampling_probs(logits.clone(), [GenerationRequest([1], min_p=0.3)])
    assert probs[0].tolist() == pytest.approx([0.5 / 0.86, 0.2 / 0.86, 0.16 / 0.86, 0.0])
    # with top_p 0.6 after min_p (vLLM's order): cumulative [0.581, 0.814, 1] keeps two tokens
    both = _sampling_probs(logits.clone(), [GenerationRequest([1], min_p=0.3, top_p=0.6)])
    assert both[0].tolist() == pytest.approx([0.5 / 0.7, 0.2 / 0.7, 0.0, 0.0])
    off = _sampling_probs(logits.clone(), [GenerationRequest([1])])
    assert off[0].tolist() == pytest.approx([0.5, 0.2, 0.16, 0.14])


def test_provider_reads_min_p_from_extra_body(tiny_model_dir, monkeypatch):
    from embench.models import engine

    seen = []
    original = engine.GenerationEngine.submit
    monkeypatch.setattr(
        engine.GenerationEngine, "submit", lambda self, r: seen.append(r) or original(self, r)
    )
    generate(f"local/{tiny_model_dir}", "hi", max_tokens=2, top_p=0.9, extra_body={"min_p": 0.1})
    assert (seen[0].min_p, seen[0].top_p) == (0.1, 0.9)
    with pytest.raises(ValueError, match="extra_body min_p=2"):
        generate(f"local/{tiny_model_dir}", "hi", max_tokens=2, extra_body={"min_p": 2})


EXIT_MID_GENERATION = """
import sys, time
from embench.models.engine import GenerationEngine, GenerationRequest
from embench.models.resolve import load_model
engine = GenerationEngine(*load_model(sys.argv[1], dtype="float32"))
ids = engine.tokenizer.encode("hi there")
for _ in range(4):
    engine.submit(GenerationRequest(ids, max_new_tokens=100000, temperature=1.0))
time.sleep(1.5)
"""


def test_exit_with_generation_in_flight_is_clean(tiny_model_dir, tmp_path):
    """The worker thread is stopped at exit: no 'terminate called without an active exception'
    (rc 134), which a daemon thread inside a forward pass caused while Python finalised."""
    import os
    import subprocess
    import sys

    script = tmp_path / "exit_mid.py"
    script.write_text(EXIT_MID_GENERATION)
    done = subprocess.run(
        [sys.executable, str(script), str(tiny_model_dir)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert done.returncode == 0, done.stderr[-1000:]
    assert "terminate called" not in done.stderr


@pytest.mark.parametrize(
    ("text", "opened", "expected"),
    [
        ("<think>plan it</think>\nHello.", False, ("plan it", "Hello.", True)),
        ("plan it</think>Hello.", False, ("plan it", "Hello.", True)),  # template opened it
        ("<think>still planning", False, ("still planning", "", False)),  # cut by max_tokens
        ("still planning", True, ("still planning", "", False)),
        ("Just an answer.", False, (None, "Just an answer.", True)),
    ],
)
def test_split_reasoning(text, opened, expected):
    from embench.models.reasoning import split_reasoning

    assert split_reasoning(text, opened=opened) == expected


def test_reasoning_tags_are_configurable():
    from embench.models.reasoning import parse_tags, split_reasoning

    tags = parse_tags("[R],[/R]")
    assert split_reasoning("[R]why[/R] answer", tags) == ("why", "answer", True)
    assert split_reasoning("<think>x</think> y", parse_tags("none")) == (
        None,
        "<think>x</think> y",
        True,
    )
    with pytest.raises(ValueError, match="reasoning_tags='<think>'"):
        parse_tags("<think>")


def test_provider_returns_reasoning_as_content_reasoning(tiny_model_dir):
    from inspect_ai.model import ContentReasoning, ContentText

    from embench.models.engine import GenerationResult

    api = get_model(f"local/{tiny_model_dir}", memoize=False, reasoning_tags="<r>,</r>").api

    def result(text, finish):
        return GenerationResult([1], text, finish, 3, None, 0.1)

    closed = api._choice(result("<r>weigh options</r> Paris.", "stop"))
    reasoning, answer = closed.message.content
    assert isinstance(reasoning, ContentReasoning) and reasoning.reasoning == "weigh options"
    assert isinstance(answer, ContentText) and closed.message.text == "Paris."
    cut = api._choice(result("<r>weigh options and", "length"))
    assert cut.message.text == "" and cut.stop_reason == "max_tokens"
    assert api._choice(result("Paris.", "stop")).message.content == "Paris."
