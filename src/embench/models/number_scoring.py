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


def number_trie(paths: list[list[int]]) -> tuple[list[tuple[int, ...]], dict[tuple[int, ...], int]]:
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
    return batched_number_probabilities(model, tokenizer, [prompt_ids])[0]


def batched_number_probabilities(
    model: Any, tokenizer: Any, prompts: list[list[int]]
) -> list[NumberProbabilities]:
    """``number_probabilities`` for several prompts in one batch (same results, see module doc).

    The prompts' longest common token prefix (a rubric's fixed text before the answer) is run once
    and its KV cache shared by every row; the rest of each prompt follows it left-padded, then
    every row's candidate tree. Returns one result per prompt, in order; ``forwards`` counts the
    batch's forwards (3 with a shared prefix, else 2).
    """
    if not prompts or any(not p for p in prompts):
        raise ValueError("number scoring needs at least one non-empty prompt")
    _check_attention(model, max(len(p) for p in prompts))
    device = next(model.parameters()).device
    paths = number_paths(tokenizer)
    nodes, index = number_trie(paths)
    shared = shared_prefix_length(prompts)
    rests = [p[shared:] for p in prompts]
    width = max(len(r) for r in rests)
    ids = torch.full((len(prompts), width), _pad_id(tokenizer), dtype=torch.long)
    keys = torch.zeros((len(prompts), shared + width), dtype=torch.long)  # 1 = real token
    keys[:, :shared] = 1
    for row, rest in enumerate(rests):
        ids[row, width - len(rest) :] = torch.tensor(rest)
        keys[row, shared + width - len(rest) :] = 1
    lengths = keys.sum(-1)  # each prompt's own length
    forwards = 2
    with _lock(model), torch.inference_mode():
        cache = DynamicCache(config=model.config)
        if shared:
            model(
                input_ids=torch.tensor([prompts[0][:shared]], device=device),
                **cache_kwargs(model, cache),
                use_cache=True,
                logits_to_keep=1,
            )
            cache.batch_repeat_interleave(len(prompts))
            forwards += 1
        out = model(
            input_ids=ids.to(device),
            attention_mask=keys.to(device),
            position_ids=(keys.cumsum(-1) - 1).clamp(min=0)[:, shared:].to(device),
            **cache_kwargs(model, cache),
            use_cache=True,
            logits_to_keep=1,
        )
        root = torch.log_softmax(
            out.logits[:, -1].to(_at_least_fp32(out.logits.dtype)), -1
        )  # [rows, vocab]
        out = model(
            input_ids=torch.tensor([[n[-1] for n in nodes]] * len(prompts), device=device),
            position_ids=(lengths[:, None] + _depths(nodes)[None] - 1).to(device),
            attention_mask=_tree_mask(keys, nodes, index, model.dtype).to(device),
            **cache_kwargs(model, cache),
            use_cache=True,
        )
        logits = out.logits.to(_at_least_fp32(out.logits.dtype))  # [rows, nodes, vocab]
    with torch.inference_mode():  # the logits are inference tensors: edited in place
        tokens = torch.tensor([n[-1] for n in nodes], device=logits.device)
        parents = torch.tensor([index[n[:-1]] if len(n) > 1 else -1 for n in nodes])
        deep = (parents >= 0).to(logits.device)
        parents = parents.to(logits.device)
        # log-softmax pieces, in place (no [rows, nodes, vocab] copy): with m the row's largest
        # logit, log P(token) = (logit - m) - log sum exp(logit - m); every term stays near 0
        greedy_next = logits.argmax(-1).cpu()  # [rows, nodes]
        shifted = logits.sub_(logits.amax(-1, keepdim=True))
        picked = shifted[:, parents[deep], tokens[deep]]  # log-domain, before exp_
        weights = shifted.exp_()
        log_total = weights.sum(-1).log()  # [rows, nodes]
        # log P(node's token | its parent's context): the root's distribution for depth-1 nodes
        step = torch.empty(len(prompts), len(nodes), device=logits.device, dtype=logits.dtype)
        step[:, ~deep] = root[:, tokens[~deep]]
        step[:, deep] = picked - log_total[:, parents[deep]]
        # log P(next token does not start with a digit), summed directly (no 1 - x cancellation)
        digits = digit_start_mask(tokenizer, logits.shape[-1]).to(logits.device)
        ends = weights.masked_fill_(digits, 0.0).sum(-1).log() - log_total
    step, ends, root = step.cpu(), ends.cpu(), root.cpu()
    log_prefix = step.clone()
    for i, node in enumerate(nodes):  # parents come before children
        if len(node) > 1:
            log_prefix[:, i] += log_prefix[:, index[node[:-1]]]
    ends_at = torch.tensor([index[tuple(p)] for p in paths])
    probs = (log_prefix[:, ends_at] + ends[:, ends_at]).exp().tolist()
    return [
        NumberProbabilities(
            probs[row],
            _greedy(tokenizer, int(root[row].argmax()), greedy_next[row].tolist(), index),
            forwards=forwards,
        )
        for row in range(len(prompts))
    ]


def _at_least_fp32(dtype: torch.dtype) -> torch.dtype:
    """float32 for half-precision logits; a float64 model's logits stay float64."""
    return torch.promote_types(dtype, torch.float32)


def _check_attention(model: Any, length: int) -> None:
    attention = getattr(model.config, "_attn_implementation", "sdpa")
    if attention not in _MASKED_ATTENTION:
        raise EmbenchError(
            f"exact number scoring needs sdpa or eager attention, the judge uses {attention}; "
            "load the judge with attn_implementation='sdpa'"
        )
    window = getattr(model.config, "sliding_window", None)
    if window and getattr(model.config, "use_sliding_window", True) and length + 3 > window:
        # the tree mask is applied as given to every layer, sliding-window layers included
        raise EmbenchError(
            f"exact number scoring: the judge prompt ({length} tokens) is longer than the "
            f"judge's sliding attention window ({window}); use a shorter rubric or digits=text"
        )


def shared_prefix_length(prompts: list[list[int]]) -> int:
    """Tokens of ``prompts`` that one batch computes once for all its rows: their common prefix,
    only when several rows share it, and leaving every row at least one token of its own."""
    if len(prompts) < 2:
        return 0
    return min(_common_prefix(prompts), min(len(p) for p in prompts) - 1)


def _common_prefix(prompts: list[list[int]]) -> int:
    """Length of the longest token prefix every prompt starts with."""
    first = prompts[0]
    length = min(len(p) for p in prompts)
    for prompt in prompts[1:]:
        length = next((i for i in range(length) if prompt[i] != first[i]), length)
    return length


def _pad_id(tokenizer: Any) -> int:
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0


def _depths(nodes: list[tuple[int, ...]]) -> torch.Tensor:
    return torch.tensor([len(n) for n in nodes])


def _tree_mask(
    keys: torch.Tensor, nodes: list[tuple[int, ...]], index: dict[tuple[int, ...], int], dtype: Any
) -> torch.Tensor:
    """Additive mask [rows, 1, nodes, prompt + nodes]: a node sees its row's real prompt tokens
    and its ancestors (itself included), nothing else."""
    rows, width = keys.shape
    ancestors = torch.zeros(len(nodes), len(nodes), dtype=torch.bool)
    for i, node in enumerate(nodes):
        for depth in range(1, len(node) + 1):
            ancestors[i, index[node[:depth]]] = True
    allowed = torch.cat(
        [
            keys.bool()[:, None, :].expand(rows, len(nodes), width),
            ancestors[None].expand(rows, -1, -1),
        ],
        -1,
    )
    mask = torch.zeros(allowed.shape, dtype=dtype)
    mask.masked_fill_(~allowed, torch.finfo(dtype).min)
    return mask[:, None]


def _greedy(
    tokenizer: Any, first: int, greedy_next: list[int], index: dict[tuple[int, ...], int]
) -> str:
    """Follow the argmax from the prompt (``first``) through the trie, as far as its
    distributions reach (``greedy_next[node]``: the argmax after each trie node)."""
    tokens = [first]
    while (node := index.get(tuple(tokens))) is not None:
        tokens.append(greedy_next[node])
    return tokenizer.decode(tokens, skip_special_tokens=True)
