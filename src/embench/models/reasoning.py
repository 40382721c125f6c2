"""Separate a reasoning model's thinking from its final answer.

Reasoning models write their thinking between delimiters (``<think>`` ... ``</think>`` for Qwen3,
DeepSeek-R1 and most open models), then the answer. Some chat templates open the block in the
prompt, so the generated text starts inside it and shows only the closing tag.
"""

from __future__ import annotations

DEFAULT_TAGS = ("<think>", "</think>")


def parse_tags(value: str | None) -> tuple[str, str] | None:
    """``"<think>,</think>"`` -> the pair; ``"none"`` turns splitting off; None: the default."""
    if value is None:
        return DEFAULT_TAGS
    if value.strip().lower() == "none":
        return None
    parts = [p.strip() for p in value.split(",")]
    if len(parts) != 2 or not all(parts):
        raise ValueError(
            f"reasoning_tags={value!r}: give the opening and closing delimiter separated by a "
            "comma, e.g. reasoning_tags='<think>,</think>', or 'none'"
        )
    return parts[0], parts[1]


def split_reasoning(
    text: str, tags: tuple[str, str] | None = DEFAULT_TAGS, opened: bool = False
) -> tuple[str | None, str, bool]:
    """(reasoning or None, final answer, closed) of a generated text.

    ``opened``: the prompt already opened the block (the text starts inside the reasoning).
    ``closed`` is False when the reasoning never ended (cut by max_tokens): there is no answer.
    """
    if tags is None:
        return None, text, True
    start, end = tags
    if end in text:
        before, after = text.split(end, 1)
        # a closing tag alone: the chat template opened the block in the prompt
        preamble, _, reasoning = before.partition(start) if start in before else ("", "", before)
        return reasoning.strip(), (preamble + after).strip(), True
    if start in text:
        preamble, _, reasoning = text.partition(start)
        return reasoning.strip(), preamble.strip(), False
    if opened:
        return text.strip(), "", False
    return None, text, True
