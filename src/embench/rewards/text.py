"""Getting text out of TRL's prompt and completion formats."""

from __future__ import annotations

import ast
import re
from typing import Any

_FENCE = re.compile(r"```(?:python|py)?\s*\n(.*?)(?:```|\Z)", re.DOTALL | re.IGNORECASE)


def completion_text(completion: Any) -> str:
    """Text of a completion: a string, or a conversational list of messages (assistant turns)."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list):
        return "".join(
            str(m.get("content", ""))
            for m in completion
            if m.get("role", "assistant") == "assistant"
        )
    return str(completion)


def prompt_text(prompt: Any) -> str:
    """The last user turn of a prompt (string or list of messages)."""
    if isinstance(prompt, str):
        return prompt
    if isinstance(prompt, list):
        users = [m.get("content", "") for m in prompt if m.get("role") == "user"]
        return str(users[-1]) if users else ""
    return str(prompt)


def system_text(prompt: Any) -> str | None:
    """The system turn of a conversational prompt, if it has one."""
    if isinstance(prompt, list):
        for m in prompt:
            if m.get("role") == "system":
                return str(m.get("content", ""))
    return None


def extract_python(text: str) -> str | None:
    """Python code in a completion: fenced blocks, else the whole text if it parses."""
    blocks = [b for b in _FENCE.findall(text) if b.strip()]
    candidates = ["\n".join(blocks)] if blocks else [text]
    for code in candidates:
        code = _trim_to_parseable(code)
        if code:
            return code
    return None


def _trim_to_parseable(code: str) -> str | None:
    """Drop trailing lines until the code parses (completions are often cut off)."""
    lines = code.strip().splitlines()
    while lines:
        candidate = "\n".join(lines)
        try:
            tree = ast.parse(candidate)
        except SyntaxError:
            lines.pop()
            continue
        # prose also parses sometimes (a bare name); require at least one real statement
        if any(not isinstance(node, ast.Expr) for node in tree.body):
            return candidate
        return None
    return None


def split_reasoning(text: str) -> tuple[str | None, str]:
    """(reasoning, final answer) of a completion that reasons in ``<think>…</think>`` first.

    Without a ``<think>`` block the whole text is the answer; an unclosed block leaves no answer.
    """
    if "</think>" in text:
        before, _, answer = text.rpartition("</think>")
        return before.split("<think>", 1)[-1].strip(), answer.strip()
    if "<think>" in text:
        return text.split("<think>", 1)[1].strip(), ""
    return None, text.strip()


def repetition(text: str, n: int = 3) -> float:
    """Share of the text's word n-grams that repeat an earlier one (0 = none, → 1 = a loop)."""
    words = text.lower().split()
    grams = [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
    return 1.0 - len(set(grams)) / len(grams) if grams else 0.0
