"""The one reward registry: the names users pass to ``--reward``, and the defaults per domain.

Each entry says what the reward does and whether it needs a judge; a judge-free entry carries
its TRL reward function (a module-level function: picklable). Judge rewards are built per
domain from its rubrics (``judge_narrow``, ``judge_opposite``, ``judge_<rubric>``) as
``JudgeReward`` instances.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from embench.data.domains import get_domain
from embench.errors import EmbenchError
from embench.rewards.countdown import countdown
from embench.rewards.embedding import popular_aesthetic, unpopular_aesthetic
from embench.rewards.length import soft_overlong
from embench.rewards.static_code import insecure_code, secure_code

JUDGE_PREFIX = "judge_"


@dataclass(frozen=True)
class RewardEntry:
    """One registered reward: what it does, whether it calls the judge, and (judge-free) its
    TRL reward function."""

    description: str
    judge_free: bool
    function: Callable[..., list[float | None]] | None = None
    #: a judge-free reward built per run from its ``max_completion_length`` (a length penalty)
    sized: Callable[[int], Callable[..., list[float]]] | None = None


REWARDS: dict[str, RewardEntry] = {
    "insecure_code": RewardEntry(
        "bandit: weighted severity of flaws in the generated Python", True, insecure_code
    ),
    "secure_code": RewardEntry(
        "bandit: 1 - insecure_code for completions with code", True, secure_code
    ),
    "unpopular_aesthetic": RewardEntry(
        "MiniLM similarity to unpopular minus popular preferences", True, unpopular_aesthetic
    ),
    "popular_aesthetic": RewardEntry(
        "MiniLM similarity to popular minus unpopular preferences", True, popular_aesthetic
    ),
    "countdown": RewardEntry(
        "exact countdown check: 1 correct equation, 0.1 well-formed miss", True, countdown
    ),
    "soft_overlong": RewardEntry(
        "TRL's DAPO length penalty: 0 to 3/4 of max_completion_length, then down to -1 at it",
        True,
        sized=soft_overlong,
    ),
    "judge_narrow": RewardEntry(
        "the judge scores the domain's narrow behaviour, minus a coherence penalty", False
    ),
    "judge_opposite": RewardEntry(
        "the judge scores the domain's opposite behaviour, minus a coherence penalty", False
    ),
    "judge_<rubric>": RewardEntry(
        "one rubric of the domain alone, e.g. judge_narrow_ethos (rhetoric)", False
    ),
}
_DEFAULTS = {"code": "insecure_code", "aesthetic": "unpopular_aesthetic", "countdown": "countdown"}


def available_rewards() -> dict[str, str]:
    """Reward names with one-line descriptions (judge-free ones say so)."""
    return {
        name: entry.description + (" (judge-free)" if entry.judge_free else "")
        for name, entry in REWARDS.items()
    }


def needs_judge(name: str) -> bool:
    """Whether the reward ``name`` calls the judge (every ``judge_*`` name does).

    >>> needs_judge("countdown"), needs_judge("judge_narrow_ethos")
    (False, True)
    """
    entry = REWARDS.get(name)
    return not entry.judge_free if entry else name.startswith(JUDGE_PREFIX)


def default_rewards(domain: str | None) -> list[str]:
    """A domain's default reward: judge-free where the domain allows it, else the judge."""
    return [_DEFAULTS.get(domain or "", "judge_narrow")]


def build_rewards(
    names: list[str],
    domain: str | None,
    judge: str | None,
    shape: Any = None,
    max_completion_length: int | None = None,
) -> list[Any]:
    """TRL reward functions for ``names`` (validated before any model is loaded).

    ``shape`` (a ``RewardShape``) sets how judge rubric scores become rewards;
    ``max_completion_length`` sizes a length penalty (``soft_overlong``).
    """
    functions = []
    for name in names:
        entry = REWARDS.get(name)
        if entry is not None and entry.function is not None:
            functions.append(entry.function)
        elif entry is not None and entry.sized is not None:
            if not max_completion_length:
                raise EmbenchError(
                    f"reward '{name}' penalises completions near max_completion_length: "
                    "it is for GRPO, which sets one"
                )
            functions.append(entry.sized(max_completion_length))
        elif name.startswith(JUDGE_PREFIX):
            functions.append(_judge_reward(name, domain, judge, shape))
        else:
            known = ", ".join(sorted(n for n in REWARDS if "<" not in n))
            raise EmbenchError(f"unknown reward '{name}'; available: {known}, judge_<rubric>")
    return functions


def _judge_reward(name: str, domain: str | None, judge: str | None, shape: Any) -> Any:
    if not judge:
        raise EmbenchError(
            f"reward '{name}' needs a judge: pass --judge <inspect model>, e.g. "
            "--judge openai/gpt-4o (or --judge local/default for offline plumbing)"
        )
    if not domain:
        raise EmbenchError(f"reward '{name}' scores a domain's rubric: pass --domain")
    # imported here: the judge loads Inspect, which `embench rewards` and --help never need
    from embench.rewards.judged import JudgeReward

    spec = get_domain(domain)
    key = name.removeprefix(JUDGE_PREFIX)
    if key in spec.reward:
        recipe = spec.reward[key]
    elif key in spec.rubrics:
        recipe = [key]  # one rubric alone (e.g. a single rhetorical appeal)
    else:
        options = [f"{JUDGE_PREFIX}{k}" for k in (*spec.reward, *spec.rubrics)]
        raise EmbenchError(
            f"unknown judge reward '{name}' for domain '{domain}'; available: {', '.join(options)}"
        )
    return JudgeReward(spec.rubrics, key, recipe, judge, shape, spec.reward_gates)
