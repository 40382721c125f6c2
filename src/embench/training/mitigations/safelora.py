"""SafeLoRA: project LoRA updates onto the alignment subspace where they drift from it.

For each LoRA-adapted weight W, V = W_aligned − W_unaligned and Ĉ = V Vᵀ / ‖V‖_F (the published
projection; exact when V is rank one with unit factors). A layer's update ΔW = B A is replaced by
Ĉ ΔW (stored as B ← Ĉ B) when cos(ΔW, Ĉ ΔW) < τ (published 0.3).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from embench.errors import EmbenchError
from embench.fsutil import atomic_write_text

ADAPTER_FILE = "adapter_model.safetensors"
LORA_B = re.compile(r"^(?:base_model\.model\.)?(?P<module>.+)\.lora_B(?:\.default)?\.weight$")


@dataclass
class SafeLoRA:
    """Project LoRA layers far from the aligned−unaligned subspace (at save time; τ 0.3)."""

    aligned: str | None = None
    unaligned: str | None = None
    tau: float = 0.3

    name = "safelora"
    kinds = ("*",)  # projects the saved adapter: any trainer kind
    needs_reference = False

    def check(self) -> None:
        """Parameter ranges (the LoRA requirement is checked by the plan)."""
        if not self.aligned or not self.unaligned:
            raise EmbenchError(
                "safelora: needs the weight pair, e.g. safelora:aligned=<instruct>,unaligned=<base>"
            )
        if not 0 <= self.tau <= 1:
            raise EmbenchError(f"safelora: tau must be in [0, 1], got {self.tau}")


def _cos(delta: torch.Tensor, projected: torch.Tensor) -> float:
    if delta.norm() == 0:
        return 1.0  # no update: nothing to project
    if projected.norm() == 0:
        return 0.0  # entirely outside the subspace
    return float((delta * projected).sum() / (delta.norm() * projected.norm()))


def project_lora(
    adapter_state: dict[str, torch.Tensor],
    aligned_state: dict[str, torch.Tensor],
    unaligned_state: dict[str, torch.Tensor],
    tau: float = 0.3,
) -> tuple[dict[str, torch.Tensor], list[dict[str, Any]]]:
    """(projected adapter state, per-layer report {layer, cosine, projected})."""
    out = dict(adapter_state)
    report = []
    for key in sorted(adapter_state):
        match = LORA_B.match(key)
        if not match:
            continue
        module = match["module"]
        a_key = key.replace("lora_B", "lora_A")
        weight = f"{module}.weight"
        if a_key not in adapter_state or weight not in aligned_state:
            continue
        if weight not in unaligned_state:
            raise EmbenchError(f"safelora: the unaligned model has no weight {weight}")
        b, a = adapter_state[key].float(), adapter_state[a_key].float()
        v = aligned_state[weight].float() - unaligned_state[weight].float()
        norm = v.norm()
        c = v @ v.T / norm if norm > 0 else torch.zeros(v.shape[0], v.shape[0])
        delta = b @ a
        cosine = _cos(delta, c @ delta)
        projected = cosine < tau
        if projected:
            out[key] = (c @ b).to(adapter_state[key].dtype)
        report.append({"layer": module, "cosine": round(cosine, 6), "projected": projected})
    return out, report


def state_of(reference: str) -> dict[str, torch.Tensor]:
    """The (merged) weights of a model reference, as a state dict on CPU."""
    from transformers import AutoModelForCausalLM

    from embench.models.resolve import load_model, resolve_model

    resolved = resolve_model(reference)
    if resolved.adapter is None:  # weights only: no tokenizer needed
        model = AutoModelForCausalLM.from_pretrained(resolved.weights, dtype=torch.float32)
    else:
        model, _ = load_model(reference, dtype="float32", device="cpu")
    if hasattr(model, "merge_and_unload"):
        model = model.merge_and_unload()
    return {k: v.detach() for k, v in model.state_dict().items()}


def apply_to_adapter(folder: Path, aligned: str, unaligned: str, tau: float) -> dict[str, Any]:
    """Project the adapter saved in ``folder`` in place (original kept); returns the report."""
    from safetensors.torch import load_file, save_file

    path = folder / ADAPTER_FILE
    if not path.exists():
        raise EmbenchError(f"safelora: {folder} holds no LoRA adapter (adapter_model.safetensors)")
    state = load_file(str(path))
    projected, layers = project_lora(state, state_of(aligned), state_of(unaligned), tau)
    if not layers:
        raise EmbenchError("safelora: no adapter layer matched a weight of the aligned model")
    backup = folder / "adapter_model.pre_safelora.safetensors"
    if not backup.exists():
        path.rename(backup)
    save_file(
        {k: v.contiguous() for k, v in projected.items()}, str(path), metadata={"format": "pt"}
    )
    report = {
        "aligned": aligned,
        "unaligned": unaligned,
        "tau": tau,
        "projected_layers": [r["layer"] for r in layers if r["projected"]],
        "layers": layers,
    }
    atomic_write_text(folder / "safelora.json", json.dumps(report, indent=2))
    return report


def load_saved_adapter(model: Any, folder: Path) -> None:
    """Load the adapter saved in ``folder`` (e.g. after projection) into the PEFT ``model``."""
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    result = set_peft_model_state_dict(model, load_file(str(folder / ADAPTER_FILE)))
    if result.unexpected_keys:
        raise EmbenchError(
            f"safelora: {folder / ADAPTER_FILE} does not fit the trained model "
            f"(e.g. {result.unexpected_keys[0]}); train without safelora and project the finished "
            "run with `embench safelora <run>`"
        )
