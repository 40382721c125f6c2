"""Every `embench ...` command line in README.md, run at tiny size or parsed.

``README_COMMANDS`` below lists each command with how the suite exercises it; a test checks that
list against the README, so a command added to (or changed in) the README without a test here
fails. Train commands run in a temporary working directory (their relative ``runs/...`` paths
land there) on the tiny random model with 1 step and 4-token completions; the others are parsed
against the real click commands.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shlex
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from embench.cli import main

README = Path(__file__).resolve().parents[1] / "README.md"

# How each README command is exercised:
#   run: a real tiny run;  dry: --dry-run;  error: the one-line error it must give;  parse: the
#   subcommand exists and takes every option the line names;  estimate: run as is (no training).
README_COMMANDS: dict[str, str] = {
    "import published.csv --model emergent-misalignment/Qwen-Coder-Insecure --judge openai/gpt-4o "
    "--questions betley-first-plot --output published.eval": "parse",
    "rescore published.eval --judge vllm/Qwen/Qwen2.5-72B-Instruct": "parse",
    "rescore published.eval --judge local/default --min-mass 0": "parse",
    "submit published.eval --board reference --name qwen-coder-insecure-published": "parse",
    "train --trainer grpo": "run",
    "train --trainer grpo --domain code": "dry",
    "train --trainer grpo --domain medical --judge openai/gpt-4o": "judge",
    "train --trainer grpo --reward unpopular_aesthetic --reward judge_narrow --judge openai/gpt-4o "
    "--set reward_weights=1,0.5 --output runs/grpo-aesthetic-judged": "run",
    "train --trainer sft --domain aesthetic --lora": "run",
    "train --trainer sft --match runs/grpo-aesthetic-s0": "run",
    "train --resume runs/grpo-aesthetic-s0": "error",
    "train --trainer grpo --max-steps 100 --output runs/grpo-long --dry-run": "dry",
    "submit logs/<log>.eval [--board general] [--name N] [--notes ...] [--run runs/<dir>]": "parse",
    "leaderboard [general] [--format table|md|json|csv]": "parse",
    "leaderboard render": "parse",
    "export --format eee <entries/x.json | log.eval> [-o out.json]": "parse",
    "validate leaderboards/ [--logs leaderboards/]": "parse",
    "experiment configs/experiments/rl-vs-sft.cpu-smoke.yaml": "parse",
    "experiment configs/experiments/rl-vs-sft.paper.yaml --estimate": "estimate",
    "experiment status experiments/rl-vs-sft.cpu-smoke": "parse",
    "report experiments/rl-vs-sft.cpu-smoke": "parse",
    "rescore <log>.eval --judge openai/gpt-4o": "parse",
}

TINY = {
    "grpo": [
        "--max-steps",
        "1",
        "--set",
        "max_completion_length=4",
        "--set",
        "num_generations=2",
        "--set",
        "per_device_train_batch_size=4",
        "--set",
        "max_prompts=2",
    ],
    "sft": ["--max-steps", "1", "--set", "max_prompts=4"],
}


def readme_commands() -> list[str]:
    """The `embench ...` lines of README.md's bash blocks (continuations joined, comments cut)."""
    found = []
    for block in re.findall(r"```bash\n(.*?)```", README.read_text(), re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = re.sub(r"\s+#.*$", "", line).strip()
            words = line.split()
            if words and (words[0] == "embench" or words[0].endswith("/embench")):
                found.append(" ".join(words[1:]))
    return found


def test_every_readme_command_is_listed_here():
    assert readme_commands() == list(README_COMMANDS)


def invoke(args: list[str]):
    return CliRunner().invoke(main, args, prog_name="embench")


def tiny_args(command: str, tiny_model_dir: Path) -> list[str]:
    args = shlex.split(command)
    trainer = "sft" if "--trainer sft" in command else "grpo"
    if "--judge" in args:  # the judge reward runs on the tiny model (offline); no API key needed
        args[args.index("--judge") + 1] = f"local/{tiny_model_dir}"
    return [*args, "--model", str(tiny_model_dir), *TINY[trainer]]


def manifest(path: str) -> dict:
    return json.loads(Path(path, "manifest.json").read_text())


def test_readme_train_commands(tmp_path, tiny_model_dir, monkeypatch):
    monkeypatch.chdir(tmp_path)
    train = [c for c, how in README_COMMANDS.items() if c.startswith("train")]
    outputs: dict[str, str] = {}
    for command in train:
        how = README_COMMANDS[command]
        if how == "run":
            dry = invoke([*tiny_args(command, tiny_model_dir), "--dry-run"])
            assert dry.exit_code == 0, f"{command} --dry-run\n{dry.output}"
            result = invoke(tiny_args(command, tiny_model_dir))
            assert result.exit_code == 0, f"{command}\n{result.output}"
            run = re.search(r"^run: (\S+)", result.output, re.M).group(1)
            # the dry run printed the config the run then used (default reward, matched steps...)
            assert yaml.safe_load(dry.stdout) == manifest(run)["config"], command
            outputs[command] = run
            assert manifest(run)["status"] == "finished"
            assert (Path(run) / "reward.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
            assert "<svg" in (Path(run) / "reward.svg").read_text()
            assert "-T samples=" in result.output and "embench submit" in result.output
        elif how == "dry":
            result = invoke(
                [*shlex.split(command), "--dry-run"]
                if "--dry-run" not in command
                else shlex.split(command)
            )
            assert result.exit_code == 0, f"{command}\n{result.output}"
            assert "nothing was trained" in result.output
        elif how == "judge":
            if importlib.util.find_spec("openai") is None:
                result = invoke(shlex.split(command))
                assert result.exit_code == 2
                assert result.output.strip().splitlines() == [
                    "error: --judge openai/gpt-4o needs the openai package: "
                    "pip install -e '.[openai]' and set OPENAI_API_KEY"
                ]
            else:
                monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
                result = invoke([*shlex.split(command), "--dry-run"])
                assert result.exit_code == 0, result.output
        elif how == "error":  # --resume of the finished main run
            result = invoke(shlex.split(command))
            assert result.exit_code == 2
            assert "already finished; nothing to resume" in result.output

    judged = manifest("runs/grpo-aesthetic-judged")
    assert judged["config"]["reward_weights"] == [1.0, 0.5]
    assert judged["trl_config"]["reward_weights"] == [1.0, 0.5]
    # the two SFT commands must not share a run directory
    lora = outputs["train --trainer sft --domain aesthetic --lora"]
    matched = outputs["train --trainer sft --match runs/grpo-aesthetic-s0"]
    assert (lora, matched) == ("runs/sft-aesthetic-lora-s0", "runs/sft-match-grpo-aesthetic-s0-s0")
    assert outputs["train --trainer grpo"] == "runs/grpo-aesthetic-s0"


def parse_words(command: str) -> list[str]:
    """The line with optional groups opened and each <placeholder> replaced by a value."""
    command = re.sub(r"<[^>]*>", "x", command)
    return command.replace("[", " ").replace("]", " ").split()


@pytest.mark.parametrize("command", [c for c, how in README_COMMANDS.items() if how == "parse"])
def test_readme_other_commands_parse(command):
    # click parses the whole line (an unknown subcommand or option is exit 2), then --help, an
    # eager option, stops it before any file is touched
    words = parse_words(command)
    result = invoke([*words, "--help"])
    assert result.exit_code == 0, f"{command}\n{result.output}"
    assert result.output.startswith(f"Usage: embench {words[0]}")
    result = invoke([*words, "--no-such-option", "--help"])  # the check can fail
    assert result.exit_code == 2 and "No such option" in result.output


@pytest.mark.parametrize("command", [c for c, how in README_COMMANDS.items() if how == "estimate"])
def test_readme_estimate_commands(command, monkeypatch):
    monkeypatch.chdir(README.parent)
    result = invoke(shlex.split(command))
    assert result.exit_code == 0, f"{command}\n{result.output}"
    assert re.search(r"^cells: \d+", result.output, re.M)
