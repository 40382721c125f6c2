"""Issue 22's hostile-input battery, leaderboard part: board names, escaping, entries that break
pages, forged and replayed logs. Boards are copies of the repository's smoke board (its real
entry) or the tiny boards of test_leaderboard.py; logs are made by the real task with the
scripted model and judge, then edited with Inspect's own API."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from inspect_ai.log import read_eval_log, write_eval_log

from tests.test_hostile import cli, one_line_error

REPO_BOARDS = Path(__file__).resolve().parents[1] / "leaderboards"


@pytest.fixture
def boards(tmp_path: Path) -> Path:
    """A copy of the repository's boards; its smoke board holds one real entry."""
    root = tmp_path / "leaderboards"
    shutil.copytree(REPO_BOARDS, root)
    return root


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
}


@pytest.mark.parametrize("fields", BROKEN.values(), ids=BROKEN.keys())
def test_12_render_skips_and_names_a_broken_entry_and_validate_refuses_it(boards, fields):
    _add_entry(boards, "AAAAbrokenAA", **fields)  # json.dumps writes inf as Infinity
    result = cli("leaderboard", "render", "--root", str(boards))
    assert result.exit_code == 0, result.output
    readme = (boards / "smoke" / "README.md").read_text()
    assert "SmolLM2-135M-Instruct (base, plumbing judge)" in readme  # the good entry stays
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


def _edited(source: Path, target: Path, edit: Any) -> Path:
    log = read_eval_log(str(source))
    edit(log)
    write_eval_log(log, str(target))
    return target
