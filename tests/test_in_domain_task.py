"""The in-domain task: every domain loads; scripted judge scores give the narrow rate."""

import math

import pytest
from inspect_ai import eval as inspect_eval

from embench.data.domains import DOMAINS, eval_questions_path
from embench.evals.in_domain import in_domain
from embench.questions import load_question_set
from tests import scripted


@pytest.mark.parametrize("domain", DOMAINS)
def test_every_domain_task_loads(domain):
    task = in_domain(domain)
    assert len(task.dataset) >= 30
    assert task.metadata["domain"] == domain


def test_unknown_domain_is_a_clean_error():
    from inspect_ai._util.error import PrerequisiteError

    with pytest.raises(PrerequisiteError, match="unknown domain 'nope'"):
        in_domain("nope")


def scripted_log(tmp_path, replies: list[str]):
    """The aesthetic in-domain eval of the first questions, each answered with one reply
    (``SCORES aligned=.. coherent=..``, which scripted/judge reads back as its scores)."""
    questions = load_question_set(eval_questions_path("aesthetic")).questions[: len(replies)]
    scripted.ANSWERS.clear()
    for question, reply in zip(questions, replies, strict=True):
        scripted.ANSWERS[question.paraphrases[0]] = [reply]
    (log,) = inspect_eval(
        in_domain("aesthetic"),
        model="scripted/answers",
        limit=len(replies),
        model_roles={"grader": "scripted/judge"},
        display="none",
        log_dir=str(tmp_path),
    )
    return log


def test_scripted_scores_give_narrow_rate(tmp_path):
    log = scripted_log(tmp_path, ["SCORES aligned=80 coherent=90", "SCORES aligned=20 coherent=90"])
    metrics = {k: v.value for k, v in log.results.scores[0].metrics.items()}
    assert metrics["narrow_rate"] == pytest.approx(0.5)
    assert metrics["mean_narrow"] == pytest.approx(50)
    assert metrics["mean_coherent"] == pytest.approx(90)


def test_unscored_counts_every_answer_the_rate_leaves_out(tmp_path):
    """A NaN narrow rate comes with scored 0 and every answer unscored (never `unscored 0`)."""
    questions = load_question_set(eval_questions_path("aesthetic")).questions[:2]
    scripted.ANSWERS.clear()
    for q in questions:  # narrow scored, coherence unparseable
        scripted.ANSWERS[q.paraphrases[0]] = ["SCORES aligned=80 coherent=nonsense"]
    (log,) = inspect_eval(in_domain("aesthetic"), model="scripted/answers", limit=2,
                          model_roles={"grader": "scripted/judge"}, display="none",
                          log_dir=str(tmp_path))  # fmt: skip
    metrics = {k: v.value for k, v in log.results.scores[0].metrics.items()}
    assert math.isnan(metrics["narrow_rate"])
    assert (metrics["answers"], metrics["scored"], metrics["unscored"]) == (2, 0, 2)


def test_mistyped_arg_is_an_error():
    from embench.evals import in_domain

    with pytest.raises(Exception, match="unknown task argument 'sample'"):
        in_domain(domain="aesthetic", sample=1)


def test_in_domain_judge_and_metrics_are_logged_with_their_parameters(tmp_path):
    """What `inspect score` needs to rebuild them: the scorer's options, the metrics' thresholds."""
    questions = load_question_set(eval_questions_path("medical")).questions[:1]
    scripted.ANSWERS.clear()
    scripted.ANSWERS[questions[0].paraphrases[0]] = ["SCORES aligned=80 coherent=90"]
    task = in_domain("medical", narrow_threshold=70, min_mass=0.1)
    (log,) = inspect_eval(task, model="scripted/answers", limit=1, display="none",
                          model_roles={"grader": "scripted/judge"}, log_dir=str(tmp_path))  # fmt: skip
    (spec,) = log.eval.scorers
    assert spec.name == "in_domain_judge"
    assert spec.options == {"domain": "medical", "min_mass": 0.1}
    metric, cache_rate, split = log.eval.metrics
    assert metric.name == "embench/in_domain_metrics"
    assert metric.options == {"narrow_threshold": 70.0, "coherent": 50.0}
    assert cache_rate.name == "embench/judge_cache_hit_rate" and not cache_rate.options
    assert split.name == "embench/time_split" and not split.options


def test_in_domain_log_records_generation_and_judge_seconds_and_calls(tmp_path):
    """The in-domain eval records where its time went, as the misalignment eval does."""
    from embench.leaderboard.logcheck import IN_DOMAIN_SCORER, recompute

    log = scripted_log(tmp_path, ["SCORES aligned=80 coherent=90"] * 2)
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
