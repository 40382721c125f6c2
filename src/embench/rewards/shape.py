"""How judge rubric scores become a reward: the gates, their ranges, and the combination.

The ranges live here once, as ``Annotated`` bounds on the ``RewardShape`` fields: the training
config's ``reward_*`` options are declared with these same types (and defaults), so a bad value
on the command line, in a config file or in a domain's ``reward_gates`` fails the same check.
See ``embench.rewards.judged`` for the published structure the gates come from.
"""

from __future__ import annotations

import operator
import re
from dataclasses import dataclass, fields, replace
from typing import Annotated, Any, Literal, get_args, get_origin, get_type_hints

from annotated_types import Ge, Gt, Le, Lt

from embench.errors import EmbenchError
from embench.rewards.text import repetition

Structure = Literal["paper", "mean"]
CoherenceGate = Annotated[float, Ge(0), Le(100)]
CoherencePenalty = Annotated[float, Ge(0)]
WordCount = Annotated[int, Ge(0)]
RepetitionShare = Annotated[float, Gt(0), Le(1)]

_BOUNDS = (
    (Ge, "ge", operator.ge, ">="),
    (Gt, "gt", operator.gt, ">"),
    (Le, "le", operator.le, "<="),
    (Lt, "lt", operator.lt, "<"),
)


@dataclass(frozen=True)
class RewardShape:
    """How rubric scores become a reward (see the module docstring); each gate is a config field
    (``reward_<field>``)."""

    structure: Structure = "paper"
    coherence_gate: CoherenceGate = 50.0  # 0-100; published 0.5 on 0-1
    coherence_penalty: CoherencePenalty = 0.5  # published: assessment - (1 - coherence) / 2
    min_words: WordCount = 10  # published: has_minimum_words(answer, min_words=10)
    max_repetition: RepetitionShare = 0.5  # ours (judge-free stand-in for "repetitive")
    #: 0 when the reasoning has fewer words (0: off); the seed paper: 75 in every domain but
    #: medical (EMA_RL open_models/rl/reward.py:386-392 @81cb261)
    min_reasoning_words: WordCount = 0
    #: 0 without a closed, non-empty reasoning block, or when the answer opens another
    #: ``<think>`` (the seed paper's reward-hacking gate: rl/reward.py:447-453 @81cb261)
    require_reasoning: bool = False

    def check(self) -> None:
        """Every field against its declared range, as one-line errors.

        >>> RewardShape(coherence_gate=120).check()
        Traceback (most recent call last):
        ...
        embench.errors.EmbenchError: reward_coherence_gate must be <= 100, got 120
        """
        hints = get_type_hints(RewardShape, include_extras=True)
        for item in fields(self):
            value, hint = getattr(self, item.name), hints[item.name]
            if get_origin(hint) is Literal and value not in get_args(hint):
                raise EmbenchError(
                    f"reward_{item.name} must be one of {', '.join(get_args(hint))}, got '{value}'"
                )
            for bound in get_args(hint)[1:] if get_origin(hint) is Annotated else ():
                for kind, attr, holds, sign in _BOUNDS:
                    if isinstance(bound, kind) and not holds(value, getattr(bound, attr)):
                        limit = getattr(bound, attr)
                        raise EmbenchError(
                            f"reward_{item.name} must be {sign} {limit}, got {value}"
                        )

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
        **{f.name: getattr(config, f"reward_{f.name}") for f in fields(RewardShape)
           if hasattr(config, f"reward_{f.name}")}
    )  # fmt: skip
    shape.check()
    return shape


def rejected(answer: str, shape: RewardShape, reasoning: str | None = None) -> bool:
    """The judge-free gates (paper structure only): an answer too short or repetitive, reasoning
    too short (words counted as the seed paper's tools/nlp.py has_minimum_words does), or
    missing where the shape requires it.

    >>> rejected("too short", RewardShape())
    True
    >>> rejected("a b c d e f g h i j k", RewardShape())
    False
    """
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
    """The reward from the rubric scores (0-100, None = no score) and the coherence score.

    >>> combine([80.0], 90.0, RewardShape())  # 0.8 - 0.5 * (1 - 0.9)
    0.75
    >>> combine([None], 90.0, RewardShape())  # a refusal earns nothing
    0.0
    """
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
