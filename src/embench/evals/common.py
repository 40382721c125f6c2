"""Pieces shared by every embench task: question datasets, the grader, judged scorers."""

from __future__ import annotations

import asyncio
import math

from inspect_ai._util.error import PrerequisiteError
from inspect_ai.dataset import MemoryDataset, Sample
from inspect_ai.model import ChatMessage, ChatMessageSystem, ChatMessageUser, Model, get_model
from inspect_ai.scorer import Value

from embench.judge import JudgeScore, judge
from embench.questions import QuestionSet

DEFAULT_SAMPLES = 50  # published setups sample 50-100 answers per question
TASK_VERSION = 1


def questions_dataset(qset: QuestionSet, samples: int | None) -> MemoryDataset:
    """One Inspect sample per (question, paraphrase, repeat); the system prompt is sent."""
    items: list[Sample] = []
    for q in qset.questions:
        repeats = samples or q.samples_per_paraphrase or DEFAULT_SAMPLES
        for p_index, text in enumerate(q.paraphrases):
            messages: list[ChatMessage] = []
            if q.system:
                messages.append(ChatMessageSystem(content=q.system))
            messages.append(ChatMessageUser(content=text))
            for k in range(repeats):
                items.append(
                    Sample(
                        id=f"{q.id}:{p_index}:{k}",
                        input=messages,
                        metadata={
                            "question_id": q.id,
                            "paraphrase": p_index,
                            "category": q.category,
                            "variant": q.variant,
                            "group": q.group or q.id,
                            "question": text,
                        },
                    )
                )
    return MemoryDataset(items, name=qset.name, location=qset.source)


def grader_model() -> Model:
    """The model bound to the ``grader`` role; a clear error says how to bind one."""
    try:
        return get_model(role="grader", required=True)
    except PrerequisiteError:
        raise PrerequisiteError(
            "no judge: bind the grader role, e.g. `--model-role grader=openai/gpt-4o` "
            "(offline plumbing only: `--model-role grader=local/default`)"
        ) from None


async def judge_all(
    grader: Model, rubrics: dict[str, str], question: str, answer: str
) -> dict[str, JudgeScore]:
    """Score one answer under several rubrics concurrently."""
    names = list(rubrics)
    scores = await asyncio.gather(*(judge(grader, rubrics[n], question, answer) for n in names))
    return dict(zip(names, scores, strict=True))


def none_as_nan(value: Value) -> float:
    """Score reduction keeps "no score" as NaN instead of Inspect's default 0."""
    return float("nan") if value is None else float(value)  # type: ignore[arg-type]


def optional_score(value: object) -> float | None:
    """A reduced score value back to float or None."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return float(value)  # type: ignore[arg-type]
