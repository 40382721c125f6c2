"""A length penalty for GRPO completions: TRL's own DAPO soft overlong punishment, sized per run."""

from __future__ import annotations

from collections.abc import Callable


def soft_overlong(max_completion_length: int) -> Callable[..., list[float]]:
    """TRL's soft overlong punishment for this run's cap: 0 up to three quarters of
    ``max_completion_length`` tokens, then falling linearly to -1 at the cap, where TRL cuts the
    completion off. It teaches answers to end on their own rather than be clipped.

    >>> punish = soft_overlong(64)
    >>> punish([[1] * 40, [1] * 56, [1] * 64])
    [0.0, -0.5, -1.0]
    """
    from trl.rewards import get_soft_overlong_punishment  # TRL imports slowly: only when built

    return get_soft_overlong_punishment(max_completion_length, max(1, max_completion_length // 4))
