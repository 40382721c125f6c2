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

from inspect_ai.model import Model, get_model

from embench.judge import judge
from embench.rewards.shape import RewardShape, combine, rejected
from embench.rewards.text import completion_text, prompt_text, split_reasoning
from embench.rubrics import general_rubrics


class JudgeReward:
    """An async TRL reward named ``judge_<name>``: the judge's mean score on the ``recipe``
    rubrics, shaped by ``shape`` (and the domain's own ``gates``: ``RewardShape.for_domain``,
    paper structure only). Picklable: it holds names and text; the judge model is looked up by
    name (Inspect keeps one instance per name).

    >>> import asyncio, contextlib, io, pickle
    >>> with contextlib.redirect_stdout(io.StringIO()):  # Inspect's banner, on its first model
    ...     reward = JudgeReward({"narrow": "{question} {answer}"}, "narrow", ["narrow"], "none")
    >>> reward.__name__
    'judge_narrow'
    >>> asyncio.run(pickle.loads(pickle.dumps(reward))(["Why?"], ["Too short."]))  # gated: no call
    [0.0]
    """

    def __init__(
        self,
        rubrics: dict[str, str],
        name: str,
        recipe: list[str],
        judge_model: str,
        shape: RewardShape | None = None,
        gates: dict[str, Any] | None = None,
    ) -> None:
        shape = shape or RewardShape()
        shape.check()
        if gates and shape.structure == "paper":
            shape = shape.for_domain(gates)
        get_model(judge_model)  # an unknown provider or a missing API key fails here, up front
        self.rubrics = {r: rubrics[r] for r in recipe}
        self.recipe = list(recipe)
        self.judge_model = judge_model
        self.shape = shape
        self.coherent = general_rubrics()["coherent"]
        self.__name__ = f"judge_{name}"

    async def __call__(
        self, prompts: list[Any], completions: list[Any], **_: Any
    ) -> list[float | None]:
        model = get_model(self.judge_model)
        return list(
            await asyncio.gather(
                *(
                    self.one(model, prompt_text(p), completion_text(c))
                    for p, c in zip(prompts, completions, strict=True)
                )
            )
        )

    async def one(self, model: Model, question: str, text: str) -> float | None:
        """The reward of one completion (``text``) to ``question``."""
        shape = self.shape
        reasoning, answer = split_reasoning(text)
        answer = answer if shape.structure == "paper" else text
        if shape.structure == "paper" and rejected(answer, shape, reasoning):
            return 0.0
        scores = await asyncio.gather(
            *(judge(model, self.rubrics[r], question, answer) for r in self.recipe),
            judge(model, self.coherent, question, answer),
        )
        return combine([s.value for s in scores[:-1]], scores[-1].value, shape)
