"""A trait direction per layer (a persona vector) in one small safetensors file.

Tensors ``layer.<n>`` (float32, hidden size), and under the metadata key ``embench`` a JSON
record: model, trait, layers, the prompts' sha256, the answer counts and the norm per layer.
Written atomically; read back with ``read_vector``; a wrong file is a one-line error.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from embench.errors import EmbenchError
from embench.fsutil import atomic_write_bytes

META_KEY = "embench"
FORMAT = "embench-persona-vector/1"


@dataclass
class PersonaVector:
    """Directions by layer and what they were computed from."""

    directions: dict[int, torch.Tensor]
    model: str
    trait: str
    prompts_sha256: str
    counts: dict[str, int] = field(default_factory=dict)
    """Answers used per side (``eliciting``, ``suppressing``) and dropped by the judge filter."""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def layers(self) -> list[int]:
        """The layers, ascending."""
        return sorted(self.directions)

    def norms(self) -> dict[int, float]:
        """ℓ2 norm of each layer's direction."""
        return {n: round(float(self.directions[n].norm()), 6) for n in self.layers}

    def record(self) -> dict[str, Any]:
        """The metadata written beside the tensors."""
        return {
            "format": FORMAT,
            "model": self.model,
            "trait": self.trait,
            "layers": self.layers,
            "prompts_sha256": self.prompts_sha256,
            "counts": self.counts,
            "norms": {str(k): v for k, v in self.norms().items()},
            **self.extra,
        }


def write_vector(vector: PersonaVector, path: str | Path) -> Path:
    """Write ``vector`` to ``path`` (safetensors) atomically."""
    from safetensors.torch import save

    tensors = {f"layer.{n}": t.detach().float().contiguous() for n, t in vector.directions.items()}
    data = save(tensors, metadata={META_KEY: json.dumps(vector.record(), sort_keys=True)})
    return atomic_write_bytes(path, data)


def read_vector(path: str | Path) -> PersonaVector:
    """Read a file ``write_vector`` wrote."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file, safe_open

    file = Path(path)
    if not file.is_file():
        raise EmbenchError(
            f"persona vector file not found: {file}; make one with "
            "`embench persona-vector --model <ref> --out <file>`"
        )
    try:
        with safe_open(str(file), "pt") as handle:
            meta = json.loads((handle.metadata() or {}).get(META_KEY, "{}"))
        tensors = load_file(str(file))
    except (SafetensorError, OSError, ValueError) as error:
        raise EmbenchError(f"{file}: not a persona vector file ({error})") from None
    if meta.get("format") != FORMAT:
        raise EmbenchError(f"{file}: not a persona vector file (no '{FORMAT}' record)")
    known = {"format", "model", "trait", "layers", "prompts_sha256", "counts", "norms"}
    return PersonaVector(
        directions={int(k.split(".", 1)[1]): v for k, v in tensors.items()},
        model=meta["model"],
        trait=meta["trait"],
        prompts_sha256=meta["prompts_sha256"],
        counts=dict(meta.get("counts") or {}),
        extra={k: v for k, v in meta.items() if k not in known},
    )


def direction(vector: PersonaVector, layer: int, where: str) -> torch.Tensor:
    """The direction at ``layer``, or a one-line error naming the layers the file has."""
    if layer not in vector.directions:
        raise EmbenchError(
            f"{where}: the vector has no layer {layer}; it has layers "
            f"{', '.join(map(str, vector.layers))}"
        )
    return vector.directions[layer]
