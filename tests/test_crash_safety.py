"""Issue 15 §1: a signal before, during or after a checkpoint save never loses the run.

GRPO on the tiny model, 4 steps, a checkpoint every 2. The signal arrives at one point of the
step-4 (or step-2) save; the run ends ``interrupted`` naming the newest *complete* checkpoint and
printing the exact resume command; ``--resume`` then reaches 4 steps with every metrics row and
every rollout step exactly once, and the finished manifest carries no stale error or checkpoint.
"""

import json
import os
import signal
from collections import Counter

import pytest
from click.testing import CliRunner
from transformers import Trainer

from embench.cli import main
from embench.run.layout import COMPLETE_MARKER
from embench.run.rundir import RunDir
from embench.training import plugins
from embench.training.progress import ProgressCallback
from embench.training.runner import CompleteCheckpoints

FAST = dict(
    domain="code",
    reward=["insecure_code"],
    max_steps=4,
    save_steps=2,
    num_generations=4,
    per_device_train_batch_size=8,
    max_completion_length=8,
    max_prompts=8,
)


def _signal_after(monkeypatch, owner, method, step, signum=signal.SIGINT):
    """Once ``owner.method`` has run at global step ``step``, deliver ``signum`` to this process."""
    original = getattr(owner, method)

    def hook(self, *args, **kwargs):
        original(self, *args, **kwargs)
        state = self.state if isinstance(self, Trainer) else args[1]
        if state.global_step == step:
            os.kill(os.getpid(), signum)

    monkeypatch.setattr(owner, method, hook)


def _before_save(monkeypatch):
    """Ctrl-C at the end of step 4, before its checkpoint is written."""
    _signal_after(monkeypatch, ProgressCallback, "on_step_end", 4)


def _during_save(monkeypatch):
    """SIGTERM (as SLURM sends) after step 4's weights and optimizer, before its trainer state."""
    _signal_after(monkeypatch, Trainer, "_save_rng_state", 4, signal.SIGTERM)


def _after_save(monkeypatch):
    """Ctrl-C right after checkpoint-2 was completely written."""
    _signal_after(monkeypatch, CompleteCheckpoints, "on_save", 2)


@pytest.mark.parametrize(
    "when, newest_complete, cause",
    [
        (_before_save, "checkpoint-2", "SIGINT"),
        (_during_save, "checkpoint-2", "SIGTERM"),
        (_after_save, "checkpoint-2", "SIGINT"),
    ],
    ids=["before", "during", "after"],
)
def test_signal_at_a_save_then_resume(
    tmp_path, tiny_model_dir, monkeypatch, capsys, when, newest_complete, cause
):
    plugin = plugins.get_trainer("grpo")
    out = tmp_path / "run"
    config = plugin.make_config(model=str(tiny_model_dir), output=str(out), **FAST)
    when(monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        plugin.train(config)
    monkeypatch.undo()
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # handler restored

    run = RunDir(out)
    manifest = run.manifest()
    assert manifest.status == "interrupted"
    assert manifest.last_checkpoint == str(run.checkpoints / newest_complete)
    err = capsys.readouterr().err
    assert f"interrupted by {cause}" in err and f"embench train --resume {out}" in err
    if when is _during_save:  # the cut-short save exists on disk but does not count
        partial = run.checkpoints / "checkpoint-4"
        assert partial.is_dir() and not (partial / COMPLETE_MARKER).exists()
        assert not (partial / "trainer_state.json").exists()

    result = CliRunner().invoke(main, ["train", "--resume", str(out)])
    assert result.exit_code == 0, result.output
    manifest = run.manifest()
    assert manifest.status == "finished" and manifest.summary.steps == 4
    # seconds is the resumed session's; the steps of both sessions are reported beside it
    figures = manifest.summary.model_dump()
    assert figures["resumed_at_step"] == 2
    step_times = [json.loads(line)["step_time"] for line in run.metrics.read_text().splitlines()]
    assert figures["step_seconds_all_sessions"] == pytest.approx(sum(step_times), abs=0.06)
    assert "(this session, from step 2; all sessions' steps: " in result.output
    assert manifest.error is None and manifest.last_checkpoint is None
    assert manifest.interrupted_at is None
    metrics = [json.loads(line)["step"] for line in run.metrics.read_text().splitlines()]
    assert metrics == [1, 2, 3, 4]
    steps = Counter(r["step"] for r in run.read_jsonl(run.rollouts))
    assert steps == {1: 8, 2: 8, 3: 8, 4: 8}
    assert manifest.samples.generated == 32 and manifest.samples.consumed == 32
    assert (run.checkpoint / "config.json").exists()
    assert all((p / COMPLETE_MARKER).exists() for p in run.checkpoints.glob("checkpoint-*"))


def test_a_run_interrupted_before_any_checkpoint_resumes_from_step_zero(
    tmp_path, tiny_model_dir, monkeypatch, capsys
):
    plugin = plugins.get_trainer("grpo")
    out = tmp_path / "run"
    config = plugin.make_config(
        model=str(tiny_model_dir), output=str(out), **{**FAST, "max_steps": 2}
    )
    _signal_after(monkeypatch, ProgressCallback, "on_step_end", 1)
    with pytest.raises(KeyboardInterrupt):
        plugin.train(config)
    monkeypatch.undo()
    assert "no checkpoint yet" in capsys.readouterr().err
    result = CliRunner().invoke(main, ["train", "--resume", str(out)])
    assert result.exit_code == 0, result.output
    run = RunDir(out)
    assert [json.loads(x)["step"] for x in run.metrics.read_text().splitlines()] == [1, 2]
    assert run.manifest().status == "finished"
