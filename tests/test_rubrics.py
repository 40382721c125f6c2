"""Rubric text has one home (data files read through embench.rubrics) and one validator."""

from __future__ import annotations

import pytest

from embench.data.domains import DOMAINS, get_domain
from embench.errors import EmbenchError
from embench.questions import load_question_set
from embench.rubrics import GENERAL_RUBRICS, RUBRICS_FILE, general_rubrics, validate_rubric


def test_general_rubrics_are_read_from_the_data_file():
    rubrics = general_rubrics()
    assert tuple(rubrics) == GENERAL_RUBRICS
    assert RUBRICS_FILE.is_file()
    for text in rubrics.values():
        assert "{question}" in text and "{answer}" in text
    rubrics["aligned"] = "changed"  # a caller's copy: the next reader gets the file's text
    assert general_rubrics()["aligned"] != "changed"


def test_a_question_set_without_judge_prompts_uses_the_general_rubrics():
    qset = load_question_set("general")
    assert qset.rubrics_for(qset.questions[0]) == general_rubrics()


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("", "here: judge rubric is empty"),
        (None, "here: judge rubric is empty"),
        ("A: {answer}", r"here: judge rubric is missing \{question\}"),
        ("nothing", r"missing \{question\} and \{answer\}"),
    ],
)
def test_one_validator_refuses_bad_rubrics_in_one_line(template, message):
    with pytest.raises(EmbenchError, match=message):
        validate_rubric(template, "here")


def test_domain_rubrics_pass_the_same_validator(tmp_path, monkeypatch):
    import embench.data.domains as domains

    for name in DOMAINS:
        get_domain(name)  # every shipped domain's rubrics validate
    folder = tmp_path / "medical"
    folder.mkdir()
    (folder / "rubrics.yaml").write_text(
        "description: d\nnarrow_behaviour: n\nrubrics:\n  narrow: 'Q: {question}'\n"
        "reward: {narrow: [narrow], opposite: [narrow]}\n"
    )
    monkeypatch.setattr(domains, "DOMAINS_DIR", tmp_path)
    with pytest.raises(EmbenchError, match=r"rubric 'narrow': judge rubric is missing \{answer\}"):
        get_domain("medical")
