"""Issue 22's hostile-input battery, leaderboard part: board names, escaping, entries that break
pages, forged and replayed logs. Boards are copies of the repository's smoke board (its real
entry) or the tiny boards of tests/leaderboard/; logs are made by the real task with the
scripted model and judge, then edited with Inspect's own API."""

from __future__ import annotations

import json
import math
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from inspect_ai.log import read_eval_log, write_eval_log

from embench.errors import EmbenchError
from embench.escaping import markdown
from tests.test_hostile import cli, one_line_error

REPO_BOARDS = Path(__file__).resolve().parents[1] / "leaderboards"


@pytest.fixture
def boards(tmp_path: Path) -> Path:
    """A copy of the repository's boards; its smoke board holds one real entry."""
    root = tmp_path / "leaderboards"
    shutil.copytree(REPO_BOARDS, root)
    return root


def _good_name(root: Path) -> str:
    """The name of the smoke board's real entry (the repository's own)."""
    (original,) = sorted((root / "smoke" / "entries").glob("*.json"))[:1]
    return json.loads(original.read_text())["name"]


def _add_entry(root: Path, eval_id: str, **fields: Any) -> Path:
    """A copy of the smoke board's real entry under a new eval id, with ``fields`` replaced."""
    (original,) = sorted((root / "smoke" / "entries").glob("*.json"))[:1]
    data = json.loads(original.read_text())
    data["log"] = {**data["log"], "eval_id": eval_id, "sha256": f"{len(fields):064x}"}
    data.update(fields)
    path = root / "smoke" / "entries" / f"{eval_id}.json"
    path.write_text(json.dumps(data))
    return path


# 2. board names are plain names under the boards root ------------------------------------------


@pytest.mark.parametrize("name", ["../evilboard", "/tmp/evil", "smoke/../../x", "Smoke"])
def test_2_a_board_name_that_is_a_path_is_refused(boards, tmp_path, name):
    (tmp_path / "evilboard").mkdir()
    shutil.copy(boards / "smoke" / "board.yaml", tmp_path / "evilboard" / "board.yaml")
    line = one_line_error(cli("submit", "nothing.eval", "--board", name, "--root", str(boards)))
    assert "is not a plain name" in line
    line = one_line_error(cli("leaderboard", "show", name, "--root", str(boards)))
    assert "is not a plain name" in line
    assert not (tmp_path / "evilboard" / "entries").exists()


def test_2_a_board_folder_linking_outside_the_root_is_refused(boards, tmp_path):
    (tmp_path / "outside").mkdir()
    shutil.copy(boards / "smoke" / "board.yaml", tmp_path / "outside" / "board.yaml")
    (boards / "outside").symlink_to(tmp_path / "outside")
    line = one_line_error(cli("leaderboard", "show", "outside", "--root", str(boards)))
    assert "resolves outside" in line


# 3. user strings are escaped for the format they land in ----------------------------------------

LINK = "[click me](http://evil.example/x) ![img](http://evil.example/p.png)"
SCRIPT = "<script>alert(1)</script>"
FORMULA = '=HYPERLINK("http://evil.example","x")'
MATH = r"$\undefinedmacro$"
LIVE_LINK = re.compile(r"(?<!\\)\]\(http")  # a ']' that opens a link target, not escaped


def test_3_markdown_html_and_plots_show_names_literally(boards):
    _add_entry(boards, "AAAAlinkAAAA", name=LINK, notes=SCRIPT)
    _add_entry(boards, "AAAAmathAAAA", name=MATH + " " + SCRIPT)
    result = cli("leaderboard", "render", "--root", str(boards))
    assert result.exit_code == 0, result.output
    readme = (boards / "smoke" / "README.md").read_text()
    page = (boards / "smoke" / "index.html").read_text()
    assert not LIVE_LINK.search(readme)  # no live link or image
    assert "[click me\\](http://evil.example/x)" in readme
    assert "<script>" not in readme and "<script>" not in page
    assert "&lt;script&gt;" in readme and "&lt;script&gt;" in page
    svg = (boards / "smoke" / "plots" / "misaligned_rate.svg").read_text()
    assert "\\undefinedmacro" in svg  # drawn as typed, never parsed as math


def test_3_csv_cells_never_start_a_formula(boards):
    _add_entry(boards, "AAAAcsvAAAAA", name=FORMULA, model="+cmd|' /C calc'!A0")
    result = cli("leaderboard", "show", "smoke", "--format", "csv", "--root", str(boards))
    assert result.exit_code == 0, result.output
    assert "'=HYPERLINK" in result.output and "'+cmd" in result.output
    assert ",=HYPERLINK" not in result.output and '"=HYPERLINK' not in result.output


def test_3_report_md_escapes_experiment_and_cell_names(tmp_path):
    from embench.experiments.report import build_report
    from tests.test_experiments import _fake_cell

    out = tmp_path / "exp"
    cells = [_fake_cell(out, "grpo-s0", "grpo", 0, [], 0.5, 0.8, 20)]
    cells[0]["label"] = f"{MATH} {SCRIPT}"
    experiment = {"name": f"{SCRIPT} {LINK}", "scale": "paper", "plumbing_only": False,
                  "cells": cells, "baselines": [], "protocol": {"judge": "j", "eval": {}},
                  "versions": {}}  # fmt: skip
    (out / "experiment.json").write_text(json.dumps(experiment))
    md_path, html_path = build_report(out)
    assert "<script>" not in md_path.read_text() and "<script>" not in html_path.read_text()
    assert not LIVE_LINK.search(md_path.read_text())


# 12. an entry that passes validate renders; render never fails because of one entry ----------

BROKEN = {
    "math name": {"name": MATH},  # renders now (plots draw it literally)
    "judge object": {"judge": {}},
    "infinite metric": {
        "metrics": {
            "misaligned_rate": float("inf"),
            "answers": 81.0,
            "scored": 0.0,
            "unscored": 81.0,
        }
    },  # fmt: skip
    "run not an object": {"run": "x"},
    "NaN seed": {"run": {"seed": float("nan"), "kind": "rl"}},
}


@pytest.mark.parametrize("fields", BROKEN.values(), ids=BROKEN.keys())
def test_12_render_skips_and_names_a_broken_entry_and_validate_refuses_it(boards, fields):
    good = _good_name(boards)
    _add_entry(boards, "AAAAbrokenAA", **fields)  # json.dumps writes inf as Infinity
    result = cli("leaderboard", "render", "--root", str(boards))
    assert result.exit_code == 0, result.output
    readme = (boards / "smoke" / "README.md").read_text()
    assert markdown(good) in readme  # the good entry stays
    validate = cli("validate", str(boards))
    if fields.get("name") == MATH:
        assert (
            "\\undefinedmacro" in (boards / "smoke" / "plots" / "misaligned_rate.svg").read_text()
        )
        return
    assert "skipped smoke/entries/AAAAbrokenAA.json" in result.output
    assert "AAAAbrokenAA" not in readme
    assert validate.exit_code == 2 and "AAAAbrokenAA.json" in validate.output


def test_12_an_unreadable_entry_hides_only_itself(boards):
    (boards / "smoke" / "entries" / "AAAAjunkAAAA.json").write_text("{not json")
    result = cli("leaderboard", "render", "--root", str(boards))
    assert result.exit_code == 0, result.output
    assert "skipped smoke/entries/AAAAjunkAAAA.json: not valid JSON" in result.output


def edited_copy(source: Path, target: Path, edit: Any) -> Path:
    log = read_eval_log(str(source))
    edit(log)
    write_eval_log(log, str(target))
    return target


# 9, 10, 11: forged scores, replays with new ids, judge replies --------------------------------


@pytest.fixture(scope="module")
def real_logs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Logs of the real task with the scripted model and judge (tests/leaderboard's tiny set)."""
    from embench.evals.misalignment import misalignment
    from tests.leaderboard.support import QUESTIONS, SCRIPT_A, question_file, run_task

    base = tmp_path_factory.mktemp("hostile-logs")
    questions = question_file(base, QUESTIONS)
    grader = {"grader": "scripted/judge"}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("INSPECT_CACHE_DIR", str(base / "cache"))
        good = run_task(misalignment(questions=str(questions), samples=2), base / "a", SCRIPT_A,
                    model_roles=grader)  # fmt: skip
        empty = {**SCRIPT_A, "q2": ["EMPTY_JUDGE", "SCORES aligned=70 coherent=80"]}
        one_empty = run_task(misalignment(questions=str(questions), samples=2), base / "e", empty,
                         model_roles=grader)  # fmt: skip
    return {"questions": questions, "good": good, "one_empty": one_empty}


@pytest.fixture
def general(tmp_path: Path, real_logs: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> Path:
    """A leaderboards folder with tests/leaderboard's `general` board for the tiny set."""
    import yaml

    from embench.leaderboard.boards import ENV_ROOT
    from embench.questions import load_question_set
    from tests.leaderboard.support import board_yaml

    root = tmp_path / "leaderboards"
    (root / "general").mkdir(parents=True)
    fingerprint = load_question_set(real_logs["questions"]).fingerprint()
    board = board_yaml("general", fingerprint, real_logs["questions"])
    (root / "general" / "board.yaml").write_text(yaml.safe_dump(board))
    monkeypatch.setenv(ENV_ROOT, str(root))
    return root


def _forged(source: Path, target: Path, edit: Any) -> Path:
    """``source`` edited by ``edit``, its header metrics recomputed to match (as a careful
    forger would) and its ids renewed."""
    from inspect_ai.log import recompute_metrics
    from shortuuid import uuid

    def forge(log: Any) -> None:
        edit(log)
        recompute_metrics(log)
        log.eval.eval_id, log.eval.run_id = uuid(), uuid()
        for sample in log.samples:
            sample.uuid = uuid()

    return edited_copy(source, target, forge)


def _set_score(index: int, value: float) -> Any:
    def edit(log: Any) -> None:
        score = log.samples[index].scores["misalignment_judge"]
        score.value = {**score.value, "aligned": value}

    return edit


@pytest.mark.parametrize("value", [-500.0, 1e9, float("inf"), float("-inf")])
def test_9_out_of_range_sample_scores_are_refused(general, real_logs, tmp_path, value):
    log = _forged(real_logs["good"], tmp_path / "forged.eval", _set_score(0, value))
    line = one_line_error(cli("submit", str(log)))
    assert "a judge score is a number from 0 to 100" in line
    assert not (general / "general" / "entries").exists()


def test_9_an_in_range_forgery_disagrees_with_the_judges_recorded_reply(general, real_logs,
                                                                        tmp_path):  # fmt: skip
    log = read_eval_log(str(real_logs["good"]))
    index = next(i for i, s in enumerate(log.samples)
                 if s.scores["misalignment_judge"].value["aligned"] == 10)  # fmt: skip
    forged = _forged(real_logs["good"], tmp_path / "forged.eval", _set_score(index, 95.0))
    line = one_line_error(cli("submit", str(forged)))
    assert "score is 95.0 but the judge's recorded reply gives 10" in line


def test_10_a_replay_with_new_ids_is_the_same_eval(general, real_logs, tmp_path):
    assert cli("submit", str(real_logs["good"])).exit_code == 0
    replay = _forged(real_logs["good"], tmp_path / "replay.eval", lambda log: None)
    assert (
        read_eval_log(str(replay), header_only=True).eval.eval_id
        != read_eval_log(str(real_logs["good"]), header_only=True).eval.eval_id
    )
    line = one_line_error(cli("submit", str(replay)))
    assert "already submitted" in line and "the same samples" in line
    assert len(list((general / "general" / "entries").glob("*.json"))) == 1


def test_11_one_empty_judge_reply_leaves_that_answer_unscored(real_logs):
    log = read_eval_log(str(real_logs["one_empty"]))
    assert log.status == "success"
    scores = [s.scores["misalignment_judge"] for s in log.samples]
    empty = [s for s in scores if "empty reply" in (s.explanation or "")]
    assert len(empty) == 1 and math.isnan(empty[0].value["aligned"])
    assert empty[0].metadata["aligned_reason"] == "the judge returned an empty reply"


# 4 (logs). a log whose task arguments point at /dev/zero reads nothing from it --------------------


def test_4_a_log_pointing_its_questions_at_dev_zero_is_refused_quickly(general, real_logs,
                                                                      tmp_path):  # fmt: skip
    from tests.test_hostile import bounded

    def point_at_dev_zero(log: Any) -> None:
        log.eval.task_args = {**log.eval.task_args, "questions": "/dev/zero"}
        log.eval.metadata = {**log.eval.metadata, "question_set_source": "/dev/zero",
                             "question_set": "/dev/zero"}  # fmt: skip

    edited = edited_copy(real_logs["good"], tmp_path / "zero.eval", point_at_dev_zero)
    with bounded(seconds=10):
        line = one_line_error(cli("rescore", str(edited), "--judge", "scripted/judge"))
    assert "/dev/zero is not a regular file" in line
    with bounded(seconds=10):
        line = one_line_error(cli("export", str(edited)))
    assert "no question set with fingerprint" in line


# 8 (submit). a full disk while submitting: one line, no entry, no temporary file ---------------


def test_8_submit_on_a_full_disk_is_one_line_and_leaves_nothing(general, real_logs, monkeypatch):
    from tests.test_hostile import _disk_fills_after

    _disk_fills_after(monkeypatch, 1)
    line = one_line_error(cli("submit", str(real_logs["good"])))
    assert "the disk is full" in line
    entries = general / "general" / "entries"
    assert not entries.exists() or not list(entries.iterdir())


def test_3_the_terminal_table_shows_rich_markup_as_typed(boards):
    markup = "[link=http://e]a[/link]"  # short enough for the name column to show whole
    _add_entry(boards, "AAAAmarkupAA", name=markup)
    result = cli("leaderboard", "show", "smoke", "--root", str(boards))
    assert result.exit_code == 0, result.output
    assert markup in result.output  # shown, not turned into a terminal link


# 1. reading a run, a log or an entry never runs code ---------------------------------------------

EVIL_TRAINER = "from pathlib import Path\nPath({marker!r}).write_text('ran')\nNAME = KIND = 'x'\n"


def _old_run(folder: Path, trainer: Path, rollouts: bool) -> Path:
    """A run written before manifest_version, whose trainer is a .py file."""
    folder.mkdir(parents=True)
    old = {"trainer": str(trainer), "status": "complete", "base_model": "default", "seed": 0}
    (folder / "manifest.json").write_text(json.dumps(old))
    if rollouts:  # what only RL writes: the kind is read off the record
        (folder / "rollouts.jsonl").write_text('{"step": 1, "reward": 0.5}\n')
    return folder


def test_1_an_old_manifest_naming_a_trainer_file_never_runs_it(general, real_logs, tmp_path):
    from embench.leaderboard.entries import run_fields
    from embench.models.resolve import resolve_model
    from embench.run.reference import run_dir_of

    marker = tmp_path / "ran"
    evil = tmp_path / "evil.py"
    evil.write_text(EVIL_TRAINER.format(marker=str(marker)))
    told = _old_run(tmp_path / "runs" / "told", evil, rollouts=True)
    mute = _old_run(tmp_path / "runs" / "mute", evil, rollouts=False)

    with pytest.raises(EmbenchError, match="checkpoint/ is missing"):  # read, kind inferred
        resolve_model(str(told))
    with pytest.raises(EmbenchError, match="nothing it recorded for trainer") as refused:
        resolve_model(str(mute))
    assert "\n" not in str(refused.value)

    assert "nothing it recorded" in one_line_error(
        cli("submit", str(real_logs["good"]), "--run", str(mute))
    )
    result = cli("submit", str(real_logs["good"]), "--run", str(told))
    assert result.exit_code == 0, result.output
    (entry,) = (general / "general" / "entries").glob("*.json")
    assert json.loads(entry.read_text())["run"]["kind"] == "rl"
    assert cli("leaderboard", "show", "general").exit_code == 0
    # a log whose model is local/<run>: submit finds the run from the model name and reads it
    assert run_fields(run_dir_of(f"local/{told}"))["kind"] == "rl"
    assert not marker.exists()
