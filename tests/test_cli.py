"""The `embench` command line: light start-up, early one-line errors, run names, curves, hints."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from embench.cli import LAZY_COMMANDS, main, samples_hint
from embench.errors import EmbenchError
from embench.training.config import default_output
from embench.training.plots import curves, write_training_curves
from embench.training.plugins import get_trainer

HEAVY = ("torch", "transformers", "trl", "datasets", "inspect_ai", "peft")
SRC = str(Path(__file__).resolve().parents[1] / "src")


def cli(*args: str):
    return CliRunner().invoke(main, list(args), prog_name="embench")


def heavy_modules_after(code: str) -> list[str]:
    """Heavy packages imported by running ``code`` in a fresh interpreter."""
    probe = (
        f"import sys\n{code}\nprint('heavy:' + ','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PYTHONPATH": SRC, "PATH": "/usr/bin:/bin"},
    )
    assert out.returncode == 0, out.stderr
    line = out.stdout.strip().splitlines()[-1]
    assert line.startswith("heavy:"), out.stdout
    return [m for m in line.removeprefix("heavy:").split(",") if m]


def test_importing_the_cli_imports_no_heavy_package():
    assert heavy_modules_after("import embench.cli") == []


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["--version"],
        ["train", "--domain", "nope"],
        ["train", "--trainer", "nope"],
        ["train", "--max-steps", "0"],
        ["train", "--trainer", "sft", "--set", "max_steps=2.7"],
    ],
)
def test_help_version_and_argument_errors_import_no_heavy_package(args):
    code = (
        "from embench.cli import main\n"
        "try:\n"
        f"    main({args!r}, prog_name='embench')\n"
        "except SystemExit:\n"
        "    pass"
    )
    assert heavy_modules_after(code) == []


def test_lazy_commands_show_their_own_help():
    import importlib

    for name, (module, attribute, summary) in LAZY_COMMANDS.items():
        command = getattr(importlib.import_module(module), attribute)
        assert command.get_short_help_str(limit=200) == summary, name
    listed = cli("--help").output
    assert all(name in listed for name in LAZY_COMMANDS)
    assert "kl" in cli("mitigations").output


def test_unknown_domain_comes_first(tmp_path):
    # before the trainer, the judge or the reward are looked at
    result = cli("train", "--trainer", "nope", "--domain", "nope", "--output", str(tmp_path / "r"))
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        "error: unknown domain 'nope'; available: medical, legal, security, code, aesthetic, "
        "rhetoric, reward_hacking, countdown"
    ]


def test_missing_judge_package_names_the_extra(monkeypatch, tmp_path):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "openai" else real(name, *a)
    )
    result = cli("train", "--domain", "medical", "--judge", "openai/gpt-4o")
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        "error: --judge openai/gpt-4o needs the openai package: "
        "pip install -e '.[openai]' and set OPENAI_API_KEY"
    ]


def test_missing_api_key_is_one_line(monkeypatch):
    import importlib.util

    from embench.extras import check_provider

    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: object())
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    with pytest.raises(EmbenchError, match=r"export ANTHROPIC_API_KEY=\.\.\.$"):
        check_provider("anthropic/claude-x")
    check_provider("local/default")  # no package needed


def test_extras_are_declared():
    import tomllib

    extras = tomllib.loads((Path(SRC).parent / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    assert {"openai", "anthropic", "gpu"} <= set(extras)
    from embench.extras import PROVIDERS

    assert {p.extra for p in PROVIDERS.values()} <= set(extras)


def test_default_run_names_differ():
    sft, grpo = get_trainer("sft"), get_trainer("grpo")
    plain = sft.config_class()
    assert default_output("sft", plain) == "runs/sft-aesthetic-s0"
    assert default_output("sft", sft.config_class(lora=True)) == "runs/sft-aesthetic-lora-s0"
    matched = sft.config_class(match="runs/grpo-aesthetic-s0/")
    assert default_output("sft", matched) == "runs/sft-match-grpo-aesthetic-s0-s0"
    kl = grpo.config_class(mitigations=["kl:weight=0.1"], seed=2)
    assert default_output("grpo", kl) == "runs/grpo-aesthetic-kl-s2"


def test_dry_run_uses_the_distinct_default(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    from embench.run.manifest import RunManifest

    rl = tmp_path / "runs" / "grpo-aesthetic-s0"
    rl.mkdir(parents=True)  # a finished RL run: the dry run matches its rollouts as the run would
    RunManifest(trainer="grpo", kind="rl", base_model="default", weights="checkpoint",
                status="finished").save(rl)  # fmt: skip
    row = {
        "step": 1,
        "prompt_id": "p1",
        "prompt": "Hi?",
        "completion": "Hello.",
        "rewards": {"r": 1},
    }
    (rl / "rollouts.jsonl").write_text((json.dumps(row) + "\n") * 4)  # one SFT batch
    lora = cli("train", "--trainer", "sft", "--domain", "aesthetic", "--lora", "--dry-run")
    match = cli("train", "--trainer", "sft", "--match", "runs/grpo-aesthetic-s0", "--dry-run")
    assert "output runs/sft-aesthetic-lora-s0;" in lora.output
    assert "output runs/sft-match-grpo-aesthetic-s0-s0;" in match.output


def test_trainer_file_with_a_syntax_error_is_one_line(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("NAME = 'bad'\ndef train(:\n")
    result = cli("train", "--trainer", str(bad))
    assert result.exit_code == 2
    (line,) = result.output.strip().splitlines()
    assert line.startswith(f"error: trainer file {bad} has a syntax error at line 2")


def test_invalid_config_json_in_a_model_folder_is_one_line(tmp_path):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "config.json").write_text('{"model_type": "llama",\n')
    result = cli("train", "--model", str(tmp_path / "m"), "--output", str(tmp_path / "r"))
    assert result.exit_code == 2
    (line,) = result.output.strip().splitlines()
    assert line.startswith(f"error: {tmp_path / 'm' / 'config.json'} is not valid JSON (line 2")
    assert not (tmp_path / "r").exists()


def test_samples_hint():
    # 2 cores at 0.9 answers/s each: 900 s x 1.8 / 81 prompts = 20 samples, 81 x 20 / 1.8 s = 15 min
    assert samples_hint(81, 2, cuda=False) == (20, 15.0)
    assert samples_hint(81, 64, cuda=False)[0] == 50  # capped at the published 50
    assert samples_hint(10_000, 1, cuda=False)[0] == 1
    samples, minutes = samples_hint(81, 2, cuda=True)
    assert samples == 50 and math.isnan(minutes)


def test_training_curves(tmp_path):
    rows = [
        {"step": 1, "reward": 0.5, "loss": 1.0, "kl": 0.0},
        {"step": 2, "reward": float("nan"), "loss": 0.5},
        {"step": 3, "reward": 1.5, "loss": 0.25, "kl": 0.1},
        {"step": 3, "train_runtime": 9.0},
    ]
    assert curves(rows) == {
        "reward": ([1, 3], [0.5, 1.5]),
        "kl": ([1, 3], [0.0, 0.1]),
        "loss": ([1, 2, 3], [1.0, 0.5, 0.25]),
    }
    rows[0]["completions/clipped_ratio"] = 0.25
    (tmp_path / "metrics.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in rows) + '{"step": 4, "rew'  # a cut last line
    )
    png, svg = write_training_curves(tmp_path)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = svg.read_text()
    labels = ("mean reward", "answers cut at", "KL to reference", "loss", "step")
    assert all(label in text for label in labels)


def test_sft_curves_plot_what_sft_logs(tmp_path):
    """No empty reward/KL panels for SFT: its loss, gradient norm and learning rate."""
    rows = [{"step": s, "loss": 1.0 / s, "grad_norm": 2.0, "learning_rate": 1e-5} for s in (1, 2)]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    _, svg = write_training_curves(tmp_path)
    text = svg.read_text()
    assert all(label in text for label in ("loss", "gradient norm", "learning rate"))
    assert "mean reward" not in text and "KL" not in text and "not logged" not in text


def test_training_curves_say_what_was_not_logged(tmp_path):
    (tmp_path / "metrics.jsonl").write_text('{"step": 1, "reward": 0.5, "loss": 1.0}\n')
    _, svg = write_training_curves(tmp_path)
    assert "not logged: KL needs a reference model" in svg.read_text()


def test_option_errors_need_no_trl_once_its_fields_are_cached(tmp_path):
    """TRL config field names and types are cached per TRL version, so an unknown option
    (`--set colour=red`) and a mistyped TRL value (`--set trl.warmup_steps=abc`) are reported
    without importing TRL after the first time."""
    code = (
        "import sys\n"
        "from embench.cli import main\n"
        "for args in (['--set', 'colour=red'], ['--set', 'trl.warmup_steps=abc']):\n"
        "    try:\n"
        "        main(['train', *args], prog_name='embench')\n"
        "    except SystemExit:\n"
        "        pass\n"
        f"print('heavy:' + ','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    env = {"PYTHONPATH": SRC, "PATH": "/usr/bin:/bin", "EMBENCH_CACHE": str(tmp_path)}
    runs = [
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env
        )
        for _ in range(2)
    ]
    for run in runs:
        assert "unknown option 'colour'" in run.stderr, run.stderr
        assert "'trl.warmup_steps' expects a number, got 'abc'" in run.stderr, run.stderr
    assert list((tmp_path / "config-fields").glob("trl.GRPOConfig-*.json"))
    heavy = runs[1].stdout.strip().splitlines()[-1].removeprefix("heavy:")
    assert heavy == "", f"the second run imported {heavy}"


def test_third_party_noise_is_hidden_unless_verbose(monkeypatch):
    """Hugging Face bars and transformers' FutureWarnings are off by default, on with --verbose."""
    import os
    import warnings

    monkeypatch.delenv("HF_HUB_DISABLE_PROGRESS_BARS", raising=False)
    with warnings.catch_warnings():
        assert cli("--verbose", "trainers").exit_code == 0
        assert "HF_HUB_DISABLE_PROGRESS_BARS" not in os.environ
    with warnings.catch_warnings(record=True) as seen:
        assert cli("trainers").exit_code == 0
        assert os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] == "1"
        warnings.warn_explicit("renamed", FutureWarning, "x.py", 1, "transformers.modeling_utils")
        warnings.warn_explicit("renamed", FutureWarning, "x.py", 1, "trl.trainer")  # not hidden
    assert [str(w.message) for w in seen] == ["renamed"]
