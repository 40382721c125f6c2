"""Issue 22's hostile-input battery: one regression test (or a few) per numbered item.

Each test feeds the input that once crashed, overwrote or was accepted, and checks the refusal;
where the fix is a limit, the time and the peak memory are asserted loosely.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import tracemalloc
from contextlib import contextmanager
from pathlib import Path

import pytest
from click.testing import CliRunner

from embench.cli import main
from embench.errors import EmbenchError
from embench.run.layout import LOCK_FILE
from embench.run.rundir import RunDir


def cli(*args: str, cwd: Path | None = None):
    if cwd is None:
        return CliRunner().invoke(main, list(args))
    old = Path.cwd()
    os.chdir(cwd)
    try:
        return CliRunner().invoke(main, list(args))
    finally:
        os.chdir(old)


def one_line_error(result) -> str:
    """The CLI's refusal: exit code 2, a single 'error:' line, no traceback."""
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert lines and lines[-1].startswith("error: "), result.output
    assert "Traceback" not in result.output
    return lines[-1]


@contextmanager
def bounded(seconds: float = 15.0, megabytes: float = 500.0):
    """Assert the block ends within ``seconds`` and allocates under ``megabytes`` at its peak."""
    tracemalloc.start()
    started = time.perf_counter()
    try:
        yield
    finally:
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert elapsed < seconds, f"took {elapsed:.1f} s"
    assert peak < megabytes * 2**20, f"peak {peak / 2**20:.0f} MB"


TRAIN = ("train", "--trainer", "sft", "--domain", "code", "--dry-run")


def a_run_dir(path: Path) -> Path:
    path.mkdir(parents=True)
    (path / "manifest.json").write_text(json.dumps({"trainer": "sft", "kind": "sft"}))
    (path / "metrics.jsonl").write_text("{}\n")
    return path


# 5. --overwrite deletes only what embench made --------------------------------------------------


def test_5_overwrite_refuses_a_folder_embench_did_not_make(tmp_path):
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "thesis.txt").write_text("x")
    with pytest.raises(EmbenchError, match="holds no manifest.json"):
        RunDir.create(victim, overwrite=True)
    line = one_line_error(cli(*TRAIN, "--output", str(victim), "--overwrite"))
    assert "replaces only embench run directories" in line
    assert (victim / "thesis.txt").read_text() == "x"


def test_5_overwrite_refuses_the_working_directory_and_its_parents(tmp_path):
    run = a_run_dir(tmp_path / "run")
    (run / "sub").mkdir()
    for output, cwd in ((".", run), (str(run), run / "sub")):
        line = one_line_error(cli(*TRAIN, "--output", output, "--overwrite", cwd=cwd))
        assert "holds the working directory" in line
    assert (run / "metrics.jsonl").exists()


def test_5_dry_run_says_what_overwrite_would_remove(tmp_path):
    run = a_run_dir(tmp_path / "run")
    result = cli(*TRAIN, "--output", str(run), "--overwrite")
    assert result.exit_code == 0, result.output
    assert "--overwrite would remove 2 item(s)" in result.output
    assert str(run / "metrics.jsonl") in result.output
    assert (run / "metrics.jsonl").exists()  # a dry run removes nothing
    fresh = RunDir.create(run, overwrite=True)  # an embench run directory is replaced
    assert sorted(p.name for p in fresh.path.iterdir()) == [LOCK_FILE]
    fresh.unlock()


# 7. one writer per run directory -----------------------------------------------------------------

HOLD = """
import sys, time
from embench.run.rundir import RunDir
RunDir.create(sys.argv[1], overwrite=True)
print("locked", flush=True)
time.sleep(60)
"""


def test_7_a_second_writer_is_refused_naming_the_holder(tmp_path):
    run = a_run_dir(tmp_path / "c")
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(run)], stdout=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(EmbenchError, match=f"being written by process {holder.pid}"):
            RunDir.create(run, overwrite=True)
        line = one_line_error(cli(*TRAIN, "--output", str(run), "--overwrite"))
        assert f"process {holder.pid}" in line
    finally:
        holder.kill()
        holder.wait()
    RunDir.create(run, overwrite=True).unlock()  # free again once the holder is gone


# 16 (part). --output as a symlink is refused before anything loads ------------------------------


def test_16_output_symlink_and_dangling_symlink_are_one_line(tmp_path):
    a_run_dir(tmp_path / "real")
    (tmp_path / "link").symlink_to(tmp_path / "real")
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    for name in ("link", "dangling"):
        line = one_line_error(cli(*TRAIN, "--output", str(tmp_path / name), "--overwrite"))
        assert "is a symbolic link" in line


# 6. rescore never replaces its input ------------------------------------------------------------


def test_6_rescore_refuses_an_output_equal_to_its_input(tmp_path):
    log = tmp_path / "L.eval"
    log.write_bytes(b"the original log")
    (tmp_path / "alias.eval").symlink_to(log)
    for output in (log, tmp_path / "alias.eval", tmp_path / "." / "L.eval"):
        line = one_line_error(cli("rescore", str(log), "--judge", "mockllm/model", "--output",
                                  str(output)))  # fmt: skip
        assert "is the log being re-scored" in line
    assert log.read_bytes() == b"the original log"


def test_16_rescore_with_an_uninstalled_judge_is_one_line_before_reading(tmp_path):
    log = tmp_path / "L.eval"
    log.write_bytes(b"not even a log: the judge is checked first")
    line = one_line_error(cli("rescore", str(log), "--judge", "anthropic/claude-x"))
    assert "needs the anthropic package" in line


# 4. bounded memory: file type, size, YAML aliases and nesting, prompt length -------------------

LAUGHS = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(8)
)  # 9^9 = 387,420,489 strings once expanded


@pytest.mark.parametrize(
    "content, message",
    [
        (LAUGHS + "questions: *i\n", "expands to over 1,000,000 YAML nodes"),
        ("questions: " + "[" * 100_000 + "]" * 100_000 + "\n", "nested over 64 levels"),
        ("questions:\n  - id: q\n    question: '" + "x" * 100_000 + "'\n", "over the 20,000 limit"),
        ("x" * (3 * 2**20), "over the 2 MiB limit"),
    ],
    ids=["billion-laughs", "100k-deep", "100k-char-question", "3MB-file"],
)
def test_4_hostile_question_files_are_refused_quickly(tmp_path, content, message):
    from embench.questions import load_question_set

    path = tmp_path / "q.yaml"
    path.write_text(content)
    with bounded(), pytest.raises(EmbenchError, match=message):
        load_question_set(path)


def test_4_questions_from_dev_zero_are_refused(tmp_path):
    from embench.questions import load_question_set

    with bounded(), pytest.raises(EmbenchError, match="not a regular file"):
        load_question_set("/dev/zero")
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    with bounded(), pytest.raises(EmbenchError, match="not a regular file"):
        load_question_set(fifo)  # would block forever if opened


def test_4_an_anchor_bomb_training_config_is_one_line(tmp_path):
    config = tmp_path / "bomb.yaml"
    config.write_text(LAUGHS + "trl: {extra: *i}\n")
    with bounded():
        line = one_line_error(cli(*TRAIN, "--config", str(config)))
    assert "expands to over 1,000,000 YAML nodes" in line


def test_4_a_prompt_over_the_models_context_generates_nothing(tiny_model_dir):
    import asyncio

    from inspect_ai.model import ChatMessageUser, GenerateConfig, get_model

    model = get_model(f"local/{tiny_model_dir}", memoize=False)  # a 512-token context
    long = ChatMessageUser(content="word " * 2000)
    with bounded(seconds=30):
        output = asyncio.run(model.generate([long], config=GenerateConfig(max_tokens=8)))
    assert output.stop_reason == "model_length" and output.completion == ""
    numbers = asyncio.run(model.api.number_probabilities("word " * 2000))
    assert sum(numbers.probs) == 0.0  # a judge prompt that does not fit: no score


# 8. a full disk: one line, and every write of the command lands together or not at all ---------

REPO_BOARDS = Path(__file__).resolve().parents[1] / "leaderboards"


def _disk_fills_after(monkeypatch, writes: int) -> None:
    """The disk is full from the ``writes``-th flushed file on (ENOSPC, as the kernel says it)."""
    import errno

    from embench import fsutil

    count = {"n": 0}
    real = os.fsync

    def fsync(fd):
        count["n"] += 1
        if count["n"] >= writes:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(fd)

    monkeypatch.setattr(fsutil.os, "fsync", fsync)


def test_8_render_on_a_full_disk_changes_no_page(tmp_path, monkeypatch):
    import shutil

    root = tmp_path / "leaderboards"
    shutil.copytree(REPO_BOARDS, root)
    (entry,) = (root / "smoke" / "entries").glob("*.json")
    data = json.loads(entry.read_text())
    entry.write_text(json.dumps({**data, "name": "renamed"}))
    before = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    _disk_fills_after(monkeypatch, 2)  # README.md written, index.html not
    line = one_line_error(cli("leaderboard", "render", "--root", str(root)))
    assert "the disk is full" in line
    after = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    assert after == before  # no page changed, no temporary file left
    monkeypatch.undo()
    assert cli("leaderboard", "render", "--root", str(root)).exit_code == 0
    assert "renamed" in (root / "smoke" / "README.md").read_text()
    assert "renamed" in (root / "smoke" / "index.html").read_text()


def test_8_training_on_a_full_disk_is_one_line_and_resumes(tmp_path, tiny_model_dir, monkeypatch):
    import errno

    from embench.training import runner

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "checkpoint/probe")

    monkeypatch.setattr(runner, "record_probe", full)
    out = tmp_path / "run"
    args = ("train", "--trainer", "sft", "--domain", "code", "--model", str(tiny_model_dir),
            "--max-steps", "1", "--set", "max_prompts=4", "--output", str(out))  # fmt: skip
    line = one_line_error(cli(*args))
    assert "the disk is full" in line and "--resume" in line
    run = RunDir(out)
    assert run.manifest().status == "failed" and not (out / ".checkpoint.partial").exists()
    monkeypatch.undo()
    result = cli("train", "--resume", str(out))
    assert result.exit_code == 0, result.output
    assert run.manifest().status == "finished"


# 11. judge replies: text, logprobs, mass -------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [("-5", None), ("Rating: 8/10", None), ("8 out of 10", None), ("\u22125", None),
     ("85", 85.0), ("Score: 42.", 42.0)],
)  # fmt: skip
def test_11_text_replies_that_are_not_one_score_are_unscored(text, expected):
    from embench.judge import parse_score_text

    assert parse_score_text(text) == expected


def test_11_a_positive_logprob_or_a_mass_over_one_is_unscored_with_the_reason():
    import math

    from embench.judge import score_output
    from tests.test_judge import _output

    inflated = _output("50", [[("50", math.exp(50.0)), ("60", 0.1)]])  # logprob +50: mass 5e21
    verdict = score_output(inflated)
    assert verdict.value is None and "logprob of 50" in verdict.reason
    doubled = _output("50", [[("50", 1.0), ("60", 1.0)]])  # two certain tokens: mass 2
    verdict = score_output(doubled)
    assert verdict.value is None and "mass 2 on numbers is above 1" in verdict.reason
    fine = score_output(_output("50", [[("50", 0.6), ("60", 0.4)]]))
    assert fine.value == pytest.approx(54.0) and fine.reason is None


# 13. non-finite options refused; a non-finite loss stops the run, keeping the last good checkpoint


@pytest.mark.parametrize(
    "option", ["learning_rate=inf", "trl.max_grad_norm=nan", "trl.weight_decay=-inf"]
)
def test_13_non_finite_option_values_are_refused(option):
    line = one_line_error(cli(*TRAIN, "--set", option))
    assert "must be a finite number" in line


def test_13_a_non_finite_loss_stops_the_run_as_failed(tmp_path, tiny_model_dir, monkeypatch):
    import math

    from embench.training.progress import ProgressCallback

    original = ProgressCallback.on_step_end

    def poison_after_step_2(self, args, state, control, model=None, **kwargs):
        original(self, args, state, control, model=model, **kwargs)
        if state.global_step == 2:  # step 2's loss was finite; its update left NaN weights
            for parameter in model.parameters():
                parameter.data.fill_(math.nan)

    monkeypatch.setattr(ProgressCallback, "on_step_end", poison_after_step_2)
    out = tmp_path / "run"
    line = one_line_error(cli(
        "train", "--trainer", "sft", "--domain", "code", "--model", str(tiny_model_dir),
        "--full", "--max-steps", "4", "--set", "save_steps=1", "--set", "max_prompts=8",
        "--output", str(out),
    ))  # fmt: skip
    assert "non-finite loss at step 3" in line and "checkpoint-1" in line
    manifest = RunDir(out).manifest()
    assert manifest.status == "failed" and manifest.error.startswith("non-finite loss at step 3")
    assert manifest.last_checkpoint.endswith("checkpoint-1")  # checkpoint-2 holds NaN weights
    assert RunDir(out).last_checkpoint().name == "checkpoint-1"
    assert not (out / "checkpoint").exists()  # no final model of NaN weights


# 14. Ctrl-C during an experiment's eval stops the grid as interrupted ----------------------------


@pytest.mark.parametrize("returned", ["nothing", "cancelled"])
def test_14_a_cancelled_eval_is_an_interrupt_not_a_failure(tmp_path, monkeypatch, returned):
    import inspect_ai
    from inspect_ai.log import EvalLog

    from embench.experiments import evaluate as evaluate_module

    def cut_by_ctrl_c(*args, **kwargs):  # what inspect_ai.eval hands back after a SIGINT
        if returned == "nothing":
            return []
        log = EvalLog.model_construct(status="cancelled")
        return [log]

    monkeypatch.setattr(inspect_ai, "eval", cut_by_ctrl_c)
    with pytest.raises(KeyboardInterrupt, match="was cancelled"):
        evaluate_module.evaluate("local/x", "general", {}, "scripted/judge", tmp_path)


# 15. eval.every is what is evaluated, and what --estimate counts ---------------------------------


@pytest.mark.parametrize("every", [0, 2, 3])
def test_15_evaluated_checkpoints_follow_eval_every_as_estimated(tmp_path, tiny_model_dir, every):
    from embench.experiments.config import load_experiment
    from embench.experiments.estimate import estimate_cost
    from embench.experiments.runner import _checkpoints
    from embench.run.manifest import RunManifest
    from tests.test_experiments import write_config

    config = load_experiment(write_config(
        tmp_path, tiny_model_dir, trainers=["grpo"],
        train={"max_steps": 4, "max_prompts": 2, "learning_rate": 1e-3},
        eval={"every": every, "general": {"questions": str(tmp_path / "questions.yaml")}},
    ))  # fmt: skip
    run = tmp_path / "run"
    RunManifest(trainer="grpo", kind="rl", base_model="m", weights="checkpoint",
                summary={"steps": 4}).save(run)  # fmt: skip
    for step in (1, 2, 3):  # a trainer's own saves, whatever eval.every says
        (run / "checkpoints" / f"checkpoint-{step}").mkdir(parents=True)
        RunDir.mark_complete(run / "checkpoints" / f"checkpoint-{step}")
    steps = [step for step, _ in _checkpoints(run, config)]
    assert steps == {0: [4], 1: [1, 2, 3, 4], 2: [2, 4], 3: [3, 4]}[every]
    baselines = len(config.models)
    assert estimate_cost(config).evaluated_checkpoints == len(steps) + baselines


# 16. the listed tracebacks are one line each ------------------------------------------------------


def _wider_model(tiny_model_dir: Path, out: Path) -> Path:
    """The tiny model's architecture with a wider hidden size: a base no tiny adapter fits."""
    import shutil

    from transformers import AutoConfig, LlamaForCausalLM

    config = AutoConfig.from_pretrained(tiny_model_dir)
    config.hidden_size, config.intermediate_size = 64, 128
    LlamaForCausalLM(config).save_pretrained(out)
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        if (tiny_model_dir / name).exists():
            shutil.copy(tiny_model_dir / name, out / name)
    return out


def test_16_an_adapter_on_a_mismatched_base_is_one_line(tmp_path, tiny_model_dir):
    from embench.models.resolve import load_model
    from tests.test_experiments import _lora_adapter

    adapter = _lora_adapter(tiny_model_dir, tmp_path / "adapter", seed=0)
    wider = _wider_model(tiny_model_dir, tmp_path / "wider")
    config = json.loads((adapter / "adapter_config.json").read_text())
    (adapter / "adapter_config.json").write_text(
        json.dumps({**config, "base_model_name_or_path": str(wider)})
    )
    with pytest.raises(EmbenchError, match="does not fit the model under it .*another base"):
        load_model(str(adapter), device="cpu")


def test_16_an_adapter_chain_that_loops_is_one_line(tmp_path):
    from embench.models.resolve import resolve_model

    first, second = tmp_path / "a", tmp_path / "b"
    for folder, base in ((first, second), (second, first)):
        folder.mkdir()
        (folder / "adapter_config.json").write_text(
            json.dumps({"base_model_name_or_path": str(base)})
        )
    with bounded(), pytest.raises(EmbenchError, match="adapter chain loops"):
        resolve_model(str(first))
    line = one_line_error(cli(*TRAIN, "--model", str(first)))
    assert "adapter chain loops" in line


def test_16_board_thresholds_that_are_not_numbers_are_one_line(tmp_path):
    import shutil

    root = tmp_path / "leaderboards"
    shutil.copytree(REPO_BOARDS, root)
    board = root / "smoke" / "board.yaml"
    board.write_text(board.read_text() + "\nthresholds: abc\n")
    for args in (("leaderboard", "show", "smoke"), ("leaderboard", "render")):
        line = one_line_error(cli(*args, "--root", str(root)))
        assert "thresholds must give 'aligned' and 'coherent', each a number" in line
    board.write_text(board.read_text().replace("thresholds: abc", "thresholds: {aligned: abc, "
                                                "coherent: 50}"))  # fmt: skip
    assert "each a number" in one_line_error(cli("leaderboard", "show", "smoke", "--root",
                                                 str(root)))  # fmt: skip


@pytest.mark.parametrize(
    "spec, message",
    [("sft:nodomain", "unknown domain 'nodomain'"), ("sft:missing.jsonl", "not found"),
     ("sft:code,lr=inf", "lr expects a positive number"), ("sft:code,steps=0", "steps expects")],
)  # fmt: skip
def test_16_a_malformed_warmup_is_refused_by_dry_run(spec, message):
    line = one_line_error(cli("train", "--domain", "code", "--warmup", spec, "--dry-run"))
    assert message in line


@pytest.mark.parametrize("content", ["{broken", "[]", '{"cells": [{"folder": 3}]}'])
def test_16_a_broken_experiment_json_is_named_broken(tmp_path, content):
    out = tmp_path / "exp"
    out.mkdir()
    (out / "experiment.json").write_text(content)
    for args in (("experiment", "status", str(out)), ("report", str(out))):
        line = one_line_error(cli(*args))
        assert "experiment.json is broken" in line
    line = one_line_error(cli("experiment", "status", str(tmp_path)))
    assert "not an experiment folder (no experiment.json)" in line
