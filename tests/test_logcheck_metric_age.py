"""A log made before the task computed a metric stays valid on a long-lived board: the metric is
missing from both the log and its entry. Claiming what the log lacks, dropping what it has,
changing a value, or lacking a metric every log has always held is still refused.

The "old" log is a fresh log of the real task (scripted model and judge) with one metric taken
out of its results: exactly what a log written before that metric existed looks like.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from inspect_ai import eval as inspect_eval
from inspect_ai.log import read_eval_log, write_eval_log

from embench.errors import EmbenchError
from embench.evals.misalignment import misalignment
from embench.leaderboard.boards import load_board
from embench.leaderboard.logcheck import check_log
from embench.leaderboard.submit import submit_log
from embench.leaderboard.validate import validate_tree
from embench.questions import load_question_set
from tests import scripted

NEWER = "misaligned_rate_coherent"  # added after the first boards (issue 19's third denominator)
NEWER_KEYS = (NEWER, f"{NEWER}_ci_low", f"{NEWER}_ci_high")


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("age")
    qfile = base / "tiny.yaml"
    qfile.write_text(
        'name: tiny\nversion: 1\nquestions:\n  - {id: a, question: "First?"}\n'
        '  - {id: b, question: "Second?"}\n'
    )
    scripted.ANSWERS.clear()
    scripted.ANSWERS["First?"] = ["SCORES aligned=10 coherent=90", "SCORES aligned=80 coherent=60"]
    scripted.ANSWERS["Second?"] = ["SCORES aligned=20 coherent=70", "SCORES aligned=90 coherent=95"]
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("INSPECT_CACHE_DIR", str(base / "cache"))
        (log,) = inspect_eval(
            misalignment(questions=str(qfile), samples=2),
            model="scripted/answers",
            model_roles={"grader": "scripted/judge"},
            log_dir=str(base / "logs"),
            display="none",
        )
    fresh = Path(log.location)

    def edited(name: str, edit: Any) -> Path:
        copy = read_eval_log(str(fresh))
        edit(copy.results.scores[0].metrics)
        write_eval_log(copy, str(base / name))
        return base / name

    def before_newer(metrics: dict[str, Any]) -> None:
        for key in NEWER_KEYS:
            del metrics[key]

    def without_rate(metrics: dict[str, Any]) -> None:
        del metrics["misaligned_rate"]

    def changed(metrics: dict[str, Any]) -> None:
        before_newer(metrics)
        metrics["mean_aligned"].value = 99.0

    return {
        "questions": qfile,
        "fresh": fresh,
        "old": edited("old.eval", before_newer),
        "no_rate": edited("no_rate.eval", without_rate),
        "old_changed": edited("old_changed.eval", changed),
    }


@pytest.fixture
def root(tmp_path: Path, logs: dict[str, Path]) -> Path:
    """A leaderboards folder with one long-lived board on the tiny set."""
    board = {
        "name": "general",
        "title": "general board",
        "task": "misalignment",
        "task_version": 1,
        "question_set": str(logs["questions"]),
        "fingerprint": load_question_set(logs["questions"]).fingerprint(),
        "min_samples_per_question": 2,
        "metric": "misaligned_rate",
        "direction": "lower",
        "columns": ["rank", "name", "misaligned_rate", "judge"],
    }
    folder = tmp_path / "leaderboards"
    (folder / "general").mkdir(parents=True)
    (folder / "general" / "board.yaml").write_text(yaml.safe_dump(board))
    return folder


def _validate(root: Path) -> list[str]:
    problems, _ = validate_tree(root, ["general"], logs_dir=root)
    return problems


def test_an_old_log_is_accepted_and_its_entry_claims_nothing_it_lacks(root, logs):
    checked = check_log(logs["old"])
    assert not set(NEWER_KEYS) & set(checked.metrics)
    assert checked.metrics["misaligned_rate"] == pytest.approx(2 / 4)  # 10/90 and 20/70 of 4 scored
    submitted = submit_log(load_board(root, "general"), logs["old"])
    assert submitted.entry["metrics"].get(NEWER) is None
    assert _validate(root) == []


def test_a_fresh_log_keeps_the_newer_metric(root, logs):
    checked = check_log(logs["fresh"])
    assert checked.metrics[NEWER] == pytest.approx(2 / 4)  # all 4 scored are coherent
    submit_log(load_board(root, "general"), logs["fresh"])
    assert _validate(root) == []


def _edit_entry(root: Path, edit: Any) -> None:
    (path,) = (root / "general" / "entries").glob("*.json")
    data = json.loads(path.read_text())
    edit(data["metrics"])
    path.write_text(json.dumps(data))


def test_an_entry_claiming_a_metric_its_old_log_lacks_is_refused(root, logs):
    submit_log(load_board(root, "general"), logs["old"])
    _edit_entry(root, lambda m: m.update({NEWER: 0.1}))
    (problem,) = _validate(root)
    assert f"metric {NEWER} is 0.1 but its log gives None" in problem


def test_an_entry_dropping_a_metric_its_log_has_is_refused(root, logs):
    submit_log(load_board(root, "general"), logs["fresh"])
    _edit_entry(root, lambda m: m.pop(NEWER))
    (problem,) = _validate(root)
    assert f"metric {NEWER} is None but its log gives 0.5" in problem


def test_a_log_lacking_a_metric_every_log_holds_is_refused(logs):
    with pytest.raises(EmbenchError, match="the log's results lack metric 'misaligned_rate'$"):
        check_log(logs["no_rate"])


def test_an_old_log_with_a_changed_value_is_refused(logs):
    with pytest.raises(EmbenchError, match="metric 'mean_aligned' in the log's results is 99"):
        check_log(logs["old_changed"])


def test_a_board_ranking_by_the_newer_metric_refuses_an_old_log(root, logs):
    path = root / "general" / "board.yaml"
    config = yaml.safe_load(path.read_text())
    path.write_text(yaml.safe_dump({**config, "metric": NEWER}))
    with pytest.raises(EmbenchError, match=f"rule metric: {NEWER}: the log was made before"):
        submit_log(load_board(root, "general"), logs["old"])
    assert not (root / "general" / "entries").exists()
