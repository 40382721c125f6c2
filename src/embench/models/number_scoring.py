"""Exact probabilities of a local judge's replies "0".."100" (digit-splitting tokenizers).

A judge whose tokenizer splits numbers into digits says "85" as "8", "5", then something that is
not a digit. The probability that its reply is exactly the number n is

    P(n) = P(tokens of n | prompt) * P(next token does not start with a digit | prompt, n)

(the second factor keeps "8" from counting when "85" follows). All 101 strings share one trie of
token prefixes (with single-digit tokens: "0".."9", "10".."99", "100" -- 101 nodes), so two
forwards give every P(n) exactly: the prompt once (its KV cache is kept), then every trie node at
once, each attending to the prompt and to its own ancestors only (a tree attention mask; the
position of a node is the prompt length plus its depth). Numbers are tokenized canonically (as the
tokenizer encodes their text).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import torch
from transformers import DynamicCache

from embench.errors import EmbenchError
from embench.models.cache_arg import cache_kwargs

NUMBERS = [str(n) for n in range(101)]
# custom 4D masks are honoured by these attention implementations (flash attention ignores them)
_MASKED_ATTENTION = ("sdpa", "eager")

_locks: dict[int, threading.Lock] = {}
_locks_guard = threading.Lock()
_digit_masks: dict[tuple[int, int], torch.Tensor] = {}
_splits: dict[int, bool] = {}


@dataclass(frozen=True)
class NumberProbabilities:
    """The judge's probability of replying exactly "0".."100", and how it was computed."""

    probs: list[float]  # probs[n] = P(the reply is the complete number n)
    greedy: str  # the greedy reply as far as the trie reaches (its first token at least)
    forwards: int  # model forwards used

    @property
    def mass(self) -> float:
        """Probability that the reply is a number 0-100."""
        return sum(self.probs)


def number_paths(tokenizer: Any) -> list[list[int]]:
    """Canonical token ids of "0".."100"."""
    return [list(tokenizer.encode(s, add_special_tokens=False)) for s in NUMBERS]


def splits_digits(tokenizer: Any) -> bool:
    """Whether the tokenizer writes every number 10-100 with more than one token."""
    key = id(tokenizer)
    if key not in _splits:
        _splits[key] = all(len(path) > 1 for path in number_paths(tokenizer)[10:])
    return _splits[key]


def digit_start_mask(tokenizer: Any, vocab_size: int) -> torch.Tensor:
    """Boolean [vocab_size]: tokens whose text starts with a digit (they would extend a number)."""
    key = (id(tokenizer), vocab_size)
    if key not in _digit_masks:
        texts = tokenizer.batch_decode([[i] for i in range(min(vocab_size, len(tokenizer)))])
        mask = torch.zeros(vocab_size, dtype=torch.bool)
        mask[: len(texts)] = torch.tensor([t[:1].isdigit() for t in texts], dtype=torch.bool)
        _digit_masks[key] = mask
    return _digit_masks[key]


def _trie(paths: list[list[int]]) -> tuple[list[tuple[int, ...]], dict[tuple[int, ...], int]]:
    """Distinct non-empty prefixes of ``paths`` (parents before children) and their index."""
    nodes: list[tuple[int, ...]] = []
    index: dict[tuple[int, ...], int] = {}
    for depth in range(1, max(len(p) for p in paths) + 1):
        for path in paths:
            prefix = tuple(path[:depth])
            if len(path) >= depth and prefix not in index:
                index[prefix] = len(nodes)
                nodes.append(prefix)
    return nodes, index


def _lock(model: Any) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault(id(model), threading.Lock())


def number_probabilities(model: Any, tokenizer: Any, prompt_ids: list[int]) -> NumberProbabilities:
    """Exact P(reply == n) for n = 0..100 after ``prompt_ids`` (two forwards, see module doc)."""
    attention = getattr(model.config, "_attn_implementation", "sdpa")
    if attention not in _MASKED_ATTENTION:
        raise EmbenchError(
            f"exact number scoring needs sdpa or eager attention, the judge uses {attention}; "
            "load the judge with attn_implementation='sdpa'"
        )
    device = next(model.parameters()).device
    paths = number_paths(tokenizer)
    nodes, index = _trie(paths)
    length = len(prompt_ids)
    window = getattr(model.config, "sliding_window", None)
    if window and getattr(model.config, "use_sliding_window", True) and length + 3 > window:
        # the tree mask is applied as given to every layer, sliding-window layers included
        raise EmbenchError(
            f"exact number scoring: the judge prompt ({length} tokens) is longer than the "
            f"judge's sliding attention window ({window}); use a shorter rubric or digits=text"
        )
    with _lock(model), torch.inference_mode():
        cache = DynamicCache(config=model.config)
        out = model(
            input_ids=torch.tensor([prompt_ids], device=device),
            **cache_kwargs(model, cache),
            use_cache=True,
            logits_to_keep=1,
        )
        root = torch.log_softmax(out.logits[0, -1].float(), -1)
        # node i attends to the whole prompt and to its ancestors (itself included)
        allowed = torch.zeros(len(nodes), length + len(nodes), dtype=torch.bool)
        allowed[:, :length] = True
        for i, node in enumerate(nodes):
            for depth in range(1, len(node) + 1):
                allowed[i, length + index[node[:depth]]] = True
        mask = torch.zeros(allowed.shape, dtype=model.dtype)
        mask.masked_fill_(~allowed, torch.finfo(model.dtype).min)
        out = model(
            input_ids=torch.tensor([[node[-1] for node in nodes]], device=device),
            position_ids=torch.tensor([[length + len(node) - 1 for node in nodes]], device=device),
            attention_mask=mask[None, None].to(device),
            **cache_kwargs(model, cache),
            use_cache=True,
        )
        after = torch.log_softmax(out.logits[0].float(), -1)  # [nodes, vocab]
    digits = digit_start_mask(tokenizer, after.shape[-1]).to(after.device)
    # P(next token is not a digit) per node, summed directly (no 1 - x cancellation)
    ends = after.masked_fill(digits, float("-inf")).logsumexp(-1)
    log_prefix = [0.0] * len(nodes)
    for i, node in enumerate(nodes):
        parent = root if len(node) == 1 else after[index[node[:-1]]]
        parent_log = 0.0 if len(node) == 1 else log_prefix[index[node[:-1]]]
        log_prefix[i] = parent_log + float(parent[node[-1]])
    probs = [
        float(torch.tensor(log_prefix[index[tuple(p)]]).exp() * ends[index[tuple(p)]].exp())
        for p in paths
    ]
    return NumberProbabilities(probs, _greedy(tokenizer, root, after, nodes, index), forwards=2)


def _greedy(
    tokenizer: Any,
    root: torch.Tensor,
    after: torch.Tensor,
    nodes: list[tuple[int, ...]],
    index: dict[tuple[int, ...], int],
) -> str:
    """Follow the argmax from the prompt through the trie (as far as its distributions reach)."""
    tokens: list[int] = []
    dist = root
    while True:
        token = int(dist.argmax())
        tokens.append(token)
        node = index.get(tuple(tokens))
        if node is None:
            return tokenizer.decode(tokens, skip_special_tokens=True)
        dist = after[node]
