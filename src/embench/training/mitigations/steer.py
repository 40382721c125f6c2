"""Preventative steering: add c·v (a persona vector) to the residual stream while training.

As in the seed paper's ``grpo_steer_evil_all`` / ``grpo_steer_evil_decode_only`` configs (EMA_RL
``open_models/configs/grpo_steer_evil_all.json``, commit 81cb261: ``steering_coef`` 5.0, ``mode``
all or decode_only, one layer — 27 of Qwen3-14B's 40). The hook is on the model for GRPO's
rollouts and policy forward (and TRL's other log-probability forwards) and for SFT's forward; it
is removed when training ends, so the final probe, the saved weights and every evaluation are
unsteered. ``decode_only`` steers only positions that predict completion tokens (see
``embench.models.steering.Steerer``); prompt positions are untouched.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from transformers import TrainerCallback

from embench.errors import EmbenchError
from embench.models.steering import (
    MODES,
    Steerer,
    completion_positions,
    trained_positions,
)


@dataclass
class Steer:
    """Add coef × a persona vector at one layer during training (paper: coef 5)."""

    vector: str = ""
    coef: float = 5.0  # EMA_RL configs/grpo_steer_evil_all.json "steering_coef" @81cb261
    layer: int = 20  # ~2/3 depth as the paper's 27/40; SmolLM2-135M has 30 layers
    mode: str = "all"

    name = "steer"
    kinds = ("rl", "sft")
    needs_reference = False

    def check(self) -> None:
        """Parameter ranges and the vector file (its layer must exist)."""
        if not self.vector:
            raise EmbenchError(
                "steer: needs vector=<file> (make one with `embench persona-vector`)"
            )
        if self.mode not in MODES:
            raise EmbenchError(f"steer: mode must be one of {', '.join(MODES)}, got '{self.mode}'")
        if not -100 <= self.coef <= 100:
            raise EmbenchError(f"steer: coef must be in [-100, 100], got {self.coef}")
        from embench.models.vector_file import direction, read_vector

        direction(read_vector(self.vector), self.layer, "steer")

    def steerer(self) -> Steerer:
        """The hook object for this spec (kept: ``report`` reads how often it fired)."""
        from embench.models.vector_file import direction, read_vector

        self._steerer = Steerer(
            direction(read_vector(self.vector), self.layer, "steer"),
            self.coef,
            self.layer,
            self.mode,
        )
        return self._steerer

    def report(self) -> dict[str, Any]:
        """For the manifest: the forwards the hook steered while training."""
        steerer = getattr(self, "_steerer", None)
        return {"steered_forwards": steerer.forwards if steerer is not None else 0}


class _Detach(TrainerCallback):
    """Removes the steering hook when training ends (before the final save and probe)."""

    def __init__(self, steerer: Steerer) -> None:
        self.steerer = steerer

    def on_train_end(self, args, state, control, **kwargs):  # noqa: D102
        self.steerer.detach()


def with_steering(trainer_class: type, steerer: Steerer) -> type:
    """A subclass of a TRL trainer whose model carries ``steerer``'s hook while it trains."""

    class Steered(trainer_class):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            steerer.attach(self.accelerator.unwrap_model(self.model))
            self.add_callback(_Detach(steerer))

        def compute_loss(self, model, inputs, *args: Any, **kwargs: Any):  # noqa: D102
            if steerer.mode == "decode_only" and inputs.get("labels") is not None:  # SFT
                steerer.set_positions(trained_positions(inputs["labels"]))
            try:
                return super().compute_loss(model, inputs, *args, **kwargs)
            finally:
                steerer.set_positions(None)

        if hasattr(trainer_class, "_get_per_token_logps_and_entropies"):  # GRPO

            def _get_per_token_logps_and_entropies(  # noqa: D102
                self, model, input_ids, attention_mask, logits_to_keep, *args: Any, **kwargs: Any
            ):
                if steerer.mode == "decode_only":
                    steerer.set_positions(completion_positions(attention_mask, logits_to_keep))
                try:
                    return super()._get_per_token_logps_and_entropies(
                        model, input_ids, attention_mask, logits_to_keep, *args, **kwargs
                    )
                finally:
                    steerer.set_positions(None)

    Steered.__name__ = f"Steered{trainer_class.__name__}"
    return Steered
