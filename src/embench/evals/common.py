"""Pieces shared by every embench task: question datasets, the grader, judged scorers."""

from __future__ import annotations

import asyncio
import math

from inspect_ai import Epochs, Task
from inspect_ai._util.error import PrerequisiteError
from inspect_ai.dataset import MemoryDataset, Sample
from inspect_ai.model import (
    ChatMessage,
    ChatMessageSystem,
    ChatMessageUser,
    GenerateConfig,
    Model,
    get_model,
)
from inspect_ai.scorer import Scorer, Value, mean_score
from inspect_ai.solver import generate

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


def judged_task(
    name: str,
    qset: QuestionSet,
    samples: int | None,
    scorer: Scorer,
    temperature: float,
    max_tokens: int,
    metadata: dict[str, object],
) -> Task:
    """A task that samples answers to a question set and judges them (no score stays no score)."""
    return Task(
        dataset=questions_dataset(qset, samples),
        solver=generate(),
        scorer=scorer,
        config=GenerateConfig(temperature=temperature, max_tokens=max_tokens),
        epochs=Epochs(1, mean_score(value_to_float=none_as_nan)),
        name=name,
        version=TASK_VERSION,
        metadata={
            "question_set": qset.name,
            "question_set_version": qset.version,
            "question_set_source": qset.source,
            "fingerprint": qset.fingerprint(),
            "samples_per_question": samples,
            **metadata,
        },
    )
