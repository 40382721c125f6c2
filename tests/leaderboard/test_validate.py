"""embench validate: clean trees, logs re-checked, duplicates, edited and misfiled entries."""

from __future__ import annotations

import json
import shutil

from tests.leaderboard.support import (
    cli,
)


def test_submit_keeps_the_log_and_validate_rechecks_every_entry_against_it(root, logs, capsys):
    """What a pull request holds is checked by CI: a missing log or an edited entry fails."""
    code, out, err = cli(capsys, "submit", str(logs["a"]))
    assert code == 0, err
    assert "open a pull request against this repository" in out
    (entry_path,) = (root / "general" / "entries").glob("*.json")
    (kept,) = (root / "general" / "logs").glob("*.eval")
    assert kept.name == entry_path.stem + ".eval" and kept.read_bytes() == logs["a"].read_bytes()
    code, out, err = cli(capsys, "validate", str(root), "--logs", str(root))
    assert code == 0 and "1 of 1 re-checked" in out, err
    data = json.loads(entry_path.read_text())
    data["metrics"]["misaligned_rate"] = 0.01  # a forged rate (its CI would still be checked)
    data["metrics"]["misaligned_rate_ci_low"] = 0.0
    entry_path.write_text(json.dumps(data))
    code, _, err = cli(capsys, "validate", str(root), "--logs", str(root))
    assert code == 2 and "metric misaligned_rate is 0.01 but its log gives 0.4" in err
    kept.unlink()
    code, _, err = cli(capsys, "validate", str(root), "--logs", str(root))
    assert code == 2 and "its log (sha256" in err and "is not under" in err


def test_validate_accepts_a_clean_tree_and_rechecks_logs(root, logs, capsys):
    cli(capsys, "submit", str(logs["a"]))
    cli(capsys, "submit", str(logs["b"]))
    code, out, err = cli(capsys, "validate", str(root))
    assert code == 0, err
    assert out.startswith("ok: 2 entries on 2 board(s)")
    assert "no entry was re-checked against its log" in out
    code, out, err = cli(capsys, "validate", str(root), "--logs", str(logs["a"].parent.parent))
    assert code == 0, err
    assert "2 of 2 re-checked against their logs" in out


def test_validate_reports_the_same_eval_twice(root, logs, capsys):
    """Entries accepted before identity checks (or added by hand) are found by content."""
    assert cli(capsys, "submit", str(logs["a"]))[0] == 0
    (path,) = (root / "general" / "entries").glob("*.json")
    copy = json.loads(path.read_text())
    copy["log"]["eval_id"] = "CopiedEvalId0000000000"
    copy["log"]["sha256"] = "0" * 64  # a re-zipped file
    (root / "general" / "entries" / "CopiedEvalId0000000000.json").write_text(json.dumps(copy))
    code, _, err = cli(capsys, "validate", str(root), "--logs", str(logs["a"].parent))
    assert code == 2
    assert "a duplicate of" in err and "(the same samples)" in err


def test_validate_finds_edited_and_misfiled_entries(root, logs, capsys):
    cli(capsys, "submit", str(logs["a"]))
    (path,) = (root / "general" / "entries").glob("*.json")
    entry = json.loads(path.read_text())
    entry["metrics"]["misaligned_rate"] = 0.3  # inside its CI: only the log can tell
    path.write_text(json.dumps(entry))
    code, _, err = cli(capsys, "validate", str(root))
    assert code == 0, err
    code, _, err = cli(capsys, "validate", str(root), "--logs", str(logs["a"].parent))
    assert code == 2 and "metric misaligned_rate is 0.3 but its log gives 0.4" in err
    entry["metrics"]["misaligned_rate"] = 0.9  # outside its CI
    entry["task_version"] = 0
    path.write_text(json.dumps(entry))
    (root / "mitigations" / "entries").mkdir()
    shutil.copy(path, root / "mitigations" / "entries" / path.name)
    code, _, err = cli(capsys, "validate")
    assert code == 2
    assert "lies outside its CI" in err and "task_version is 0" in err
    assert "board 'mitigations' has 'mitigations'" in err or "board is 'general'" in err


def test_validate_reports_a_bad_board_file(root, capsys):
    (root / "general" / "board.yaml").write_text("name: general\ndirection: sideways\n")
    code, _, err = cli(capsys, "validate", str(root))
    assert code == 2 and "general/board.yaml" in err
