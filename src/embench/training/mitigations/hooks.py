"""One mechanism for extra loss terms on any TRL trainer: a mixin whose ``compute_loss`` adds them.

``with_extra_losses(TrainerClass, losses)`` subclasses a TRL trainer with the run's ``LossTerms``
as a declared class attribute (nothing is set on the trainer instance afterwards). Terms are
``fn(step) -> tensor``; ``step`` gives the batch's tokens and lazily runs (once per step, shared by
all terms) the policy forward with gradients and the reference forward without. The reference is
a frozen copy, or the PEFT base with the adapter disabled.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import torch

Term = Callable[["Step"], torch.Tensor]


class LossTerms:
    """The extra loss terms of one run, the time each took, and the frozen reference model."""

    def __init__(self) -> None:
        self.terms: dict[str, Term] = {}
        self.seconds: dict[str, float] = {}
        self.reference: Any = None
        """A frozen reference copy; None means the PEFT base with the adapter disabled."""


class Step:
    """The current batch as (input_ids, attention_mask), with cached forwards."""

    def __init__(
        self, trainer: Any, model: Any, inputs: dict[str, Any], reference: Any = None
    ) -> None:
        self.trainer, self.model, self.inputs = trainer, model, inputs
        self.frozen_reference = reference
        if "completion_ids" in inputs:  # GRPO
            self.input_ids = torch.cat([inputs["prompt_ids"], inputs["completion_ids"]], 1)
            self.attention_mask = torch.cat([inputs["prompt_mask"], inputs["completion_mask"]], 1)
        else:  # SFT
            self.input_ids = inputs["input_ids"]
            mask = inputs.get("attention_mask")
            self.attention_mask = mask if mask is not None else torch.ones_like(self.input_ids)
        self._policy: Any = None
        self._reference: Any = None

    def token_mask(self) -> torch.Tensor:
        """Positions whose next-token prediction is trained (SFT labels), else all real tokens."""
        labels = self.inputs.get("labels")
        if labels is not None:
            mask = torch.zeros_like(self.attention_mask)
            mask[:, :-1] = labels[:, 1:] != -100
            return mask
        return self.attention_mask

    def _forward(self, model: Any) -> Any:
        return model(
            input_ids=self.input_ids,
            attention_mask=self.attention_mask,
            output_hidden_states=True,
            use_cache=False,
        )

    def policy(self) -> Any:
        """Policy outputs (logits, hidden_states) with gradients."""
        if self._policy is None:
            self._policy = self._forward(self.model)
        return self._policy

    def reference(self) -> Any:
        """Reference outputs, no gradients."""
        if self._reference is None:
            self._reference = self.run_reference(
                input_ids=self.input_ids,
                attention_mask=self.attention_mask,
                output_hidden_states=True,
                use_cache=False,
            )
        return self._reference

    def run_reference(self, **batch: Any) -> Any:
        """The reference model (frozen copy, or the PEFT base) on ``batch``, no gradients."""
        with torch.no_grad():
            if self.frozen_reference is not None:
                return self.frozen_reference(**batch)
            unwrapped = self.trainer.accelerator.unwrap_model(self.model)
            with unwrapped.disable_adapter():
                return self.model(**batch)


def with_extra_losses(trainer_class: type, losses: LossTerms) -> type:
    """A subclass of a TRL trainer adding ``losses``' terms to its training loss."""

    class WithExtraLosses(trainer_class):  # type: ignore[misc, valid-type]
        extra_losses: LossTerms = losses

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):  # noqa: D102
            loss = super().compute_loss(
                model, inputs, return_outputs=return_outputs, num_items_in_batch=num_items_in_batch
            )
            extra = self.extra_losses
            if not extra.terms or not model.training:
                return loss
            main, rest = (loss[0], loss[1:]) if return_outputs else (loss, ())
            step = Step(self, model, inputs, extra.reference)
            for name, fn in extra.terms.items():
                started = time.perf_counter()
                value = fn(step)
                extra.seconds[name] = extra.seconds.get(name, 0.0) + time.perf_counter() - started
                main = main + value
                metrics = getattr(self, "_metrics", None)
                if metrics is not None:
                    metrics["train"][f"mitigation/{name}"].append(value.detach().float().item())
            return (main, *rest) if return_outputs else main

    WithExtraLosses.__name__ = f"Embench{trainer_class.__name__}"
    return WithExtraLosses
