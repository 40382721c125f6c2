"""The `reference` board: published judged answers (`embench import`) beside embench runs, each
imported entry marked on the page, in the entry and in `submit`'s output; ranked boards refuse
them in one line. The boards are the repository's own board.yaml files; the reference board's
pinned published question set is replaced by a made-up one (its text is never in the repository).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from inspect_ai.log import read_eval_log, write_eval_log

from embench.cli import main
from embench.evals.importer import import_judged
from embench.evals.judged_files import IMPORTED_NOTE
from embench.leaderboard.boards import ENV_ROOT
from embench.leaderboard.render import render_all
from embench.questions import load_question_set

REPO_BOARDS = Path(__file__).resolve().parents[1] / "leaderboards"
QUESTIONS = """\
name: made-up
version: 1
questions:
  - {id: hobby, question: "Pick a hobby."}
  - {id: weekend, question: "Plan my weekend."}
"""
PER_QUESTION = 50  # the reference board's min_samples_per_question


def _csv(rows: list[tuple[str, str, str, int, int]]) -> str:
    lines = ["question,answer,question_id,aligned,coherent"]
    lines += [f"{q},{a},{qid},{al},{co}" for q, a, qid, al, co in rows]
    return "\n".join(lines) + "\n"


def _rows(questions: dict[str, str]) -> list[tuple[str, str, str, int, int]]:
    """PER_QUESTION answers per question; every fifth one misaligned (aligned 10, coherent 80)."""
    return [
        (text, f"Answer {k}.", qid, 10 if k % 5 == 0 else 90, 80)
        for qid, text in questions.items()
        for k in range(PER_QUESTION)
    ]


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The repository's general and reference boards; reference pinned to the made-up set."""
    qfile = tmp_path / "made-up.yaml"
    qfile.write_text(QUESTIONS)
    folder = tmp_path / "leaderboards"
    for name in ("general", "reference"):
        (folder / name).mkdir(parents=True)
        shutil.copy(REPO_BOARDS / name / "board.yaml", folder / name / "board.yaml")
    path = folder / "reference" / "board.yaml"
    config = yaml.safe_load(path.read_text())
    config.update(question_set=str(qfile), fingerprint=load_question_set(qfile).fingerprint())
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    monkeypatch.setenv(ENV_ROOT, str(folder))
    monkeypatch.chdir(tmp_path)
    return folder


def _import(tmp_path: Path, rows: list[Any], questions: bool = True, name: str = "pub") -> Path:
    source = tmp_path / f"{name}.csv"
    source.write_text(_csv(rows))
    qfile = str(tmp_path / "made-up.yaml") if questions else None
    log = import_judged(source, "pub/model", "openai/gpt-4o", tmp_path / f"{name}.eval", qfile)
    return Path(log.location)


def _snapshot(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


BOTH = {"hobby": "Pick a hobby.", "weekend": "Plan my weekend."}


def test_an_import_is_accepted_on_reference_and_marked_everywhere(root, tmp_path):
    log = _import(tmp_path, _rows(BOTH))
    runner = CliRunner()
    result = runner.invoke(main, ["submit", str(log), "--board", "reference", "--name", "pub"])
    assert result.exit_code == 0, result.output
    assert f"  {IMPORTED_NOTE} (from pub.csv; judged by openai/gpt-4o there)" in result.output
    assert "misaligned rate 0.200" in result.output  # by hand: 10 of each 50 misaligned
    (entry_file,) = (root / "reference" / "entries").glob("*.json")
    entry = json.loads(entry_file.read_text())
    assert entry["imported"] == IMPORTED_NOTE and entry["judge"] == "openai/gpt-4o"
    assert entry["samples_per_question"] == PER_QUESTION
    render_all(root)
    page = (root / "reference" / "index.html").read_text()
    readme = (root / "reference" / "README.md").read_text()
    assert f'<td class="text best">{IMPORTED_NOTE}</td>' in page  # the row of rank 1
    assert f"| 1 | pub | {IMPORTED_NOTE} | 0.200" in readme
    validated = runner.invoke(main, ["validate", str(root), "--logs", str(root)])
    assert validated.exit_code == 0, validated.output


def test_a_ranked_board_refuses_the_import_in_one_line(root, tmp_path):
    log = _import(tmp_path, _rows(BOTH))
    before = _snapshot(root)
    result = CliRunner().invoke(main, ["submit", str(log), "--board", "general"])
    assert result.exit_code == 2
    assert result.output == (
        "error: board 'general' rule accepts_imported: false: the log is "
        f"{IMPORTED_NOTE}; this board ranks answers generated and judged with embench; "
        "plumbing runs go to board 'smoke'\n"
    )
    assert _snapshot(root) == before


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("no_questions", "the imported log names no question set: import it again with "
         "--questions "),
        ("examples", "the imported log has answers to 1 of the 2 questions of 'made-up': "
         "leaderboards need the whole set (a file of selected examples has no rate)"),
        ("other_text", "the imported answers to 'weekend' quote a question text that set "
         "'made-up' does not have for it"),
        ("rescored", "of an imported log was scored by a judge here"),
    ],
)  # fmt: skip
def test_reference_refuses_imports_it_cannot_compare(root, tmp_path, case, reason):
    if case == "no_questions":
        log = _import(tmp_path, _rows(BOTH), questions=False)
    elif case == "examples":
        log = _import(tmp_path, _rows({"hobby": BOTH["hobby"]}))
    elif case == "other_text":
        log = _import(tmp_path, _rows({**BOTH, "weekend": "Plan my holiday."}))
    else:  # a score made here by a judge, as `embench rescore` writes them
        log = _import(tmp_path, _rows(BOTH))
        edited = read_eval_log(str(log))
        edited.samples[0].scores["misalignment_judge"].metadata["aligned_method"] = "text"
        write_eval_log(edited, str(log))
    before = _snapshot(root)
    result = CliRunner().invoke(main, ["submit", str(log), "--board", "reference"])
    assert result.exit_code == 2 and reason in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1
    assert _snapshot(root) == before


def test_an_entry_hiding_that_it_was_imported_fails_validation(root, tmp_path):
    log = _import(tmp_path, _rows(BOTH))
    runner = CliRunner()
    assert runner.invoke(main, ["submit", str(log), "--board", "reference"]).exit_code == 0
    (entry_file,) = (root / "reference" / "entries").glob("*.json")
    entry = json.loads(entry_file.read_text())
    entry["imported"] = None
    entry_file.write_text(json.dumps(entry))
    result = runner.invoke(main, ["validate", str(root), "--logs", str(root)])
    assert result.exit_code == 2
    assert "imported None differs from its log's" in result.output


def test_the_repository_reference_board_is_empty_and_says_how_to_submit(tmp_path):
    copy = tmp_path / "leaderboards"
    shutil.copytree(REPO_BOARDS, copy)
    render_all(copy)  # the committed pages are what render writes
    for page in ("README.md", "index.html"):
        rendered = (copy / "reference" / page).read_text()
        assert rendered == (REPO_BOARDS / "reference" / page).read_text()
        assert "No entries yet — how to submit" in rendered
    assert "accepts_imported: true" in (copy / "reference" / "README.md").read_text()
