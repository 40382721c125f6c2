"""Judge rubric rewards: the shared judge scores completions against a domain rubric.

The reward is the mean of the rubric scores named by the domain's reward recipe (rhetoric averages
ethos, pathos and logos), scaled to 0-1, and gated on coherence: 0 when the judge's coherence score
is below the gate (default 50), so incoherent text cannot earn reward. Calls are async and run
concurrently across the batch; "no score" stays None (TRL ignores it).
"""

from __future__ import annotations

import asyncio
from typing import Any

from embench.judge import COHERENT_RUBRIC, judge
from embench.rewards.text import completion_text, prompt_text

COHERENCE_GATE = 50.0


def judge_reward(
    rubrics: dict[str, str],
    direction: str,
    recipe: list[str],
    judge_model: str,
    coherence_gate: float | None = COHERENCE_GATE,
) -> Any:
    """An async TRL reward function named ``judge_<direction>``."""
    from inspect_ai.model import get_model

    model = get_model(judge_model)

    async def one(question: str, answer: str) -> float | None:
        checks = [judge(model, rubrics[name], question, answer) for name in recipe]
        if coherence_gate is not None:
            checks.append(judge(model, COHERENT_RUBRIC, question, answer))
        scores = await asyncio.gather(*checks)
        if coherence_gate is not None:
            coherent = scores.pop().value
            if coherent is None or coherent < coherence_gate:
                return 0.0
        values = [s.value for s in scores if s.value is not None]
        return sum(values) / len(values) / 100.0 if values else None

    async def reward(prompts: list[Any], completions: list[Any], **_: Any) -> list[float | None]:
        return list(
            await asyncio.gather(
                *(
                    one(prompt_text(p), completion_text(c))
                    for p, c in zip(prompts, completions, strict=True)
                )
            )
        )

    reward.__name__ = f"judge_{direction}"
    return reward
