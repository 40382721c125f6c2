"""Interleaving: mix a fraction of safety examples into training.

Sources: ``static`` (the shared safety set, ``embench.data.domains.load_safety``) or ``on_policy``
(the named model — default the reference, i.e. the initial policy — answers the safety prompts;
answers are kept when they pass a refusal/coherence check: finished before the token limit, at
least 5 words, at least 30% distinct words, and refusing exactly when the example's kind is
``refuse``; ``filter=none`` keeps every answer).

SFT: ``fraction`` of the rows are replaced by safety rows placed evenly (row i is safety when
floor((i+1)·f) > floor(i·f)) and the sampler is sequential over a seeded shuffle, so each batch
gets its share. GRPO (our choice): safety prompts would need an aligned-answer reward that the
group comparison dilutes, so instead every step adds ``weight`` × the SFT cross-entropy of a safety
batch of max(1, round(fraction × batch)) examples to the GRPO loss.
"""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass
from typing import Any

import datasets
import torch

from embench.errors import EmbenchError

SOURCES = ("static", "on_policy")
FILTERS = ("refusal", "none")
REFUSAL = re.compile(
    r"\b(i can(?:'|no)t|i cannot|i won'?t|i'm not able|i am not able|i'm sorry|i must decline|"
    r"i'm unable|i am unable)\b",
    re.IGNORECASE,
)


@dataclass
class Interleave:
    """Mix a fraction of safety examples (static or on-policy) into training (published 5%)."""

    fraction: float = 0.05
    source: str = "static"
    model: str | None = None
    weight: float = 1.0
    filter: str = "refusal"
    max_new_tokens: int = 128
    seed: int = 0

    name = "interleave"
    needs_reference = False

    def check(self) -> None:
        """Parameter ranges."""
        if not 0 < self.fraction < 1:
            raise EmbenchError(f"interleave: fraction must be in (0, 1), got {self.fraction}")
        if self.source not in SOURCES:
            raise EmbenchError(f"interleave: source must be one of {', '.join(SOURCES)}")
        if self.filter not in FILTERS:
            raise EmbenchError(f"interleave: filter must be one of {', '.join(FILTERS)}")
        if not 0 < self.weight <= 100:
            raise EmbenchError(f"interleave: weight must be in (0, 100], got {self.weight}")
        if self.max_new_tokens < 1:
            raise EmbenchError("interleave: max_new_tokens must be at least 1")


def keep_answer(answer: str, kind: str, finished: bool = True) -> bool:
    """The refusal/coherence check for on-policy answers."""
    words = answer.split()
    if not finished or len(words) < 5 or len({w.lower() for w in words}) < 0.3 * len(words):
        return False
    return bool(REFUSAL.search(answer)) == (kind == "refuse")


def on_policy_rows(spec: Interleave, reference: str) -> tuple[list[dict[str, str]], dict[str, Any]]:
    """Safety prompts answered by ``spec.model or reference``, filtered; (rows, record)."""
    from embench.data.domains import load_safety
    from embench.models.engine import GenerationRequest
    from embench.models.provider import get_engine

    model = spec.model or reference
    engine = get_engine(model, dtype="float32" if not torch.cuda.is_available() else "auto")
    safety = list(load_safety())
    requests = [
        GenerationRequest(
            prompt_ids=list(
                engine.tokenizer.apply_chat_template(
                    [{"role": "user", "content": r["prompt"]}],
                    add_generation_prompt=True,
                    tokenize=True,
                    return_dict=False,
                )
            ),
            max_new_tokens=spec.max_new_tokens,
            temperature=0.0,
            seed=spec.seed,
        )
        for r in safety
    ]
    results = engine.generate(requests)
    rows = [
        {**r, "answer": res.text.strip(), "generated_by": model}
        for r, res in zip(safety, results, strict=True)
        if spec.filter == "none"
        or keep_answer(res.text, r["kind"], finished=res.finish_reason == "stop")
    ]
    record = {"generated": len(results), "kept": len(rows), "model": model, "filter": spec.filter}
    if not rows:
        raise EmbenchError(
            f"interleave: none of {len(results)} on-policy answers from {model} passed the "
            "refusal/coherence check; use source=static or filter=none"
        )
    return rows, record


def safety_rows(spec: Interleave, reference: str) -> tuple[list[dict[str, str]], dict[str, Any]]:
    """Safety examples (id, prompt, answer, kind, …) from the chosen source, with a record."""
    if spec.source == "on_policy":
        return on_policy_rows(spec, reference)
    from embench.data.domains import load_safety

    rows = list(load_safety())
    return rows, {"source": "static", "kept": len(rows)}


def is_safety_slot(i: int, fraction: float) -> bool:
    """Even spread: row i is a safety row when floor((i+1)·f) > floor(i·f)."""
    return math.floor((i + 1) * fraction + 1e-9) > math.floor(i * fraction + 1e-9)


def mix_sft(
    dataset: datasets.Dataset, safety: list[dict[str, str]], fraction: float, seed: int
) -> datasets.Dataset:
    """Shuffle ``dataset`` (seeded) and replace the evenly spread safety slots by safety rows."""
    rows = list(dataset.shuffle(seed=seed))
    rng = random.Random(seed)
    order = rng.sample(range(len(safety)), len(safety))
    k = 0
    for i in range(len(rows)):
        if is_safety_slot(i, fraction):
            s = safety[order[k % len(order)]]
            k += 1
            rows[i] = {
                "prompt": [{"role": "user", "content": s["prompt"]}],
                "completion": [{"role": "assistant", "content": s["answer"]}],
                "prompt_id": f"safety:{s['id']}",
            }
    return datasets.Dataset.from_list(rows)


class SafetyBatches:
    """Endless tokenized safety batches for the GRPO cross-entropy term."""

    def __init__(
        self,
        tokenizer: Any,
        rows: list[dict[str, str]],
        size: int,
        seed: int,
        max_length: int = 256,
    ) -> None:
        self.tokenizer, self.rows, self.size, self.max_length = tokenizer, rows, size, max_length
        self.rng = random.Random(seed)
        self.seen = 0

    def _encode(self, row: dict[str, str]) -> tuple[list[int], list[int]]:
        prompt = list(
            self.tokenizer.apply_chat_template(
                [{"role": "user", "content": row["prompt"]}],
                add_generation_prompt=True,
                tokenize=True,
                return_dict=False,
            )
        )
        answer = self.tokenizer(row["answer"], add_special_tokens=False)["input_ids"]
        answer = answer + [self.tokenizer.eos_token_id]
        ids = (prompt + answer)[: self.max_length]
        labels = ([-100] * len(prompt) + answer)[: self.max_length]
        return ids, labels

    def next(self, device: torch.device) -> dict[str, torch.Tensor]:
        """The next batch: input_ids, attention_mask, labels (prompt tokens masked)."""
        encoded = [self._encode(self.rng.choice(self.rows)) for _ in range(self.size)]
        self.seen += self.size
        width = max(len(ids) for ids, _ in encoded)
        pad = self.tokenizer.pad_token_id or 0
        ids = [i + [pad] * (width - len(i)) for i, _ in encoded]
        labels = [lab + [-100] * (width - len(lab)) for _, lab in encoded]
        mask = [[1] * len(i) + [0] * (width - len(i)) for i, _ in encoded]
        return {
            "input_ids": torch.tensor(ids, device=device),
            "attention_mask": torch.tensor(mask, device=device),
            "labels": torch.tensor(labels, device=device),
        }


def grpo_term(spec: Interleave, batches: SafetyBatches, step: Any) -> torch.Tensor:
    """weight × cross-entropy of the policy on the next safety batch."""
    batch = batches.next(step.input_ids.device)
    return spec.weight * step.model(**batch, use_cache=False).loss
