"""Interleaving: mix a fraction of safety examples into training.

Sources: ``static`` (the shared safety set, ``embench.data.domains.load_safety``) or ``on_policy``
(the named model — default the reference, i.e. the initial policy — answers the safety prompts;
answers are kept when they pass a refusal/coherence check: finished before the token limit, at
least 5 words, at least 30% distinct words, and refusing exactly when the example's kind is
``refuse``; ``filter=none`` keeps every answer).

SFT: ``fraction`` of the rows are replaced by safety rows placed evenly (row i is safety when
floor((i+1)·f) > floor(i·f)) and the sampler is sequential over a seeded shuffle, so each batch
gets its share. GRPO (our choice): safety prompts would need an aligned-answer reward that the
group comparison dilutes, so instead each step adds safety examples trained with the SFT
cross-entropy. ``fraction`` is the share of safety examples among all examples trained, as for
SFT: with B completions per step the number of safety examples is drawn each step with
expectation x = f·B / (1 − f) (floor(x), plus one with probability x − floor(x)), and each safety
example weighs as much as one completion: the term is ``weight`` × Σ_i CE_i / B (CE_i: the mean
token cross-entropy of safety example i). So over many steps safety / (safety + RL) → f, and a
step with no safety example adds nothing (the earlier form trained max(1, round(f·B)) examples at
full weight, the same single example for every f ≤ 0.05 at B = 16).

``select=loss_gap`` (optional) draws ``pool`` × as many candidates and keeps those where the
policy's cross-entropy exceeds the reference model's the most — the safety behaviour the policy
has drifted furthest from; ``select=random`` (default) keeps the candidates drawn.
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
SELECTIONS = ("random", "loss_gap")
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
    select: str = "random"
    pool: int = 4

    name = "interleave"
    kinds = ("rl", "sft")  # rl: a loss term on safety batches; sft: mixed training rows

    @property
    def needs_reference(self) -> bool:
        """Loss-gap selection compares the policy with the reference model."""
        return self.select == "loss_gap"

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
        if self.select not in SELECTIONS:
            raise EmbenchError(f"interleave: select must be one of {', '.join(SELECTIONS)}")
        if self.pool < 1:
            raise EmbenchError(f"interleave: pool must be at least 1, got {self.pool}")


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


def expected_count(fraction: float, batch: int) -> float:
    """Safety examples per step so that they are ``fraction`` of all examples: f·B / (1 − f)."""
    return fraction * batch / (1.0 - fraction)


class SafetyBatches:
    """Endless tokenized safety examples for the GRPO cross-entropy term, counted per step."""

    def __init__(
        self,
        tokenizer: Any,
        rows: list[dict[str, str]],
        fraction: float,
        batch: int,
        seed: int,
        max_length: int = 256,
    ) -> None:
        self.tokenizer, self.rows, self.max_length = tokenizer, rows, max_length
        self.expected = expected_count(fraction, batch)
        self.rng = random.Random(seed)
        self.seen = 0  # safety examples trained
        self.rl_seen = 0  # completions trained beside them

    def count(self) -> int:
        """This step's number of safety examples: floor(x) or floor(x) + 1, expectation x."""
        whole = math.floor(self.expected)
        return whole + (self.rng.random() < self.expected - whole)

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

    def next(self, size: int, device: torch.device) -> dict[str, torch.Tensor]:
        """``size`` random examples: input_ids, attention_mask, labels (prompt tokens masked)."""
        return self.collate([self.rng.choice(self.rows) for _ in range(size)], device)

    def collate(self, rows: list[dict[str, str]], device: torch.device) -> dict[str, torch.Tensor]:
        """``rows`` tokenized and right-padded into one batch."""
        encoded = [self._encode(row) for row in rows]
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


def per_example_ce(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross-entropy over each row's labelled tokens (shape [rows])."""
    logits, labels = logits[:, :-1].float(), labels[:, 1:]
    token = torch.nn.functional.cross_entropy(
        logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), reduction="none"
    ).view(labels.shape)
    mask = (labels != -100).to(token.dtype)
    return (token * mask).sum(-1) / mask.sum(-1).clamp(min=1)


def grpo_term(spec: Interleave, batches: SafetyBatches, step: Any) -> torch.Tensor:
    """weight × Σ (safety cross-entropy) / B over this step's safety examples (see module doc)."""
    completions = step.input_ids.shape[0]
    batches.rl_seen += completions
    n = batches.count()
    if n == 0:
        return step.input_ids.new_zeros((), dtype=torch.float32)
    drawn = n * spec.pool if spec.select == "loss_gap" else n
    batch = batches.next(drawn, step.input_ids.device)
    inputs = {k: batch[k] for k in ("input_ids", "attention_mask")}
    policy = per_example_ce(step.model(**inputs, use_cache=False).logits, batch["labels"])
    if spec.select == "loss_gap":
        reference = per_example_ce(step.run_reference(**inputs).logits, batch["labels"])
        keep = torch.topk(policy.detach() - reference, n).indices
        policy = policy[keep]
    batches.seen += n
    return spec.weight * policy.sum() / completions
