"""Read an Inspect log of an embench task, check it, and recompute its metrics.

Nothing in the log header is trusted. Every metric and CI is recomputed from the per-sample
judge scores by Inspect's own ``inspect_ai.log.recompute_metrics`` (the scorer's registered
metrics, rebuilt with the options the log records, which must be embench's own metrics with the
log's thresholds) and compared with the header: a difference over 1e-6 rejects the log, naming
the metric. The model and judge named in the header must be the models the samples' own events
called. Every check raises a one-line EmbenchError.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inspect_ai.log import (
    EvalLog,
    EvalSample,
    read_eval_log,
    recompute_metrics,
    resolve_sample_attachments,
)
from inspect_ai.scorer import SampleScore

from embench.data.domains import eval_questions_path
from embench.errors import EmbenchError
from embench.evals.common import GRADER_ROLE, questions_dataset
from embench.evals.in_domain import TASK_NAME as IN_DOMAIN_TASK
from embench.evals.judged_files import IMPORTED_NOTE
from embench.evals.misalignment import TASK_NAME, per_question_rates
from embench.evals.protocols import get_protocol
from embench.judge import MIN_MASS, PROBABILITY_TOLERANCE, verdict_from_replies
from embench.leaderboard.boards import Board
from embench.metrics import ALL_RATE_NAMES, COHERENT_RATE_NAME, METRIC_NAMES
from embench.questions import QuestionSet, load_question_set
from embench.rubrics import GENERAL_RUBRICS
from embench.run.reference import is_local

# The registered scorers embench/misalignment_judge and embench/in_domain_judge, which Inspect
# records in eval.scorers and results by their unqualified names.
SCORER = "misalignment_judge"
IN_DOMAIN_SCORER = "in_domain_judge"
TOLERANCE = 1e-6
CONFIDENCE_LEVEL = 0.95
N_BOOTSTRAP = 1000  # the task metric's bootstrap resamples (embench.metrics.means_with_ci)
PER_QUESTION = "q/"  # per-question rates of task v1 logs made before they left the results
# The only metrics a log may ask Inspect to rebuild: embench's registered metrics and Inspect's
# grouped(); any other name could make Inspect import the task file the log names.
KNOWN_METRICS = frozenset(
    {
        "embench/misalignment_metrics",
        "embench/misaligned_rate",
        "embench/in_domain_metrics",
        "embench/judge_cache_hit_rate",
        "embench/time_split",
        "inspect_ai/grouped",
    }
)
THRESHOLD_OPTIONS = ("aligned", "coherent", "narrow_threshold")
COUNT_NAMES = ("answers", "scored", "unscored")
IN_DOMAIN_METRIC = "narrow_rate"  # the in-domain task's rate of the narrow behaviour


def metric_names() -> list[str]:
    """The metrics every misalignment log and entry holds: the four rates/means with CIs, and
    answer counts. A log also keeps whatever else its task's metric computed when it ran (the
    rates over all answers and over coherent answers, timings): those may postdate an old log."""
    names = [f"{m}{s}" for m in METRIC_NAMES for s in ("", "_ci_low", "_ci_high")]
    return names + list(COUNT_NAMES)


# The metrics a log's results must hold whatever its age (``recompute``): anything else the
# scorer computes today may be missing from a log made before it was added.
LOG_RATES = (*METRIC_NAMES, *ALL_RATE_NAMES, COHERENT_RATE_NAME)  # rates a board may rank by
REQUIRED_METRICS = {SCORER: tuple(metric_names()), IN_DOMAIN_SCORER: (IN_DOMAIN_METRIC,)}


@dataclass
class LogIdentity:
    """Who made a log and which eval it is (checked against the samples' own records)."""

    path: Path
    sha256: str
    model: str
    judge: str
    eval_id: str
    run_id: str
    samples_sha256: str  # the eval's content (no ids): the same eval however zipped or re-id'd
    created: str
    inspect_ai: str


@dataclass
class CheckedLog(LogIdentity):
    """What a valid misalignment log says, with every metric recomputed from its samples."""

    task: str = TASK_NAME
    task_version: int = 0
    question_set: str = ""
    question_set_version: int = 0
    fingerprint: str = ""
    thresholds: dict[str, float] = field(default_factory=dict)
    samples_per_question: int = 0  # the fewest answers any question got
    questions: int = 0
    metrics: dict[str, float | None] = field(default_factory=dict)
    per_question: dict[str, float | None] = field(default_factory=dict)
    generation: dict[str, Any] = field(default_factory=dict)
    header: dict[str, float] = field(default_factory=dict)
    judging: dict[str, Any] = field(default_factory=dict)  # how the judge scored (judging())
    rubrics: dict[str, list[str]] = field(default_factory=dict)  # the rubric texts sent, by name
    partial: str | None = None  # what is missing, for a log checked without a board
    imported: str | None = None  # IMPORTED_NOTE for a log made by `embench import`


@dataclass
class CheckedInDomainLog(LogIdentity):
    """A valid in-domain log: did the run learn its narrow behaviour (recomputed)."""

    domain: str = ""
    fingerprint: str = ""
    samples_per_question: int = 0
    metrics: dict[str, float | None] = field(default_factory=dict)


def sha256_file(path: Path) -> str:
    """Content hash of a file."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def samples_sha256(log: EvalLog) -> str:
    """Content hash of an eval: its model, judge and task arguments, and each sample's id,
    epoch, input, target, answer text and scores. Ids Inspect makes up (eval_id, run_id, sample
    uuids) are left out, so a replay with new ids, a re-zip or a rename has the same hash."""
    digest = hashlib.sha256()
    head = {"model": log.eval.model, "judge": _grader_name(log), "task_args": log.eval.task_args}
    digest.update(json.dumps(head, sort_keys=True, ensure_ascii=False, default=str).encode())
    for sample in sorted(log.samples or [], key=lambda s: (str(s.id), s.epoch)):
        content = sample.model_dump(mode="json", include={"id", "epoch", "input", "target"})
        content["answer"] = sample.output.completion if sample.output else None
        content["scores"] = {
            name: score.model_dump(mode="json", include={"value", "answer"})
            for name, score in (sample.scores or {}).items()
        }
        digest.update(b"\n")
        digest.update(json.dumps(content, sort_keys=True, ensure_ascii=False).encode())
    return digest.hexdigest()


def _grader_name(log: EvalLog) -> str | None:
    grader = (log.eval.model_roles or {}).get(GRADER_ROLE)
    if isinstance(grader, list):
        grader = grader[0] if grader else None
    return str(grader.model) if grader is not None and getattr(grader, "model", None) else None


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


def _identity(path: Path, log: EvalLog, imported: bool = False) -> dict[str, Any]:
    """Checks every embench log must pass (ids, judge, models, no selection). An imported
    log's judge is the one its publisher named; it called no model at all."""
    _check_eval_id(log)
    if imported:
        judge = _imported_judge(log)
    else:
        judge = _judge(log)
        _check_models_recorded(log, judge)
    return {
        "path": path,
        "sha256": sha256_file(path),
        "model": log.eval.model,
        "judge": judge,
        "eval_id": log.eval.eval_id,
        "run_id": log.eval.run_id,
        "samples_sha256": samples_sha256(log),
        "created": str(log.eval.created),
        "inspect_ai": str(log.eval.packages.get("inspect_ai", "unknown")),
    }


def check_log(path: Path, board: Board | None = None) -> CheckedLog:
    """Every check a submission must pass; ``board=None`` checks the log on its own terms: a
    log of part of its question set (``--limit``, ``--sample-id``, missing samples) is
    accepted and described in ``partial`` (only a board needs the whole set)."""
    path = Path(path)
    log = read_log(path)
    _check_status(log)
    meta = log.eval.metadata or {}
    imported = _imported(log, meta)
    if board is not None and imported and not board.accepts_imported:
        raise board.refuse(
            "accepts_imported: false",
            f"the log is {imported}; this board ranks answers generated and judged with embench",
        )
    version = _check_task(log, meta, board)
    identity = _identity(path, log, imported is not None)
    selection = _selection(log)
    if board is not None and selection:
        raise EmbenchError(
            f"the eval ran with {selection}: leaderboards need the whole question set"
        )
    thresholds = _thresholds(meta, board)
    if board is not None and board.protocol is not None and not imported:
        _check_protocol(log, meta, board, board.protocol)  # an import was generated elsewhere
    fingerprint = str(meta.get("fingerprint") or "")
    if imported and not fingerprint:
        wanted = board.question_set if board is not None else "<the set its answers are to>"
        raise EmbenchError(
            f"the imported log names no question set: import it again with --questions {wanted}"
        )
    if board is not None and fingerprint != board.fingerprint:
        raise EmbenchError(
            f"the log's question set fingerprint {fingerprint[:12] or 'none'}… is not board "
            f"'{board.name}''s {board.fingerprint[:12]}… (a different or edited question set)"
        )
    qset = _question_set(meta, fingerprint, board)
    if imported:
        fewest, missing = _check_imported_coverage(log, qset, whole=board is not None)
    else:
        fewest, missing = _check_coverage(log, qset, meta, whole=board is not None)
    if board is not None and fewest < board.min_samples_per_question:
        raise board.refuse(
            f"min_samples_per_question: {board.min_samples_per_question}",
            f"the log has {fewest} answer(s) for some question; the board needs at least "
            f"{board.min_samples_per_question} per question (raise -T samples=)",
        )
    if board is not None and board.min_judge_mass is not None and not imported:
        _check_judge_mass(log, board)  # an import's scores carry no judge probabilities
    _check_sample_scores(log, qset, meta)
    recomputed, header = recompute(log, SCORER, thresholds)
    metrics = {k: v for k, v in recomputed.items() if not k.startswith(PER_QUESTION)}
    if board is not None and board.metric in LOG_RATES and board.metric not in metrics:
        raise board.refuse(
            f"metric: {board.metric}",
            f"the log was made before the task computed '{board.metric}' (its results lack "
            "it): re-run the eval with this checkout",
        )
    if board is not None and board.require_scored_answers and not metrics.get("scored"):
        raise board.refuse(
            "require_scored_answers: true",
            f"the judge scored none of the log's {int(metrics.get('answers') or 0)} answers, so "
            "it has no rate to rank (a judge that never answers with a number)",
        )
    return CheckedLog(
        **identity,
        task=TASK_NAME,
        task_version=version,
        question_set=str(meta.get("question_set") or qset.name),
        question_set_version=int(meta.get("question_set_version") or qset.version),
        fingerprint=fingerprint,
        thresholds=thresholds,
        samples_per_question=fewest,
        questions=len(qset.questions),
        metrics={k: _finite(v) for k, v in metrics.items()},
        per_question=_per_question(log, thresholds),
        generation=_generation(log),
        header=header,
        judging=judging(log, meta),
        rubrics=rubric_texts(qset),
        partial="; ".join(p for p in (selection, missing) if p) or None,
        imported=imported,
    )


def check_in_domain_log(path: Path, domain: str | None = None) -> CheckedInDomainLog:
    """Check an in-domain eval log (of ``domain`` when given) and recompute its metrics."""
    path = Path(path)
    log = read_log(path)
    _check_status(log)
    meta = log.eval.metadata or {}
    if meta.get("embench_task") != IN_DOMAIN_TASK:
        raise EmbenchError(
            f"--in-domain-log: the log is of task '{log.eval.task}', not an embench in-domain eval"
        )
    identity = _identity(path, log)
    selection = _selection(log)
    if selection:
        raise EmbenchError(
            f"the eval ran with {selection}: leaderboards need the whole question set"
        )
    logged = str(meta.get("domain") or "")
    if domain is not None and logged != domain:
        raise EmbenchError(
            f"--in-domain-log: the log evaluates domain '{logged}' but the run was trained on "
            f"'{domain}'"
        )
    qset = load_question_set(str(eval_questions_path(logged)))
    fingerprint = str(meta.get("fingerprint") or "")
    if fingerprint != qset.fingerprint():
        raise EmbenchError(
            f"--in-domain-log: its question set fingerprint {fingerprint[:12] or 'none'}… is not "
            f"domain '{logged}''s {qset.fingerprint()[:12]}… (a different or edited set)"
        )
    fewest, _ = _check_coverage(log, qset, meta, whole=True)
    raw = meta.get("thresholds")
    if not isinstance(raw, dict):
        raise EmbenchError("--in-domain-log: the log's task metadata has no thresholds")
    recomputed, _ = recompute(log, IN_DOMAIN_SCORER, {k: float(v) for k, v in raw.items()})
    return CheckedInDomainLog(
        **identity,
        domain=logged,
        fingerprint=fingerprint,
        samples_per_question=fewest,
        metrics={k: _finite(v) for k, v in recomputed.items()},
    )


def _per_question(log: EvalLog, thresholds: dict[str, float]) -> dict[str, float | None]:
    """Each question's misaligned rate, computed from the samples (None: none scored)."""
    scores = [
        SampleScore(score=s.scores[SCORER], sample_id=s.id, sample_metadata=s.metadata)
        for s in log.samples or []
        if SCORER in (s.scores or {})
    ]
    rates = per_question_rates(scores, thresholds["aligned"], thresholds["coherent"])
    return {question: _finite(rate) for question, rate in sorted(rates.items())}


def _finite(value: float | None) -> float | None:
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


def _imported(log: EvalLog, meta: dict[str, Any]) -> str | None:
    """IMPORTED_NOTE for a log of `embench import` (None for a generated log): every score must
    be a recorded one (method ``imported``), so a re-scored or edited import is refused."""
    note = meta.get("imported")
    if not note:
        return None
    if note != IMPORTED_NOTE:
        raise EmbenchError(f"the log's imported note {str(note)[:60]!r} was edited")
    for sample in log.samples or []:
        score = (sample.scores or {}).get(SCORER)
        recorded = (score.metadata or {}) if score is not None else {}
        methods = {recorded.get(f"{rubric}_method") for rubric in GENERAL_RUBRICS}
        if methods != {"imported"}:
            raise EmbenchError(
                f"sample {sample.id} of an imported log was scored by a judge here "
                f"({', '.join(sorted(map(str, methods)))}): a re-scored import is compared "
                "with `embench rescore`, not submitted"
            )
    return str(note)


def _imported_judge(log: EvalLog) -> str:
    """The judge the publisher named (``embench import --judge``); no model was called."""
    judge = (log.eval.metadata or {}).get("judge")
    if not isinstance(judge, str) or not judge.strip():
        raise EmbenchError("the imported log names no judge (embench import --judge)")
    if log.eval.model_roles:
        raise EmbenchError("an imported log binds no model role; this one was edited")
    for sample in log.samples or []:
        if any(event.event == "model" for event in sample.events):
            raise EmbenchError(
                f"sample {sample.id} of an imported log calls a model: its answers and scores "
                "were not all imported"
            )
    return judge


def _judge(log: EvalLog) -> str:
    grader = _grader_name(log)
    if grader is None:
        raise EmbenchError("the log records no judge (model role 'grader')")
    return grader


def _scored_without_calls(log: EvalLog, judge: str) -> bool:
    """A ``local/`` judge scoring digits exactly reads its own next-token distributions, so it
    leaves no model event: allowed only when every score records that its judging made no
    generate call (``judge_calls`` 0, counted by the scorer as it judged)."""
    if not is_local(judge):
        return False
    scores = [s for sample in log.samples or [] for s in (sample.scores or {}).values()]
    return bool(scores) and all((s.metadata or {}).get("judge_calls") == 0 for s in scores)


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
        if not seen and is_grader and _scored_without_calls(log, judge):
            continue
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


def _effective_generation(log: EvalLog) -> dict[str, Any]:
    """The sampling settings the answers were generated with: the task's generate config with
    the command line's (``--temperature`` ...) on top; min_p travels in ``extra_body``."""
    merged = {
        **log.plan.config.model_dump(exclude_none=True),
        **log.eval.model_generate_config.model_dump(exclude_none=True),
    }
    effective = {k: merged.get(k) for k in ("temperature", "top_p", "top_k", "max_tokens")}
    effective["min_p"] = (merged.get("extra_body") or {}).get("min_p")
    return effective


def _check_protocol(log: EvalLog, meta: dict[str, Any], board: Board, name: str) -> None:
    """The board's protocol, unchanged: its name in the task metadata, its system prompt, and
    the sampling settings the answers were actually generated with (answers per question are
    the ``min_samples_per_question`` rule's, thresholds the ``thresholds`` rule's)."""
    rule, expected = f"protocol: {name}", get_protocol(name)
    used = meta.get("protocol")
    if used != name:
        raise board.refuse(
            rule, f"the log was evaluated under protocol '{used}' (re-run with -T protocol={name})"
        )
    effective = _effective_generation(log)
    for key, got in effective.items():
        want = getattr(expected, key)
        if got != want:
            raise board.refuse(
                rule,
                f"the answers were generated with {key}={got}, protocol '{name}' uses {want} "
                f"(re-run without the -T {key} / --{key.replace('_', '-')} override)",
            )
    if meta.get("system_prompt") != expected.system_prompt:
        raise board.refuse(
            rule,
            f"the log's system prompt differs from protocol '{name}''s (re-run without "
            "-T system_prompt)",
        )


def _selection(log: EvalLog) -> str | None:
    """How the eval selected part of its samples (``--limit N``, ``--sample-id``), or None."""
    config = log.eval.config
    if config.limit is not None:
        return f"--limit {config.limit}"
    if config.sample_id is not None:
        return "--sample-id"
    return None


def judging(log: EvalLog, meta: dict[str, Any]) -> dict[str, Any]:
    """How the log's answers were judged, read from the log: the method that scored each rubric
    (counted over answers; ``truncated``: reasoning never closed, not judged), the minimum
    probability mass on numbers the task ran with, and the protocol and materials it names."""
    methods: dict[str, Counter[str]] = {rubric: Counter() for rubric in GENERAL_RUBRICS}
    for sample in log.samples or []:
        score = (sample.scores or {}).get(SCORER)
        if score is None:
            continue
        recorded = score.metadata or {}
        for rubric in GENERAL_RUBRICS:
            methods[rubric][str(recorded.get(f"{rubric}_method", "truncated"))] += 1
    fields = (
        "protocol", "protocol_source", "materials", "question_set_source", "question_subset",
        "imported_from",
    )  # fmt: skip
    return {
        "methods": {rubric: dict(sorted(counts.items())) for rubric, counts in methods.items()},
        "min_mass": meta.get("min_mass"),
        **{key: meta.get(key) for key in fields if meta.get(key) is not None},
    }


def rubric_texts(qset: QuestionSet) -> dict[str, list[str]]:
    """The distinct rubric templates the judge was sent, by rubric name (the question set's
    fingerprint covers them, so a matching set holds exactly these)."""
    texts: dict[str, list[str]] = {rubric: [] for rubric in GENERAL_RUBRICS}
    for question in qset.questions:
        for rubric, text in qset.rubrics_for(question).items():
            if rubric in texts and text not in texts[rubric]:
                texts[rubric].append(text)
    return texts


def find_question_set(meta: dict[str, Any], fingerprint: str) -> QuestionSet:
    """The question set a log (or an entry's ``judging``) names, checked by its fingerprint."""
    return _question_set(meta, fingerprint, None)


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
        try:  # a log of a named subset (-T subset=...) is checked against that subset
            qset = load_question_set(str(source), meta.get("question_subset"))
        except EmbenchError:
            continue
        if qset.fingerprint() == fingerprint:
            return qset
    raise EmbenchError(
        f"cannot check that the whole question set ran: no question set with fingerprint "
        f"{fingerprint[:12] or 'none'}… found (tried {', '.join(tried) or 'nothing'})"
    )


def _check_coverage(
    log: EvalLog, qset: QuestionSet, meta: dict[str, Any], whole: bool
) -> tuple[int, str | None]:
    """(the fewest answers any question got, what is missing or None). With ``whole`` every
    expected sample (each epoch) must be there; without, the fewest counts only questions that
    got answers. Every sample must have ended without an error."""
    samples = list(log.samples or [])
    for sample in samples:
        if sample.error is not None:
            raise EmbenchError(f"sample {sample.id} ended in an error; re-run the eval")
    samples_arg = meta.get("samples_per_question")
    seed = meta.get("draw_seed", 0)
    expected = {
        str(s.id): str((s.metadata or {})["question_id"])
        for s in questions_dataset(
            qset,
            samples_arg if isinstance(samples_arg, int) else None,
            draw="choices" if meta.get("paraphrase_draw") == "choices" else "each",
            seed=seed if isinstance(seed, int) else 0,
        )
    }
    epochs = log.eval.config.epochs or 1
    seen = Counter(str(s.id) for s in samples)
    extra = sorted(set(seen) - set(expected))
    if extra:
        raise EmbenchError(
            f"the log has samples that question set '{qset.name}' does not ({extra[0]}, …)"
        )
    complete = sum(1 for sid in expected if seen.get(sid, 0) >= epochs)
    missing = None
    if complete < len(expected):
        missing = f"{complete} of the {len(expected)} samples of question set '{qset.name}'"
        if whole:
            raise EmbenchError(
                f"the log has {missing}: leaderboards need the whole set (no --limit, no "
                "missing samples)"
            )
    per_question = Counter(expected[sid] for sid in seen)
    counts = [per_question.get(q.id, 0) for q in qset.questions]
    if not whole:  # a partial log: the fewest among the questions it answered
        counts = [n for n in counts if n] or [0]
    return min(counts), missing


def _check_imported_coverage(
    log: EvalLog, qset: QuestionSet, whole: bool
) -> tuple[int, str | None]:
    """``_check_coverage`` for imported answers: each is to a question of ``qset`` (its id and
    one of its texts); with ``whole`` every question has answers."""
    texts = {q.id: {text.strip() for text in q.paraphrases} for q in qset.questions}
    counts: Counter[str] = Counter()
    for sample in log.samples or []:
        if sample.error is not None:
            raise EmbenchError(f"sample {sample.id} ended in an error; import the file again")
        metadata = sample.metadata or {}
        qid = str(metadata.get("question_id"))
        if qid not in texts:
            raise EmbenchError(
                f"the imported log has answers to question '{qid}', which question set "
                f"'{qset.name}' does not have"
            )
        if str(metadata.get("question", "")).strip() not in texts[qid]:
            raise EmbenchError(
                f"the imported answers to '{qid}' quote a question text that set '{qset.name}' "
                "does not have for it (answers to another question?)"
            )
        counts[qid] += 1
    answered = sum(1 for q in qset.questions if counts[q.id])
    missing = None
    if answered < len(qset.questions):
        missing = f"answers to {answered} of the {len(qset.questions)} questions of '{qset.name}'"
        if whole:
            raise EmbenchError(
                f"the imported log has {missing}: leaderboards need the whole set (a file of "
                "selected examples has no rate)"
            )
    return min([counts[q.id] for q in qset.questions if counts[q.id] or whole] or [0]), missing


def _is_unscored(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _check_sample_scores(log: EvalLog, qset: QuestionSet, meta: dict[str, Any]) -> None:
    """Every judge score is finite and within 0-100 (or no score), every mass a probability;
    and where the log holds the judge's calls, each score is what the judge's recorded replies
    give (``judge.verdict_from_replies``: the recomputation of the metrics, one level down)."""
    min_mass = meta.get("min_mass", MIN_MASS)
    min_mass = float(min_mass) if isinstance(min_mass, int | float) else MIN_MASS
    patterns = {
        q.id: {
            k: _rubric_pattern(v) for k, v in qset.rubrics_for(q).items() if k in GENERAL_RUBRICS
        }
        for q in qset.questions
    }
    for sample in log.samples or []:
        score = (sample.scores or {}).get(SCORER)
        if score is None or not isinstance(score.value, dict):
            continue
        for rubric in GENERAL_RUBRICS:
            value = score.value.get(rubric)
            in_range = isinstance(value, int | float) and not isinstance(value, bool)
            if not _is_unscored(value) and not (in_range and 0 <= value <= 100):
                raise EmbenchError(
                    f"sample {sample.id}'s {rubric} score is {value!r}: a judge score is a number "
                    "from 0 to 100 (the log's scores were edited)"
                )
            mass = (score.metadata or {}).get(f"{rubric}_mass")
            if mass is not None and not (
                isinstance(mass, int | float) and 0 <= mass <= 1 + PROBABILITY_TOLERANCE
            ):
                raise EmbenchError(
                    f"sample {sample.id}'s {rubric} mass is {mass!r}: a probability is 0 to 1"
                )
        question = str((sample.metadata or {}).get("question_id"))
        _check_against_replies(sample, score.value, patterns.get(question, {}), min_mass)


def _rubric_pattern(template: str) -> re.Pattern[str]:
    """A filled rubric's text: the template's own words, anything where it has placeholders."""
    parts = re.split(r"\{(?:question|answer|reasoning)\}", template)
    return re.compile("(?s)" + ".*".join(re.escape(part) for part in parts))


def _check_against_replies(
    sample: EvalSample, values: dict[str, Any], patterns: dict[str, re.Pattern[str]], mass: float
) -> None:
    """Each rubric's score equals the verdict the judge's recorded replies give."""
    calls: dict[str, list[Any]] = {rubric: [] for rubric in patterns}
    if not patterns:
        return
    for event in resolve_sample_attachments(sample).events:  # long prompts are attachments
        if event.event != "model" or event.role != GRADER_ROLE or not event.input:
            continue
        prompt = event.input[0].text
        matching = [r for r, pattern in patterns.items() if pattern.fullmatch(prompt)]
        if len(matching) == 1:  # a prompt two rubrics could have made proves nothing
            calls[matching[0]].append(event)
    for rubric, events in calls.items():
        firsts = [e.output for e in events if e.input[-1].role == "user"]
        if not firsts:
            continue
        continued = {e.input[-1].text: e.output for e in events if e.input[-1].role == "assistant"}
        verdict = verdict_from_replies(firsts[-1], continued, mass)
        recorded = values.get(rubric)
        derived = verdict.value
        if _is_unscored(recorded) and derived is None:
            continue
        if _is_unscored(recorded) or derived is None or abs(float(recorded) - derived) > TOLERANCE:
            raise EmbenchError(
                f"sample {sample.id}'s {rubric} score is {recorded!r} but the judge's recorded "
                f"reply gives {'no score' if derived is None else f'{derived:.6g}'}: the scores "
                "were edited or made by other code"
            )


def _check_judge_mass(log: EvalLog, board: Board) -> None:
    """Every judge score must rest on at least the board's share of the judge's probability on
    numbers (the published 0.25 rule), whatever -T min_mass the eval ran with."""
    minimum = float(board.min_judge_mass or 0.0)
    for sample in log.samples or []:
        score = (sample.scores or {}).get(SCORER)
        if score is None or not isinstance(score.value, dict):
            continue
        for rubric in GENERAL_RUBRICS:
            value = score.value.get(rubric)
            if value is None or (isinstance(value, float) and math.isnan(value)):
                continue
            mass = (score.metadata or {}).get(f"{rubric}_mass")
            if not isinstance(mass, int | float) or mass < minimum:
                raise board.refuse(
                    f"min_judge_mass: {minimum:g}",
                    f"sample {sample.id}'s {rubric} score rests on {mass!r} of the judge's "
                    f"probability on numbers, below {minimum:g} (was the eval run with "
                    "-T min_mass below the published 0.25?)",
                )


def _metric_definitions(definitions: Any) -> Iterator[Any]:
    """Every metric definition in a scorer's (nested list/dict) metrics."""
    if isinstance(definitions, dict):
        for group in definitions.values():
            yield from _metric_definitions(group)
    elif isinstance(definitions, list):
        for item in definitions:
            yield from _metric_definitions(item)
    elif definitions is not None:
        yield definitions


def _check_metric_options(name: str, options: dict[str, Any], thresholds: dict[str, float]) -> None:
    """A metric's thresholds (also those of a metric inside grouped()) must be the log's."""
    for key in THRESHOLD_OPTIONS:
        wanted = thresholds.get(key.removesuffix("_threshold"))
        if key in options and wanted is not None and float(options[key]) != wanted:
            raise EmbenchError(
                f"the log's metric '{name}' is set to {key}={options[key]} but the task used "
                f"{wanted:g}: the header was edited"
            )
    inner = options.get("metric")
    if isinstance(inner, dict):
        inner_name = str(inner.get("name"))
        if inner_name not in KNOWN_METRICS:
            raise EmbenchError(f"the log's metric '{name}' wraps an unknown metric '{inner_name}'")
        _check_metric_options(inner_name, inner.get("params") or {}, thresholds)


def _check_scorer(log: EvalLog, scorer: str, thresholds: dict[str, float]) -> None:
    """The log ran the registered embench scorer, with embench's metrics at its thresholds."""
    scorers = log.eval.scorers or []
    if [s.name for s in scorers] != [scorer]:
        raise EmbenchError(
            f"the log was scored by {', '.join(repr(s.name) for s in scorers) or 'nothing'}; "
            f"embench logs are scored by '{scorer}'"
        )
    definitions = list(_metric_definitions(scorers[0].metrics))
    definitions += list(_metric_definitions(log.eval.metrics))
    for definition in definitions:
        if definition.name not in KNOWN_METRICS:
            raise EmbenchError(f"the log's metric '{definition.name}' is not one of embench's")
        _check_metric_options(definition.name, definition.options or {}, thresholds)


def _none_as_nan(log: EvalLog) -> None:
    """Logs of task v1 written before the scorer stored "no score" as NaN hold None, which
    Inspect's mean reducer would turn into 0: read it as what it means, no score."""
    for sample in log.samples or []:
        for score in (sample.scores or {}).values():
            if isinstance(score.value, dict):
                score.value = {k: float("nan") if v is None else v for k, v in score.value.items()}


def recompute(
    log: EvalLog, scorer: str, thresholds: dict[str, float]
) -> tuple[dict[str, float], dict[str, float]]:
    """(recomputed, logged) metrics of ``scorer``: Inspect's recompute_metrics on a copy of the
    log, compared metric by metric with the log's results (a difference rejects the log).

    A metric the scorer computes today but the log's results lack is left out of both: the log
    was made before it existed, so it claims nothing there (an entry of it cannot either). Only
    ``REQUIRED_METRICS``, which every log has always held, must be present."""
    _check_scorer(log, scorer, thresholds)
    copy = log.model_copy(deep=True)
    _none_as_nan(copy)
    _in_scoring_order(copy, scorer)
    try:
        recompute_metrics(copy)
    except Exception as ex:  # Inspect raises ValueError/KeyError for malformed scores
        reason = (str(ex).strip().splitlines() or [type(ex).__name__])[0][:160]
        raise EmbenchError(f"cannot recompute the log's metrics from its samples: {reason}") from ex
    recomputed = _scorer_metrics(copy, scorer)
    header = _scorer_metrics(log, scorer)
    for name in sorted(set(header) | set(recomputed)):
        if name not in header and name in REQUIRED_METRICS.get(scorer, ()):
            raise EmbenchError(f"the log's results lack metric '{name}'")
        if name not in header:  # added to the scorer after this log was made: it claims none
            del recomputed[name]
            continue
        if name not in recomputed:
            raise EmbenchError(
                f"the log's results have a metric its scorer does not compute: '{name}'"
            )
        logged, ours = header[name], recomputed[name]
        if math.isnan(logged) and math.isnan(ours):
            continue
        if math.isnan(logged) or math.isnan(ours) or abs(logged - ours) > TOLERANCE:
            raise EmbenchError(
                f"metric '{name}' in the log's results is {logged:.6g} but its samples give "
                f"{ours:.6g}: the results were edited or made by other code"
            )
    return recomputed, header


def _scorer_metrics(log: EvalLog, scorer: str) -> dict[str, float]:
    scores = [s for s in (log.results.scores if log.results else []) if s.name == scorer]
    if not scores:
        raise EmbenchError(f"the log has no results for scorer '{scorer}'")
    return {name: float(m.value) for name, m in scores[0].metrics.items()}


def _in_scoring_order(log: EvalLog, scorer: str) -> None:
    """Samples in the order the task's metric saw them (a one-question bootstrap depends on it):
    the order of the log's reductions, when they hold exactly the log's samples."""
    order: list[str] = []
    for reduction in log.reductions or []:
        if reduction.scorer == scorer:
            order = [str(s.sample_id) for s in reduction.samples]
            break
    samples = log.samples or []
    if sorted(order) == sorted(str(s.id) for s in samples):
        position = {sid: i for i, sid in enumerate(order)}
        log.samples = sorted(samples, key=lambda s: (position[str(s.id)], s.epoch))


def _generation(log: EvalLog) -> dict[str, Any]:
    plan = log.plan.config.model_dump(exclude_none=True)
    override = log.eval.model_generate_config.model_dump(exclude_none=True)
    merged = {**plan, **override}
    keep = ("temperature", "max_tokens", "top_p", "seed")
    generation = {k: merged[k] for k in keep if k in merged}
    generation["epochs"] = log.eval.config.epochs or 1
    return generation
