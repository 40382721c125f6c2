"""LDIFS: keep hidden states close to the reference model's, with a gradient.

The term is the mean over chosen layers (every k-th: k, 2k, …) and non-padding tokens of the
squared ℓ2 distance between the policy's and the reference's hidden states. The policy side keeps
its graph (the published RL code ran it under ``no_grad``, so it never changed the update); only
the reference side is computed without gradients.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from embench.errors import EmbenchError


@dataclass
class LDIFS:
    """ℓ2 feature distance to the reference at every k-th layer (published: every 5, weight 1)."""

    weight: float = 1.0
    every: int = 5

    name = "ldifs"
    needs_reference = True

    def check(self) -> None:
        """Parameter ranges."""
        if not 0 < self.weight <= 1000:
            raise EmbenchError(f"ldifs: weight must be in (0, 1000], got {self.weight}")
        if self.every < 1:
            raise EmbenchError(f"ldifs: every must be at least 1, got {self.every}")


def layers(num_layers: int, every: int) -> list[int]:
    """Indices into ``hidden_states`` (0 = embeddings) of every ``every``-th layer."""
    chosen = list(range(every, num_layers + 1, every))
    return chosen or [num_layers]


def feature_distance(
    policy_hidden: tuple[torch.Tensor, ...],
    reference_hidden: tuple[torch.Tensor, ...],
    mask: torch.Tensor,
    every: int,
) -> torch.Tensor:
    """Mean squared ℓ2 distance per token, averaged over the chosen layers."""
    mask = mask.to(policy_hidden[0].dtype)
    total = policy_hidden[0].new_zeros(())
    chosen = layers(len(policy_hidden) - 1, every)
    for i in chosen:
        sq = (policy_hidden[i] - reference_hidden[i].detach()).pow(2).sum(-1)
        total = total + (sq * mask).sum() / mask.sum().clamp(min=1)
    return total / len(chosen)


def term(spec: LDIFS, step: Any) -> torch.Tensor:
    """The loss term (both trainers): weight × feature distance on the training batch."""
    return spec.weight * feature_distance(
        step.policy().hidden_states, step.reference().hidden_states, step.attention_mask, spec.every
    )
