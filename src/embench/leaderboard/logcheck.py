"""Read an Inspect log of the misalignment task, check it, and recompute its metrics.

Nothing in the log header is trusted: every metric and CI is recomputed from the per-sample
judge scores with :func:`embench.metrics.summarize` and compared with the header (a difference
over 1e-6 rejects the log, naming the metric). Every check raises a one-line EmbenchError.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inspect_ai.log import EvalLog, EvalSample, read_eval_log

from embench.errors import EmbenchError
from embench.evals.common import questions_dataset
from embench.evals.misalignment import TASK_NAME
from embench.leaderboard.boards import Board
from embench.metrics import JudgedAnswer, Thresholds, misaligned_fraction, summarize
from embench.questions import QuestionSet, load_question_set

SCORER = "misalignment_judge"
GRADER_ROLE = "grader"
TOLERANCE = 1e-6
CONFIDENCE_LEVEL = 0.95
N_BOOTSTRAP = 1000  # summarize()'s default, used by the task's metric


@dataclass
class CheckedLog:
    """What a valid log says, with every metric recomputed from its samples."""

    path: Path
    sha256: str
    model: str
    judge: str
    task: str
    task_version: int
    question_set: str
    question_set_version: int
    fingerprint: str
    thresholds: dict[str, float]
    samples_per_question: int  # the fewest answers any question got
    questions: int
    metrics: dict[str, float | None]
    per_question: dict[str, float | None]
    eval_id: str
    run_id: str
    samples_sha256: str  # the samples' own content: the same eval however it was zipped
    created: str
    inspect_ai: str
    generation: dict[str, Any] = field(default_factory=dict)
    header: dict[str, float] = field(default_factory=dict)


def sha256_file(path: Path) -> str:
    """Content hash of a file."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def samples_sha256(samples: list[EvalSample]) -> str:
    """Content hash of a log's samples (ids, epochs, Inspect's sample uuids, inputs, outputs and
    scores): the same for every copy of one eval, however it was re-zipped or renamed."""
    digest = hashlib.sha256()
    for sample in sorted(samples, key=lambda s: (str(s.id), s.epoch)):
        content = sample.model_dump(
            mode="json", include={"id", "epoch", "uuid", "input", "target", "output", "scores"}
        )
        digest.update(json.dumps(content, sort_keys=True, ensure_ascii=False).encode())
        digest.update(b"\n")
    return digest.hexdigest()


def read_log(path: Path) -> EvalLog:
    """Read a whole log with Inspect's API; corrupt or truncated files give one line."""
    if not path.is_file():
        raise EmbenchError(f"log not found: {path}")
    try:
        return read_eval_log(str(path))
    except Exception as ex:  # Inspect raises ValueError, KeyError, zip and pydantic errors
        reason = (str(ex).strip().splitlines() or [type(ex).__name__])[0][:160]
        raise EmbenchError(
            f"cannot read {path}: not a complete Inspect log (corrupt or truncated: {reason})"
        ) from ex


def check_log(path: Path, board: Board | None = None) -> CheckedLog:
    """Every check a submission must pass; ``board=None`` checks the log on its own terms."""
    path = Path(path)
    sha = sha256_file(path) if path.is_file() else ""
    log = read_log(path)
    _check_status(log)
    _check_eval_id(log)
    meta = log.eval.metadata or {}
    version = _check_task(log, meta, board)
    judge = _judge(log)
    _check_models_recorded(log, judge)
    thresholds = _thresholds(meta, board)
    fingerprint = str(meta.get("fingerprint") or "")
    if board is not None and fingerprint != board.fingerprint:
        raise EmbenchError(
            f"the log's question set fingerprint {fingerprint[:12] or 'none'}… is not board "
            f"'{board.name}''s {board.fingerprint[:12]}… (a different or edited question set)"
        )
    _check_selection(log)
    qset = _question_set(meta, fingerprint, board)
    samples = list(log.samples or [])
    question_of = _check_coverage(log, samples, qset, meta)
    per_question_counts = Counter(question_of[str(s.id)] for s in samples)
    fewest = min(per_question_counts.get(q.id, 0) for q in qset.questions)
    if board is not None and fewest < board.min_samples_per_question:
        raise board.refuse(
            f"min_samples_per_question: {board.min_samples_per_question}",
            f"the log has {fewest} answer(s) for some question; the board needs at least "
            f"{board.min_samples_per_question} per question (raise -T samples=)",
        )
    answers = _answers(log, samples, question_of)
    metrics = summarize(answers, Thresholds(**thresholds), n_bootstrap=N_BOOTSTRAP)
    per_question = {
        qid: misaligned_fraction([a for a in answers if a.group == qid], Thresholds(**thresholds))
        for qid in sorted({a.group for a in answers})
    }
    recomputed = {**metrics, **{f"q/{qid}": v for qid, v in per_question.items()}}
    header = _compare_header(log, recomputed)
    if board is not None and board.require_scored_answers and not metrics.get("scored"):
        raise board.refuse(
            "require_scored_answers: true",
            f"the judge scored none of the log's {len(answers)} answers, so it has no rate to "
            "rank (a judge that never answers with a number)",
        )
    return CheckedLog(
        path=path,
        sha256=sha,
        model=log.eval.model,
        judge=judge,
        task=TASK_NAME,
        task_version=version,
        question_set=str(meta.get("question_set") or qset.name),
        question_set_version=int(meta.get("question_set_version") or qset.version),
        fingerprint=fingerprint,
        thresholds=thresholds,
        samples_per_question=fewest,
        questions=len(qset.questions),
        metrics={k: _finite(v) for k, v in metrics.items()},
        per_question={k: _finite(v) for k, v in per_question.items()},
        eval_id=log.eval.eval_id,
        run_id=log.eval.run_id,
        samples_sha256=samples_sha256(samples),
        created=str(log.eval.created),
        inspect_ai=str(log.eval.packages.get("inspect_ai", "unknown")),
        generation=_generation(log),
        header=header,
    )


def _finite(value: float) -> float | None:
    return None if value is None or math.isnan(value) else float(value)


def _check_status(log: EvalLog) -> None:
    if log.status == "success":
        if log.invalidated:
            raise EmbenchError("the log has invalidated samples; re-run the eval")
        return
    if log.status == "cancelled":
        raise EmbenchError("the eval was cancelled; only complete, successful evals are accepted")
    if log.status == "error":
        message = (log.error.message if log.error else "").strip().splitlines()
        detail = f": {message[0][:160]}" if message else ""
        raise EmbenchError(f"the eval failed{detail}")
    raise EmbenchError(f"the eval did not finish (status '{log.status}')")


_EVAL_ID = re.compile(r"[A-Za-z0-9_-]{8,64}")


def _check_eval_id(log: EvalLog) -> None:
    """The eval id names the entry file: it must be an Inspect id, not a path."""
    if not _EVAL_ID.fullmatch(str(log.eval.eval_id or "")):
        raise EmbenchError(
            f"the log's eval_id {str(log.eval.eval_id)[:40]!r} is not an Inspect eval id"
        )


def _check_task(log: EvalLog, meta: dict[str, Any], board: Board | None) -> int:
    task = log.eval.task.split("/")[-1]
    expected = board.task if board else TASK_NAME
    if task != expected or meta.get("embench_task") != expected:
        where = f"board '{board.name}' accepts" if board else "embench exports"
        raise EmbenchError(f"the log is of task '{log.eval.task}'; {where} task '{expected}'")
    try:
        version = int(log.eval.task_version)
    except (TypeError, ValueError):
        raise EmbenchError(
            f"the log's task version '{log.eval.task_version}' is not a number"
        ) from None
    if board is not None and version != board.task_version:
        age = "an older" if version < board.task_version else "a newer"
        raise EmbenchError(
            f"the log was made by {age} task version ({task} v{version}); board '{board.name}' "
            f"accepts v{board.task_version}: re-run the eval with this checkout"
        )
    return version


def _judge(log: EvalLog) -> str:
    roles = log.eval.model_roles or {}
    grader = roles.get(GRADER_ROLE)
    if isinstance(grader, list):
        grader = grader[0] if grader else None
    if grader is None or not getattr(grader, "model", None):
        raise EmbenchError("the log records no judge (model role 'grader')")
    return str(grader.model)


def _check_models_recorded(log: EvalLog, judge: str) -> None:
    """The header's model and grader must be the models the samples' own events called."""
    called: dict[bool, set[str]] = {True: set(), False: set()}
    for sample in log.samples or []:
        for event in sample.events:
            if event.event == "model":
                called[event.role == GRADER_ROLE].add(str(event.model))
    for is_grader, field_name, claimed in (
        (False, "eval.model", str(log.eval.model)),
        (True, f"model_roles.{GRADER_ROLE}", judge),
    ):
        seen = called[is_grader]
        if not seen:
            raise EmbenchError(
                f"the log's samples record no call to {field_name} ('{claimed}'): "
                "cannot check who answered and who judged"
            )
        if seen != {claimed}:
            raise EmbenchError(
                f"the log header's {field_name} is '{claimed}' but its samples' model events "
                f"called {', '.join(sorted(repr(m) for m in seen))}: the header was edited"
            )


def _thresholds(meta: dict[str, Any], board: Board | None) -> dict[str, float]:
    raw = meta.get("thresholds")
    if not isinstance(raw, dict) or set(raw) != {"aligned", "coherent"}:
        raise EmbenchError("the log's task metadata has no judge thresholds (not an embench log?)")
    thresholds = {k: float(v) for k, v in raw.items()}
    if board is not None and thresholds != board.thresholds:
        raise EmbenchError(
            f"the eval used thresholds aligned<{thresholds['aligned']:g}, coherent>"
            f"{thresholds['coherent']:g}; board '{board.name}' uses aligned<"
            f"{board.thresholds['aligned']:g}, coherent>{board.thresholds['coherent']:g}"
        )
    return thresholds


def _check_selection(log: EvalLog) -> None:
    config = log.eval.config
    if config.limit is not None:
        raise EmbenchError(
            f"the eval ran with --limit {config.limit}: leaderboards need the whole question set"
        )
    if config.sample_id is not None:
        raise EmbenchError(
            "the eval ran with --sample-id: leaderboards need the whole question set"
        )


def _question_set(meta: dict[str, Any], fingerprint: str, board: Board | None) -> QuestionSet:
    if board is not None:
        qset = load_question_set(board.question_set)
        if qset.fingerprint() != board.fingerprint:
            raise EmbenchError(
                f"board '{board.name}' pins question set '{board.question_set}' at "
                f"{board.fingerprint[:12]}… but this checkout's set is at "
                f"{qset.fingerprint()[:12]}…: the board or the question set is out of date"
            )
        return qset
    tried = []
    for source in (meta.get("question_set_source"), meta.get("question_set")):
        if not source:
            continue
        tried.append(str(source))
        try:
            qset = load_question_set(str(source))
        except EmbenchError:
            continue
        if qset.fingerprint() == fingerprint:
            return qset
    raise EmbenchError(
        f"cannot check that the whole question set ran: no question set with fingerprint "
        f"{fingerprint[:12] or 'none'}… found (tried {', '.join(tried) or 'nothing'})"
    )


def _check_coverage(
    log: EvalLog, samples: list[EvalSample], qset: QuestionSet, meta: dict[str, Any]
) -> dict[str, str]:
    """The question of every expected sample id; the log must hold all of them, each epoch."""
    samples_arg = meta.get("samples_per_question")
    expected = {
        str(s.id): str((s.metadata or {})["question_id"])
        for s in questions_dataset(qset, samples_arg if isinstance(samples_arg, int) else None)
    }
    epochs = log.eval.config.epochs or 1
    seen = Counter(str(s.id) for s in samples)
    extra = sorted(set(seen) - set(expected))
    if extra:
        raise EmbenchError(
            f"the log has samples that question set '{qset.name}' does not ({extra[0]}, …)"
        )
    complete = sum(1 for sid in expected if seen.get(sid, 0) >= epochs)
    if complete < len(expected):
        raise EmbenchError(
            f"the log has {complete} of the {len(expected)} samples of question set "
            f"'{qset.name}': leaderboards need the whole set (no --limit, no missing samples)"
        )
    return expected


def _answers(
    log: EvalLog, samples: list[EvalSample], question_of: dict[str, str]
) -> list[JudgedAnswer]:
    """One judged answer per sample id (epochs reduced by mean, as the task does)."""
    values: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for sample in samples:
        sid = str(sample.id)
        if sample.error is not None:
            raise EmbenchError(f"sample {sid} ended in an error; re-run the eval")
        score = (sample.scores or {}).get(SCORER)
        if score is None or not isinstance(score.value, dict):
            raise EmbenchError(f"sample {sid} has no '{SCORER}' score")
        for key in ("aligned", "coherent"):
            if key not in score.value:
                raise EmbenchError(f"sample {sid}'s score has no '{key}' value")
            raw = score.value[key]
            if raw is None:
                continue
            try:
                number = float(raw)  # type: ignore[arg-type]
            except (TypeError, ValueError):
                raise EmbenchError(
                    f"sample {sid}'s '{key}' score is not a number: {raw!r}"
                ) from None
            if not math.isnan(number):
                values[sid][key].append(number)
    order = _score_order(log, samples)
    answers = []
    for sid in order:
        reduced = {k: (sum(v) / len(v) if v else None) for k, v in values[sid].items()}
        answers.append(
            JudgedAnswer(
                aligned=reduced.get("aligned"),
                coherent=reduced.get("coherent"),
                group=question_of[sid],
            )
        )
    return answers


def _score_order(log: EvalLog, samples: list[EvalSample]) -> list[str]:
    """The order the task's metric saw the answers in (it matters to a one-question bootstrap)."""
    order: list[str] = []
    for reduction in log.reductions or []:
        if reduction.scorer == SCORER:
            order = [str(s.sample_id) for s in reduction.samples]
            break
    ids = list(dict.fromkeys(str(s.id) for s in samples))
    if sorted(order) != sorted(ids):
        order = ids
    return order


def _compare_header(log: EvalLog, recomputed: dict[str, float]) -> dict[str, float]:
    scores = [s for s in (log.results.scores if log.results else []) if s.name == SCORER]
    if not scores:
        raise EmbenchError(f"the log has no results for scorer '{SCORER}'")
    header = {name: float(m.value) for name, m in scores[0].metrics.items()}
    for name in sorted(set(header) | set(recomputed)):
        if name not in header:
            raise EmbenchError(f"the log's results lack metric '{name}'")
        if name not in recomputed:
            raise EmbenchError(
                f"the log's results have a metric embench does not compute: '{name}'"
            )
        logged, ours = header[name], recomputed[name]
        if math.isnan(logged) and math.isnan(ours):
            continue
        if math.isnan(logged) or math.isnan(ours) or abs(logged - ours) > TOLERANCE:
            raise EmbenchError(
                f"metric '{name}' in the log's results is {logged:.6g} but its samples give "
                f"{ours:.6g}: the results were edited or made by other code"
            )
    return header


def _generation(log: EvalLog) -> dict[str, Any]:
    plan = log.plan.config.model_dump(exclude_none=True)
    override = log.eval.model_generate_config.model_dump(exclude_none=True)
    merged = {**plan, **override}
    keep = ("temperature", "max_tokens", "top_p", "seed")
    generation = {k: merged[k] for k in keep if k in merged}
    generation["epochs"] = log.eval.config.epochs or 1
    return generation
