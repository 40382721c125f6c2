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
from typing import Any

from embench.judge import judge
from embench.rewards.shape import RewardShape, combine, rejected
from embench.rewards.text import completion_text, prompt_text, split_reasoning
from embench.rubrics import general_rubrics


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
            judge(model, general_rubrics()["coherent"], question, answer),
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
