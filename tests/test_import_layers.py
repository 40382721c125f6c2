"""The import-linter contracts in pyproject.toml hold, and they do catch a room importing upward
or Inspect's private modules (checked on a temporary copy of the package)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT = Path(sys.executable).with_name("lint-imports")


def lint(src: Path) -> subprocess.CompletedProcess[str]:
    """lint-imports with this checkout's contracts on the package under ``src``."""
    env = {**os.environ, "PYTHONPATH": str(src)}
    return subprocess.run(
        [str(LINT), "--config", str(ROOT / "pyproject.toml"), "--no-cache"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    """A copy of src/ whose package lint-imports analyses instead of this one."""
    shutil.copytree(ROOT / "src", tmp_path / "src", ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path / "src"


def test_the_package_keeps_its_contracts():
    result = lint(ROOT / "src")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 kept, 0 broken" in result.stdout


@pytest.mark.parametrize(
    "module, line, contract",
    [
        ("run/layout.py", "import embench.training.runner", "Layers"),
        ("models/resolve.py", "from embench.judge import MIN_MASS", "Layers"),
        ("judge.py", "from inspect_ai.model._cache import CachePolicy", "No Inspect private"),
    ],
)
def test_a_forbidden_import_breaks_a_contract(copy, module, line, contract):
    file = copy / "embench" / module
    file.write_text(file.read_text() + f"\n{line}  # deliberately forbidden\n")
    result = lint(copy)
    assert result.returncode != 0, result.stdout
    broken = result.stdout.split("Broken contracts", 1)[-1]
    assert contract in broken and line.split()[1] in broken
