"""Evaluate a checkpoint and re-score a log, through Inspect's own ``eval`` and ``score``.

Nothing here re-implements a task or a scorer: evals run the registered ``embench/<task>`` tasks
with the grid's task args; re-scoring rebuilds the log's task from its recorded args and hands its
scorer to ``inspect_ai.score`` with another model bound to the ``grader`` role (no regeneration).
"""

from __future__ import annotations

import gc
import json
import math
import os
import re
from pathlib import Path
from typing import Any

from embench.errors import EmbenchError, from_inspect_error
from embench.fsutil import atomic_write_text

TASKS = {
    "general": "embench/misalignment",
    "in_domain": "embench/in_domain",
    "persona": "embench/persona",
}


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value


def log_summary(log: Any, judge: str) -> dict[str, Any]:
    """What a report needs from one eval log: metrics, answer/unscored/truncated counts, judge."""
    if log.status != "success":
        error = getattr(log.error, "message", None) or log.status
        raise EmbenchError(
            f"eval of {log.eval.model} did not succeed: {str(error).splitlines()[0]}"
        )
    metrics: dict[str, Any] = {}
    for score in log.results.scores if log.results else []:
        metrics.update({name: m.value for name, m in score.metrics.items()})
    samples = log.samples or []
    truncated = sum(1 for s in samples if s.output and s.output.stop_reason == "max_tokens")
    return _jsonable(
        {
            "task": log.eval.metadata.get("embench_task") if log.eval.metadata else log.eval.task,
            "task_args": log.eval.task_args,
            "model": log.eval.model,
            "judge": judge,
            "metrics": metrics,
            "samples": len(samples),
            "truncated": truncated,
            "errors": sum(1 for s in samples if s.error is not None),
            "log": str(log.location),
        }
    )


def per_answer_scores(log_path: str | Path) -> dict[str, dict[str, float | None]]:
    """Each sample's judge score dict (``aligned``/``coherent``, ...) keyed by ``id:epoch``."""
    from inspect_ai.log import read_eval_log

    log = read_eval_log(str(log_path))
    found: dict[str, dict[str, float | None]] = {}
    for sample in log.samples or []:
        value = next(iter((sample.scores or {}).values()), None)
        if value is not None and isinstance(value.value, dict):
            found[f"{sample.id}:{sample.epoch}"] = {
                k: None if v is None else float(v) for k, v in value.value.items()
            }
    return found


def release_model(reference: str) -> None:
    """Free an evaluated checkpoint's weights (the judge, loaded once, stays)."""
    from embench.models.provider import release_model as release  # torch: only after an eval

    release(reference)
    gc.collect()


def evaluate(
    model: str,
    task: str,
    task_args: dict[str, Any],
    judge: str,
    log_dir: Path,
    seed: int | None = 0,
    model_args: dict[str, Any] | None = None,
    limit: int | None = None,
) -> dict[str, Any]:
    """Run one embench task on ``model`` judged by ``judge``; returns ``log_summary``."""
    from inspect_ai import eval as inspect_eval

    logs = inspect_eval(
        TASKS[task],
        task_args=task_args,
        model=model,
        model_args=model_args or {},
        model_roles={"grader": judge},
        log_dir=str(log_dir),
        log_format="eval",
        display="none",
        seed=seed,
        limit=limit,
        fail_on_error=False,
    )
    if len(logs) != 1 or logs[0].status == "cancelled":
        # Inspect ends an eval cut by Ctrl-C (SIGINT) as cancelled instead of raising: stop the
        # grid as interrupted, so that a rerun resumes this eval
        raise KeyboardInterrupt(f"the eval of {model} was cancelled")
    return log_summary(logs[0], judge)


def judge_slug(judge: str) -> str:
    """A judge name usable in a file name."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", judge).strip("_")


def rescored_path(log_path: Path, judge: str) -> Path:
    """Where the re-scored copy of ``log_path`` goes: ``<stem>.judge-<judge>.eval`` beside it."""
    return log_path.with_name(f"{log_path.stem}.judge-{judge_slug(judge)}.eval")


def rescore(
    log_path: str | Path,
    judge: str,
    output: Path | None = None,
    min_mass: float | None = None,
) -> dict[str, Any]:
    """Re-score an embench eval log's answers with ``judge`` (no regeneration); write a new log.

    ``min_mass``: the judge's minimum probability on numbers, passed to the task as its
    ``-T min_mass`` (None: the log's own, else the task's 0.25); the new log records it.
    Returns ``log_summary`` of the new log. The original log is left untouched.
    """
    from inspect_ai import score as inspect_score
    from inspect_ai.log import read_eval_log, write_eval_log

    from embench import evals
    from embench.evals.importer import REPLAY_MODEL as IMPORT_REPLAY_MODEL
    from embench.extras import check_provider

    path = Path(log_path)
    if not path.is_file():
        raise EmbenchError(f"no eval log at {path}")
    target = Path(output or rescored_path(path, judge))
    if target.resolve() == path.resolve() or (target.exists() and target.samefile(path)):
        raise EmbenchError(
            f"--output {target} is the log being re-scored ({path}); re-scoring never replaces "
            "its input: give another --output"
        )
    if min_mass is not None and not 0 <= min_mass <= 1:
        raise EmbenchError(
            f"--min-mass {min_mass:g}: a share of the judge's probability, from 0 to 1 "
            "(0.25 is the published rule)"
        )
    check_provider(judge)  # before the log (and any local weights) load
    try:
        log = read_eval_log(str(path))
    except Exception as ex:  # a truncated or foreign file
        raise EmbenchError(f"cannot read eval log {path}: {ex}") from None
    name = (log.eval.metadata or {}).get("embench_task")
    builder = getattr(evals, str(name), None)
    if builder is None:
        raise EmbenchError(
            f"{path} was not written by an embench task (no embench_task in its metadata); "
            "re-score other logs with `inspect score`"
        )
    if not log.samples:
        raise EmbenchError(f"{path} has no samples to re-score")
    task_args = dict(log.eval.task_args)
    if min_mass is not None:
        task_args["min_mass"] = min_mass
    try:
        task = builder(**task_args)
    except Exception as ex:  # the task's one-line errors come wrapped for Inspect's CLI
        error = from_inspect_error(ex)
        if error is None:
            raise
        raise EmbenchError(f"cannot rebuild the task of {path}: {error}") from None
    recorded_model = log.eval.model
    if (log.eval.metadata or {}).get("imported"):
        # an imported log names a published model no provider serves; scoring generates nothing
        # with it, but Inspect builds the log's model first
        log.eval.model = IMPORT_REPLAY_MODEL
    scored = inspect_score(
        log,
        task.scorer,
        model_roles={"grader": judge},
        action="overwrite",
        display="none",
    )
    scored.eval.model = recorded_model
    scored.eval.task_args = task_args
    scored.eval.metadata = {
        **(scored.eval.metadata or {}),
        "rescored_from": str(path),
        "judge": judge,
        **({"min_mass": task.metadata["min_mass"]} if "min_mass" in (task.metadata or {}) else {}),
    }
    partial = target.with_name(f".{target.stem}.partial{target.suffix}")
    try:  # a complete log or none: written beside the target, then renamed over it
        write_eval_log(scored, str(partial))
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    scored.location = str(target)
    return log_summary(scored, judge)


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Store JSON atomically (a summary file marks its eval as done)."""
    atomic_write_text(path, json.dumps(data, indent=2, default=str) + "\n")


def read_json(path: Path) -> dict[str, Any] | None:
    """A stored JSON record, or None when absent or unreadable (then it is redone)."""
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
