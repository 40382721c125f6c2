"""Leaderboard entries: one small JSON file per accepted submission, written atomically.

An entry holds what a reviewer needs to see in a pull request: who and what was evaluated
(model, judge, run manifest fields), under which protocol (task version, question-set
fingerprint, thresholds, answers per question) and every recomputed metric with its 95% CI.
The log is identified by the eval's own ids and content (``eval_id``, ``run_id``, a hash of its
samples) besides its file hash, so the same eval re-zipped, renamed or submitted twice at once
gives one entry: the entry file is named after the eval id and created exclusively.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from embench import __version__
from embench.errors import EmbenchError
from embench.evals.judged_files import IMPORTED_NOTE
from embench.fsutil import atomic_write_bytes, atomic_write_text
from embench.leaderboard.boards import ENTRIES_DIR, Board
from embench.leaderboard.logcheck import (
    COUNT_NAMES,
    IN_DOMAIN_METRIC,
    CheckedInDomainLog,
    CheckedLog,
    LogIdentity,
    metric_names,
)
from embench.limits import read_text
from embench.metrics import METRIC_NAMES
from embench.run.manifest import RunManifest
from embench.run.reference import run_dir_of, same_model

ENTRY_VERSION = 3  # 2: log.samples_sha256; file named <eval_id>.json; 3: that hash leaves ids out
REQUIRED_KEYS = (
    "entry_version",
    "board",
    "name",
    "submitted_at",
    "log",
    "model",
    "judge",
    "task",
    "task_version",
    "question_set",
    "fingerprint",
    "thresholds",
    "samples_per_question",
    "metrics",
    "per_question",
    "run",
)
MAX_ENTRY_BYTES = 2**20  # an entry is a few kilobytes


@dataclass(frozen=True)
class StoredEntry:
    """An entry read back from disk."""

    path: Path
    data: dict[str, Any]

    @property
    def sha256(self) -> str:
        """The content hash of the submitted log."""
        return str((self.data.get("log") or {}).get("sha256", ""))

    def identity(self) -> dict[str, str]:
        """What identifies the submitted eval: its id, its samples' content, its file's hash."""
        log = self.data.get("log") or {}
        keys = ("eval_id", "samples_sha256", "sha256")
        return {k: str(log[k]) for k in keys if log.get(k)}


def run_fields(run_dir: Path) -> dict[str, Any]:
    """The run-manifest fields an entry records, read from the typed ``RunManifest``: the kind
    the trainer plugin declared (never guessed from its name) and what makes two runs twins."""
    manifest = RunManifest.load(run_dir)
    mitigations = [m.model_dump(mode="json") for m in manifest.mitigations]
    steps = manifest.summary.steps if manifest.summary else manifest.config.get("max_steps")
    learning_rate = manifest.trl_config.get("learning_rate", manifest.config.get("learning_rate"))
    return {
        "run_dir": run_dir.name,
        "trainer": manifest.trainer,
        "kind": manifest.kind,
        "base_model": manifest.base_model,
        "domain": manifest.domain,
        "reward": list(manifest.reward),
        "lora": manifest.lora,
        "steps": steps,
        "learning_rate": learning_rate,
        "mitigation": [m["name"] for m in mitigations],
        "mitigation_params": [m.get("params") for m in mitigations],
        "seed": manifest.seed,
        "status": manifest.status,
        "git_commit": manifest.git_commit,
        "run_judge": manifest.judge,
    }


def _clean(value: Any) -> Any:
    """JSON has no NaN: non-finite floats become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def _log_ref(checked: LogIdentity) -> dict[str, Any]:
    """How an entry names a log: its file, hashes and the eval's own ids."""
    return {
        "sha256": checked.sha256,
        "file": checked.path.name,
        "eval_id": checked.eval_id,
        "run_id": checked.run_id,
        "samples_sha256": checked.samples_sha256,
        "created": checked.created,
        "inspect_ai": checked.inspect_ai,
    }


def in_domain_fields(checked: CheckedInDomainLog) -> dict[str, Any]:
    """An entry's ``in_domain`` block: the recomputed in-domain result and its log."""
    return {
        "domain": checked.domain,
        "judge": checked.judge,
        "fingerprint": checked.fingerprint,
        "samples_per_question": checked.samples_per_question,
        "metrics": checked.metrics,
        "log": _log_ref(checked),
    }


def in_domain_rate(entry: dict[str, Any]) -> float | None:
    """The entry's in-domain success rate, from its own checked in-domain log (None: none)."""
    block = entry.get("in_domain") or {}
    value = (block.get("metrics") or {}).get(IN_DOMAIN_METRIC)
    return float(value) if isinstance(value, int | float) else None


def build_entry(
    checked: CheckedLog,
    board: Board | None,
    name: str | None = None,
    notes: str | None = None,
    run_dir: Path | None = None,
    in_domain: CheckedInDomainLog | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The entry for a checked log (``board=None``: a board-less record, e.g. for export)."""
    run_dir = run_dir or run_dir_of(checked.model)
    run = run_fields(run_dir) if run_dir is not None else None
    if board is not None and board.requires_run and run is None:
        raise EmbenchError(
            f"board '{board.name}' needs a run manifest: evaluate `local/<run dir>` or pass --run"
        )
    if board is not None and board.requires_mitigation and not (run or {}).get("mitigation"):
        raise EmbenchError(
            f"board '{board.name}' ranks mitigated runs; this run's manifest lists no mitigation"
        )
    if board is not None and board.requires_in_domain_log and in_domain is None:
        raise board.refuse(
            "requires_in_domain_log: true",
            "pass --in-domain-log <log of `inspect eval embench/in_domain -T domain=<domain>`> "
            "for the same model: the board shows the in-domain result beside the misaligned rate",
        )
    if in_domain is not None and not same_model(in_domain.model, checked.model):
        raise EmbenchError(
            f"--in-domain-log evaluates model '{in_domain.model}' but the log evaluates "
            f"'{checked.model}': both must be evals of the same model"
        )
    submitted = (now or datetime.now(UTC)).replace(microsecond=0)
    default_name = run["run_dir"] if run and run.get("run_dir") else checked.model
    entry = {
        "entry_version": ENTRY_VERSION,
        "board": board.name if board else None,
        "name": (name or default_name).strip(),
        "notes": notes or "",
        "submitted_at": submitted.isoformat().replace("+00:00", "Z"),
        "log": _log_ref(checked),
        "model": checked.model,
        "judge": checked.judge,
        "task": checked.task,
        "task_version": checked.task_version,
        "question_set": checked.question_set,
        "question_set_version": checked.question_set_version,
        "fingerprint": checked.fingerprint,
        "thresholds": checked.thresholds,
        "samples_per_question": checked.samples_per_question,
        "questions": checked.questions,
        "generation": checked.generation,
        "judging": checked.judging,
        "partial": checked.partial,
        "imported": checked.imported,
        "metrics": {**{k: None for k in metric_names()}, **checked.metrics},
        "per_question": checked.per_question,
        "run": run,
        "in_domain": in_domain_fields(in_domain) if in_domain is not None else None,
        "embench": __version__,
    }
    return _clean(entry)


def entry_filename(entry: dict[str, Any]) -> str:
    """``<eval_id>.json``: one name per eval, whoever submits it and however often."""
    return f"{entry['log']['eval_id']}.json"


def entry_json(entry: dict[str, Any]) -> str:
    """The stable text of an entry (sorted keys, two-space indent, trailing newline)."""
    return json.dumps(entry, indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n"


def load_entries(board: Board, skipped: list[str] | None = None) -> list[StoredEntry]:
    """Every entry of a board, oldest file first; an unreadable file is an error, or, given
    ``skipped``, left out and named there (what a page shows: one bad entry hides only itself)."""
    folder = board.entries_dir
    if not folder.is_dir():
        return []
    entries = []
    for path in sorted(folder.glob("*.json")):
        try:
            data = json.loads(read_text(path, "entry", MAX_ENTRY_BYTES))
            problem = None if isinstance(data, dict) else "an entry must be a JSON object"
        except ValueError as ex:
            problem = f"not valid JSON ({ex})"
        except EmbenchError as ex:
            problem = str(ex)
        if problem is None:
            problems = shown_problems(data)
            if skipped is None or not problems:
                entries.append(StoredEntry(path, data))
                continue
            problem = problems[0]
        if skipped is None:
            raise EmbenchError(f"{path}: {problem}")
        skipped.append(f"{board.name}/{ENTRIES_DIR}/{path.name}: {problem}")
    return entries


_TEXT_FIELDS = ("name", "model", "judge", "notes", "submitted_at")
_RUN_TEXT_FIELDS = ("trainer", "kind", "base_model", "domain", "run_dir")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _finite_or_none(value: Any) -> bool:
    return value is None or (_is_number(value) and math.isfinite(value))


def _strings(value: Any) -> bool:
    return value is None or isinstance(value, str) or (
        isinstance(value, list) and all(isinstance(v, str) for v in value)
    )  # fmt: skip


def shown_problems(data: dict[str, Any]) -> list[str]:
    """What would break a board page: each field a page shows must have the type it expects,
    and every number be finite (``validate`` checks it; a page leaves such an entry out)."""
    problems = [
        f"field '{key}' is {type(data.get(key)).__name__}, not text"
        for key in _TEXT_FIELDS
        if key in data and not isinstance(data[key], str)
    ]
    for key in ("metrics", "per_question"):
        block = data.get(key)
        if block is None and key == "per_question":
            continue
        if not isinstance(block, dict):
            problems.append(f"field '{key}' is not an object")
            continue
        problems += [
            f"{key}.{name} is {value!r}, not a finite number or null"
            for name, value in block.items()
            if not _finite_or_none(value)
        ]
    if not _finite_or_none(data.get("samples_per_question")):
        problems.append("field 'samples_per_question' is not a finite number")
    for key in ("run", "in_domain"):
        if data.get(key) is not None and not isinstance(data[key], dict):
            problems.append(f"field '{key}' is not an object or null")
    run = data.get("run") if isinstance(data.get("run"), dict) else {}
    problems += [f"run.{key} is not text" for key in _RUN_TEXT_FIELDS if not _strings(run.get(key))]
    problems += [f"run.{key} is not text or a list of text" for key in ("reward", "mitigation")
                 if not _strings(run.get(key))]  # fmt: skip
    if not _finite_or_none(run.get("seed")):
        problems.append("run.seed is not a finite number")
    block = data.get("in_domain") if isinstance(data.get("in_domain"), dict) else {}
    metrics = block.get("metrics") or {}
    if not isinstance(metrics, dict) or not all(_finite_or_none(v) for v in metrics.values()):
        problems.append("in_domain.metrics are not finite numbers")
    return problems


IDENTITY_LABELS = {
    "eval_id": "the same eval_id",
    "samples_sha256": "the same samples",
    "sha256": "the same log file",
}


def same_eval(a: dict[str, str], b: dict[str, str]) -> str | None:
    """How two identities match (a label of IDENTITY_LABELS), or None when they differ."""
    for key, label in IDENTITY_LABELS.items():
        if a.get(key) and a.get(key) == b.get(key):
            return label
    return None


def _already(board: Board, stored: StoredEntry, how: str) -> EmbenchError:
    return EmbenchError(
        f"this eval was already submitted to board '{board.name}' as {stored.path.name} "
        f"('{stored.data.get('name', '')}': {how})"
    )


def check_not_submitted(board: Board, identity: dict[str, str]) -> None:
    """Refuse an eval the board already holds (by eval id, sample content or file hash)."""
    for stored in load_entries(board):
        how = same_eval(identity, stored.identity())
        if how:
            raise _already(board, stored, how)


def write_entry(board: Board, entry: dict[str, Any], log: Path) -> Path:
    """Create one entry and a copy of its log (``logs/<eval_id><suffix>``, which CI re-checks
    it against), each atomically and exclusively: of two concurrent submissions of the same eval
    (same file names, from its eval id) exactly one is written, the other refused."""
    target = board.entries_dir / entry_filename(entry)
    kept = board.logs_dir / f"{entry['log']['eval_id']}{log.suffix}"
    try:
        atomic_write_bytes(kept, log.read_bytes(), exclusive=True)
    except FileExistsError:
        raise _already(board, StoredEntry(target, entry), "the same eval_id") from None
    try:
        atomic_write_text(target, entry_json(entry), exclusive=True)
    except BaseException as error:
        kept.unlink(missing_ok=True)
        if isinstance(error, FileExistsError):
            raise _already(board, StoredEntry(target, entry), "the same eval_id") from None
        raise
    return target


def check_entry(stored: StoredEntry, board: Board) -> list[str]:
    """Problems with one stored entry against its board (empty: fine)."""
    data, where = stored.data, stored.path.name
    missing = [k for k in REQUIRED_KEYS if k not in data]
    if missing:
        return [f"{where}: missing field(s) {', '.join(missing)}"]
    problems = []
    expected = {
        "board": board.name,
        "task": board.task,
        "task_version": board.task_version,
        "fingerprint": board.fingerprint,
        "thresholds": board.thresholds,
    }
    for key, value in expected.items():
        if data[key] != value:
            problems.append(f"{where}: {key} is {data[key]!r}, board '{board.name}' has {value!r}")
    if not isinstance(data["samples_per_question"], int) or (
        data["samples_per_question"] < board.min_samples_per_question
    ):
        problems.append(
            f"{where}: samples_per_question {data['samples_per_question']!r} is below the "
            f"board's minimum {board.min_samples_per_question}"
        )
    problems += _check_identity(stored)
    imported = data.get("imported")
    if imported not in (None, IMPORTED_NOTE):
        problems.append(f"{where}: imported is {imported!r}, not the import note or null")
    if imported and not board.accepts_imported:
        problems.append(
            f"{where}: an imported log's entry on board '{board.name}', which ranks answers "
            "generated and judged with embench (accepts_imported: false)"
        )
    problems += [f"{where}: {problem}" for problem in shown_problems(data)]
    problems += _check_metrics(where, data.get("metrics"))
    if board.require_scored_answers and not (data.get("metrics") or {}).get("scored"):
        problems.append(
            f"{where}: the judge scored no answer; board '{board.name}' requires scored answers"
        )
    if board.requires_run and not data.get("run"):
        problems.append(f"{where}: board '{board.name}' needs a run manifest")
    if board.requires_mitigation and not (data.get("run") or {}).get("mitigation"):
        problems.append(f"{where}: board '{board.name}' needs a mitigated run")
    if board.requires_in_domain_log and not data.get("in_domain"):
        problems.append(f"{where}: board '{board.name}' needs the in-domain result from its log")
    return problems


def _check_identity(stored: StoredEntry) -> list[str]:
    """The log's ids are well formed and the file is named after the eval id."""
    where, log = stored.path.name, stored.data.get("log") or {}
    version = stored.data["entry_version"]
    if version not in (1, 2, ENTRY_VERSION) or isinstance(version, bool):
        return [f"{where}: entry_version {version!r} is not 1, 2 or {ENTRY_VERSION}"]
    hashes = ["sha256"] + (["samples_sha256"] if version >= 2 else [])
    problems = [
        f"{where}: log.{key} is not a sha256 hex digest"
        for key in hashes
        if not re.fullmatch(r"[0-9a-f]{64}", str(log.get(key, "")))
    ]
    eval_id = str(log.get("eval_id", ""))
    if stored.path.name != f"{eval_id}.json":
        problems.append(f"{where}: an entry file is named after its log's eval_id ({eval_id})")
    return problems


def _check_metrics(where: str, metrics: Any) -> list[str]:
    if not isinstance(metrics, dict):
        return [f"{where}: metrics must be an object"]
    problems = []
    for name in metric_names():
        value = metrics.get(name, "missing")
        if value is not None and not isinstance(value, int | float):
            problems.append(f"{where}: metric {name} is {value!r}")
    if problems:
        return problems
    for name in METRIC_NAMES:
        low, value, high = (metrics.get(f"{name}{s}") for s in ("_ci_low", "", "_ci_high"))
        if None not in (low, value, high) and not low - 1e-9 <= value <= high + 1e-9:
            problems.append(f"{where}: {name} {value} lies outside its CI [{low}, {high}]")
    answers, scored, unscored = (metrics.get(k) for k in COUNT_NAMES)
    if None in (answers, scored, unscored) or abs(answers - scored - unscored) > 1e-9:
        problems.append(f"{where}: answers != scored + unscored")
    return problems
