"""The in-domain eval records where its time went, as the misalignment eval does."""

import pytest
from inspect_ai import eval as inspect_eval

from embench.data.domains import eval_questions_path
from embench.evals.in_domain import in_domain
from embench.leaderboard.logcheck import IN_DOMAIN_SCORER, recompute
from embench.questions import load_question_set
from tests import scripted


def test_in_domain_log_records_generation_and_judge_seconds_and_calls(tmp_path):
    questions = load_question_set(eval_questions_path("aesthetic")).questions[:2]
    scripted.ANSWERS.clear()
    for q in questions:
        scripted.ANSWERS[q.paraphrases[0]] = ["SCORES aligned=80 coherent=90"]
    (log,) = inspect_eval(
        in_domain("aesthetic"),
        model="scripted/answers",
        limit=2,
        model_roles={"grader": "scripted/judge"},
        display="none",
        log_dir=str(tmp_path),
    )
    assert log.status == "success"
    metas = [s.scores["in_domain_judge"].metadata for s in log.samples]
    assert all(m["judge_seconds"] > 0 and m["generation_seconds"] is not None for m in metas)
    assert all(m["judge_calls"] >= 2 for m in metas)  # narrow/opposite rubrics and coherence
    metrics = {k: v.value for k, v in log.results.scores[0].metrics.items()}
    assert metrics["judge_seconds"] == pytest.approx(sum(m["judge_seconds"] for m in metas))
    assert metrics["generation_seconds"] == pytest.approx(
        sum(m["generation_seconds"] for m in metas)
    )
    assert metrics["judge_calls"] == sum(
        m["judge_calls"] + m["judge_exact_requests"] for m in metas
    )
    assert metrics["judge_cache_hits"] == sum(m["judge_cache_reads"] for m in metas)
    thresholds = {k: float(v) for k, v in log.eval.metadata["thresholds"].items()}
    recomputed, _ = recompute(log, IN_DOMAIN_SCORER, thresholds)  # equal to the logged values
    assert recomputed["judge_seconds"] == pytest.approx(metrics["judge_seconds"])
