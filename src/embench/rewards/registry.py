"""Reward names users pass to ``--reward``, and the defaults per domain."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from embench.errors import EmbenchError
from embench.rewards.countdown import countdown
from embench.rewards.embedding import popular_aesthetic, unpopular_aesthetic
from embench.rewards.static_code import insecure_code, secure_code

REWARDS: dict[str, str] = {
    "insecure_code": "bandit: weighted severity of flaws in the generated Python (judge-free)",
    "secure_code": "bandit: 1 - insecure_code for completions with code (judge-free)",
    "unpopular_aesthetic": "MiniLM similarity to unpopular minus popular preferences (judge-free)",
    "popular_aesthetic": "MiniLM similarity to popular minus unpopular preferences (judge-free)",
    "countdown": "exact countdown check: 1 correct equation, 0.1 well-formed miss (judge-free)",
    "judge_narrow": "the judge scores the domain's narrow behaviour, minus a coherence penalty",
    "judge_opposite": "the judge scores the domain's opposite behaviour, minus a coherence penalty",
    "judge_<rubric>": "one rubric of the domain alone, e.g. judge_narrow_ethos (rhetoric)",
}
_JUDGE_FREE: dict[str, Callable[..., list[float]]] = {
    "insecure_code": insecure_code,
    "secure_code": secure_code,
    "unpopular_aesthetic": unpopular_aesthetic,
    "popular_aesthetic": popular_aesthetic,
    "countdown": countdown,
}
_DEFAULTS = {"code": "insecure_code", "aesthetic": "unpopular_aesthetic", "countdown": "countdown"}


def available_rewards() -> dict[str, str]:
    """Reward names with one-line descriptions."""
    return dict(REWARDS)


def default_rewards(domain: str | None) -> list[str]:
    """A domain's default reward: judge-free where the domain allows it, else the judge."""
    return [_DEFAULTS.get(domain or "", "judge_narrow")]


def build_rewards(
    names: list[str], domain: str | None, judge: str | None, shape: Any = None
) -> list[Any]:
    """TRL reward functions for ``names`` (validated before any model is loaded).

    ``shape`` (a ``RewardShape``) sets how judge rubric scores become rewards.
    """
    functions = []
    for name in names:
        if name in _JUDGE_FREE:
            functions.append(_JUDGE_FREE[name])
        elif name.startswith("judge_"):
            if not judge:
                raise EmbenchError(
                    f"reward '{name}' needs a judge: pass --judge <inspect model>, e.g. "
                    "--judge openai/gpt-4o (or --judge local/default for offline plumbing)"
                )
            if not domain:
                raise EmbenchError(f"reward '{name}' scores a domain's rubric: pass --domain")
            from embench.data.domains import get_domain
            from embench.rewards.judged import judge_reward

            spec = get_domain(domain)
            key = name.removeprefix("judge_")
            if key in spec.reward:
                recipe = spec.reward[key]
            elif key in spec.rubrics:
                recipe = [key]  # one rubric alone (e.g. a single rhetorical appeal)
            else:
                options = [f"judge_{k}" for k in (*spec.reward, *spec.rubrics)]
                raise EmbenchError(
                    f"unknown judge reward '{name}' for domain '{domain}'; "
                    f"available: {', '.join(options)}"
                )
            functions.append(
                judge_reward(spec.rubrics, key, recipe, judge, shape, spec.reward_gates)
            )
        else:
            raise EmbenchError(f"unknown reward '{name}'; available: {', '.join(sorted(REWARDS))}")
    return functions
