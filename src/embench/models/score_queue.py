"""Batches concurrent exact-number scoring requests on one judge model.

Concurrent answers' judge requests (``submit``) wait in one queue; a worker thread takes what is
waiting -- no collection window: while one batch runs, the next fills -- and scores requests of
the same group (a rubric) together with ``batched_number_probabilities``, whose shared prefix
(the rubric's text before the answer) is then computed once per batch.
"""

from __future__ import annotations

import atexit
import queue
import threading
import weakref
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from embench.models.number_scoring import NumberProbabilities, batched_number_probabilities

MAX_ROWS = 16  # prompts per batch: the tree forward keeps [rows, 101, vocab] logits
MAX_TOKENS = 16384  # rows x longest prompt per batch


@dataclass
class _Request:
    prompt_ids: list[int]
    group: str | None
    future: Future[NumberProbabilities]


class NumberScoringQueue:
    """Thread-safe ``submit`` of judge prompts; requests that wait together are scored together."""

    def __init__(
        self, model: Any, tokenizer: Any, max_rows: int = MAX_ROWS, max_tokens: int = MAX_TOKENS
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.max_rows = max_rows
        self.max_tokens = max_tokens
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
        """The oldest request and the next ones of its group, within the row and token limits."""
        self._waiting = [r for r in self._waiting if not r.future.cancelled()]
        if not self._waiting:
            return []
        group = self._waiting[0].group
        batch: list[_Request] = []
        longest = 0
        for request in self._waiting:
            if request.group != group:
                continue
            longest = max(longest, len(request.prompt_ids))
            if batch and (
                len(batch) >= self.max_rows or longest * (len(batch) + 1) > self.max_tokens
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


_live_queues: weakref.WeakSet[NumberScoringQueue] = weakref.WeakSet()


@atexit.register
def _stop_queues() -> None:
    for scoring_queue in list(_live_queues):
        scoring_queue.stop()
