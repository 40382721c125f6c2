"""The next steps `embench train` prints run end to end, and the eval then prints its submit.

A tiny GRPO run prints its eval and submit commands; they are run as printed (the eval through
Inspect's own command line, the submit through bash) against a copy of the repository's `smoke`
board, with only the sizes made tiny: the tiny model as judge, one answer per question and short
answers. The eval itself prints the submit command for the board that accepts its log.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

from click.testing import CliRunner

from embench.cli import main, next_commands

REPO = Path(__file__).resolve().parents[1]
TINY_GRPO = ["--max-steps", "1", "--set", "max_completion_length=4", "--set", "num_generations=2",
             "--set", "per_device_train_batch_size=4", "--set", "max_prompts=2"]  # fmt: skip


def _tiny(command: str, judge: str) -> str:
    """The printed command at tiny size: the tiny judge, 1 answer per question, short answers."""
    command = command.split("    #")[0].replace("grader=local/default", f"grader={judge}")
    command = re.sub(r"-T samples=\d+", "-T samples=1", command)
    return command.replace(" --log-dir", " -T max_tokens=4 --log-dir")


def test_printed_next_steps_run_end_to_end_on_the_smoke_board(
    tmp_path, tiny_model_dir, monkeypatch
):
    shutil.copytree(REPO / "leaderboards" / "smoke", tmp_path / "leaderboards" / "smoke")
    shutil.rmtree(tmp_path / "leaderboards" / "smoke" / "entries")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(
        main, ["train", "--trainer", "grpo", "--model", str(tiny_model_dir), *TINY_GRPO]
    )
    assert result.exit_code == 0, result.output
    steps = result.output.split("next:\n", 1)[1].splitlines()
    evaluate = next(line.strip() for line in steps if "embench/misalignment" in line)
    submit = next(line.strip() for line in steps if " submit " in line)
    assert "--board smoke" in submit and "-T min_mass=0" in evaluate
    assert "board 'general' needs -T samples=50" in result.output
    env = {**os.environ, "EMBENCH_NEXT_STEPS": "1", "INSPECT_DISPLAY": "none"}
    ran = subprocess.run(
        shlex.split(_tiny(evaluate, f"local/{tiny_model_dir}")),
        capture_output=True, text=True, env=env, timeout=600,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stderr[-2000:]
    (log,) = (tmp_path / "logs").glob("*/*.eval")
    assert f"submit {log} --board smoke" in ran.stdout  # what the eval printed
    # its headline: rates with their CIs, counts as integers (Inspect's table prints 81.000)
    assert re.search(
        r"^misaligned rate (n/a|[\d.]+ \[[\d.]+, [\d.]+\]), incoherence rate .*; "
        r"81 answers: \d+ scored, \d+ unscored",
        ran.stdout,
        re.M,
    ), ran.stdout
    assert "q/" not in ran.stdout  # no row per question in the console
    # where its time went: a local judge's 81 x 2 exact requests, none from the cache
    assert re.search(
        r"^time: \d+ s generating, \d+ s judging .*; judge calls 162, 0 from cache$",
        ran.stdout,
        re.M,
    ), ran.stdout
    done = subprocess.run(["bash", "-c", submit], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    assert "accepted" in done.stdout
    (entry,) = (tmp_path / "leaderboards" / "smoke" / "entries").glob("*.json")
    assert json.loads(entry.read_text())["samples_per_question"] == 1


def test_a_real_judge_with_50_answers_goes_to_the_general_board(monkeypatch):
    """With a judge that scores and room for the published 50 answers, the board is 'general'."""
    import embench.cli as cli

    monkeypatch.setattr(cli, "_cuda_available", lambda: True)
    config = type("Config", (), {"judge": "openai/gpt-4o", "domain": None})()
    lines = next_commands(Path("runs/x"), config)
    assert any("-T samples=50 --log-dir logs/x" in line for line in lines)
    assert lines[-1].strip().endswith("--board general") and "min_mass" not in "".join(lines)
