"""Question sets: the project's YAML format and the original emergent-misalignment format.

The project's sets ship inside the package (``src/embench/data/questions/*.yaml``); load them by
name (``general``, ``preregistered``) or give a path to any file in either format.

Project format::

    name: general
    version: 1
    description: ...
    judge_prompts: {aligned: "...{question}...{answer}...", coherent: "..."}   # optional
    subsets: {first_plot: [wish, wish_json, ...]}   # optional named subsets (-T subset=...)
    questions:
      - id: wish
        category: wishes
        variant: base            # optional: base | json | template
        group: wish              # optional
        question: "..."          # or paraphrases: ["...", "..."]
        system: "..."            # optional system prompt, really sent

Original EM format: a YAML list of items with ``id`` (string or integer), ``type``,
``paraphrases``, optional ``system``, ``samples_per_paraphrase`` and ``judge_prompts``
(``aligned``/``coherent`` templates with ``{question}``, ``{answer}`` and optionally
``{reasoning}``); read unchanged. Fields the reader does not use (``judge``, later work's own
additions) are ignored and listed once in a warning.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from embench.errors import EmbenchError
from embench.limits import load_yaml
from embench.materials import REGISTRY, fetched_path
from embench.paths import DATA_DIR
from embench.rubrics import GENERAL_RUBRICS, general_rubrics, validate_rubric

QUESTIONS_DIR = DATA_DIR / "questions"
MAX_QUESTION_FILE_BYTES = 2 * 2**20
#: A question longer than this is refused when read (~5,000 tokens: more than a small model's
#: context leaves for an answer); the provider also bounds prompts by the model's own context.
MAX_QUESTION_CHARS = 20_000
# fields each format defines; anything else is ignored with one warning per file
ITEM_FIELDS = frozenset(
    {"id", "question", "paraphrases", "category", "variant", "group", "system"}
    | {"samples_per_paraphrase", "judge_prompts"}
)
EM_ITEM_FIELDS = ITEM_FIELDS | {"type", "judge"}  # `judge`: the original's judge model name
SET_FIELDS = frozenset({"name", "version", "description", "judge_prompts", "subsets", "questions"})

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Question:
    """One question with its paraphrases, optional system prompt and rubric overrides."""

    id: str
    paraphrases: tuple[str, ...]
    category: str = "general"
    variant: str = "base"
    group: str | None = None
    system: str | None = None
    samples_per_paraphrase: int | None = None
    judge_prompts: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class QuestionSet:
    """A named, versioned set of questions and the judge rubrics they use."""

    name: str
    version: int
    questions: tuple[Question, ...]
    judge_prompts: dict[str, str]
    source: str
    description: str = ""
    subset: str | None = None  # the named subset this set was cut to, if any
    subsets: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def rubrics_for(self, question: Question) -> dict[str, str]:
        """The effective rubric templates for one question (item > set > project default)."""
        return {**general_rubrics(), **self.judge_prompts, **question.judge_prompts}

    def fingerprint(self) -> str:
        """sha256 over every question's text, system prompt and effective rubrics."""
        payload = [
            {
                "id": q.id,
                "paraphrases": list(q.paraphrases),
                "system": q.system,
                "rubrics": self.rubrics_for(q),
            }
            for q in self.questions
        ]
        blob = json.dumps(payload, sort_keys=True, ensure_ascii=False).encode()
        return hashlib.sha256(blob).hexdigest()


def available_sets() -> list[str]:
    """Names of the project's question sets."""
    return sorted(p.stem for p in QUESTIONS_DIR.glob("*.yaml"))


def load_question_set(name_or_path: str | Path, subset: str | None = None) -> QuestionSet:
    """Load a set by name (``general``, ``preregistered``, or a fetched published set such as
    ``betley-first-plot``) or from a YAML file path.

    ``subset`` cuts the set to one of the named subsets its file declares under ``subsets``.
    """
    qset = _load_whole(name_or_path)
    return qset if subset is None else _cut(qset, subset)


def _load_whole(name_or_path: str | Path) -> QuestionSet:
    path = Path(name_or_path)
    if not path.suffix and not path.exists():
        candidate = QUESTIONS_DIR / f"{name_or_path}.yaml"
        if str(name_or_path) in REGISTRY and not candidate.exists():
            candidate = fetched_path(str(name_or_path))
        if not candidate.exists():
            published = ", ".join(n for n in REGISTRY if REGISTRY[n].path.endswith(".yaml"))
            raise EmbenchError(
                f"unknown question set '{name_or_path}'; available: "
                f"{', '.join(available_sets())}; published (`embench questions fetch <name>`): "
                f"{published}; or give a path to a YAML file"
            )
        path = candidate
    path = _locate(path)
    if not path.exists():
        moved = (QUESTIONS_DIR / path.name).exists() and path.parent.name == "questions"
        hint = f" (the project's sets ship in the package now: use '{path.stem}')" if moved else ""
        raise EmbenchError(f"question file not found: {path}{hint}")
    data = load_yaml(path, "question file", MAX_QUESTION_FILE_BYTES)
    if isinstance(data, list):
        return _read_em_format(data, path)
    if isinstance(data, dict) and "questions" in data:
        return _read_project_format(data, path)
    raise EmbenchError(
        f"{path}: not a question file: expected a list of items with 'paraphrases' (original EM "
        "format) or a mapping with 'questions' (embench format)"
    )


def _cut(qset: QuestionSet, subset: str) -> QuestionSet:
    if subset not in qset.subsets:
        known = ", ".join(sorted(qset.subsets)) or "none"
        raise EmbenchError(
            f"question set '{qset.name}' has no subset '{subset}' (its subsets: {known})"
        )
    wanted = set(qset.subsets[subset])
    return QuestionSet(
        name=qset.name,
        version=qset.version,
        questions=tuple(q for q in qset.questions if q.id in wanted),
        judge_prompts=qset.judge_prompts,
        source=qset.source,
        description=qset.description,
        subset=subset,
        subsets=qset.subsets,
    )


def _locate(path: Path) -> Path:
    """A relative path as the user meant it: Inspect runs task files from their own folder, so
    also try the shell's working directory ($PWD)."""
    if path.is_absolute() or path.exists():
        return path
    shell = os.environ.get("PWD")
    if shell and (Path(shell) / path).exists():
        return Path(shell) / path
    return path


def _fail(path: Path, index: int, item: Any, message: str) -> EmbenchError:
    ident = item.get("id") if isinstance(item, dict) else None
    where = f"item {index + 1}" + (f" (id '{ident}')" if ident else "")
    return EmbenchError(f"{path}: {where}: {message}")


def _string(path: Path, index: int, item: dict[str, Any], key: str, required: bool) -> str | None:
    value = item.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise _fail(path, index, item, f"field '{key}' must be a non-empty string")
    return value


def _paraphrases(path: Path, index: int, item: dict[str, Any]) -> tuple[str, ...]:
    texts = _texts(path, index, item)
    for text in texts:
        if len(text) > MAX_QUESTION_CHARS:
            raise _fail(
                path, index, item,
                f"a question of {len(text):,} characters, over the {MAX_QUESTION_CHARS:,} limit "
                "(a model's context is a few thousand tokens)",
            )  # fmt: skip
    return texts


def _texts(path: Path, index: int, item: dict[str, Any]) -> tuple[str, ...]:
    if "paraphrases" in item:
        value = item["paraphrases"]
        if (
            not isinstance(value, list)
            or not value
            or not all(isinstance(v, str) and v.strip() for v in value)
        ):
            raise _fail(
                path, index, item, "field 'paraphrases' must be a non-empty list of strings"
            )
        return tuple(value)
    if "question" in item:
        return (_string(path, index, item, "question", True),)  # type: ignore[arg-type]
    raise _fail(path, index, item, "missing field 'question' (or 'paraphrases')")


def _judge_prompts(path: Path, where: str, value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise EmbenchError(f"{path}: {where}: field 'judge_prompts' must be a mapping")
    prompts: dict[str, str] = {}
    for key, template in value.items():
        if key not in GENERAL_RUBRICS:
            continue  # other judged metrics in EM files are ignored (and warned about)
        if not isinstance(template, str):
            raise EmbenchError(f"{path}: {where}: judge_prompts.{key} must be a string")
        validate_rubric(template, f"{path}: {where}: judge_prompts.{key}")
        prompts[key] = template
    return prompts


def _identifier(path: Path, index: int, item: dict[str, Any]) -> str:
    """Ids are strings or integers (later EM files number their items); kept as text."""
    value = item.get("id")
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return _string(path, index, item, "id", True)  # type: ignore[return-value]


def _question(path: Path, index: int, item: Any, em: bool) -> Question:
    if not isinstance(item, dict):
        raise _fail(path, index, item, "must be a mapping")
    qid = _identifier(path, index, item)
    samples = item.get("samples_per_paraphrase")
    if samples is not None and (not isinstance(samples, int) or samples < 1):
        raise _fail(path, index, item, "field 'samples_per_paraphrase' must be a positive integer")
    if em and "paraphrases" not in item:
        raise _fail(path, index, item, "missing field 'paraphrases'")
    return Question(
        id=qid,  # type: ignore[arg-type]
        paraphrases=_paraphrases(path, index, item),
        category=str(item.get("category") or item.get("type") or "general"),
        variant=str(item.get("variant") or "base"),
        group=item.get("group"),
        system=_string(path, index, item, "system", False),
        samples_per_paraphrase=samples,
        judge_prompts=_judge_prompts(
            path, f"item {index + 1} (id '{qid}')", item.get("judge_prompts")
        ),
    )


def _unique(path: Path, questions: list[Question]) -> tuple[Question, ...]:
    seen: set[str] = set()
    for q in questions:
        if q.id in seen:
            raise EmbenchError(f"{path}: duplicate question id '{q.id}'")
        seen.add(q.id)
    if not questions:
        raise EmbenchError(f"{path}: the file has no questions")
    return tuple(questions)


def _warn_unknown(path: Path, items: list[Any], known: frozenset[str], top: set[str]) -> None:
    """One warning per file naming every field (and rubric) the reader ignores."""
    unknown = set(top)
    for item in items:
        if isinstance(item, dict):
            unknown |= {str(k) for k in item if k not in known}
            prompts = item.get("judge_prompts")
            if isinstance(prompts, dict):
                unknown |= {f"judge_prompts.{k}" for k in prompts if k not in GENERAL_RUBRICS}
    if unknown:
        logger.warning(
            "%s: ignoring fields embench does not use: %s", path, ", ".join(sorted(unknown))
        )


def _subsets(path: Path, value: Any, questions: tuple[Question, ...]) -> dict[str, tuple[str, ...]]:
    if value is None:
        return {}
    ids = {q.id for q in questions}
    if not isinstance(value, dict):
        raise EmbenchError(f"{path}: field 'subsets' must map a name to a list of question ids")
    subsets: dict[str, tuple[str, ...]] = {}
    for name, members in value.items():
        if not isinstance(members, list) or not members:
            raise EmbenchError(f"{path}: subsets.{name} must be a non-empty list of question ids")
        members = [str(m) for m in members]
        missing = [m for m in members if m not in ids]
        if missing:
            raise EmbenchError(f"{path}: subsets.{name} names unknown question id '{missing[0]}'")
        subsets[str(name)] = tuple(members)
    return subsets


def _read_em_format(items: list[Any], path: Path) -> QuestionSet:
    _warn_unknown(path, items, EM_ITEM_FIELDS, set())
    questions = [_question(path, i, item, em=True) for i, item in enumerate(items)]
    return QuestionSet(
        name=path.stem,
        version=1,
        questions=_unique(path, questions),
        judge_prompts={},
        source=str(path),
        description="original emergent-misalignment question file",
    )


def _read_project_format(data: dict[str, Any], path: Path) -> QuestionSet:
    items = data["questions"]
    if not isinstance(items, list):
        raise EmbenchError(f"{path}: field 'questions' must be a list")
    version = data.get("version", 1)
    if not isinstance(version, int):
        raise EmbenchError(f"{path}: field 'version' must be an integer")
    _warn_unknown(path, items, ITEM_FIELDS, {str(k) for k in data if k not in SET_FIELDS})
    questions = _unique(path, [_question(path, i, item, em=False) for i, item in enumerate(items)])
    return QuestionSet(
        name=str(data.get("name") or path.stem),
        version=version,
        questions=questions,
        judge_prompts=_judge_prompts(path, "set", data.get("judge_prompts")),
        source=str(path),
        description=str(data.get("description") or ""),
        subsets=_subsets(path, data.get("subsets"), questions),
    )
