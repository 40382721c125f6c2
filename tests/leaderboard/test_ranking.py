"""Ranking: like with like (same judge), rates over all answers, twins, RL/SFT pairs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from embench.leaderboard.boards import load_board
from embench.leaderboard.ranking import rank_board, rl_sft_pairs
from tests.leaderboard.support import (
    IN_DOMAIN_GOOD,
    IN_DOMAIN_GOOD_B,
    cli,
    in_domain_prompts,
    make_manifest,
    set_policy,
)


def test_a_board_ranks_by_the_rate_over_all_answers_when_it_says_so(root, logs, capsys):
    """denominator: all — an unscored answer counts as not misaligned (A: 2 of 6, not 2 of 5)."""
    set_policy(root, metric="misaligned_rate_all", denominator="all",
                columns=["rank", "name", "misaligned_rate_all", "misaligned_rate"])  # fmt: skip
    for log, name in ((logs["a"], "A"), (logs["b"], "B"), (logs["c"], "C")):
        assert cli(capsys, "submit", str(log), "--name", name)[0] == 0
    code, out, _ = cli(capsys, "leaderboard", "general", "--format", "json")
    payload = json.loads(out)
    assert payload["denominator"] == "all"
    rows = {r["name"]: r for r in payload["rows"]}
    assert rows["A"]["misaligned_rate_all"] == pytest.approx(2 / 6)
    assert rows["A"]["misaligned_rate"] == pytest.approx(2 / 5)
    assert [r["name"] for r in payload["rows"]] == ["B", "A", "C"]
    assert cli(capsys, "leaderboard", "render")[0] == 0
    assert "rates are over all answers" in (root / "general" / "README.md").read_text()


def test_entries_are_ranked_only_against_entries_with_the_same_judge(root, logs, capsys):
    """Two judges: two sections, each ranked from 1, in every view."""
    set_policy(root, rank_within_judge=True)
    for log, name in ((logs["a"], "A"), (logs["b"], "B"), (logs["c"], "C")):
        assert cli(capsys, "submit", str(log), "--name", name)[0] == 0
    path = next(p for p in (root / "general" / "entries").glob("*.json")
                if json.loads(p.read_text())["name"] == "C")  # fmt: skip
    entry = json.loads(path.read_text())
    entry["judge"] = "other/judge"  # as if C had been judged by another model
    path.write_text(json.dumps(entry))
    code, out, _ = cli(capsys, "leaderboard", "general", "--format", "json")
    rows = [(r["section"], r["rank"], r["name"]) for r in json.loads(out)["rows"]]
    # C (4/6) is worse than A (2/5) and B (1/6), but it is alone under its judge: rank 1
    assert rows == [("other/judge", 1, "C"), ("scripted/judge", 1, "B"), ("scripted/judge", 2, "A")]
    code, out, _ = cli(capsys, "leaderboard", "general")
    assert "judged by other/judge" in out and "judged by scripted/judge" in out
    assert cli(capsys, "leaderboard", "render")[0] == 0
    readme = (root / "general" / "README.md").read_text()
    assert "### Judged by `other/judge`" in readme and "### Judged by `scripted/judge`" in readme
    assert "ranked only against entries with the same judge" in readme
    page = (root / "general" / "index.html").read_text()
    assert page.count('<table class="board">') == 2
    assert "Judged by <code>other/judge</code>" in page


def test_leaderboard_ranks_by_metric_with_cis_in_every_format(root, logs, capsys):
    cli(capsys, "submit", str(logs["a"]), "--name", "A")
    cli(capsys, "submit", str(logs["b"]), "--name", "B")
    cli(capsys, "submit", str(logs["c"]), "--name", "C")
    code, out, err = cli(capsys, "leaderboard", "general")
    assert code == 0, err
    assert out.index("B") < out.index("A") < out.index("C")  # 1/6 < 2/5 < 4/6
    assert "0.400 [" in out
    code, out, _ = cli(capsys, "leaderboard", "general", "--format", "json")
    rows = json.loads(out)["rows"]
    assert [(r["rank"], r["name"]) for r in rows] == [(1, "B"), (2, "A"), (3, "C")]
    code, out, _ = cli(capsys, "leaderboard", "--format", "md")  # default board: general
    assert out.splitlines()[2].startswith("| 1 | B |")
    code, out, _ = cli(capsys, "leaderboard", "general", "--format", "csv")
    header = out.splitlines()[0].split(",")
    assert {"misaligned_rate", "misaligned_rate_ci_low", "misaligned_rate_ci_high"} <= set(header)
    assert out.splitlines()[1].startswith("1,B,")


def test_mitigated_run_is_ranked_against_its_twin(root, logs, capsys, tmp_path):
    plain = make_manifest(tmp_path / "runs" / "grpo-plain")
    other_seed = make_manifest(tmp_path / "runs" / "grpo-seed1", seed=1)
    kl = make_manifest(tmp_path / "runs" / "grpo-kl", mitigations=[{"name": "kl", "params": {}}])
    ldifs = make_manifest(tmp_path / "runs" / "grpo-ldifs", mitigations=[{"name": "ldifs"}], seed=1)
    code, _, err = cli(capsys, "submit", str(logs["c"]), "--run", str(plain),
                       "--in-domain-log", str(logs["in_domain"]))  # fmt: skip
    assert code == 0, err  # twin: 4/6
    assert cli(capsys, "submit", str(logs["b"]), "--run", str(other_seed))[0] == 0  # twin: 1/6
    for log, run, in_domain_log in (
        (logs["a"], kl, logs["in_domain_b"]),
        (logs["a2"], ldifs, logs["in_domain"]),
    ):  # both 2/5
        code, _, err = cli(capsys, "submit", str(log), "--board", "mitigations", "--run", str(run),
                           "--in-domain-log", str(in_domain_log))  # fmt: skip
        assert code == 0, err
    code, out, _ = cli(capsys, "leaderboard", "mitigations", "--format", "json")
    rows = {r["name"]: r for r in json.loads(out)["rows"]}
    assert rows["grpo-kl"]["twin"] == "grpo-plain"
    assert rows["grpo-kl"]["misaligned_rate_vs_twin"] == pytest.approx((2 / 5) / (4 / 6))
    assert rows["grpo-kl"]["misaligned_rate_delta"] == pytest.approx(2 / 5 - 4 / 6)
    total = len(in_domain_prompts())
    assert rows["grpo-kl"]["twin_in_domain_rate"] == pytest.approx(IN_DOMAIN_GOOD / total)
    assert rows["grpo-kl"]["in_domain_rate"] == pytest.approx(IN_DOMAIN_GOOD_B / total)
    assert rows["grpo-ldifs"]["twin"] == "grpo-seed1"  # same seed wins
    assert rows["grpo-kl"]["rank"] == 1 and rows["grpo-ldifs"]["rank"] == 2


def test_rl_sft_pairs_come_from_the_declared_kind(root, logs, capsys, tmp_path):
    """RL or SFT is what the trainer plugin declared in the manifest, never its name: a "dpo"
    trainer declaring kind "preference" is neither, a "distill" trainer declaring "sft" is SFT."""
    rl = make_manifest(tmp_path / "runs" / "rl", trainer="grpo", kind="rl")
    sft = make_manifest(tmp_path / "runs" / "sft", trainer="distill", kind="sft", reward=[])
    dpo = make_manifest(tmp_path / "runs" / "dpo", trainer="dpo", kind="preference", reward=[])
    lone = make_manifest(tmp_path / "runs" / "sft-other", trainer="sft", kind="sft", domain="legal")
    for log, run in ((logs["a"], rl), (logs["b"], sft), (logs["c"], dpo), (logs["a2"], lone)):
        assert cli(capsys, "submit", str(log), "--run", str(run))[0] == 0
    board = load_board(root, "general")
    rows = rank_board(board, root)
    assert {r.values["name"]: r.values["kind"] for r in rows} == {
        "rl": "RL", "sft": "SFT", "dpo": "preference", "sft-other": "SFT"
    }  # fmt: skip
    pairs = rl_sft_pairs(rows)
    assert [(a.values["name"], b.values["name"]) for a, b in pairs] == [("rl", "sft")]


@pytest.mark.parametrize(
    "differs",
    [{"kind": "sft"}, {"lora": True}, {"summary": {"steps": 80}},
     {"trl_config": {"max_steps": 40, "learning_rate": 5e-5}}, {"reward": ["other_rubric"]}],
    ids=["kind", "lora", "steps", "learning_rate", "reward"],
)  # fmt: skip
def test_a_twin_differs_only_by_the_mitigation(root, logs, capsys, tmp_path, differs):
    """A run with another kind, LoRA/full, step count, learning rate or reward is no twin."""
    close = make_manifest(tmp_path / "runs" / "close", **differs)
    kl = make_manifest(tmp_path / "runs" / "kl", mitigations=[{"name": "kl"}])
    assert cli(capsys, "submit", str(logs["c"]), "--run", str(close))[0] == 0
    code, _, err = cli(capsys, "submit", str(logs["a"]), "--board", "mitigations", "--run", str(kl))
    assert code == 0, err
    code, out, _ = cli(capsys, "leaderboard", "mitigations", "--format", "json")
    (row,) = json.loads(out)["rows"]
    assert row["twin"] == "" and row["misaligned_rate_vs_twin"] is None
    same = make_manifest(tmp_path / "runs" / "same")  # the same recipe, no mitigation: the twin
    assert cli(capsys, "submit", str(logs["b"]), "--run", str(same))[0] == 0
    code, out, _ = cli(capsys, "leaderboard", "mitigations", "--format", "json")
    (row,) = json.loads(out)["rows"]
    assert row["twin"] == "same"


def test_entry_without_scored_answers_is_listed_unranked(root, logs, capsys):
    """A judge that scores nothing (like the 135M default) gives NaN metrics: kept, unranked."""
    assert cli(capsys, "submit", str(logs["a"]), "--name", "scored")[0] == 0
    code, _, err = cli(capsys, "submit", str(logs["unscored"]), "--name", "unscored")
    assert code == 0, err
    assert _entry_named(root, "unscored")["metrics"]["misaligned_rate"] is None
    code, out, _ = cli(capsys, "leaderboard", "--format", "json")
    assert [(r["rank"], r["name"]) for r in json.loads(out)["rows"]] == [
        (1, "scored"),
        (None, "unscored"),
    ]
    assert cli(capsys, "leaderboard", "render")[0] == 0
    svg = (root / "general" / "plots" / "misaligned_rate.svg").read_text()
    assert "no rate: the judge scored 0 of 6 answers" in svg


def _entry_named(root: Path, name: str) -> dict[str, Any]:
    for path in (root / "general" / "entries").glob("*.json"):
        data = json.loads(path.read_text())
        if data["name"] == name:
            return data
    raise AssertionError(name)
