"""Record every RL rollout (system prompt, prompt, completion, each reward, step) to rollouts.jsonl.

TRL calls each reward function once per batch with the same ``completions`` list; the wrappers
collect each component and write the batch's rows once all components have reported.
"""

from __future__ import annotations

import functools
import os
import threading
from typing import Any

from embench.rewards.text import completion_text, prompt_text, system_text
from embench.run.rundir import RunDir


class RolloutRecorder:
    """Wraps reward functions so their inputs and outputs land in the run's rollouts.jsonl."""

    def __init__(self, run: RunDir, names: list[str]) -> None:
        self.run = run
        self.names = names
        self._pending: dict[int, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self.samples = 0

    def wrap(self, functions: list[Any]) -> list[Any]:
        """The functions, recording."""
        return [self._wrap(f, name) for f, name in zip(functions, self.names, strict=True)]

    def _wrap(self, function: Any, name: str) -> Any:
        # TRL's own test (async functions and callable classes); trl is loaded when this runs
        from trl.trainer.utils import is_async_callable

        if is_async_callable(function):

            @functools.wraps(function)
            async def async_recorded(prompts, completions, **kwargs):
                values = await function(prompts=prompts, completions=completions, **kwargs)
                self._record(name, prompts, completions, values, kwargs)
                return values

            return async_recorded

        @functools.wraps(function)
        def recorded(prompts, completions, **kwargs):
            values = function(prompts=prompts, completions=completions, **kwargs)
            self._record(name, prompts, completions, values, kwargs)
            return values

        return recorded

    def _record(self, name: str, prompts, completions, values, kwargs: dict[str, Any]) -> None:
        with self._lock:
            batch = self._pending.setdefault(id(completions), {"values": {}})
            batch["values"][name] = list(values)
            if len(batch["values"]) < len(self.names):
                return
            del self._pending[id(completions)]
        state = kwargs.get("trainer_state")
        step = (state.global_step + 1) if state is not None else None
        ids = kwargs.get("prompt_id") or [None] * len(prompts)
        rank = int(os.environ.get("RANK", "0"))  # set by accelerate launch / torchrun
        rows = [
            {
                "step": step,
                "rank": rank,
                "prompt_id": ids[i],
                "system": system_text(prompts[i]),
                "prompt": prompt_text(prompts[i]),
                "completion": completion_text(completions[i]),
                "rewards": {n: batch["values"][n][i] for n in self.names},
            }
            for i in range(len(prompts))
        ]
        self.samples += len(rows)
        self.run.append(self.run.rollouts, rows)
