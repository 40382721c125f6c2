"""Residual-stream access at one decoder layer: read response-token activations, add a vector.

Layer ``n`` (1 … num_hidden_layers) is the output of the n-th decoder block, i.e. Transformers'
``hidden_states[n]``; the seed paper's code hooks ``model.layers.{n - 1}`` for layer ``n`` the
same way (EMA_RL ``open_models/grpo.py`` ``load_steering_vectors``, commit 81cb261).
"""

from __future__ import annotations

from typing import Any

import torch

from embench.errors import EmbenchError

MODES = ("all", "decode_only")


def decoder_layers(model: Any) -> torch.nn.ModuleList:
    """The model's list of decoder blocks (through PEFT and accelerate wrappers)."""
    count = getattr(getattr(model, "config", None), "num_hidden_layers", None)
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.ModuleList) and name.endswith("layers"):
            if count is None or len(module) == count:
                return module
    raise EmbenchError(f"cannot find the decoder layers of {type(model).__name__}")


def check_layer(model: Any, layer: int) -> int:
    """``layer`` if the model has it (1 … num_hidden_layers), else a one-line error."""
    count = len(decoder_layers(model))
    if not 1 <= layer <= count:
        raise EmbenchError(f"layer {layer} is out of range: this model has layers 1-{count}")
    return layer


def _hidden(output: Any) -> torch.Tensor:
    return output[0] if isinstance(output, tuple) else output


class Steerer:
    """Adds ``coef · vector`` to the residual stream after decoder layer ``layer``.

    ``mode="all"``: every position of every forward. ``mode="decode_only"``: only positions that
    predict a completion token. A training forward over prompt + completion sets ``positions``
    (a [rows, tokens] 0/1 mask, consumed row by row, so a trainer may chunk the batch); without
    one (generation), a multi-token forward is the prompt's prefill and only its last position
    (which predicts the first completion token) is steered, and each one-token decode step is.
    """

    def __init__(self, vector: torch.Tensor, coef: float, layer: int, mode: str = "all") -> None:
        if mode not in MODES:
            raise EmbenchError(f"steer: mode must be one of {', '.join(MODES)}, got '{mode}'")
        self.vector, self.coef, self.layer, self.mode = vector.detach().float(), coef, layer, mode
        self.positions: torch.Tensor | None = None
        self.forwards = 0
        """How many forwards the hook has steered (the manifest records it)."""
        self._row = 0
        self._handle: Any = None

    @property
    def attached(self) -> bool:
        """Whether the hook is on a model now."""
        return self._handle is not None

    def attach(self, model: Any) -> None:
        """Register the hook on ``model``'s layer (once)."""
        if self._handle is None:
            block = decoder_layers(model)[check_layer(model, self.layer) - 1]
            hidden = getattr(model.config, "hidden_size", self.vector.numel())
            if self.vector.numel() != hidden:
                raise EmbenchError(
                    f"steer: the vector has {self.vector.numel()} dimensions but the model's "
                    f"hidden size is {hidden}: compute it on this model"
                )
            self._handle = block.register_forward_hook(self._hook)

    def detach(self) -> None:
        """Remove the hook: the model computes unsteered again."""
        if self._handle is not None:
            self._handle.remove()
            self._handle = None

    def set_positions(self, positions: torch.Tensor | None) -> None:
        """The decode_only mask for the next forward(s), or None (generation)."""
        self.positions, self._row = positions, 0

    def _hook(self, module: Any, args: Any, output: Any) -> Any:
        self.forwards += 1
        hidden = _hidden(output)
        add = (self.coef * self.vector).to(hidden.device, hidden.dtype)
        if self.mode == "all":
            steered = hidden + add
        elif self.positions is not None:
            rows = hidden.shape[0]
            mask = self.positions[self._row : self._row + rows]
            if mask.shape != hidden.shape[:2]:
                raise EmbenchError(
                    f"steer: positions mask {tuple(mask.shape)} does not fit the batch "
                    f"{tuple(hidden.shape[:2])}"
                )
            self._row = (self._row + rows) % self.positions.shape[0]
            steered = hidden + mask.to(hidden.device, hidden.dtype).unsqueeze(-1) * add
        elif hidden.shape[1] == 1:  # a decode step
            steered = hidden + add
        else:  # a prefill: only the position that predicts the first completion token
            steered = hidden.clone()
            steered[:, -1] = steered[:, -1] + add
        return (steered, *output[1:]) if isinstance(output, tuple) else steered


def completion_positions(attention_mask: torch.Tensor, completion_tokens: int) -> torch.Tensor:
    """Positions of a prompt + completion batch that predict a (real) completion token."""
    mask = torch.zeros_like(attention_mask)
    mask[:, -completion_tokens - 1 : -1] = attention_mask[:, -completion_tokens:]
    return mask


def trained_positions(labels: torch.Tensor) -> torch.Tensor:
    """Positions of an SFT batch whose next token is trained (its label is not -100)."""
    mask = torch.zeros_like(labels)
    mask[:, :-1] = labels[:, 1:] != -100
    return mask


def response_activations(
    model: Any,
    prompts: list[list[int]],
    answers: list[list[int]],
    layers: list[int],
    pad_id: int = 0,
    batch_size: int = 16,
) -> torch.Tensor:
    """[answers, layers, hidden] float32: each answer's mean residual stream over its own tokens
    after each layer in ``layers`` (``hidden_states[n]``), read with the prompt before it.

    An empty answer gives a row of NaN.
    """
    rows: list[torch.Tensor] = []
    device = next(model.parameters()).device
    for start in range(0, len(prompts), batch_size):
        seqs = [p + a for p, a in zip(prompts[start : start + batch_size],
                                       answers[start : start + batch_size], strict=True)]  # fmt: skip
        width = max(len(s) for s in seqs)
        ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        for i, seq in enumerate(seqs):
            ids[i, : len(seq)] = torch.tensor(seq)
            mask[i, : len(seq)] = 1
        with torch.no_grad():
            hidden = model(
                input_ids=ids.to(device),
                attention_mask=mask.to(device),
                output_hidden_states=True,
                use_cache=False,
            ).hidden_states
        for i in range(len(seqs)):
            begin = len(prompts[start + i])
            end = begin + len(answers[start + i])
            rows.append(
                torch.stack([hidden[n][i, begin:end].float().mean(0) for n in layers]).cpu()
            )
    return torch.stack(rows) if rows else torch.empty(0, len(layers), 0)
