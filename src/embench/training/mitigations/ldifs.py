"""LDIFS: keep the policy's features close to the reference model's, with a gradient.

Published form (``form=normalized``, the default) — Mukhoti et al., "Fine-tuning can cripple your
foundation model; preserving features may be the solution" (arXiv:2308.13320). The reductions
follow the authors' released code, github.com/omegafragger/ldifs_code, ``loss/ldifs.py``
(``LDIFSFinetune.forward``, commit 5ffdeef): the features of each chosen layer are ℓ2-normalised,
the squared differences are *averaged* over every feature element (tokens × hidden units), and
the per-layer distances are *averaged* over the chosen layers (``torch.stack(diffs,
dim=1).mean(dim=-1)``), then over the batch:

    d(θ, θ0, x) = 1/L Σ_l  mean_t  1/D ‖ φ̂_l(θ, x)_t − φ̂_l(θ0, x)_t ‖²,   φ̂ = φ / ‖φ‖

over the non-padding tokens t (pooled over the batch) of hidden size D, so d ≤ 4/D and ``weight``
is the released code's λ (``--ldifs-alpha``, default 10.0 in its ``args.py``). One deliberate
difference: that code applies LPIPS's ``normalize_tensor`` (a norm over dim 1, the channel axis of
LPIPS's [B, C, H, W] maps) to ViT features laid out [B, tokens, D], which normalises across
tokens; we normalise each token's feature vector, as LPIPS does each position's. Its layers: five
feature maps of a 12-block ViT (after ``ln_pre`` and after blocks 3, 6, 9, 12); ours: every k-th
decoder layer (k, 2k, …). ``form=raw`` is this project's earlier form, kept as an option:
un-normalised hidden states, squared distance summed over hidden units, averaged over tokens and
layers — its scale grows with the hidden-state norm, so its λ is not the published λ.

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
    """ℓ2 distance of unit-normalised features at every k-th layer (λ 10 as published)."""

    weight: float = 10.0  # --ldifs-alpha default in the authors' code (ldifs_code, args.py)
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
        if form == "normalized":  # mean over hidden units, as the released code reduces
            policy = torch.nn.functional.normalize(policy, dim=-1)
            reference = torch.nn.functional.normalize(reference, dim=-1)
            per_token = (policy - reference).pow(2).mean(-1)
        else:
            per_token = (policy - reference).pow(2).sum(-1)
        total = total + (per_token * mask).sum() / mask.sum().clamp(min=1)
    return total / len(chosen)  # averaged over the chosen layers (both forms)


def term(spec: LDIFS, step: Any) -> torch.Tensor:
    """The loss term (both trainers): weight × feature distance on the training batch."""
    return spec.weight * feature_distance(
        step.policy().hidden_states,
        step.reference().hidden_states,
        step.attention_mask,
        spec.every,
        spec.form,
    )
