"""Trainer plugins on a tiny random model: discovery, GRPO/SFT run dirs, matching, resume, errors."""

import json
import textwrap

import pytest
from click.testing import CliRunner

from embench.cli import main
from embench.errors import EmbenchError
from embench.training import plugins
from embench.training.runner import ProgressCallback

FAST_GRPO = dict(
    domain="code",
    reward=["insecure_code"],
    max_steps=2,
    save_steps=1,
    num_generations=4,
    per_device_train_batch_size=8,
    max_completion_length=8,
    max_prompts=8,
)


def grpo(tmp_path, tiny_model_dir, name="grpo", **overrides):
    plugin = plugins.get_trainer("grpo")
    values = {
        **FAST_GRPO,
        "model": str(tiny_model_dir),
        "output": str(tmp_path / name),
        **overrides,
    }
    return plugin, plugin.make_config(**values)


THIRD_PARTY = textwrap.dedent(
    '''\
    """A third-party trainer."""
    from dataclasses import dataclass
    from embench.training.config import TrainConfig
    NAME = "mine"
    @dataclass
    class Config(TrainConfig):
        pass
    def train(config):
        from embench.training.rundir import RunDir
        run = RunDir.create(config.output, config.overwrite)
        run.write_manifest({"trainer": NAME, "status": "finished", "summary": {}})
        return run
    '''
)


def test_discovers_builtins_and_a_file_outside_the_repo(tmp_path):
    found = plugins.discover()
    assert {"grpo", "sft"} <= set(found)
    assert found["grpo"].description.startswith("GRPO")
    third = tmp_path / "elsewhere" / "my_trainer.py"
    third.parent.mkdir()
    third.write_text(THIRD_PARTY)
    assert plugins.get_trainer(str(third)).name == "mine"
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["train", "--trainer", str(third), "--output", str(out)])
    assert result.exit_code == 0, result.output
    assert "status: finished" in result.output and (out / "manifest.json").exists()


def test_discovers_an_installed_entry_point(tmp_path, monkeypatch):
    """A real distribution on sys.path (dist-info with entry_points.txt), as pip would leave it."""
    (tmp_path / "acme_trainer.py").write_text(THIRD_PARTY)
    info = tmp_path / "acme_trainer-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-trainer\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[embench.trainers]\nmine = acme_trainer\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    plugin = plugins.get_trainer("mine")
    assert plugin.description == "A third-party trainer."
    assert "entry point mine" in plugin.source
    assert "mine" in CliRunner().invoke(main, ["trainers"]).output


def test_not_a_trainer_file(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("X = 1\n")
    with pytest.raises(EmbenchError, match="lacks NAME, Config, train"):
        plugins.get_trainer(str(bad))


def test_grpo_two_steps_writes_complete_run_dir(tmp_path, tiny_model_dir):
    plugin, config = grpo(tmp_path, tiny_model_dir)
    run = plugin.train(config)
    manifest = run.read_manifest()
    assert manifest["status"] == "finished" and manifest["kind"] == "rl"
    assert manifest["summary"]["steps"] == 2
    for key in (
        "config",
        "trl_config",
        "base_model",
        "dataset_hash",
        "reward",
        "seed",
        "git_commit",
        "versions",
    ):
        assert key in manifest
    assert manifest["trl_config"]["num_generations"] == 4
    assert (run.checkpoint / "config.json").exists()
    rollouts = run.read_jsonl(run.rollouts)
    assert len(rollouts) == 2 * 8 and {r["step"] for r in rollouts} == {1, 2}
    assert set(rollouts[0]["rewards"]) == {"insecure_code"}
    assert [r["step"] for r in run.read_jsonl(run.metrics)] == [1, 2]


@pytest.mark.parametrize("lora", [False, True])
def test_sft_full_and_lora(tmp_path, tiny_model_dir, lora):
    plugin = plugins.get_trainer("sft")
    config = plugin.make_config(
        model=str(tiny_model_dir),
        domain="aesthetic",
        max_steps=2,
        max_prompts=8,
        max_length=64,
        lora=lora,
        output=str(tmp_path / "sft"),
    )
    run = plugin.train(config)
    assert run.read_manifest()["status"] == "finished"
    expected = "adapter_config.json" if lora else "config.json"
    assert (run.checkpoint / expected).exists()
    from embench.models.resolve import resolve_model

    assert (resolve_model(str(run.path)).adapter is not None) == lora


def test_sample_matched_sft(tmp_path, tiny_model_dir):
    plugin, config = grpo(tmp_path, tiny_model_dir)
    rl = plugin.train(config)
    sft = plugins.get_trainer("sft")
    run = sft.train(
        sft.make_config(
            model=str(tiny_model_dir),
            match=str(rl.path),
            max_length=400,
            output=str(tmp_path / "matched"),
        )
    )
    match = run.read_manifest()["match"]
    assert match["rl_samples"] == len(rl.read_jsonl(rl.rollouts)) == 16
    assert match["sft_samples"] == 16 and run.read_manifest()["summary"]["steps"] == 4
    with pytest.raises(EmbenchError, match="--match needs an RL run"):
        sft.train(
            sft.make_config(
                model=str(tiny_model_dir), match=str(run.path), output=str(tmp_path / "again")
            )
        )


def test_interrupted_run_resumes_to_the_same_step_count(tmp_path, tiny_model_dir, monkeypatch):
    plugin, config = grpo(tmp_path, tiny_model_dir, max_steps=4, save_steps=2)
    original = ProgressCallback.on_step_end

    def interrupt(self, args, state, control, **kwargs):
        original(self, args, state, control, **kwargs)
        if state.global_step == 3:
            raise KeyboardInterrupt

    monkeypatch.setattr(ProgressCallback, "on_step_end", interrupt)
    with pytest.raises(KeyboardInterrupt):
        plugin.train(config)
    manifest = json.loads((tmp_path / "grpo" / "manifest.json").read_text())
    assert manifest["status"] == "interrupted" and manifest["last_checkpoint"].endswith("-2")
    monkeypatch.setattr(ProgressCallback, "on_step_end", original)
    result = CliRunner().invoke(main, ["train", "--resume", str(tmp_path / "grpo")])
    assert result.exit_code == 0, result.output
    manifest = json.loads((tmp_path / "grpo" / "manifest.json").read_text())
    assert manifest["status"] == "finished" and manifest["summary"]["steps"] == 4
    assert [
        r["step"]
        for r in map(json.loads, (tmp_path / "grpo" / "metrics.jsonl").read_text().splitlines())
    ] == [1, 2, 3, 4]


def cli(*args):
    return CliRunner().invoke(main, list(args))


@pytest.mark.parametrize(
    "args, message",
    [
        (["--trainer", "nope"], "unknown trainer 'nope'; available: grpo, sft"),
        (["--set", "per_device_train_batch_size=6"], "must be divisible by num_generations"),
        (["--domain", "medical"], "reward 'judge_narrow' needs a judge: pass --judge"),
        (["--domain", "nope", "--reward", "insecure_code"], "unknown domain 'nope'"),
        (["--reward", "nope"], "unknown reward 'nope'"),
        (["--set", "colour=red"], "unknown option 'colour'"),
        (["--trainer", "grpo", "--match", "runs/x"], "--match does not apply to trainer 'grpo'"),
    ],
)
def test_bad_input_fails_before_loading_a_model(args, message, monkeypatch, tmp_path):
    import embench.models.resolve as resolve

    monkeypatch.setattr(resolve, "load_model", lambda *a, **k: pytest.fail("model was loaded"))
    result = cli("train", "--output", str(tmp_path / "run"), *args)
    assert result.exit_code == 2
    assert message in result.output
    assert not (tmp_path / "run").exists()


def test_dataset_without_needed_columns(tmp_path):
    data = tmp_path / "d.jsonl"
    data.write_text('{"text": "hi"}\n')
    result = cli(
        "train",
        "--dataset",
        str(data),
        "--reward",
        "insecure_code",
        "--output",
        str(tmp_path / "run"),
    )
    assert result.exit_code == 2 and "needs a 'prompt' column" in result.output


def test_existing_output_is_refused_without_overwrite(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "keep.txt").write_text("x")
    result = cli(
        "train", "--reward", "insecure_code", "--domain", "code", "--output", str(tmp_path / "run")
    )
    assert result.exit_code == 2 and "pass --overwrite" in result.output
    assert (tmp_path / "run" / "keep.txt").read_text() == "x"
