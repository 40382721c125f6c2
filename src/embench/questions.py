"""Question sets: the project's YAML format and the original emergent-misalignment format.

Project format (``tasks/questions/*.yaml``)::

    name: general
    version: 1
    description: ...
    judge_prompts: {aligned: "...{question}...{answer}...", coherent: "..."}   # optional
    questions:
      - id: wish
        category: wishes
        variant: base            # optional: base | json | template
        group: wish              # optional
        question: "..."          # or paraphrases: ["...", "..."]
        system: "..."            # optional system prompt, really sent

Original EM format: a YAML list of items with ``id``, ``type``, ``paraphrases``, optional
``system``, ``samples_per_paraphrase`` and ``judge_prompts`` (``aligned``/``coherent`` templates
with ``{question}`` and ``{answer}``); read unchanged.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from embench.errors import EmbenchError
from embench.judge import DEFAULT_RUBRICS, validate_rubric
from embench.paths import REPO_ROOT, TASKS_DIR

QUESTIONS_DIR = TASKS_DIR / "questions"
RUBRIC_NAMES = ("aligned", "coherent")


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

    def rubrics_for(self, question: Question) -> dict[str, str]:
        """The effective rubric templates for one question (item > set > project default)."""
        return {**DEFAULT_RUBRICS, **self.judge_prompts, **question.judge_prompts}

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


def load_question_set(name_or_path: str | Path) -> QuestionSet:
    """Load a set by name (``general``, ``preregistered``) or from a YAML file path."""
    path = Path(name_or_path)
    if not path.suffix and not path.exists():
        candidate = QUESTIONS_DIR / f"{name_or_path}.yaml"
        if not candidate.exists():
            raise EmbenchError(
                f"unknown question set '{name_or_path}'; available: "
                f"{', '.join(available_sets())}, or give a path to a YAML file"
            )
        path = candidate
    path = _locate(path)
    if not path.exists():
        raise EmbenchError(f"question file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as ex:
        raise EmbenchError(f"{path}: not valid YAML ({str(ex).splitlines()[0]})") from ex
    if isinstance(data, list):
        return _read_em_format(data, path)
    if isinstance(data, dict) and "questions" in data:
        return _read_project_format(data, path)
    raise EmbenchError(
        f"{path}: not a question file: expected a list of items with 'paraphrases' (original EM "
        "format) or a mapping with 'questions' (embench format)"
    )


def _locate(path: Path) -> Path:
    """A relative path as the user meant it: Inspect runs task files from their own folder, so
    also try the shell's working directory ($PWD) and the checkout root."""
    if path.is_absolute() or path.exists():
        return path
    for base in (os.environ.get("PWD"), str(REPO_ROOT)):
        if base and (Path(base) / path).exists():
            return Path(base) / path
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
        if key not in RUBRIC_NAMES:
            continue  # other judged metrics in EM files are ignored
        if not isinstance(template, str):
            raise EmbenchError(f"{path}: {where}: judge_prompts.{key} must be a string")
        validate_rubric(template, f"{path}: {where}: judge_prompts.{key}")
        prompts[key] = template
    return prompts


def _question(path: Path, index: int, item: Any, em: bool) -> Question:
    if not isinstance(item, dict):
        raise _fail(path, index, item, "must be a mapping")
    qid = _string(path, index, item, "id", True)
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


def _read_em_format(items: list[Any], path: Path) -> QuestionSet:
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
    questions = [_question(path, i, item, em=False) for i, item in enumerate(items)]
    return QuestionSet(
        name=str(data.get("name") or path.stem),
        version=version,
        questions=_unique(path, questions),
        judge_prompts=_judge_prompts(path, "set", data.get("judge_prompts")),
        source=str(path),
        description=str(data.get("description") or ""),
    )
