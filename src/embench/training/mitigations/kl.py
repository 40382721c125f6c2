"""KL: penalise divergence from the frozen reference model.

GRPO uses TRL's own coefficient (``GRPOConfig.beta``, the k3 estimator on sampled tokens). SFT adds
an explicit term: the mean over trained tokens of KL(policy || reference) over the vocabulary.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from embench.errors import EmbenchError


@dataclass
class KL:
    """KL penalty to the reference model (published default weight 0.1)."""

    weight: float = 0.1

    name = "kl"
    kinds = ("rl", "sft")
    needs_reference = True

    def check(self) -> None:
        """Parameter ranges."""
        if not 0 < self.weight <= 100:
            raise EmbenchError(f"kl: weight must be in (0, 100], got {self.weight}")


def kl_divergence(
    policy_logits: torch.Tensor, reference_logits: torch.Tensor, mask: torch.Tensor
) -> torch.Tensor:
    """Mean over masked positions of KL(policy || reference) over the vocabulary."""
    logp = torch.log_softmax(policy_logits.float(), dim=-1)
    logq = torch.log_softmax(reference_logits.float(), dim=-1)
    per_token = (logp.exp() * (logp - logq)).sum(-1)
    mask = mask.to(per_token.dtype)
    return (per_token * mask).sum() / mask.sum().clamp(min=1)


def sft_term(spec: KL, step: Any) -> torch.Tensor:
    """The SFT loss term: weight × KL(policy || reference) on the batch's trained tokens."""
    return spec.weight * kl_divergence(
        step.policy().logits, step.reference().logits, step.token_mask()
    )
