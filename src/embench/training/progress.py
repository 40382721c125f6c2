"""Training progress: a rich bar on a terminal, one plain line per step anywhere else.

Under SLURM, nohup or CI stdout is a file: a bar there prints nothing for minutes and then one
line. Off a terminal every step prints ``step 3/40  reward 0.0123  loss 0.0004  9.8 s/step
ETA 6m 12s``. Every logged row also goes to the run's ``metrics.jsonl``.
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

from transformers import TrainerCallback

from embench.run.rundir import RunDir

SHOWN = ("reward", "loss", "kl")  # logged values a progress line shows, when logged


def duration(seconds: float) -> str:
    """``45s``, ``6m 12s``, ``1h 04m``."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m {seconds % 60:02d}s"
    return f"{seconds // 3600}h {seconds % 3600 // 60:02d}m"


def on_terminal(stream: TextIO) -> bool:
    """Whether ``stream`` is a terminal as rich sees it (FORCE_COLOR/TTY_COMPATIBLE count)."""
    from rich.console import Console

    return Console(file=stream).is_terminal


class ProgressCallback(TrainerCallback):
    """The bar or the plain lines (step, logged values, s/step, ETA) and metrics.jsonl rows."""

    def __init__(self, run: RunDir, total: int, stream: TextIO | None = None) -> None:
        self.run = run
        self.total = total
        self.stream = stream or sys.stdout
        self.plain = not on_terminal(self.stream)
        self.progress: Any = None
        self.task: Any = None
        self.started: tuple[float, int] | None = None  # (time, step) when this session began
        self.values: dict[str, float] = {}

    def on_train_begin(self, args, state, control, **kwargs):  # noqa: D102
        if not state.is_world_process_zero:  # one process writes rows and shows progress
            return
        self.started = (time.monotonic(), state.global_step)
        if self.plain:
            return
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        self.progress = Progress(
            TextColumn("[bold]train"),
            BarColumn(),
            TextColumn("step {task.completed}/{task.total}"),
            TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(),
        )
        self.progress.start()
        self.task = self.progress.add_task(
            "train", total=self.total, completed=state.global_step, info=""
        )

    def on_log(self, args, state, control, logs=None, **kwargs):  # noqa: D102
        if not logs or "train_runtime" in logs or self.started is None:
            return
        row = {"step": state.global_step, "time": time.time(), **logs}
        self.run.append(self.run.metrics, [row])
        self.values = {k: logs[k] for k in SHOWN if isinstance(logs.get(k), float)}
        if self.progress is not None:
            info = "  ".join(f"{k} {v:.4g}" for k, v in self.values.items())
            self.progress.update(self.task, completed=state.global_step, info=info)
        elif self.plain:
            self.stream.write(self.line(state.global_step) + "\n")
            self.stream.flush()

    def line(self, step: int) -> str:
        """One plain progress line for ``step``."""
        parts = [f"step {step}/{self.total}"]
        parts += [f"{k} {v:.4g}" for k, v in self.values.items()]
        if self.started is not None and step > self.started[1]:
            per_step = (time.monotonic() - self.started[0]) / (step - self.started[1])
            parts += [f"{per_step:.1f} s/step", f"ETA {duration(per_step * (self.total - step))}"]
        return "  ".join(parts)

    def on_step_end(self, args, state, control, **kwargs):  # noqa: D102
        if self.progress is not None:
            self.progress.update(self.task, completed=state.global_step)

    def on_train_end(self, args, state, control, **kwargs):  # noqa: D102
        if self.progress is not None:
            self.progress.stop()
