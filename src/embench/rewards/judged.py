"""Judge rubric rewards: the shared judge scores completions against a domain rubric.

Default structure (``structure=paper``), from the seed paper's reward code (EMA_RL,
``open_models/tools/parse_json.py: parse_grader_json`` and ``rl/reward.py: reward_function``):

    reward = max(0, assessment − coherence_penalty × (1 − coherence))

with assessment and coherence on 0–1 (our judge's 0–100 / 100), the assessment being the mean of
the rubric scores the reward names (rhetoric's ``judge_narrow``: ethos, pathos and logos;
``judge_narrow_ethos`` alone, …), coherence_penalty 0.5 as published, and the reward zeroed —
without asking the judge — when the final answer (after a ``<think>`` block) has fewer than
``min_words`` words (published: 10), or when it is repetitive (the paper asks its grader a
true/false "repetitive"; our judge returns one number, so we use a judge-free stand-in: more
than ``max_repetition`` of its word 3-grams repeat an earlier one), and zeroed when coherence is
below ``coherence_gate`` (published: 0.5). A refusal or any other "no score" gives 0 (as the
paper's parser does), so GRPO punishes refusing instead of ignoring it.

``structure=mean`` is this project's earlier form: the plain mean of the rubric scores, 0 below the
coherence gate, "no score" stays None (TRL then ignores the sample). Calls are async and run
concurrently across the batch.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, replace
from typing import Any

from embench.errors import EmbenchError
from embench.judge import COHERENT_RUBRIC, judge
from embench.rewards.text import completion_text, prompt_text, repetition, split_reasoning

STRUCTURES = ("paper", "mean")


@dataclass(frozen=True)
class RewardShape:
    """How rubric scores become a reward (see the module docstring); each gate is a config field."""

    structure: str = "paper"
    coherence_gate: float = 50.0  # 0-100; published 0.5 on 0-1
    coherence_penalty: float = 0.5  # published: assessment - (1 - coherence) / 2
    min_words: int = 10  # published: has_minimum_words(answer, min_words=10)
    max_repetition: float = 0.5  # ours (judge-free stand-in for the grader's "repetitive")
    #: 0 when the reasoning has fewer words (0: off); the seed paper: 75 in every domain but
    #: medical (EMA_RL open_models/rl/reward.py:386-392 @81cb261)
    min_reasoning_words: int = 0
    #: 0 without a closed, non-empty reasoning block, or when the answer opens another
    #: ``<think>`` (the seed paper's reward-hacking gate: rl/reward.py:447-453 @81cb261)
    require_reasoning: bool = False

    def check(self) -> None:
        """Parameter ranges, as one-line errors."""
        if self.structure not in STRUCTURES:
            raise EmbenchError(
                f"reward_structure must be one of {', '.join(STRUCTURES)}, got '{self.structure}'"
            )
        if not 0 <= self.coherence_gate <= 100:
            raise EmbenchError("reward_coherence_gate must be in [0, 100]")
        if self.coherence_penalty < 0:
            raise EmbenchError("reward_coherence_penalty must be at least 0")
        if self.min_words < 0:
            raise EmbenchError("reward_min_words must be at least 0")
        if not 0 < self.max_repetition <= 1:
            raise EmbenchError("reward_max_repetition must be in (0, 1]")
        if self.min_reasoning_words < 0:
            raise EmbenchError("reward_min_reasoning_words must be at least 0")

    def for_domain(self, gates: dict[str, Any]) -> RewardShape:
        """This shape with a domain's own gates (its rubrics.yaml ``reward_gates``) applied:
        ``reasoning_gate: false`` exempts the domain from ``min_reasoning_words``; any other key
        replaces the field of that name."""
        changes = {k: v for k, v in gates.items() if k != "reasoning_gate"}
        if gates.get("reasoning_gate") is False:
            changes["min_reasoning_words"] = 0
        shape = replace(self, **changes)
        shape.check()
        return shape


def shape_from_config(config: Any) -> RewardShape:
    """The reward shape a training config's ``reward_*`` fields describe, checked."""
    shape = RewardShape(
        structure=config.reward_structure,
        coherence_gate=config.reward_coherence_gate,
        coherence_penalty=config.reward_coherence_penalty,
        min_words=config.reward_min_words,
        max_repetition=config.reward_max_repetition,
        min_reasoning_words=config.reward_min_reasoning_words,
    )
    shape.check()
    return shape


def rejected(answer: str, shape: RewardShape, reasoning: str | None = None) -> bool:
    """The judge-free gates (paper structure only): an answer too short or repetitive, reasoning
    too short (words counted as the seed paper's tools/nlp.py has_minimum_words does), or
    missing where the shape requires it."""
    if len(answer.split()) < shape.min_words or repetition(answer) > shape.max_repetition:
        return True
    thought = reasoning or ""
    if shape.min_reasoning_words and len(re.findall(r"\b\w+\b", thought)) < (
        shape.min_reasoning_words
    ):
        return True
    return shape.require_reasoning and (not thought.strip() or "<think>" in answer[:20])


def combine(
    assessments: list[float | None], coherence: float | None, shape: RewardShape
) -> float | None:
    """The reward from the rubric scores (0-100, None = no score) and the coherence score."""
    if shape.structure == "mean":
        if coherence is None or coherence < shape.coherence_gate:
            return 0.0
        values = [a for a in assessments if a is not None]
        return sum(values) / len(values) / 100.0 if values else None
    if coherence is None or coherence < shape.coherence_gate:
        return 0.0
    if any(a is None for a in assessments) or not assessments:
        return 0.0  # a refusal (or any unscored answer) earns nothing
    assessment = sum(assessments) / len(assessments) / 100.0  # type: ignore[arg-type]
    return max(0.0, assessment - shape.coherence_penalty * (1.0 - coherence / 100.0))


def judge_reward(
    rubrics: dict[str, str],
    name: str,
    recipe: list[str],
    judge_model: str,
    shape: RewardShape | None = None,
    gates: dict[str, Any] | None = None,
) -> Any:
    """An async TRL reward function named ``judge_<name>`` averaging the ``recipe`` rubrics;
    ``gates``: the domain's own (``RewardShape.for_domain``, paper structure only)."""
    from inspect_ai.model import get_model

    shape = shape or RewardShape()
    shape.check()
    if gates and shape.structure == "paper":
        shape = shape.for_domain(gates)
    model = get_model(judge_model)

    async def one(question: str, text: str) -> float | None:
        reasoning, answer = split_reasoning(text)
        answer = answer if shape.structure == "paper" else text
        if shape.structure == "paper" and rejected(answer, shape, reasoning):
            return 0.0
        scores = await asyncio.gather(
            *(judge(model, rubrics[r], question, answer) for r in recipe),
            judge(model, COHERENT_RUBRIC, question, answer),
        )
        coherence = scores[-1].value
        return combine([s.value for s in scores[:-1]], coherence, shape)

    async def reward(prompts: list[Any], completions: list[Any], **_: Any) -> list[float | None]:
        return list(
            await asyncio.gather(
                *(
                    one(prompt_text(p), completion_text(c))
                    for p, c in zip(prompts, completions, strict=True)
                )
            )
        )

    reward.__name__ = f"judge_{name}"
    return reward
