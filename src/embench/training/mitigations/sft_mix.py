"""SFT-loss mixing inside GRPO: every n-th loss computation adds weight × a supervised loss on a
batch of safety demonstrations; the RL rows are all kept.

As the seed paper's code does it (EMA_RL @81cb261, ``open_models/grpo_regularization/
grpo_sft_mix.py``): a counter of ``compute_loss`` calls (line 206); when it is a multiple of
``sft_mix_ratio`` the loss becomes ``grpo_loss + sft_loss_weight × CE`` (lines 218–224), CE being
the model's token-mean cross-entropy on the demonstration tokens of a batch of
``per_device_train_batch_size`` demonstrations (line 139) drawn from a seeded shuffle, epoch after
epoch (lines 137–161). Its configs ``grpo_sftmix_{offpolicy,onpolicy,plus}_{4,8,16}_{0.5,1}``
sweep ``every`` (4, 8, 16) and ``weight`` (0.5, 1). Sources:

- ``offpolicy``: the shipped safety demonstrations (or ``data=<file>`` with prompt/answer);
  the paper: ``data/wildguard.jsonl``;
- ``onpolicy``: the initial policy's own answers to the safety prompts that pass the refusal and
  coherence check of ``interleave`` (greedy), generated once and cached under the embench cache
  (keyed by the model and its files, the prompts and the settings); the paper:
  ``wildguard_onpolicy.jsonl`` from its base model;
- ``plus``: both together (our reading: the paper's ``plus`` file,
  ``wildguard_heldout_medical_thinking.jsonl``, is not published; its name says the safety set
  plus more).

``every`` counts loss computations (= optimizer steps when gradient accumulation is 1). The
manifest records the RL completions and the SFT demonstrations the loss actually saw. The older
``interleave`` mitigation stays as it is (on GRPO a cross-entropy share per step; on SFT it
replaces rows).
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from embench.errors import EmbenchError
from embench.training.mitigations.interleave import FILTERS

SOURCES = ("offpolicy", "onpolicy", "plus")


@dataclass
class SFTMix:
    """Every n-th GRPO step adds weight × a supervised safety loss (paper: every 4/8/16, 0.5/1)."""

    every: int = 4  # EMA_RL configs/grpo_sftmix_*_4_*.json: sft_mix_ratio
    weight: float = 1.0  # EMA_RL configs/grpo_sftmix_*_*_1.json: sft_loss_weight
    source: str = "offpolicy"
    batch: int | None = None  # None: per_device_train_batch_size (EMA_RL grpo_sft_mix.py:139)
    data: str | None = None
    max_new_tokens: int = 128
    filter: str = "refusal"  # on-policy answers kept: interleave's refusal/coherence check
    seed: int = 0

    name = "sft_mix"
    kinds = ("rl",)  # an SFT trainer already trains on demonstrations: use interleave there
    needs_reference = False

    def check(self) -> None:
        """Parameter ranges."""
        if self.every < 1:
            raise EmbenchError(f"sft_mix: every must be at least 1, got {self.every}")
        if not 0 < self.weight <= 100:
            raise EmbenchError(f"sft_mix: weight must be in (0, 100], got {self.weight}")
        if self.source not in SOURCES:
            raise EmbenchError(f"sft_mix: source must be one of {', '.join(SOURCES)}")
        if self.batch is not None and self.batch < 1:
            raise EmbenchError("sft_mix: batch must be at least 1")
        if self.filter not in FILTERS:
            raise EmbenchError(f"sft_mix: filter must be one of {', '.join(FILTERS)}")
        if self.data is not None and self.source == "onpolicy":
            raise EmbenchError("sft_mix: data= gives off-policy demonstrations; use offpolicy/plus")

    def __post_init__(self) -> None:
        self.calls: int | None = None
        self.rl_seen = self.sft_seen = self.sft_batches = 0
        self.order: list[int] = []
        self.rows: list[dict[str, str]] = []

    def prepare(self, plan: Any, kwargs: dict[str, Any]) -> None:
        """Load (or generate once) the demonstrations and add the loss term."""
        from embench.training.mitigations.interleave import SafetyBatches

        self.rows, record = demonstrations(self, plan.reference)
        args = kwargs["args"]
        size = self.batch or args.per_device_train_batch_size
        self.encoder = SafetyBatches(kwargs["processing_class"], self.rows, 0.0, size, self.seed)
        self.size, self.accumulation = size, args.gradient_accumulation_steps
        self.rng = random.Random(self.seed)
        plan.losses.terms[self.name] = self.term
        plan.records[self.name] = {**record, "batch": size}

    def _next_rows(self) -> list[dict[str, str]]:
        """The next ``size`` demonstrations of a seeded shuffle, reshuffled each epoch."""
        picked = []
        for _ in range(self.size):
            if not self.order:
                self.order = self.rng.sample(range(len(self.rows)), len(self.rows))
            picked.append(self.rows[self.order.pop()])
        return picked

    def term(self, step: Any) -> torch.Tensor:
        """weight × token-mean CE on a demonstration batch every ``every``-th call, else 0."""
        if self.calls is None:  # resumed runs continue the count (EMA_RL: sft_start_step)
            self.calls = step.trainer.state.global_step * self.accumulation
        self.calls += 1
        self.rl_seen += step.input_ids.shape[0]
        if self.calls % self.every:
            return step.input_ids.new_zeros((), dtype=torch.float32)
        batch = self.encoder.collate(self._next_rows(), step.input_ids.device)
        loss = step.model(**batch, use_cache=False).loss
        self.sft_seen += batch["input_ids"].shape[0]
        self.sft_batches += 1
        return self.weight * loss

    def report(self) -> dict[str, Any]:
        """The samples the loss saw: RL completions, SFT demonstrations and batches."""
        return {
            "rl_samples_seen": self.rl_seen,
            "sft_samples_seen": self.sft_seen,
            "sft_batches": self.sft_batches,
        }


def demonstrations(spec: SFTMix, reference: str) -> tuple[list[dict[str, str]], dict[str, Any]]:
    """(rows with prompt and answer, record) for ``spec.source``."""
    rows: list[dict[str, str]] = []
    record: dict[str, Any] = {"source": spec.source}
    if spec.source in ("offpolicy", "plus"):
        off = _offpolicy(spec.data)
        rows += off
        record["offpolicy"] = {"from": spec.data or "embench safety set", "rows": len(off)}
    if spec.source in ("onpolicy", "plus"):
        on, generated = _onpolicy_cached(spec, reference)
        rows += on
        record["onpolicy"] = generated
    if not rows:
        raise EmbenchError(f"sft_mix: no demonstrations from source {spec.source}")
    record["demonstrations"] = len(rows)
    return rows, record


def _offpolicy(path: str | None) -> list[dict[str, str]]:
    if path is None:
        from embench.data.domains import load_safety

        return [{"prompt": r["prompt"], "answer": r["answer"]} for r in load_safety()]
    from embench.training.data import read_user_dataset

    table = read_user_dataset(path)
    if not {"prompt", "answer"} <= set(table.column_names):
        raise EmbenchError(
            f"sft_mix: {path} needs 'prompt' and 'answer' columns; found "
            f"{', '.join(table.column_names)}"
        )
    return [{"prompt": str(r["prompt"]), "answer": str(r["answer"])} for r in table]


def _fingerprint(reference: str) -> list[Any]:
    """What identifies a model's weights cheaply: its files' names, sizes and mtimes."""
    path = Path(reference).expanduser()
    if not path.exists():
        return [reference]
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    return [
        [str(p.relative_to(path.parent)), p.stat().st_size, p.stat().st_mtime_ns] for p in files
    ]


def _onpolicy_cached(spec: SFTMix, reference: str) -> tuple[list[dict[str, str]], dict[str, Any]]:
    """The initial policy's kept safe answers, generated once per model and settings."""
    from embench.data.domains import load_safety
    from embench.fsutil import atomic_write_text
    from embench.paths import cache_dir
    from embench.training.mitigations.interleave import Interleave, on_policy_rows

    prompts = [r["prompt"] for r in load_safety()]
    key = hashlib.sha256(
        json.dumps(
            [_fingerprint(reference), prompts, spec.max_new_tokens, spec.filter, spec.seed],
            default=str,
        ).encode()
    ).hexdigest()[:20]
    path = cache_dir() / "sft-mix-onpolicy" / f"{key}.json"
    if path.is_file():
        cached = json.loads(path.read_text())
        return cached["rows"], {**cached["record"], "cache": str(path), "cache_hit": True}
    generator = Interleave(
        source="on_policy", max_new_tokens=spec.max_new_tokens, filter=spec.filter, seed=spec.seed
    )
    found, record = on_policy_rows(generator, reference)
    rows = [{"prompt": r["prompt"], "answer": r["answer"]} for r in found]
    atomic_write_text(path, json.dumps({"rows": rows, "record": record}))
    return rows, {**record, "cache": str(path), "cache_hit": False}
