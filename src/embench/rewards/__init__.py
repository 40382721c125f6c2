"""Reward functions with TRL's signature: ``f(prompts, completions, **columns) -> list[float|None]``.

``build_rewards`` turns reward names into functions; ``available_rewards`` lists them.
"""

from embench.rewards.registry import (
    REWARDS,
    available_rewards,
    build_rewards,
    default_rewards,
    needs_judge,
)

__all__ = ["REWARDS", "available_rewards", "build_rewards", "default_rewards", "needs_judge"]
