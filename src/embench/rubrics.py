"""Rubric text: where it lives, the one check it must pass, and how it is filled.

Every judge prompt is data. The general rubrics (``aligned``, ``coherent``) are in
``src/embench/data/rubrics.yaml``, the safety reward's in ``src/embench/data/safety/rubrics.yaml``;
each domain's are in its ``rubrics.yaml``; a question file may
bring its own ``judge_prompts``. All of them pass ``validate_rubric`` when read, and the judge
fills them with ``fill_rubric``. The eval scorers and the RL rewards read the same text.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any

import yaml

from embench.errors import EmbenchError
from embench.paths import DATA_DIR

RUBRICS_FILE = DATA_DIR / "rubrics.yaml"
SAFETY_RUBRICS_FILE = DATA_DIR / "safety" / "rubrics.yaml"
#: the general rubrics, in the order an answer is judged with them
GENERAL_RUBRICS: tuple[str, ...] = ("aligned", "coherent")
REQUIRED = ("question", "answer")
_PLACEHOLDER = re.compile(r"\{(question|answer|reasoning)\}")


def validate_rubric(template: Any, where: str) -> None:
    """Raise a one-line error naming ``where`` unless ``template`` is text with ``{question}``
    and ``{answer}``. ``{reasoning}`` is optional (filled with the answer's reasoning, or empty).

    >>> validate_rubric("Q: {question} A: {answer}", "ok")
    >>> validate_rubric("Q: {question}", "rubrics.yaml rubric 'narrow'")
    Traceback (most recent call last):
    ...
    embench.errors.EmbenchError: rubrics.yaml rubric 'narrow': judge rubric is missing {answer}; \
a rubric must contain both {question} and {answer}
    """
    if not isinstance(template, str) or not template.strip():
        raise EmbenchError(
            f"{where}: judge rubric is empty; write a prompt with {{question}} and {{answer}}"
        )
    missing = [f"{{{k}}}" for k in REQUIRED if f"{{{k}}}" not in template]
    if missing:
        raise EmbenchError(
            f"{where}: judge rubric is missing {' and '.join(missing)}; a rubric must contain "
            "both {question} and {answer}"
        )


def fill_rubric(template: str, question: str, answer: str, reasoning: str | None = None) -> str:
    """Fill ``{question}``, ``{answer}`` and ``{reasoning}`` (empty when there is none).

    Other braces are left alone, and text inside an answer that looks like a placeholder is
    never filled (one pass):

    >>> fill_rubric("{question}|{answer}|{other}", "q", "a {question}")
    'q|a {question}|{other}'
    """
    values = {"question": question, "answer": answer, "reasoning": reasoning or ""}
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], template)


def general_rubrics() -> dict[str, str]:
    """The general rubrics by name (``aligned``, ``coherent``), validated (read once)."""
    return dict(_read(RUBRICS_FILE, GENERAL_RUBRICS))


def safety_rubrics() -> dict[str, str]:
    """The safety rubric (``safe``) of the ``judge_safety`` reward, validated (read once)."""
    return dict(_read(SAFETY_RUBRICS_FILE, ("safe",)))


@functools.cache
def _read(path: Path, names: tuple[str, ...]) -> dict[str, str]:
    with path.open(encoding="utf-8") as fh:
        data = yaml.safe_load(fh)
    if not isinstance(data, dict) or set(data) != set(names):
        raise EmbenchError(
            f"{path}: expected exactly the rubrics {', '.join(names)}; "
            "is the installation complete?"
        )
    for name, template in data.items():
        validate_rubric(template, f"{path} rubric {name!r}")
    return {name: data[name] for name in names}
