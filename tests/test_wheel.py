"""The package stands alone: a wheel built from the checkout, installed into a fresh venv outside it,
lists its trainers and domains and runs a one-sample eval from a temporary directory."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def _run(args: list[str], cwd: Path, env: dict[str, str], timeout: int = 600) -> str:
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{' '.join(map(str, args))}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def _build_wheel(out: Path) -> Path:
    """``pip wheel`` of the checkout; without build isolation when hatchling is installed."""
    args = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(REPO_ROOT)]
    if importlib.util.find_spec("hatchling") is not None:
        args.insert(4, "--no-build-isolation")
    done = subprocess.run(args, capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        if "hatchling" in done.stderr and (
            "connection" in done.stderr.lower() or "index" in done.stderr.lower()
        ):
            pytest.skip(
                "cannot build the wheel: hatchling is not installed and no package index is reachable"
            )
        raise AssertionError(done.stderr)
    (wheel,) = out.glob("embench-*.whl")
    return wheel


@pytest.mark.slow
def test_wheel_installed_outside_the_checkout_runs(tmp_path, tiny_model_dir):
    wheel = _build_wheel(tmp_path / "dist")
    # every source and data file of the package is in the wheel (a .gitignore line once dropped
    # the whole embench/experiments package from it)
    shipped = set(zipfile.ZipFile(wheel).namelist())
    package = REPO_ROOT / "src"
    tracked = subprocess.run(
        ["git", "-C", str(REPO_ROOT), "ls-files", "src/embench"], capture_output=True, text=True
    ).stdout.split()
    expected = {str(Path(f).relative_to("src")) for f in tracked} or {
        str(p.relative_to(package))
        for p in package.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }
    assert expected - shipped == set()
    venv = tmp_path / "venv"
    # A fresh venv that borrows the dependencies (torch, trl, inspect_ai...) from this interpreter's
    # site-packages through a plain path line, so the checkout's editable .pth is not processed:
    # embench itself can only come from the wheel.
    base = getattr(sys, "_base_executable", sys.executable)
    _run([base, "-m", "venv", "--without-pip", str(venv)], tmp_path, dict(os.environ))
    python = venv / "bin" / "python"
    site = Path(
        subprocess.run(
            [python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    (site / "borrowed_dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    pip = [sys.executable, "-m", "pip", "--python", str(python), "install", "-q"]
    _run([*pip, "--no-deps", "--no-index", str(wheel)], tmp_path, dict(os.environ))

    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PWD")}
    env.update(OMP_NUM_THREADS="1", INSPECT_LOG_DIR=str(work / "logs"))
    where = _run([python, "-c", "import embench; print(embench.__file__)"], work, env)
    assert where.strip().startswith(str(site)), where

    trainers = _run([venv / "bin" / "embench", "trainers"], work, env)
    assert "grpo" in trainers and "sft" in trainers and str(REPO_ROOT) not in trainers
    domains = _run([venv / "bin" / "embench", "domains"], work, env)
    assert "aesthetic" in domains and "rhetoric" in domains

    # the default question set ("general") comes from the installed package's data
    model = f"local/{tiny_model_dir}"
    _run(
        [
            python,
            "-m",
            "inspect_ai",
            "eval",
            "embench/misalignment",
            "--model",
            model,
            "--model-role",
            f"grader={model}",
            "--limit",
            "1",
            "-T",
            "samples=1",
            "-T",
            "max_tokens=4",
            "--display",
            "none",
        ],
        work,
        env,
    )
    logs = list((work / "logs").glob("*.eval"))
    assert len(logs) == 1
    from inspect_ai.log import read_eval_log

    log = read_eval_log(str(logs[0]))
    assert log.status == "success" and len(log.samples or []) == 1
    assert log.eval.task_args.get("questions", "general") == "general"
    assert str(site) in str(log.eval.metadata) or log.eval.task_registry_name
