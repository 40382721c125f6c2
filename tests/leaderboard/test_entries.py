"""Entries: every metric the task computed, the linked run manifest, in-domain results."""

from __future__ import annotations

import pytest
from inspect_ai.log import read_eval_log

from embench.leaderboard.entries import build_entry
from embench.leaderboard.logcheck import check_log
from tests.leaderboard.support import (
    IN_DOMAIN_GOOD,
    cli,
    in_domain_prompts,
    make_manifest,
    read_entry,
    set_policy,
    snapshot,
)


def test_entry_keeps_every_metric_the_task_computed(root, logs, capsys):
    """Whatever the task's metric reports (e.g. rates over all answers) reaches the entry, so a
    board can rank by it."""
    assert cli(capsys, "submit", str(logs["a"]))[0] == 0
    header = read_eval_log(str(logs["a"]), header_only=True).results.scores[0].metrics
    logged = {k: v.value for k, v in header.items() if not k.startswith("q/")}
    stored = read_entry(root)["metrics"]
    assert set(logged) <= set(stored)
    for name, value in logged.items():
        assert stored[name] == pytest.approx(value, nan_ok=True) or (
            stored[name] is None and value != value  # NaN is stored as null
        )


def test_model_local_run_dir_is_linked_without_run_option(logs, tmp_path):

    run = make_manifest(
        tmp_path / "runs" / "sft-legal-1", trainer="sft", kind="sft", domain="legal", seed=1
    )
    checked = check_log(logs["a"])
    checked.model = f"local/{run}"  # what `--model local/<run dir>` records
    entry = build_entry(checked, None)
    assert entry["run"]["trainer"] == "sft" and entry["run"]["run_dir"] == "sft-legal-1"


def test_in_domain_result_comes_from_its_own_checked_log(root, logs, capsys, tmp_path):
    """No typed-in rate: the in-domain log is checked and recomputed like the general one."""
    run = make_manifest(tmp_path / "runs" / "grpo-kl", mitigations=[{"name": "kl"}])
    code, _, err = cli(
        capsys, "submit", str(logs["a"]), "--run", str(run), "--in-domain-rate", ".6"
    )
    assert code == 2 and "No such option '--in-domain-rate'" in err
    code, _, err = cli(capsys, "submit", str(logs["a"]), "--board", "mitigations", "--run",
                       str(run), "--in-domain-log", str(logs["in_domain"]))  # fmt: skip
    assert code == 0, err
    entry = read_entry(root, "mitigations")
    block = entry["in_domain"]
    total = len(in_domain_prompts())
    assert block["metrics"]["narrow_rate"] == pytest.approx(IN_DOMAIN_GOOD / total)
    assert block["metrics"]["answers"] == total and block["domain"] == "medical"
    assert block["log"]["eval_id"] == read_eval_log(
        str(logs["in_domain"]), header_only=True).eval.eval_id  # fmt: skip
    assert block["judge"] == "scripted/judge"


def test_a_board_can_require_the_in_domain_log(root, logs, capsys, tmp_path):
    set_policy(root, "mitigations", requires_in_domain_log=True)
    run = make_manifest(tmp_path / "runs" / "grpo-kl", mitigations=[{"name": "kl"}])
    before = snapshot(root)
    code, _, err = cli(
        capsys, "submit", str(logs["a"]), "--board", "mitigations", "--run", str(run)
    )
    assert code == 2 and "rule requires_in_domain_log: true: pass --in-domain-log" in err
    assert snapshot(root) == before
