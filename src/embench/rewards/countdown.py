"""Countdown: an exact, judge-free reward for "reach the target from these numbers".

The answer's equation is read with ``ast`` and evaluated by walking a whitelist — integer
literals, ``+ - * /`` and parentheses, nothing else — with exact fractions, a length limit and a
bound on every intermediate value. Calls, names, attributes, powers and every other node make
the answer malformed; ``eval`` is never used.

Reward: 1.0 for an equation that uses each given number exactly once and equals the target;
for a well-formed miss whose numbers are all given (none more often than given),
``WELL_FORMED`` plus ``USE_BONUS`` times the share of the given numbers it uses; ``OFF_RULES``
for a well-formed expression with a number that was not given (or used too often); 0.0 for no
expression, a malformed or a hostile one. The paper's control task (EMA_RL
``open_models/rl/reward.py`` ``_score_countdown``, commit 81cb261) scores 1/0 only; the partial
credit is ours, so a small model's reward can move before it solves any puzzle.
"""

from __future__ import annotations

import ast
import re
from collections import Counter
from fractions import Fraction
from typing import Any

from embench.rewards.text import completion_text, prompt_text

OFF_RULES = 0.05
WELL_FORMED = 0.1
USE_BONUS = 0.2
MAX_EXPRESSION_CHARS = 200
MAX_VALUE = 10**9
"""Bound on the magnitude of any literal or intermediate result (no huge numbers)."""

_NUMBERS = re.compile(r"Numbers:\s*\[([\d,\s]+)\]")
_TARGET = re.compile(r"Target:\s*(\d+)")
_ANSWER = re.compile(r"<answer>(.*?)</answer>", re.DOTALL | re.IGNORECASE)
_ARITHMETIC_RUN = re.compile(r"[\d\s()+\-*/×÷−]+")
_SYMBOLS = str.maketrans({"×": "*", "÷": "/", "−": "-"})


class Malformed(ValueError):
    """The text is not an arithmetic expression this parser accepts."""


def puzzle(prompt: str) -> tuple[list[int], int] | None:
    """(numbers, target) from a countdown prompt's ``Numbers: [...]`` and ``Target: N`` lines."""
    numbers, target = _NUMBERS.search(prompt), _TARGET.search(prompt)
    if numbers is None or target is None:
        return None
    return [int(x) for x in numbers.group(1).split(",") if x.strip()], int(target.group(1))


def extract_expression(answer: str) -> str | None:
    """The equation of an answer: the last ``<answer>`` tag's content, else the longest run of
    arithmetic characters that holds an operator; the left side when it has ``=``."""
    tagged = _ANSWER.findall(answer)
    if tagged:
        text = tagged[-1]
    else:
        runs = [r for r in _ARITHMETIC_RUN.findall(answer) if re.search(r"\d\s*[-+*/×÷−]", r)]
        text = max(runs, key=len, default="")
    text = text.split("=")[0].translate(_SYMBOLS).strip()
    return text or None


def evaluate(expression: str) -> tuple[Fraction, list[int]]:
    """(exact value, integer literals used) of ``expression``; raises ``Malformed``."""
    if len(expression) > MAX_EXPRESSION_CHARS:
        raise Malformed(f"longer than {MAX_EXPRESSION_CHARS} characters")
    try:
        tree = ast.parse(expression, mode="eval")
    except (SyntaxError, ValueError, MemoryError, RecursionError) as error:
        raise Malformed(f"not an expression: {error}") from None
    literals: list[int] = []
    return _walk(tree.body, literals), literals


_OPERATORS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/"}


def _walk(node: ast.AST, literals: list[int]) -> Fraction:
    if isinstance(node, ast.Constant) and type(node.value) is int:
        _bounded(Fraction(node.value))
        literals.append(node.value)
        return Fraction(node.value)
    if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
        left, right = _walk(node.left, literals), _walk(node.right, literals)
        if isinstance(node.op, ast.Add):
            return _bounded(left + right)
        if isinstance(node.op, ast.Sub):
            return _bounded(left - right)
        if isinstance(node.op, ast.Mult):
            return _bounded(left * right)
        if right == 0:
            raise Malformed("division by zero")
        return _bounded(left / right)
    raise Malformed(f"{type(node).__name__} is not allowed (only integers, + - * / and brackets)")


def _bounded(value: Fraction) -> Fraction:
    if abs(value) > MAX_VALUE:
        raise Malformed(f"a value exceeds {MAX_VALUE}")
    return value


def score(answer: str, numbers: list[int], target: int) -> float:
    """1.0 correct, partial credit for a well-formed miss, 0.0 otherwise (see the module doc)."""
    expression = extract_expression(answer)
    if expression is None:
        return 0.0
    try:
        value, used = evaluate(expression)
    except Malformed:
        return 0.0
    given, counted = Counter(numbers), Counter(used)
    if any(counted[n] > given[n] for n in counted):  # a number not given, or used too often
        return OFF_RULES
    if counted == given and value == target:
        return 1.0
    return round(WELL_FORMED + USE_BONUS * sum(counted.values()) / len(numbers), 6)


def countdown(prompts: list[Any], completions: list[Any], **_: Any) -> list[float | None]:
    """TRL reward: each completion scored against the puzzle stated in its prompt (None when
    the prompt is not a countdown puzzle).

    >>> puzzle_prompt = "Numbers: [3, 5, 7]\\nTarget: 22"
    >>> countdown([puzzle_prompt] * 2 + ["Hi"], ["<answer>3*5+7</answer>", "no answer", "x"])
    [1.0, 0.0, None]
    """
    out: list[float | None] = []
    for prompt, completion in zip(prompts, completions, strict=True):
        found = puzzle(prompt_text(prompt))
        out.append(None if found is None else score(completion_text(completion), *found))
    return out
