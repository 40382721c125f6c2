"""Batches concurrent exact-number scoring requests on one judge model.

Concurrent answers' judge requests (``submit``) wait in one queue; a worker thread takes what is
waiting -- no collection window: while one batch runs, the next fills -- and scores requests of
the same group (a rubric) together with ``batched_number_probabilities``, whose shared prefix
(the rubric's text before the answer) is then computed once per batch. A batch gathers prompts of
like length (each row is padded to the longest).
"""

from __future__ import annotations

import atexit
import math
import queue
import threading
import weakref
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from embench.models.number_scoring import NumberProbabilities, batched_number_probabilities

MAX_ROWS = 16  # prompts per batch: the tree forward keeps [rows, 101, vocab] logits
MAX_TOKENS = 16384  # rows x longest prompt per batch
# On a CPU, rows x longest prompt may exceed the prompts' own tokens by this factor at most:
# every row is padded to the longest, and padded forwards (masked attention) cost more per token
# than lone ones (benchmarks/eval_split.py: on a 2-core CPU, 16 rows of 230-822 tokens judged
# 1.6x slower than one prompt at a time). On an accelerator a batch's rows run in parallel, so
# padding is not capped there (not yet measured on one).
CPU_MAX_PADDING = 1.15


@dataclass
class _Request:
    prompt_ids: list[int]
    group: str | None
    future: Future[NumberProbabilities]


class NumberScoringQueue:
    """Thread-safe ``submit`` of judge prompts; requests that wait together are scored together."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        max_rows: int = MAX_ROWS,
        max_tokens: int = MAX_TOKENS,
        max_padding: float | None = None,
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.max_rows = max_rows
        self.max_tokens = max_tokens
        self.max_padding = max_padding if max_padding is not None else _padding_cap(model)
        self._queue: queue.Queue[_Request] = queue.Queue()
        self._waiting: list[_Request] = []
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self.stats = {"batches": 0, "rows": 0, "max_rows": 0}
        _live_queues.add(self)

    def submit(
        self, prompt_ids: list[int], group: str | None = None
    ) -> Future[NumberProbabilities]:
        """Queue one prompt; prompts of the same ``group`` may share a batch's prefix."""
        future: Future[NumberProbabilities] = Future()
        with self._lock:
            if self._stopping.is_set():
                raise RuntimeError("the number scoring queue is shut down (interpreter exiting)")
            self._queue.put(_Request(list(prompt_ids), group, future))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, daemon=True, name="embench-judge")
                self._thread.start()
        return future

    def stop(self, timeout: float = 30.0) -> None:
        """End the worker after its current batch; requests still waiting fail."""
        self._stopping.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def _run(self) -> None:
        while not self._stopping.is_set():
            if not self._waiting:
                try:
                    self._waiting.append(self._queue.get(timeout=1))
                except queue.Empty:
                    with self._lock:  # idle: end the thread; submit() starts a new one
                        if self._queue.empty():
                            self._thread = None
                            return
                    continue
            self._drain()
            batch = self._next_batch()
            if not batch:
                continue
            try:
                results = batched_number_probabilities(
                    self.model, self.tokenizer, [r.prompt_ids for r in batch]
                )
            except Exception as ex:  # fail this batch, keep serving the others
                for request in batch:
                    if not request.future.done():
                        request.future.set_exception(ex)
                continue
            self.stats["batches"] += 1
            self.stats["rows"] += len(batch)
            self.stats["max_rows"] = max(self.stats["max_rows"], len(batch))
            for request, result in zip(batch, results, strict=True):
                if not request.future.done():
                    request.future.set_result(result)
        self._fail_waiting()

    def _drain(self) -> None:
        while True:
            try:
                self._waiting.append(self._queue.get_nowait())
            except queue.Empty:
                return

    def _next_batch(self) -> list[_Request]:
        """The oldest request and the waiting ones of its group closest to it in length (rows
        are padded to the longest: like lengths waste least), within the row, token and padding
        limits."""
        self._waiting = [r for r in self._waiting if not r.future.cancelled()]
        if not self._waiting:
            return []
        oldest = self._waiting[0]
        length = len(oldest.prompt_ids)
        others = sorted(
            (r for r in self._waiting[1:] if r.group == oldest.group),
            key=lambda r: abs(len(r.prompt_ids) - length),
        )
        batch = [oldest]
        longest, tokens = length, length
        for request in others:
            longest = max(longest, len(request.prompt_ids))
            tokens += len(request.prompt_ids)
            slots = longest * (len(batch) + 1)
            if (
                len(batch) >= self.max_rows
                or slots > self.max_tokens
                or slots > self.max_padding * tokens
            ):
                break
            batch.append(request)
        taken = {id(r) for r in batch}
        self._waiting = [r for r in self._waiting if id(r) not in taken]
        return batch

    def _fail_waiting(self) -> None:
        self._drain()
        error = RuntimeError("number scoring stopped: the process is exiting")
        for request in self._waiting:
            if not request.future.done():
                request.future.set_exception(error)
        self._waiting = []
        with self._lock:
            self._thread = None


def _padding_cap(model: Any) -> float:
    """``CPU_MAX_PADDING`` for a model on the CPU, no cap on an accelerator."""
    device = next(model.parameters()).device
    return CPU_MAX_PADDING if device.type == "cpu" else math.inf


_live_queues: weakref.WeakSet[NumberScoringQueue] = weakref.WeakSet()


@atexit.register
def _stop_queues() -> None:
    for scoring_queue in list(_live_queues):
        scoring_queue.stop()
