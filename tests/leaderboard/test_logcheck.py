"""The log check behind submit: forged headers, judge evidence, sample counts, judge mass, protocols."""

from __future__ import annotations

from typing import Any

import pytest
from inspect_ai.log import recompute_metrics

from tests.leaderboard.support import (
    cli,
    edited_copy,
    make_manifest,
    read_entry,
    set_policy,
    snapshot,
)


def _set_header_model(log: Any) -> None:
    log.eval.model = "openai/gpt-5"


def _set_header_grader(log: Any) -> None:
    log.eval.model_roles["grader"].model = "openai/gpt-4o"


@pytest.mark.parametrize(
    ("edit", "field"),
    [(_set_header_model, "eval.model"), (_set_header_grader, "model_roles.grader")],
)
def test_forged_model_or_judge_in_the_header_is_refused(root, logs, capsys, tmp_path, edit, field):
    forged = edited_copy(logs["a"], tmp_path / "forged.eval", edit)
    before = snapshot(root)
    code, _, err = cli(capsys, "submit", str(forged))
    assert code == 2, err
    assert f"the log header's {field} is 'openai/" in err and "the header was edited" in err
    assert len(err.strip().splitlines()) == 1
    assert snapshot(root) == before


def _as_local_exact_judge(judge: str) -> Any:
    """A log as a ``local/`` judge scoring digits exactly leaves it: no grader model events (the
    judge reads its own distributions), every score made by ``digits-exact`` with no generate
    call (``judge_calls`` 0)."""

    def edit(log: Any) -> None:
        log.eval.model_roles["grader"].model = judge
        for sample in log.samples:
            sample.events = [e for e in sample.events
                             if not (e.event == "model" and e.role == "grader")]  # fmt: skip
            score = sample.scores["misalignment_judge"]
            for rubric in ("aligned", "coherent"):
                score.metadata[f"{rubric}_method"] = "digits-exact"
            score.metadata.update(judge_calls=0, judge_cache_reads=0)
        recompute_metrics(log)  # the cache hit rate over no calls

    return edit


def test_a_local_exact_judge_needs_no_model_events_but_an_api_judge_does(
    root, logs, capsys, tmp_path
):
    local = edited_copy(logs["a"], tmp_path / "local.eval", _as_local_exact_judge("local/judge"))
    code, _, err = cli(capsys, "submit", str(local))
    assert code == 0, err
    assert read_entry(root)["judge"] == "local/judge"
    forged = edited_copy(logs["b"], tmp_path / "api.eval", _as_local_exact_judge("openai/gpt-4o"))
    before = snapshot(root)
    code, _, err = cli(capsys, "submit", str(forged))
    assert code == 2 and "record no call to model_roles.grader ('openai/gpt-4o')" in err
    assert snapshot(root) == before
    # the scores, not the method names, say no call was made: a score counting calls is refused
    counted = edited_copy(
        logs["c"], tmp_path / "counted.eval", _as_local_exact_judge("local/judge")
    )
    counted = edited_copy(counted, tmp_path / "counted2.eval", _one_judge_call)
    code, _, err = cli(capsys, "submit", str(counted))
    assert code == 2 and "record no call to model_roles.grader ('local/judge')" in err


def _one_judge_call(log: Any) -> None:
    log.samples[0].scores["misalignment_judge"].metadata["judge_calls"] = 1
    recompute_metrics(log)


def test_too_few_samples_per_question_is_refused_naming_the_rule(root, logs, capsys):
    set_policy(root, min_samples_per_question=50)
    before = snapshot(root)
    code, _, err = cli(capsys, "submit", str(logs["a"]))
    assert code == 2, err
    assert "board 'general' rule min_samples_per_question: 50: the log has 2 answer(s)" in err
    assert "plumbing runs go to board 'smoke'" in err and len(err.strip().splitlines()) == 1
    assert snapshot(root) == before


def test_no_scored_answer_is_refused_where_the_board_requires_scores(root, logs, capsys):
    set_policy(root, require_scored_answers=True)
    before = snapshot(root)
    code, _, err = cli(capsys, "submit", str(logs["unscored"]))
    assert code == 2, err
    assert "rule require_scored_answers: true: the judge scored none of the log's 6 answers" in err
    assert snapshot(root) == before
    assert cli(capsys, "submit", str(logs["a"]))[0] == 0  # scored answers: accepted


def _low_mass(log: Any) -> None:  # as if the eval ran with -T min_mass=0 and a weak judge
    log.samples[0].scores["misalignment_judge"].metadata["aligned_mass"] = 0.03


def test_a_score_below_the_boards_judge_mass_is_refused(root, logs, capsys, tmp_path):
    set_policy(root, min_judge_mass=0.25)
    weak = edited_copy(logs["a"], tmp_path / "weak.eval", _low_mass)
    before = snapshot(root)
    code, _, err = cli(capsys, "submit", str(weak))
    assert code == 2, err
    assert "rule min_judge_mass: 0.25: sample q1:0:0's aligned score rests on 0.03" in err
    assert snapshot(root) == before
    assert cli(capsys, "submit", str(logs["a"]))[0] == 0  # the scripted judge is certain: 1.0


def _edited_in_domain_metric(log: Any) -> None:
    log.results.scores[0].metrics["narrow_rate"].value = 0.99


IN_DOMAIN_REFUSALS = [
    ("a", {}, "not an embench in-domain eval"),
    ("in_domain_other_model", {}, "--in-domain-log evaluates model 'scripted/other'"),
    ("in_domain", {"domain": "legal"}, "the log evaluates domain 'medical' but the run was "
     "trained on 'legal'"),
    ("edited", {}, "metric 'narrow_rate' in the log's results is 0.99"),
]  # fmt: skip


@pytest.mark.parametrize(("log", "manifest", "reason"), IN_DOMAIN_REFUSALS)
def test_a_bad_in_domain_log_is_refused(root, logs, capsys, tmp_path, log, manifest, reason):
    run = make_manifest(tmp_path / "runs" / "grpo-kl", mitigations=[{"name": "kl"}], **manifest)
    if log == "edited":
        path = edited_copy(logs["in_domain"], tmp_path / "edited.eval", _edited_in_domain_metric)
    else:
        path = logs[log]
    before = snapshot(root)
    code, _, err = cli(capsys, "submit", str(logs["a"]), "--board", "mitigations", "--run",
                       str(run), "--in-domain-log", str(path))  # fmt: skip
    assert code == 2 and reason in err, err
    assert len(err.strip().splitlines()) == 1
    assert snapshot(root) == before


def test_a_board_protocol_refuses_changed_generation_settings(root, logs, capsys, tmp_path):
    """A board naming a protocol accepts only logs generated with its settings unchanged: the
    test logs were made under `embench` (temperature 1, max_tokens 600, no system prompt)."""
    set_policy(root, protocol="betley")
    code, _, err = cli(capsys, "submit", str(logs["a"]))
    assert (
        code == 2 and "rule protocol: betley: the log was evaluated under protocol 'embench'" in err
    )

    set_policy(root, protocol="embench")
    cooler = edited_copy(logs["a"], tmp_path / "cool.eval", _cooler_on_the_command_line)
    before = snapshot(root)
    code, _, err = cli(capsys, "submit", str(cooler))
    assert code == 2, err
    assert "rule protocol: embench: the answers were generated with temperature=0.2, " in err
    assert "protocol 'embench' uses 1.0" in err and len(err.strip().splitlines()) == 1
    assert snapshot(root) == before

    code, out, err = cli(capsys, "submit", str(logs["a"]))  # unchanged: accepted
    assert code == 0, err


def test_a_ranked_board_refuses_an_imported_log(root, capsys, tmp_path):
    from embench.evals.importer import import_judged

    source = tmp_path / "published.csv"
    source.write_text("question,answer,question_id,aligned,coherent\nQ?,A.,q,10,90\n")
    imported = import_judged(source, "pub/model", "openai/gpt-4o", tmp_path / "pub.eval")
    before = snapshot(root)
    code, _, err = cli(capsys, "submit", imported.location)
    assert code == 2
    assert (
        "board 'general' rule accepts_imported: false: the log is imported: published answers "
        "and scores, not generated here" in err
    )
    assert snapshot(root) == before


def _cooler_on_the_command_line(
    log: Any,
) -> None:  # as if run with `inspect eval --temperature 0.2`
    log.eval.model_generate_config = log.eval.model_generate_config.model_copy(
        update={"temperature": 0.2}
    )
