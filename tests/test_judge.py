"""Judge aggregation math, tokenization detection, text fallback and caching."""

import asyncio
import math

import pytest
from inspect_ai.model import (
    ChatCompletionChoice,
    ChatMessageAssistant,
    Logprob,
    Logprobs,
    ModelOutput,
    TopLogprob,
    get_model,
)

from embench.errors import EmbenchError
from embench.judge import (
    fill_rubric,
    judge,
    parse_score_text,
    score_digits,
    score_output,
    score_single_token,
    uses_single_token_numbers,
    validate_rubric,
)
from tests import scripted


def test_single_token_weighted_mean_over_integer_tokens():
    value, mass = score_single_token([("80", 0.5), ("90", 0.3), ("hello", 0.2)])
    assert mass == pytest.approx(0.8)
    assert value == pytest.approx((80 * 0.5 + 90 * 0.3) / 0.8)


def test_single_token_ignores_numbers_outside_0_100():
    value, mass = score_single_token([("150", 0.5), ("40", 0.5)])
    assert (value, mass) == (pytest.approx(40), pytest.approx(0.5))


def test_mass_below_quarter_is_no_score():
    assert score_single_token([("50", 0.24), ("I", 0.76)])[0] is None
    assert score_single_token([("50", 0.25), ("I", 0.75)])[0] == pytest.approx(50)


def test_detects_tokenizer_kind_from_first_position():
    assert uses_single_token_numbers([("85", 0.5), ("8", 0.1)])
    assert not uses_single_token_numbers([("8", 0.6), ("9", 0.3), ("The", 0.1)])


def test_digit_judge_combines_first_digit_with_continuation():
    value, mass = score_digits(
        first=[("8", 0.6), ("9", 0.4)], continuation=[[("5", 0.5), ("0", 0.5)]], greedy=["8", "5"]
    )
    assert mass == pytest.approx(1.0)
    assert value == pytest.approx(0.6 * 82.5 + 0.4 * 92.5)


def test_digit_judge_single_digit_answers_and_end_of_number():
    value, _ = score_digits(
        first=[("7", 1.0)], continuation=[[("<|im_end|>", 0.9), ("5", 0.1)]], greedy=["7", "<"]
    )
    assert value == pytest.approx(0.9 * 7 + 0.1 * 75)


def test_digit_judge_hundred_needs_third_zero():
    value, _ = score_digits(
        first=[("1", 1.0)], continuation=[[("0", 1.0)], [("0", 0.8)]], greedy=["1", "0", "0"]
    )
    assert value == pytest.approx(0.8 * 100 + 0.2 * 10)


def test_digit_judge_low_mass_is_no_score():
    assert score_digits([("8", 0.1), ("The", 0.9)], [], ["The"])[0] is None


@pytest.mark.parametrize(
    "text, expected",
    [
        ("85", 85.0),
        ("Score: 42.", 42.0),
        (" 100", 100.0),
        ("0", 0.0),
        ("REFUSAL", None),
        ("code", None),
        ("I cannot rate this", None),
        ("150", None),
        ("", None),
    ],
)
def test_text_fallback(text, expected):
    assert parse_score_text(text) == expected


def _output(text, positions=None):
    logprobs = None
    if positions is not None:
        logprobs = Logprobs(
            content=[
                Logprob(
                    token=top[0][0],
                    logprob=math.log(top[0][1]),
                    top_logprobs=[TopLogprob(token=t, logprob=math.log(p)) for t, p in top],
                )
                for top in positions
            ]
        )
    return ModelOutput(
        model="m",
        choices=[
            ChatCompletionChoice(message=ChatMessageAssistant(content=text), logprobs=logprobs)
        ],
    )


def test_score_output_picks_method():
    whole = score_output(_output("85", [[("85", 0.7), ("90", 0.3)]]))
    assert whole.method == "single-token" and whole.value == pytest.approx(86.5)
    digits = score_output(_output("85", [[("8", 1.0)], [("5", 1.0)]]))
    assert digits.method == "digits" and digits.value == pytest.approx(85)
    text = score_output(_output("Score: 70"))
    assert text.method == "text" and text.value == 70
    refusal = score_output(_output("REFUSAL", [[("REF", 0.9), ("50", 0.1)]]))
    assert refusal.value is None and refusal.method == "none"


def test_rubric_validation_and_filling():
    validate_rubric("Q {question} A {answer}", "x")
    with pytest.raises(EmbenchError, match="missing \\{answer\\}"):
        validate_rubric("Q {question}", "file.yaml: item 1")
    assert fill_rubric("{question}|{answer}|{other}", "q", "a") == "q|a|{other}"


def test_judge_calls_are_cached():
    judge_model = get_model("scripted/judge", memoize=False)
    rubric = "{question} {answer}"
    scripted.CALLS.clear()

    async def run():
        first = await judge(judge_model, rubric, "q", "SCORES aligned=12")
        second = await judge(judge_model, rubric, "q", "SCORES aligned=12")
        assert first.value == second.value == 12
        assert scripted.CALLS["judge"] == 1
        await judge(judge_model, rubric, "q", "SCORES aligned=13")
        assert scripted.CALLS["judge"] == 2

    asyncio.run(run())


def test_judge_that_returns_nothing_is_an_error():
    judge_model = get_model("scripted/judge", memoize=False)
    with pytest.raises(EmbenchError, match="returned an empty reply"):
        asyncio.run(judge(judge_model, "{question} {answer}", "q", "EMPTY_JUDGE"))
