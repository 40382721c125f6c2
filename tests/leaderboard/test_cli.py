"""The leaderboard CLI: its commands on any click group, and CI running the same check."""

from __future__ import annotations

import click
import yaml
from click.testing import CliRunner

from embench.leaderboard.cli import register
from tests.leaderboard.support import (
    REPO_ROOT,
)


def test_ci_and_the_workflow_run_the_same_log_check():
    check = "embench validate leaderboards/ --logs leaderboards/"
    assert "make test" in (REPO_ROOT / ".ci" / "run").read_text()  # CI runs README's test command
    test_target = (REPO_ROOT / "Makefile").read_text().split("\ntest:")[1].split("\n\n")[0]
    assert check in test_target  # ... which re-checks the boards
    workflow = yaml.safe_load(
        (REPO_ROOT / ".github" / "workflows" / "leaderboards.yml").read_text()
    )
    steps = [s.get("run", "") for s in workflow["jobs"]["validate"]["steps"]]
    assert any(check in step for step in steps)
    assert True in workflow and "pull_request" in workflow[True]  # YAML reads `on:` as True
    assert workflow["jobs"]["publish"]["steps"][-1]["uses"].startswith("actions/deploy-pages")


def test_register_adds_the_commands_to_a_group(root, logs):
    @click.group()
    def group() -> None:
        pass

    register(group)
    assert {"submit", "leaderboard", "export", "validate"} <= set(group.commands)
    runner = CliRunner()
    result = runner.invoke(group, ["leaderboard", "--help"])
    assert result.exit_code == 0 and "render" in result.output
    result = runner.invoke(group, ["leaderboard", "general", "--format", "md"])
    assert result.exit_code == 0 and "No entries yet — how to submit" in result.output
    result = runner.invoke(group, ["leaderboard", "nope"])
    assert "unknown board 'nope'" in str(result.exception)
