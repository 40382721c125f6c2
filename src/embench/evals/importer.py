"""``embench import``: published judged answers become an Inspect log of the misalignment task.

Each answer is one sample whose output is the recorded answer (reasoning as Inspect reasoning
content) and whose score holds the recorded ``aligned``/``coherent`` (method ``imported``); the
metrics are the misalignment task's own. ``embench rescore`` then re-judges the same answers.
"""

from __future__ import annotations

import os
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from inspect_ai import Task
from inspect_ai import eval as inspect_eval
from inspect_ai.dataset import MemoryDataset, Sample
from inspect_ai.log import EvalLog, read_eval_log, write_eval_log
from inspect_ai.model import (
    ChatCompletionChoice,
    ChatMessageAssistant,
    ContentReasoning,
    ContentText,
    ModelOutput,
)
from inspect_ai.solver import Generate, Solver, TaskState, solver

from embench.errors import EmbenchError
from embench.evals.common import TASK_VERSION
from embench.evals.judged_files import IMPORTED_NOTE, read_judged, row_values
from embench.evals.misalignment import TASK_NAME, misalignment_judge, task_metrics
from embench.judge import MIN_MASS
from embench.metrics import ALIGNED_THRESHOLD, COHERENT_THRESHOLD
from embench.questions import load_question_set

REPLAY_MODEL = "mockllm/model"  # generates nothing: the replay solver sets every output


@solver
def replay() -> Solver:
    """Set the sample's output to its recorded answer (no model is called)."""

    async def solve(state: TaskState, generate: Generate) -> TaskState:
        answer, reasoning = state.metadata["answer"], state.metadata["reasoning"]
        content: Any = answer
        if reasoning:
            content = [ContentReasoning(reasoning=reasoning), ContentText(text=answer)]
        message = ChatMessageAssistant(content=content, model=str(state.model))
        state.messages.append(message)
        state.output = ModelOutput(
            model=str(state.model),
            choices=[ChatCompletionChoice(message=message, stop_reason="stop")],
        )
        return state

    return solve


def _dataset(rows: list[dict[str, Any]], name: str) -> MemoryDataset:
    counts: Counter[str] = Counter()
    samples = []
    for row in rows:
        qid = row["question_id"]
        samples.append(
            Sample(
                id=f"{qid}:0:{counts[qid]}",
                input=row["question"],
                metadata={
                    "question_id": qid,
                    "paraphrase": 0,
                    "group": qid,
                    "question": row["question"],
                    "answer": row["answer"],
                    "reasoning": row["reasoning"],
                    "recorded": {k: row[k] for k in ("aligned", "coherent", "truncated")},
                    "columns": row["extra"],
                },
            )
        )
        counts[qid] += 1
    return MemoryDataset(samples, name=name)


def import_judged(
    source: str | Path,
    model: str,
    judge: str,
    output: str | Path,
    questions: str | None = None,
) -> EvalLog:
    """Write ``output`` (an Inspect ``.eval`` log) from a file of judged answers; returns it."""
    source, output = Path(source), Path(output)
    if output.suffix != ".eval":
        raise EmbenchError(f"--output {output}: give a .eval file name")
    if "/" not in model.strip("/"):  # Inspect's model names are <provider>/<name>
        raise EmbenchError(
            f"--model {model}: name the model as <org>/<name>, e.g. "
            "emergent-misalignment/Qwen-Coder-Insecure"
        )
    rows = [row_values(r) for r in read_judged(source)]
    qset = load_question_set(questions or "general")  # rubrics for a later rescore
    # the questions answered, when named: a board checks the answers against that set
    named = {"question_set_source": qset.source, "fingerprint": qset.fingerprint()}
    task = Task(
        dataset=_dataset(rows, source.stem),
        solver=replay(),
        scorer=misalignment_judge(qset.source, None, MIN_MASS, imported=True),
        metrics=task_metrics(ALIGNED_THRESHOLD, COHERENT_THRESHOLD),
        name=TASK_NAME,
        version=TASK_VERSION,
        metadata={
            "embench_task": TASK_NAME,
            "imported": IMPORTED_NOTE,
            "imported_from": source.name,
            "judge": judge,
            "question_set": qset.name,
            **(named if questions else {}),
            "thresholds": {"aligned": ALIGNED_THRESHOLD, "coherent": COHERENT_THRESHOLD},
            "protocol": "imported",
        },
    )
    with tempfile.TemporaryDirectory() as scratch:
        (log,) = inspect_eval(task, model=REPLAY_MODEL, log_dir=scratch, display="none")
        log = read_eval_log(log.location)  # whole, before the scratch folder goes
    if log.status != "success":
        raise EmbenchError(f"importing {source} failed: {log.error.message if log.error else ''}")
    log.eval.model = model
    log.eval.task_args = {"questions": questions} if questions else {}
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(f".{output.stem}.partial{output.suffix}")
    try:  # a complete log or none
        write_eval_log(log, str(partial))
        os.replace(partial, output)
    finally:
        partial.unlink(missing_ok=True)
    log.location = str(output)
    return log
