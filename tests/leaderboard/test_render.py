"""Rendering: README/index.html/plots, empty boards, wide tables in a browser."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.leaderboard.support import (
    LEADERBOARDS_DIR,
    REPO_ROOT,
    cli,
    make_manifest,
    set_policy,
    snapshot,
)


def test_render_writes_readme_html_and_plots_deterministically(root, logs, capsys, tmp_path):
    rl = make_manifest(tmp_path / "runs" / "rl")
    sft = make_manifest(tmp_path / "runs" / "sft", trainer="sft", kind="sft")
    kl = make_manifest(tmp_path / "runs" / "rl-kl", mitigations=[{"name": "kl"}])
    cli(capsys, "submit", str(logs["a"]), "--run", str(rl), "--name", "the <RL> run")
    cli(capsys, "submit", str(logs["b"]), "--run", str(sft))
    cli(capsys, "submit", str(logs["c"]), "--board", "mitigations", "--run", str(kl))
    code, out, err = cli(capsys, "leaderboard", "render")
    assert code == 0, err
    general = root / "general"
    readme = (general / "README.md").read_text()
    assert "| 1 | sft |" in readme and "the &lt;RL&gt; run" in readme  # no raw HTML in Markdown
    page = (general / "index.html").read_text()
    assert "the &lt;RL&gt; run" in page and page.count("<svg") == 2  # rate per entry, RL vs SFT
    assert (general / "plots" / "misaligned_rate.svg").is_file()
    assert (general / "plots" / "rl_vs_sft.svg").is_file()
    assert (root / "mitigations" / "plots" / "mitigation_vs_twin.svg").is_file()
    assert "[general](general/README.md)" in (root / "README.md").read_text()
    before = snapshot(root)
    code, out, _ = cli(capsys, "leaderboard", "render")
    assert code == 0 and "0 changed" in out
    assert snapshot(root) == before


def test_empty_board_renders_how_to_submit_not_a_cut_off_table(root, capsys):
    assert cli(capsys, "leaderboard", "render")[0] == 0
    page = (root / "general" / "index.html").read_text()
    assert "<table" not in page
    assert "No entries yet — how to submit:</strong> <code>embench submit logs/" in page
    readme = (root / "general" / "README.md").read_text()
    assert "**No entries yet — how to submit:** `embench submit logs/" in readme
    assert "| # |" not in readme
    code, out, _ = cli(capsys, "leaderboard", "general", "--format", "md")
    assert out.startswith("**No entries yet — how to submit:**")
    front = (root / "index.html").read_text()  # the published site's front page
    assert 'href="general/index.html"' in front and "pull request" in front


def _chromium() -> str | None:
    spec = importlib.util.spec_from_file_location(
        "render_screenshot", REPO_ROOT / "benchmarks" / "render_screenshot.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _wide_mitigations_board(root: Path, logs: dict[str, Path], capsys: Any, tmp_path: Path) -> None:
    """The mitigations board with all its repo columns and long names (the widest page)."""
    repo = yaml.safe_load((LEADERBOARDS_DIR / "mitigations" / "board.yaml").read_text())
    set_policy(root, "mitigations", columns=repo["columns"])
    plain = make_manifest(tmp_path / "runs" / "grpo-medical-plain-seed0-a-long-run-name")
    kl = make_manifest(tmp_path / "runs" / "grpo-medical-kl-0.1-seed0-another-long-run-name",
                   mitigations=[{"name": "kl", "params": {"beta": 0.1}}])  # fmt: skip
    assert cli(capsys, "submit", str(logs["c"]), "--run", str(plain))[0] == 0
    code, _, err = cli(capsys, "submit", str(logs["a"]), "--board", "mitigations", "--run", str(kl))
    assert code == 0, err
    assert cli(capsys, "leaderboard", "render")[0] == 0


def test_board_pages_scroll_wide_tables_and_say_how_to_submit(root, logs, capsys, tmp_path):
    """Tables sit in a horizontally scrolling box (the page itself never overflows); both pages
    give the submit command."""
    _wide_mitigations_board(root, logs, capsys, tmp_path)
    for board in ("general", "mitigations"):
        page = (root / board / "index.html").read_text()
        assert ".scroll { overflow-x: auto;" in page
        assert page.count('<div class="scroll"><table') == page.count("<table")
        assert f"embench submit logs/&lt;your log&gt;.eval --board {board}" in page
        assert "## Submitting" in (root / board / "README.md").read_text()
    assert "--run runs/&lt;run dir&gt;" in (root / "mitigations" / "index.html").read_text()


def test_render_screenshot_shows_scrollbars():
    module = _chromium()
    assert "--hide-scrollbars" not in module.FLAGS


def test_index_html_in_headless_chromium(root, logs, capsys, tmp_path):
    module = _chromium()
    if module.find_chromium() is None:
        pytest.skip("no chromium here (`apt-get install chromium` to run this check)")
    cli(capsys, "submit", str(logs["a"]), "--name", "browser check")
    cli(capsys, "leaderboard", "render")
    report = module.screenshot(root / "general" / "index.html", tmp_path / "shot.png")
    assert report["table_rows"] == 1 and report["svgs"] >= 1
    assert report["png_bytes"] > 10_000 and "browser check" in report["text"]
    _wide_mitigations_board(root, logs, capsys, tmp_path)
    report = module.screenshot(root / "mitigations" / "index.html", tmp_path / "wide.png")
    assert report["width"] == 1280 and report["scroll_width"] is not None
    assert not report["overflows"], report["scroll_width"]
