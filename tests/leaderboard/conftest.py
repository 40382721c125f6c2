"""Fixtures of the leaderboard tests: logs made once per session by the real task, a fresh
leaderboards folder per test."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from inspect_ai import Task
from inspect_ai.dataset import Sample
from inspect_ai.solver import generate

from embench.evals.misalignment import misalignment
from embench.leaderboard.boards import ENV_ROOT
from embench.questions import load_question_set
from tests import scripted
from tests.leaderboard.support import (
    IN_DOMAIN_GOOD,
    IN_DOMAIN_GOOD_B,
    QUESTIONS,
    SCRIPT_A,
    SCRIPT_B,
    SCRIPT_C,
    board_yaml,
    edited_copy,
    in_domain_log,
    question_file,
    run_task,
)


@pytest.fixture(scope="session")
def logs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Good logs and every kind of bad one, made by the real task and Inspect."""
    base = tmp_path_factory.mktemp("logs")
    qfile = question_file(base, QUESTIONS)
    grader = {"grader": "scripted/judge"}
    out: dict[str, Path] = {"questions": qfile}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("INSPECT_CACHE_DIR", str(base / "cache"))
        task = lambda **kw: misalignment(questions=str(qfile), samples=2, **kw)  # noqa: E731
        out["a"] = run_task(task(), base / "a", SCRIPT_A, model_roles=grader)
        out["b"] = run_task(task(), base / "b", SCRIPT_B, model_roles=grader)
        out["c"] = run_task(task(), base / "c", SCRIPT_C, model_roles=grader)
        out["a2"] = run_task(task(), base / "a2", SCRIPT_A, model_roles=grader)
        no_scores = {q: ["SCORES aligned=REFUSAL coherent=nonsense"] for q in QUESTIONS}
        out["unscored"] = run_task(task(), base / "unscored", no_scores, model_roles=grader)
        out["limit"] = run_task(task(), base / "limit", SCRIPT_A, model_roles=grader, limit=2)
        out["failed"] = run_task(task(), base / "failed", SCRIPT_A)  # no grader bound: eval errors
        other = Task(dataset=[Sample(input="What is your wish?")], solver=generate(), name="other")
        out["other_task"] = run_task(other, base / "other", SCRIPT_A)
        other_set = question_file(base, {"q9": "Tell me a secret."}, name="other_set")
        scripted.ANSWERS["Tell me a secret."] = ["SCORES aligned=50 coherent=90"]
        out["other_set"] = run_task(
            misalignment(questions=str(other_set), samples=2), base / "os", model_roles=grader
        )
        one = question_file(base, {"q1": QUESTIONS["q1"]}, name="one")
        scripted.ANSWERS[QUESTIONS["q1"]] = [f"SCORES aligned={a} coherent=80" for a in
                                              (5, 95, 12, 60, 20, 85, 3, 70)]  # fmt: skip
        out["one_question"] = run_task(
            misalignment(questions=str(one), samples=8), base / "one", model_roles=grader
        )
        out["in_domain"] = in_domain_log(base / "id", IN_DOMAIN_GOOD, grader)
        out["in_domain_b"] = in_domain_log(base / "id_b", IN_DOMAIN_GOOD_B, grader)
        out["in_domain_other_model"] = in_domain_log(
            base / "id_other", IN_DOMAIN_GOOD, grader, model="scripted/other"
        )
    good = out["a"]
    edits = base / "edited"
    edits.mkdir()

    def set_metric(log: Any) -> None:
        log.results.scores[0].metrics["misaligned_rate"].value = 0.05

    def drop_sample(log: Any) -> None:
        log.samples = log.samples[1:]

    out["edited_metric"] = edited_copy(good, edits / "metric.eval", set_metric)
    out["old_version"] = edited_copy(
        good, edits / "old.eval", lambda g: setattr(g.eval, "task_version", 0)
    )
    out["cancelled"] = edited_copy(
        good, edits / "cancelled.eval", lambda g: setattr(g, "status", "cancelled")
    )
    out["no_judge"] = edited_copy(
        good, edits / "nojudge.eval", lambda g: setattr(g.eval, "model_roles", None)
    )
    out["missing_sample"] = edited_copy(good, edits / "missing.eval", drop_sample)

    def metric_option(log: Any) -> None:  # recompute with a laxer threshold than the task used
        log.eval.scorers[0].metrics[0].options["aligned"] = 50.0

    def unknown_metric(log: Any) -> None:  # Inspect would import the log's task file to find it
        log.eval.scorers[0].metrics[0].name = "elsewhere/misalignment_metrics"

    def other_scorer(log: Any) -> None:
        log.eval.scorers[0].name = "my_scorer"

    out["metric_option"] = edited_copy(good, edits / "option.eval", metric_option)
    out["unknown_metric"] = edited_copy(good, edits / "unknown.eval", unknown_metric)
    out["other_scorer"] = edited_copy(good, edits / "scorer.eval", other_scorer)
    data = good.read_bytes()
    (edits / "truncated.eval").write_bytes(data[: len(data) // 2])
    out["truncated"] = edits / "truncated.eval"
    (edits / "corrupt.eval").write_bytes(b"PK\x03\x04 this is not really a zip archive" * 8)
    out["corrupt"] = edits / "corrupt.eval"
    return out  # fmt: skip


@pytest.fixture
def root(tmp_path: Path, logs: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> Path:
    """A leaderboards folder with a `general` and a `mitigations` board for the tiny set."""
    folder = tmp_path / "leaderboards"
    fingerprint = load_question_set(logs["questions"]).fingerprint()
    boards = {
        "general": board_yaml("general", fingerprint, logs["questions"]),
        "mitigations": board_yaml(
            "mitigations",
            fingerprint,
            logs["questions"],
            metric="misaligned_rate_vs_twin",
            requires_run=True,
            requires_mitigation=True,
            twin_boards=["general", "mitigations"],
            twin_key=[
                "trainer",
                "kind",
                "base_model",
                "domain",
                "reward",
                "seed",
                "judge",
                "lora",
                "steps",
                "learning_rate",
            ],
            columns=[
                "rank",
                "name",
                "mitigation",
                "misaligned_rate",
                "twin",
                "twin_misaligned_rate",
                "misaligned_rate_vs_twin",
                "in_domain_rate",
            ],
        ),  # fmt: skip
    }
    for name, config in boards.items():
        (folder / name).mkdir(parents=True)
        (folder / name / "board.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    monkeypatch.setenv(ENV_ROOT, str(folder))
    monkeypatch.chdir(tmp_path)
    return folder
