"""Escape user strings (entry names, notes, model and experiment names) for where they land.

Every generated text that shows a string someone else chose escapes it for its format, so a name
can never become a live link, an image, markup, a spreadsheet formula or matplotlib math:

- ``markdown``: Markdown punctuation backslash-escaped, ``<``/``>``/``&`` as entities, one line
  (``code_span`` for a literal code span);
- ``csv_cell``: the OWASP CSV-injection rule, a leading ``'`` on text starting with a formula
  character (``= + - @``, tab, carriage return);
- HTML: ``html.escape`` from the standard library;
- matplotlib: figures are drawn under ``PLAIN_TEXT`` (``text.parse_math`` off), so ``$...$`` in a
  name is drawn as typed, never parsed as math.
"""

from __future__ import annotations

import re
from typing import Any

_MARKDOWN = re.compile(r"([\\`*_|~]|\](?=\s*[(\[]))")  # a ']' opening a link target
_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
#: Characters that make a spreadsheet read a cell as a formula (OWASP, CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
#: matplotlib rcParams under which every label is literal text (no mathtext).
PLAIN_TEXT = {"text.parse_math": False}


def markdown(text: Any) -> str:
    """``text`` as literal Markdown inline text (no link, image, emphasis, HTML or table cell
    break), on one line."""
    escaped = "".join(_ENTITIES.get(ch, ch) for ch in str(text))
    escaped = _MARKDOWN.sub(r"\\\1", escaped)
    return " ".join(escaped.splitlines())


def code_span(text: Any) -> str:
    """``text`` as a Markdown code span (literal: nothing inside is parsed), on one line; the
    fence is longer than any run of backticks in the text."""
    flat = " ".join(str(text).splitlines())
    fence = "`" * (max((len(run) for run in re.findall("`+", flat)), default=0) + 1)
    pad = " " if flat.startswith("`") or flat.endswith("`") else ""
    return f"{fence}{pad}{flat}{pad}{fence}"


def csv_cell(value: Any) -> Any:
    """A CSV cell that a spreadsheet shows as text: strings starting with a formula character
    get a leading ``'``; numbers and None pass unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value
