"""LoRA swap: evaluate every checkpoint of a LoRA run on one loaded base model.

The checkpoints of a LoRA run share their base weights (and any earlier merged stages); only the
last adapter differs. ``AdapterSwap`` loads the base once with the first checkpoint's adapter left
unmerged (``load_model(..., merge_adapter=False)``), then for each later checkpoint loads that
adapter into the same ``PeftModel``, activates it and drops the previous one. The one generation
engine is handed to the ``local`` provider under each checkpoint's own engine key, so
``inspect_ai.eval(model="local/<checkpoint>")`` finds it ready instead of loading base + adapter
again. Unmerged LoRA computes ``W x + B A x`` rather than ``(W + B A) x``: equal up to float
rounding (checked in tests against a fresh merged load).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from embench.errors import EmbenchError
from embench.run.reference import local_model, local_ref


def _resolved(reference: str) -> Any:
    from embench.models.resolve import resolve_model

    return resolve_model(local_ref(reference))


def shares_base(references: list[str]) -> bool:
    """True when every reference is a LoRA adapter on the same base (and merged chain)."""
    try:
        found = [_resolved(r) for r in references]
    except EmbenchError:
        return False
    if not found or any(r.adapter is None for r in found):
        return False
    first = found[0]
    return all(r.weights == first.weights and tuple(r.merged) == tuple(first.merged) for r in found)


class AdapterSwap:
    """One base model in memory; ``activate(reference)`` switches the LoRA adapter it runs."""

    def __init__(self, model_args: dict[str, Any] | None = None) -> None:
        args = dict(model_args or {})
        self.dtype = str(args.get("dtype", "auto"))
        self.device = args.get("device")
        from embench.models.provider import DEFAULT_BATCH_SIZE

        self.batch_size = int(args.get("batch_size", DEFAULT_BATCH_SIZE))
        self.model: Any = None
        self.engine: Any = None
        self.active: str | None = None
        self.loads = 0  # how many times base weights were read (1 per swap object)
        self._keys: list[tuple[Any, ...]] = []

    def activate(self, reference: str) -> None:
        """Make ``reference`` (a LoRA checkpoint) the model the provider serves under its name."""
        from embench.models import provider

        resolved = _resolved(reference)
        if resolved.adapter is None:
            raise EmbenchError(f"{reference} is not a LoRA adapter: nothing to swap")
        if self.model is None:
            from embench.models.engine import GenerationEngine
            from embench.models.resolve import load_model

            model, tokenizer = load_model(
                resolved, dtype=self.dtype, device=self.device, merge_adapter=False
            )
            self.loads += 1
            self.model = model
            self.engine = GenerationEngine(model, tokenizer, max_batch_size=self.batch_size)
            self.active = "default"
        else:
            name = f"swap{len(self._keys)}"
            dtype = next(self.model.parameters()).dtype
            self.model.load_adapter(resolved.adapter, adapter_name=name)
            self.model.set_adapter(name)
            if self.active is not None:
                self.model.delete_adapter(self.active)
            self.model.to(dtype)
            self.model.eval()
            self.active = name
        key = provider.engine_key(resolved, self.dtype, self.device, self.batch_size)
        provider.serve_engine(key, self.engine)
        self._keys.append(key)

    def close(self) -> None:
        """Forget the engine keys and the model."""
        from embench.models import provider

        for key in self._keys:
            provider.drop_engine(key)
        self._keys.clear()
        self.model = self.engine = None


def checkpoint_references(paths: list[Path]) -> list[str]:
    """``local/<abs path>`` for each checkpoint folder or run directory."""
    return [local_model(p.resolve()) for p in paths]
