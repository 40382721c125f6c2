"""Continuous-batching generation on a Hugging Face causal LM.

One worker thread owns the model. Requests join the running batch as soon as slots are free (no
collection window; freed slots are refilled in groups of 1/8 of the batch, since every batch edit
copies the KV cache once), finished answers are returned at once, and only the last position's
logits are computed. Rows keep left padding inside one shared KV cache: a joining group is prefilled on its
own, then both caches are left-padded to a common length and concatenated along the batch.

Rows are admitted while the KV cache they could grow to fits ``max_kv_bytes`` (approximately:
the cache holds every row at the longest row's prompt + max_new_tokens; compaction trims the
padding of rows that joined later), so long generations (a reasoning protocol's 4,096 tokens)
run fewer rows at once instead of exhausting memory.
"""

from __future__ import annotations

import atexit
import queue
import threading
import time
import weakref
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import torch
from transformers import DynamicCache

from embench.models.cache_arg import cache_kwargs
from embench.models.kv_buffer import BufferedLayer


@dataclass
class GenerationRequest:
    """One completion to generate from already-tokenized prompt ids."""

    prompt_ids: list[int]
    max_new_tokens: int = 256
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    min_p: float = 0.0  # keep tokens with p >= min_p * p(most likely token); 0: off
    seed: int | None = None
    top_logprobs: int | None = None  # None: no logprobs; 0: the chosen token's only
    stop_token_ids: frozenset[int] = frozenset()
    stop_strings: tuple[str, ...] = ()


@dataclass
class TokenLogprob:
    """Logprob of a generated token and the most likely alternatives at its position."""

    token_id: int
    logprob: float
    top: list[tuple[int, float]]


@dataclass
class GenerationResult:
    """What a request produced."""

    token_ids: list[int]
    text: str
    finish_reason: str  # "stop" or "length"
    prompt_tokens: int
    logprobs: list[TokenLogprob] | None
    seconds: float


@dataclass
class _Row:
    request: GenerationRequest
    future: Future[GenerationResult]
    started: float
    generator: torch.Generator | None
    tokens: list[int] = field(default_factory=list)
    logprobs: list[TokenLogprob] = field(default_factory=list)
    finish_reason: str | None = None


class GenerationEngine:
    """Continuous batching over one model; thread-safe ``submit`` returns a future."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        max_batch_size: int = 128,
        max_prefill_tokens: int = 4096,
        max_kv_bytes: int = 4 << 30,
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.max_batch_size = max_batch_size
        self.max_prefill_tokens = max_prefill_tokens
        self.max_kv_bytes = max_kv_bytes
        self.kv_bytes_per_token = kv_bytes_per_token(model)
        self.refill_size = max(1, max_batch_size // 8)
        self.device = next(model.parameters()).device
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        eos = model.generation_config.eos_token_id if model.generation_config else None
        eos_ids = eos if isinstance(eos, list) else [eos]
        self.eos_ids = frozenset(i for i in [*eos_ids, tokenizer.eos_token_id] if i is not None)
        self._queue: queue.Queue[_Row] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        _live_engines.add(self)
        # running batch state
        self._rows: list[_Row] = []
        self._pending: _Row | None = None  # taken from the queue but waiting for KV memory
        self._cache: DynamicCache | None = None
        self._mask: torch.Tensor | None = None  # [B, L] 1 = real token
        self._next: torch.Tensor | None = None  # [B] token to feed next
        self.stats = {
            "steps": 0, "prefills": 0, "generated_tokens": 0, "row_steps": 0, "max_rows": 0,
        }  # fmt: skip

    # ----------------------------------------------------------------- public
    @property
    def dtype(self) -> str:
        """The model's dtype, e.g. ``bfloat16``."""
        return str(self.model.dtype).removeprefix("torch.")

    def submit(self, request: GenerationRequest) -> Future[GenerationResult]:
        """Queue a request; its future resolves when the completion is finished."""
        future: Future[GenerationResult] = Future()
        generator = None
        if request.seed is not None:
            generator = torch.Generator(device=self.device).manual_seed(request.seed)
        self._queue.put(_Row(request, future, time.monotonic(), generator))
        self._ensure_worker()
        return future

    def generate(self, requests: list[GenerationRequest]) -> list[GenerationResult]:
        """Generate a list of requests (blocking)."""
        futures = [self.submit(r) for r in requests]
        return [f.result() for f in futures]

    def stop(self, timeout: float = 30.0) -> None:
        """Fail pending requests and end the worker thread (waits for the current step).

        Called at interpreter exit: a daemon thread still inside a forward pass while Python
        finalizes aborts the process ("terminate called without an active exception", rc 134).
        """
        self._stopping.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    # ----------------------------------------------------------------- worker
    def _ensure_worker(self) -> None:
        with self._lock:
            if self._stopping.is_set():
                raise RuntimeError("the generation engine is shut down (interpreter exiting)")
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, daemon=True, name="embench-gen")
                self._thread.start()

    def _run(self) -> None:
        while True:
            if self._stopping.is_set():
                self._abandon()
                return
            waiting: list[_Row] = []
            try:
                live = sum(r.finish_reason is None for r in self._rows)
                if live == 0:
                    self._reset()
                free = self.max_batch_size - live
                # refill in groups: every batch edit copies the whole KV cache once
                queued = self._pending is not None or not self._queue.empty()
                if live == 0 or (free >= self.refill_size and queued):
                    waiting = self._take_waiting(
                        block=live == 0 and self._pending is None, free=free
                    )
            except queue.Empty:
                with self._lock:  # idle for a while: end the thread; submit() starts a new one
                    if self._queue.empty():
                        self._thread = None
                        return
                continue
            try:
                with torch.inference_mode():
                    dead = len(self._rows) - live
                    if dead and (waiting or dead >= self.max_batch_size // 4):
                        self._compact()
                    if waiting:
                        self._admit(waiting)
                    if self._rows:
                        self._step()
            except Exception as ex:  # fail every row in flight, keep serving new ones
                for row in self._rows + waiting:
                    if not row.future.done():
                        row.future.set_exception(ex)
                self._reset()

    def _abandon(self) -> None:
        """Fail every row in flight or queued (shutdown)."""
        error = RuntimeError("generation stopped: the process is exiting")
        rows = list(self._rows) + ([self._pending] if self._pending is not None else [])
        self._pending = None
        while True:
            try:
                rows.append(self._queue.get_nowait())
            except queue.Empty:
                break
        for row in rows:
            if not row.future.done():
                row.future.set_exception(error)
        self._reset()
        with self._lock:
            self._thread = None

    def _reset(self) -> None:
        self._rows, self._cache, self._mask, self._next = [], None, None, None

    def _take_waiting(self, block: bool, free: int) -> list[_Row]:
        taken: list[_Row] = []
        budget = self.max_prefill_tokens
        live = [r for r in self._rows if r.finish_reason is None]
        longest = max((_full_length(r) for r in live), default=0)
        if block:
            row = self._wait_for_request(idle_seconds=30)
            if not row.future.cancelled():  # the first row is always taken, whatever its size
                taken.append(row)
                budget -= len(row.request.prompt_ids)
                longest = max(longest, _full_length(row))
        while len(taken) < free and budget > 0:
            if self._pending is not None:
                row, self._pending = self._pending, None
            else:
                try:
                    row = self._queue.get_nowait()
                except queue.Empty:
                    break
            if row.future.cancelled():  # the sample was cancelled while it waited
                continue
            length = max(longest, _full_length(row))
            rows = len(live) + len(taken) + 1
            if rows > 1 and rows * length * self.kv_bytes_per_token > self.max_kv_bytes:
                self._pending = row  # first in line once rows finish and free memory
                break
            taken.append(row)
            longest = length
            budget -= len(row.request.prompt_ids)
        return taken

    def _wait_for_request(self, idle_seconds: int) -> _Row:
        """The next queued request; queue.Empty after ``idle_seconds`` or when stopping."""
        for _ in range(idle_seconds):
            if self._stopping.is_set():
                break
            try:
                return self._queue.get(timeout=1)
            except queue.Empty:
                continue
        raise queue.Empty

    def _admit(self, rows: list[_Row]) -> None:
        """Prefill new rows and merge them into the running batch."""
        self.stats["prefills"] += 1
        width = max(len(r.request.prompt_ids) for r in rows)
        ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, row in enumerate(rows):
            p = row.request.prompt_ids
            ids[i, width - len(p) :] = torch.tensor(p, dtype=torch.long)
            mask[i, width - len(p) :] = 1
        ids, mask = ids.to(self.device), mask.to(self.device)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        cache = DynamicCache(config=self.model.config)
        cache.layers = [BufferedLayer() for _ in cache.layers]
        out = self.model(
            input_ids=ids,
            attention_mask=mask,
            position_ids=positions,
            **cache_kwargs(self.model, cache),
            use_cache=True,
            logits_to_keep=1,
        )
        first = self._sample(out.logits[:, -1, :], rows)
        self._merge(rows, cache, mask, first)

    def _merge(
        self, rows: list[_Row], cache: DynamicCache, mask: torch.Tensor, next_ids: torch.Tensor
    ) -> None:
        if self._cache is None or not self._rows:
            self._rows, self._cache, self._mask, self._next = rows, cache, mask, next_ids
            return
        old_len, new_len = self._mask.shape[1], mask.shape[1]
        length = max(old_len, new_len)
        for old_layer, new_layer in zip(self._cache.layers, cache.layers, strict=True):
            old_layer.set(
                torch.cat([_left_pad(old_layer.keys, length), _left_pad(new_layer.keys, length)]),
                torch.cat(
                    [_left_pad(old_layer.values, length), _left_pad(new_layer.values, length)]
                ),
            )
        self._mask = torch.cat(
            [_left_pad(self._mask, length, dim=1), _left_pad(mask, length, dim=1)], 0
        )
        self._next = torch.cat([self._next, next_ids])
        self._rows = self._rows + rows

    def _step(self) -> None:
        """Feed each row its next token, sample the one after, retire finished rows."""
        assert self._mask is not None and self._next is not None
        positions = self._mask.sum(-1, keepdim=True)
        self._mask = torch.cat([self._mask, self._mask.new_ones((len(self._rows), 1))], 1)
        out = self.model(
            input_ids=self._next[:, None],
            attention_mask=self._mask,
            position_ids=positions,
            **cache_kwargs(self.model, self._cache),
            use_cache=True,
        )
        self.stats["steps"] += 1
        self.stats["row_steps"] += len(self._rows)
        self.stats["max_rows"] = max(self.stats["max_rows"], len(self._rows))
        self._next = self._sample(out.logits[:, -1, :], self._rows)

    def _sample(self, logits: torch.Tensor, rows: list[_Row]) -> torch.Tensor:
        """Choose each row's next token, record logprobs where asked, mark finished rows."""
        logits = logits.float()
        chosen = torch.empty(len(rows), dtype=torch.long, device=logits.device)
        greedy = [i for i, r in enumerate(rows) if r.request.temperature <= 0]
        if greedy:
            chosen[greedy] = logits[greedy].argmax(-1)
        sampled = [i for i, r in enumerate(rows) if r.request.temperature > 0]
        if sampled:
            probs = _sampling_probs(logits[sampled], [rows[i].request for i in sampled])
            # inverse-CDF sampling: one uniform per row (torch.multinomial draws noise for the
            # whole vocabulary on CPU, ~30x slower at batch 64)
            uniform = torch.rand(len(sampled), 1, device=logits.device)
            for j, i in enumerate(sampled):
                if rows[i].generator is not None:
                    uniform[j] = torch.rand(1, generator=rows[i].generator, device=logits.device)
            chosen[sampled] = inverse_cdf(probs, uniform)
        wants = [
            i
            for i, r in enumerate(rows)
            if r.request.top_logprobs is not None and r.finish_reason is None
        ]
        if wants:
            logprobs = torch.log_softmax(logits[wants], -1)
            k = max(max(rows[i].request.top_logprobs or 1 for i in wants), 1)
            top_v, top_i = logprobs.topk(k, -1)
            for j, i in enumerate(wants):
                n = rows[i].request.top_logprobs or 0
                token = int(chosen[i])
                rows[i].logprobs.append(
                    TokenLogprob(
                        token,
                        float(logprobs[j, token]),
                        list(zip(top_i[j, :n].tolist(), top_v[j, :n].tolist(), strict=True)),
                    )
                )
        for row, token in zip(rows, chosen.tolist(), strict=True):
            if row.finish_reason is None:
                self._append(row, token)
                if row.finish_reason is not None:
                    self._finish(row)  # answer at once; the row leaves the cache later
        return chosen

    def _append(self, row: _Row, token: int) -> None:
        request = row.request
        self.stats["generated_tokens"] += 1
        if row.future.cancelled():  # nobody waits for this answer any more: free the row
            row.finish_reason = "cancelled"
            return
        if token in self.eos_ids or token in request.stop_token_ids:
            row.finish_reason = "stop"
            return
        row.tokens.append(token)
        if request.stop_strings and any(
            s in self.tokenizer.decode(row.tokens[-32:]) for s in request.stop_strings
        ):
            row.finish_reason = "stop"
        elif len(row.tokens) >= request.max_new_tokens:
            row.finish_reason = "length"

    def _compact(self) -> None:
        """Drop finished rows from the cache (and padding columns no remaining row needs)."""
        keep = [i for i, r in enumerate(self._rows) if r.finish_reason is None]
        if not keep:
            self._reset()
            return
        index = torch.tensor(keep, device=self.device)
        mask = self._mask.index_select(0, index)
        start = int((mask.sum(0) > 0).nonzero()[0])
        self._mask = mask[:, start:]
        for layer in self._cache.layers:
            layer.set(
                layer.keys.index_select(0, index)[:, :, start:],
                layer.values.index_select(0, index)[:, :, start:],
            )
        self._next = self._next.index_select(0, index)
        self._rows = [self._rows[i] for i in keep]

    def _finish(self, row: _Row) -> None:
        request = row.request
        text = self.tokenizer.decode(row.tokens, skip_special_tokens=True)
        for stop in request.stop_strings:
            if stop in text:
                text = text[: text.index(stop)]
        result = GenerationResult(
            token_ids=list(row.tokens),
            text=text,
            finish_reason=row.finish_reason or "stop",
            prompt_tokens=len(request.prompt_ids),
            logprobs=row.logprobs if request.top_logprobs is not None else None,
            seconds=time.monotonic() - row.started,
        )
        if not row.future.done():
            row.future.set_result(result)


_live_engines: weakref.WeakSet[GenerationEngine] = weakref.WeakSet()


@atexit.register
def _stop_engines() -> None:
    for engine in list(_live_engines):
        engine.stop()


def _full_length(row: _Row) -> int:
    """Tokens a row may occupy in the KV cache: its prompt and every token it may generate."""
    return len(row.request.prompt_ids) + row.request.max_new_tokens


def kv_bytes_per_token(model: Any) -> int:
    """Bytes one token's keys and values take across all layers (attention models)."""
    config = model.config
    layers = getattr(config, "num_hidden_layers", 1)
    heads = getattr(config, "num_attention_heads", 1)
    kv_heads = getattr(config, "num_key_value_heads", None) or heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    return 2 * layers * kv_heads * head_dim * torch.finfo(model.dtype).bits // 8


def _left_pad(tensor: torch.Tensor, length: int, dim: int = 2) -> torch.Tensor:
    missing = length - tensor.shape[dim]
    if missing <= 0:
        return tensor
    shape = list(tensor.shape)
    shape[dim] = missing
    return torch.cat([tensor.new_zeros(shape), tensor], dim)


def inverse_cdf(probs: torch.Tensor, uniform: torch.Tensor) -> torch.Tensor:
    """Sample one index per row of ``probs`` from uniforms in [0, 1) of shape [rows, 1]."""
    cumulative = probs.cumsum(-1)
    picks = torch.searchsorted(cumulative, uniform * cumulative[:, -1:], right=True)
    return picks.squeeze(-1).clamp(max=probs.shape[-1] - 1)


def _sampling_probs(logits: torch.Tensor, requests: list[GenerationRequest]) -> torch.Tensor:
    """Temperature, top-k, min-p and top-p applied row by row, as probabilities.

    min-p (Nguyen et al. 2024, arXiv:2407.01082) drops tokens whose probability is below
    ``min_p`` times the most likely token's, after temperature and before top-p, the order vLLM's
    sampler uses (the seed paper's evaluation generated with vLLM).
    """
    temps = torch.tensor([r.temperature for r in requests], device=logits.device)
    logits = logits / temps[:, None]
    if any(r.top_k > 0 for r in requests):
        for i, r in enumerate(requests):
            if 0 < r.top_k < logits.shape[-1]:
                kth = logits[i].topk(r.top_k).values[-1]
                logits[i] = logits[i].masked_fill(logits[i] < kth, float("-inf"))
    probs = torch.softmax(logits, -1)
    min_ps = torch.tensor([r.min_p for r in requests], device=logits.device)
    if bool((min_ps > 0).any()):
        floor = min_ps[:, None] * probs.max(-1, keepdim=True).values
        probs = probs.masked_fill(probs < floor, 0)
        probs = probs / probs.sum(-1, keepdim=True)
    top_ps = torch.tensor([r.top_p for r in requests], device=logits.device)
    if bool((top_ps < 1).any()):
        sorted_p, order = probs.sort(-1, descending=True)
        cumulative = sorted_p.cumsum(-1)
        drop_sorted = (cumulative - sorted_p) > top_ps[:, None]
        drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
        probs = probs.masked_fill(drop, 0)
        probs = probs / probs.sum(-1, keepdim=True)
    return probs
