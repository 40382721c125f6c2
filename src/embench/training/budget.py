"""Size a training run by wall time: stop before the next step would overrun the budget."""

from __future__ import annotations

import time
from collections.abc import Callable

from transformers import TrainerCallback


class TimeBudgetCallback(TrainerCallback):
    """Ends training (as a normal finish) when one more step would pass ``seconds``.

    The next step is projected from the slowest step so far, so a run stops within its budget
    on a slow machine and runs to ``max_steps`` on a fast one. ``stopped_at`` records the step.
    """

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self.clock = clock
        self.started: float | None = None
        self.last: float | None = None
        self.slowest = 0.0
        self.stopped_at: int | None = None

    def on_train_begin(self, args, state, control, **kwargs):  # noqa: D102
        self.started = self.last = self.clock()

    def on_step_end(self, args, state, control, **kwargs):  # noqa: D102
        now = self.clock()
        if self.started is None or self.last is None:  # resumed without on_train_begin
            self.started = self.last = now
        self.slowest = max(self.slowest, now - self.last)
        self.last = now
        stop = now - self.started + self.slowest > self.seconds
        if _distributed():  # every process must stop at the same step: rank 0 decides
            import torch.distributed as dist

            decision = [stop]
            dist.broadcast_object_list(decision, src=0)
            stop = bool(decision[0])
        if stop:
            control.should_training_stop = True
            self.stopped_at = state.global_step
        return control


def _distributed() -> bool:
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1
