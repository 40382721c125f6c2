"""After an embench misalignment eval, print its headline figures and the submit command.

Inspect's results table prints every metric with three decimals (counts as ``3.000``, each CI
bound on its own row); the headline line gives the rates with their 95% CIs and the counts as
integers. Per-question rates stay in the samples, the entries and the reports.

An Inspect hook (registered by the ``inspect_ai`` entry point, ``embench._registry``): when a run
ends, each successful ``embench/misalignment`` log is checked against the boards of the nearest
``leaderboards/`` folder, strictest first (most answers per question), exactly as ``submit``
would check it, and the first board that accepts it is named in the printed command. A log no
board accepts gets the reason the strictest board gives and the ``export`` command instead.
``EMBENCH_NEXT_STEPS=0`` leaves the hook out (the test suite does, but for the tests of it).
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path

from inspect_ai.hooks import Hooks, RunEnd, hooks
from inspect_ai.log import EvalLog

from embench.errors import EmbenchError
from embench.evals.misalignment import TASK_NAME
from embench.leaderboard.boards import board_names, leaderboards_root, load_board
from embench.leaderboard.entries import build_entry
from embench.leaderboard.logcheck import check_log
from embench.paths import script

ENV_SWITCH = "EMBENCH_NEXT_STEPS"


def accepting_board(log: Path, root: Path | None = None) -> tuple[str | None, str]:
    """(the strictest board that accepts ``log``, or None; why the strictest board refuses)."""
    base = leaderboards_root(root)
    boards = sorted(
        (load_board(base, name) for name in board_names(base)),
        key=lambda b: (-b.min_samples_per_question, b.name),
    )
    reasons = []
    for board in boards:
        try:
            build_entry(check_log(log, board), board)
        except EmbenchError as refusal:
            reasons.append(str(refusal))
            continue
        return board.name, ""
    return None, reasons[0] if reasons else f"no boards under {base}"


def submit_lines(log: Path, root: Path | None = None) -> list[str]:
    """The next command for a finished eval log: submit it to the board that accepts it."""
    embench = script("embench")
    try:
        board, refusal = accepting_board(log, root)
    except EmbenchError as problem:  # no leaderboards folder here: exporting still works
        board, refusal = None, str(problem)
    quoted = shlex.quote(str(log))
    if board is not None:
        return ["next:", f"  {embench} submit {quoted} --board {board}"]
    return [
        f"no board accepts this log ({refusal})",
        f"  export it instead: {embench} export {quoted}",
    ]


def _metrics(log: EvalLog) -> dict[str, float]:
    """The log's first scorer's metrics by name (empty without results)."""
    scores = log.results.scores if log.results else []
    return {name: m.value for name, m in scores[0].metrics.items()} if scores else {}


HEADLINE = (("misaligned_rate", "misaligned rate"), ("incoherence_rate", "incoherence rate"))


def headline(log: EvalLog) -> str:
    """``misaligned rate 0.123 [0.080, 0.170], incoherence rate ... (95% CIs); 81 answers: 78
    scored, 3 unscored`` from the log's results."""
    metrics = _metrics(log)

    def rate(key: str, label: str) -> str:
        value = metrics.get(key)
        if value is None or value != value:  # NaN: nothing scored
            return f"{label} n/a"
        low, high = metrics.get(f"{key}_ci_low"), metrics.get(f"{key}_ci_high")
        ci = f" [{low:.3f}, {high:.3f}]" if low == low and high == high else ""
        return f"{label} {value:.3f}{ci}"

    counts = (
        f"{int(metrics.get('scored') or 0)} scored, {int(metrics.get('unscored') or 0)} unscored"
    )
    if metrics.get("truncated"):
        counts += f", {int(metrics['truncated'])} truncated"
    rates = ", ".join(rate(key, label) for key, label in HEADLINE)
    return f"{rates} (95% CIs); {int(metrics.get('answers') or 0)} answers: {counts}"


def time_line(log: EvalLog) -> str | None:
    """``time: 41 s generating, 97 s judging (each answer's own seconds, summed); judge calls 162,
    0 from cache`` from the ``time_split`` metric (None for a log without it)."""
    metrics = _metrics(log)
    if "judge_seconds" not in metrics:
        return None
    line = (
        f"time: {metrics.get('generation_seconds') or 0:.0f} s generating, "
        f"{metrics['judge_seconds'] or 0:.0f} s judging (each answer's own seconds, summed)"
    )
    if "judge_calls" in metrics:
        line += (
            f"; judge calls {int(metrics['judge_calls'] or 0)}, "
            f"{int(metrics.get('judge_cache_hits') or 0)} from cache"
        )
    return line


def _is_embench_eval(log: EvalLog) -> bool:
    meta = log.eval.metadata or {}
    # an import's scratch log is not the user's (embench import prints where its log went)
    return (
        meta.get("embench_task") == TASK_NAME
        and log.status == "success"
        and (not meta.get("imported"))
    )


@hooks(name="embench_next_steps", description="Print the command that submits an embench log.")
class NextSteps(Hooks):
    """Prints the submit command after each successful embench misalignment eval."""

    def enabled(self) -> bool:  # noqa: D102
        return os.environ.get(ENV_SWITCH, "1") != "0"

    async def on_run_end(self, data: RunEnd) -> None:  # noqa: D102
        for log in data.logs:
            if log.location and _is_embench_eval(log):
                timing = time_line(log)
                lines = [headline(log), *([timing] if timing else [])]
                lines += submit_lines(Path(log.location))
                print("\n".join(lines), flush=True)
