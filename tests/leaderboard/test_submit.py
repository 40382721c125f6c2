"""embench submit: the happy path, refusals that leave the boards untouched, duplicates and races."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
import yaml
from inspect_ai.log import read_eval_log

from embench.errors import EmbenchError
from embench.leaderboard.boards import load_board
from embench.questions import load_question_set
from tests.leaderboard.support import (
    cli,
    edited_copy,
    make_manifest,
    read_entry,
    snapshot,
)


def test_submit_recomputes_metrics_and_writes_one_entry(root, logs, capsys):
    code, out, err = cli(capsys, "submit", str(logs["a"]), "--name", "scripted A", "--notes", "hi")
    assert code == 0, err
    assert "accepted 'scripted A' on board 'general'" in out
    entry = read_entry(root)
    metrics = entry["metrics"]
    assert metrics["misaligned_rate"] == pytest.approx(2 / 5)
    assert metrics["incoherence_rate"] == pytest.approx(1 / 6)
    assert metrics["mean_aligned"] == pytest.approx(45)
    assert (metrics["answers"], metrics["scored"], metrics["unscored"]) == (6, 5, 1)
    for name in ("misaligned_rate", "incoherence_rate", "mean_aligned", "mean_coherent"):
        assert metrics[f"{name}_ci_low"] <= metrics[name] <= metrics[f"{name}_ci_high"]
    assert entry["per_question"] == {"q1": 0.5, "q2": 0.0, "q3": 0.5}
    assert entry["judge"] == "scripted/judge" and entry["model"] == "scripted/answers"
    assert entry["task"] == "misalignment" and entry["task_version"] == 1
    assert entry["samples_per_question"] == 2 and entry["notes"] == "hi"
    assert entry["log"]["sha256"] == hashlib.sha256(logs["a"].read_bytes()).hexdigest()
    header = read_eval_log(str(logs["a"]), header_only=True).eval
    assert entry["log"]["eval_id"] == header.eval_id and entry["log"]["run_id"] == header.run_id
    assert len(entry["log"]["samples_sha256"]) == 64
    (path,) = (root / "general" / "entries").glob("*.json")
    assert path.name == f"{header.eval_id}.json"  # one name per eval
    assert entry["run"] is None
    assert not list((root / "general" / "entries").glob(".*"))  # no temporary files left


def test_submit_links_the_run_manifest_of_a_local_run_dir(root, logs, capsys, tmp_path):
    run = make_manifest(tmp_path / "runs" / "grpo-medical-0", mitigations=[
        {"name": "kl", "params": {"beta": 0.1}}])  # fmt: skip
    code, _, err = cli(capsys, "submit", str(logs["a"]), "--run", str(run))
    assert code == 0, err
    run_fields = read_entry(root)["run"]
    assert run_fields["trainer"] == "grpo" and run_fields["domain"] == "medical"
    assert run_fields["mitigation"] == ["kl"] and run_fields["seed"] == 0
    assert "in_domain_rate" not in run_fields  # never taken from a manifest or typed in
    assert read_entry(root)["in_domain"] is None
    assert read_entry(root)["name"] == "grpo-medical-0"  # default name: the run dir


def test_recompute_matches_a_one_question_bootstrap(root, logs, capsys):
    """With one question the CI depends on answer order: the recompute must use Inspect's."""
    board = yaml.safe_load((root / "general" / "board.yaml").read_text())
    one = load_question_set(logs["one_question"].parent.parent / "one.yaml")
    board.update(fingerprint=one.fingerprint(), question_set=one.source)
    (root / "general" / "board.yaml").write_text(yaml.safe_dump(board))
    code, _, err = cli(capsys, "submit", str(logs["one_question"]))
    assert code == 0, err
    assert read_entry(root)["samples_per_question"] == 8


BAD_INPUTS = [
    ("corrupt", [], "not a complete Inspect log"),
    ("truncated", [], "not a complete Inspect log"),
    ("other_task", [], "the log is of task 'other'"),
    ("old_version", [], "older task version"),
    ("limit", [], "--limit 2"),
    ("edited_metric", [], "metric 'misaligned_rate' in the log's results is 0.05"),
    ("a", ["--board", "nope"], "unknown board 'nope'"),
    ("failed", [], "the eval failed: embench: no judge"),
    ("cancelled", [], "the eval was cancelled"),
    ("no_judge", [], "records no judge"),
    ("missing_sample", [], "has 5 of the 6 samples"),
    ("other_set", [], "question set fingerprint"),
    ("a", ["--board", "mitigations"], "needs a run manifest"),
    ("missing", [], "log not found"),
    ("metric_option", [], "is set to aligned=50.0 but the task used 30: the header was edited"),
    ("unknown_metric", [], "metric 'elsewhere/misalignment_metrics' is not one of embench's"),
    ("other_scorer", [], "embench logs are scored by 'misalignment_judge'"),
]


@pytest.mark.parametrize(
    ("log", "extra", "reason"), BAD_INPUTS, ids=[b[0] + "-" + b[2][:20] for b in BAD_INPUTS]
)
def test_bad_input_is_refused_and_leaves_boards_untouched(root, logs, capsys, log, extra, reason):
    cli(capsys, "submit", str(logs["b"]))  # an existing entry must survive untouched too
    before = snapshot(root)
    path = logs.get(log, root.parent / "missing.eval")
    code, out, err = cli(capsys, "submit", str(path), *extra)
    assert code == 2
    assert reason in err, err
    assert len(err.strip().splitlines()) == 1 and err.startswith("error: ")
    assert snapshot(root) == before


def test_duplicate_submission_is_refused(root, logs, capsys):
    assert cli(capsys, "submit", str(logs["a"]))[0] == 0
    before = snapshot(root)
    code, _, err = cli(capsys, "submit", str(logs["a"]), "--name", "again")
    assert code == 2 and "already submitted to board 'general'" in err
    assert snapshot(root) == before
    # the same run under another log file is a different submission
    assert cli(capsys, "submit", str(logs["a2"]))[0] == 0


def test_the_same_eval_rezipped_or_with_new_ids_is_refused(root, logs, capsys, tmp_path):
    """A copy of a log is the same eval: identified by its ids and samples, not its bytes."""
    assert cli(capsys, "submit", str(logs["a"]))[0] == 0
    before = snapshot(root)
    rezipped = edited_copy(logs["a"], tmp_path / "rezipped.eval", lambda log: None)
    assert rezipped.read_bytes() != logs["a"].read_bytes()
    code, _, err = cli(capsys, "submit", str(rezipped), "--name", "again")
    assert code == 2 and "already submitted to board 'general'" in err
    assert "the same eval_id" in err and len(err.strip().splitlines()) == 1

    def new_ids(log: Any) -> None:
        log.eval.eval_id, log.eval.run_id = "NewEvalId0000000000000", "NewRunId00000000000000"

    renamed = edited_copy(logs["a"], tmp_path / "renamed.eval", new_ids)
    code, _, err = cli(capsys, "submit", str(renamed), "--name", "renamed")
    assert code == 2 and "the same samples" in err
    assert snapshot(root) == before


def test_concurrent_submissions_of_one_eval_give_one_entry(root, logs, monkeypatch):
    """Both submissions pass the duplicate check before either writes: exactly one wins."""
    import threading

    from embench.leaderboard import submit as submit_module

    barrier = threading.Barrier(2, timeout=60)
    real_check = submit_module.check_not_submitted

    def check_then_wait(board: Any, identity: Any) -> None:
        real_check(board, identity)
        barrier.wait()  # both are past the check: the race is on

    monkeypatch.setattr(submit_module, "check_not_submitted", check_then_wait)
    board = load_board(root, "general")
    outcomes: dict[str, Any] = {}

    def submit(name: str) -> None:
        try:
            outcomes[name] = submit_module.submit_log(board, logs["a"], name=name)
        except EmbenchError as error:
            outcomes[name] = error

    threads = [threading.Thread(target=submit, args=(n,)) for n in ("first", "second")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    errors = [o for o in outcomes.values() if isinstance(o, EmbenchError)]
    assert len(errors) == 1 and "already submitted" in str(errors[0])
    assert len(list((root / "general" / "entries").iterdir())) == 1  # no temporary files either
    assert len(list((root / "general" / "logs").iterdir())) == 1


def test_submit_says_when_the_judge_scored_nothing(root, logs, capsys):
    code, out, err = cli(capsys, "submit", str(logs["unscored"]))
    assert code == 0, err
    assert "the judge scored none of the 6 answers" in out and "listed unranked" in out


def test_mitigations_board_refuses_an_unmitigated_run(root, logs, capsys, tmp_path):
    run = make_manifest(tmp_path / "runs" / "plain")
    before = snapshot(root)
    code, _, err = cli(
        capsys, "submit", str(logs["a"]), "--board", "mitigations", "--run", str(run)
    )
    assert code == 2 and "lists no mitigation" in err
    assert snapshot(root) == before
