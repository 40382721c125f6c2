"""Persona vectors: a trait's direction in a model's residual stream, and projections onto it.

``compute_vector`` answers a trait's questions under each of its system-prompt pairs (one asks
for the trait, one for its opposite), optionally keeps only answers a judge finds expressing /
not expressing the trait, and takes, per layer, the mean over eliciting answers minus the mean
over suppressing answers of each answer's mean response-token activation — the "response
average difference" of the persona-vectors method the seed paper steers with. Generation uses
the ``local`` provider's engine; trait prompts are the project's own (``data/persona/``).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml

from embench.errors import EmbenchError
from embench.models.engine import GenerationRequest
from embench.models.provider import encode_chat, get_engine
from embench.models.steering import decoder_layers, response_activations
from embench.models.vector_file import PersonaVector
from embench.paths import DATA_DIR

TRAITS_DIR = DATA_DIR / "persona"
SIDES = ("eliciting", "suppressing")


@dataclass(frozen=True)
class Trait:
    """A trait's system-prompt pairs, extraction and held-out questions, and judge rubric."""

    name: str
    description: str
    pairs: tuple[tuple[str, str], ...]
    questions: tuple[str, ...]
    heldout: tuple[str, ...]
    rubric: str

    def sha256(self) -> str:
        """Hash of the prompts and questions a vector was computed from."""
        record = {"pairs": self.pairs, "questions": self.questions, "rubric": self.rubric}
        return hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()


def available_traits() -> list[str]:
    """Names of the shipped traits."""
    return sorted(p.stem for p in TRAITS_DIR.glob("*.yaml"))


def load_trait(name: str) -> Trait:
    """A shipped trait by name, or a trait YAML file by path."""
    path = Path(name) if name.endswith((".yaml", ".yml")) else TRAITS_DIR / f"{name}.yaml"
    if not path.is_file():
        raise EmbenchError(
            f"unknown trait '{name}'; available: {', '.join(available_traits())} (or a .yaml file)"
        )
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    try:
        pairs = tuple((str(p["eliciting"]), str(p["suppressing"])) for p in data["pairs"])
        return Trait(
            name=str(data.get("trait", path.stem)),
            description=str(data.get("description", "")),
            pairs=pairs,
            questions=tuple(map(str, data["questions"])),
            heldout=tuple(map(str, data.get("heldout") or ())),
            rubric=str(data.get("rubric", "")),
        )
    except (KeyError, TypeError) as error:
        raise EmbenchError(
            f"{path}: a trait file needs 'pairs' (eliciting/suppressing) and 'questions' ({error})"
        ) from None


@dataclass
class Answer:
    """One generated answer and where it came from."""

    side: str
    pair: int
    question: str
    prompt_ids: list[int]
    answer_ids: list[int]
    text: str


def generate_answers(
    engine: Any,
    trait: Trait,
    questions: list[str],
    samples: int = 1,
    max_tokens: int = 64,
    seed: int = 0,
    temperature: float = 1.0,
) -> list[Answer]:
    """Answers to every question under both sides of every pair (``samples`` each)."""
    jobs: list[tuple[str, int, str, list[int]]] = []
    for index, pair in enumerate(trait.pairs):
        for side, system in zip(SIDES, pair, strict=True):
            for question in questions:
                messages = [{"role": "system", "content": system},
                            {"role": "user", "content": question}]  # fmt: skip
                jobs.append((side, index, question, encode_chat(engine.tokenizer, messages)))
    requests = [
        GenerationRequest(
            prompt_ids=ids,
            max_new_tokens=max_tokens,
            temperature=temperature,
            seed=seed * 1_000_003 + n,
        )  # fmt: skip
        for n, (_, _, _, ids) in enumerate(j for j in jobs for _ in range(samples))
    ]
    results = engine.generate(requests)
    expanded = [j for j in jobs for _ in range(samples)]
    return [
        Answer(side, pair, question, ids, list(r.token_ids), r.text)
        for (side, pair, question, ids), r in zip(expanded, results, strict=True)
        if r.token_ids
    ]


def judge_filter(answers: list[Answer], trait: Trait, judge: str, threshold: float) -> list[Answer]:
    """Keep eliciting answers the judge scores >= threshold for the trait and suppressing answers
    it scores below it; answers without a score are dropped."""
    from inspect_ai.model import get_model

    from embench.judge import judge as judge_one

    if not trait.rubric:
        raise EmbenchError(f"trait '{trait.name}' has no rubric: it cannot be judged")
    grader = get_model(judge)

    async def scores() -> list[Any]:
        return await asyncio.gather(
            *(judge_one(grader, trait.rubric, a.question, a.text) for a in answers)
        )

    kept = []
    for answer, verdict in zip(answers, asyncio.run(scores()), strict=True):
        if verdict.value is None:
            continue
        if (verdict.value >= threshold) == (answer.side == "eliciting"):
            kept.append(answer)
    return kept


def side_means(
    model: Any, answers: list[Answer], layers: list[int], pad_id: int
) -> dict[str, torch.Tensor]:
    """Per side, [layers, hidden]: the mean over its answers of their response activations."""
    acts = response_activations(
        model, [a.prompt_ids for a in answers], [a.answer_ids for a in answers], layers, pad_id
    )
    out = {}
    for side in SIDES:
        rows = [i for i, a in enumerate(answers) if a.side == side]
        if not rows:
            raise EmbenchError(
                f"no {side} answers left to average (did the judge filter drop them all?)"
            )
        out[side] = acts[rows].mean(0)
    return out


def compute_vector(
    model: str,
    trait_name: str = "evil",
    layers: list[int] | None = None,
    questions: list[str] | None = None,
    judge: str | None = None,
    samples: int = 1,
    max_tokens: int = 64,
    seed: int = 0,
    threshold: float = 50.0,
    dtype: str = "auto",
) -> PersonaVector:
    """The trait's direction at each of ``layers`` (default: every layer) of ``model``."""
    trait = load_trait(trait_name)
    engine = get_engine(model, dtype)
    count = len(decoder_layers(engine.model))
    layers = sorted(set(layers or range(1, count + 1)))
    bad = [n for n in layers if not 1 <= n <= count]
    if bad:
        raise EmbenchError(f"--layers {bad}: this model has layers 1-{count}")
    answers = generate_answers(
        engine, trait, list(questions or trait.questions), samples, max_tokens, seed
    )
    generated = len(answers)
    if judge:
        answers = judge_filter(answers, trait, judge, threshold)
    means = side_means(engine.model, answers, layers, engine.pad_id)
    difference = means["eliciting"] - means["suppressing"]
    return PersonaVector(
        directions={n: difference[i] for i, n in enumerate(layers)},
        model=model,
        trait=trait.name,
        prompts_sha256=trait.sha256(),
        counts={
            **{side: sum(a.side == side for a in answers) for side in SIDES},
            "dropped_by_judge": generated - len(answers),
        },
        extra={
            "judge": judge,
            "threshold": threshold if judge else None,
            "samples": samples,
            "max_tokens": max_tokens,
            "seed": seed,
            "questions": len(questions or trait.questions),
            "dtype": engine.dtype,
        },
    )


def project(activations: torch.Tensor, direction: torch.Tensor) -> torch.Tensor:
    """Scalar projection of activations ([..., hidden]) onto the unit direction."""
    unit = direction.float() / direction.float().norm().clamp(min=1e-12)
    return activations.float() @ unit
