"""The time budget stops a run before the step that would overrun it."""

from types import SimpleNamespace

from transformers import TrainerControl

from embench.training.budget import TimeBudgetCallback


def run(step_seconds: list[float], budget: float) -> tuple[int, TimeBudgetCallback]:
    now = [0.0]
    callback = TimeBudgetCallback(budget, clock=lambda: now[0])
    control = TrainerControl()
    callback.on_train_begin(None, None, control)
    for step, seconds in enumerate(step_seconds, start=1):
        now[0] += seconds
        callback.on_step_end(None, SimpleNamespace(global_step=step), control)
        if control.should_training_stop:
            return step, callback
    return len(step_seconds), callback


def test_slow_machine_stops_inside_the_budget():
    # 25 s steps, 100 s budget: after step 3 (75 s) a 4th would end at 100 + — stop at 3
    steps, callback = run([25.0] * 10, budget=99.0)
    assert steps == 3 and callback.stopped_at == 3


def test_fast_machine_runs_every_step():
    steps, callback = run([1.0] * 10, budget=100.0)
    assert steps == 10 and callback.stopped_at is None


def test_projection_uses_the_slowest_step():
    # a slow first step (model warm-up) then fast ones: 30 + 5 + 5 ... budget 50
    steps, _ = run([30.0, 5.0, 5.0, 5.0, 5.0], budget=50.0)
    assert steps == 1  # 30 s so far + a 30 s step would reach 60 > 50
