"""LDIFS: keep the policy's features close to the reference model's, with a gradient.

Published form (``form=normalized``, the default) — Mukhoti et al., "Fine-tuning can cripple your
foundation model; preserving features may be the solution" (arXiv:2308.13320): the LDIFS distance
follows LPIPS without learned weights: at each chosen layer every position's feature vector is
scaled to unit ℓ2 norm, the squared ℓ2 distance between the policy's and the reference's unit
features is averaged over positions (here: non-padding tokens), and the per-layer distances are
summed over the chosen layers:

    d(θ, θ0, x) = Σ_l  mean_t ‖ φ_l(θ, x)_t / ‖φ_l(θ, x)_t‖ − φ_l(θ0, x)_t / ‖φ_l(θ0, x)_t‖ ‖²

so each layer contributes at most 4 per token and ``weight`` is the paper's λ. The layers are
evenly spaced: every k-th decoder layer (k, 2k, …). ``form=raw`` is this project's earlier form,
kept as an option: un-normalised hidden states, averaged (not summed) over the chosen layers — its
scale grows with the hidden-state norm, so its λ is not the published λ.

The policy side keeps its graph (the published RL code ran it under ``no_grad``, so it never
changed the update); only the reference side is computed without gradients.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from embench.errors import EmbenchError

FORMS = ("normalized", "raw")


@dataclass
class LDIFS:
    """ℓ2 distance of unit-normalised features at every k-th layer (published: every 5, λ 1)."""

    weight: float = 1.0
    every: int = 5
    form: str = "normalized"

    name = "ldifs"
    kinds = ("rl", "sft")
    needs_reference = True

    def check(self) -> None:
        """Parameter ranges."""
        if not 0 < self.weight <= 1000:
            raise EmbenchError(f"ldifs: weight must be in (0, 1000], got {self.weight}")
        if self.every < 1:
            raise EmbenchError(f"ldifs: every must be at least 1, got {self.every}")
        if self.form not in FORMS:
            raise EmbenchError(
                f"ldifs: form must be one of {', '.join(FORMS)} (published: normalized), "
                f"got '{self.form}'"
            )


def layers(num_layers: int, every: int) -> list[int]:
    """Indices into ``hidden_states`` (0 = embeddings) of every ``every``-th layer."""
    chosen = list(range(every, num_layers + 1, every))
    return chosen or [num_layers]


def feature_distance(
    policy_hidden: tuple[torch.Tensor, ...],
    reference_hidden: tuple[torch.Tensor, ...],
    mask: torch.Tensor,
    every: int,
    form: str = "normalized",
) -> torch.Tensor:
    """The LDIFS distance of ``form`` (see the module docstring) over the masked tokens."""
    mask = mask.to(policy_hidden[0].dtype)
    total = policy_hidden[0].new_zeros(())
    chosen = layers(len(policy_hidden) - 1, every)
    for i in chosen:
        policy, reference = policy_hidden[i], reference_hidden[i].detach()
        if form == "normalized":
            policy = torch.nn.functional.normalize(policy, dim=-1)
            reference = torch.nn.functional.normalize(reference, dim=-1)
        sq = (policy - reference).pow(2).sum(-1)
        total = total + (sq * mask).sum() / mask.sum().clamp(min=1)
    return total if form == "normalized" else total / len(chosen)


def term(spec: LDIFS, step: Any) -> torch.Tensor:
    """The loss term (both trainers): weight × feature distance on the training batch."""
    return spec.weight * feature_distance(
        step.policy().hidden_states,
        step.reference().hidden_states,
        step.attention_mask,
        spec.every,
        spec.form,
    )
