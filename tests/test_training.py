"""Trainer plugins on a tiny random model: discovery, GRPO/SFT run dirs, matching, errors."""

import json
import re
import textwrap
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner

from embench.cli import main
from embench.errors import EmbenchError
from embench.run.manifest import SCHEMA_PATH
from embench.run.rundir import RunDir
from embench.training import plugins


def assert_valid_manifest(run_dir: Path) -> dict:
    """The manifest.json on disk validates against the committed JSON schema (not pydantic)."""
    data = json.loads((Path(run_dir) / "manifest.json").read_text())
    jsonschema.validate(data, json.loads(SCHEMA_PATH.read_text()))
    return data


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
    KIND = "rl"
    @dataclass
    class Config(TrainConfig):
        pass
    def train(config):
        from embench.run.manifest import RunManifest
        from embench.run.rundir import RunDir
        run = RunDir.create(config.output, config.overwrite)
        manifest = RunManifest(
            trainer=NAME, kind=KIND, status="finished", base_model=config.model,
            weights=config.model, summary={},
        )
        return manifest.save(run.path)
    '''
)


def test_discovers_builtins_and_a_file_outside_the_repo(tmp_path):
    found = plugins.discover()
    assert {"grpo", "sft"} <= set(found)
    assert found["grpo"].description.startswith("GRPO")
    third = tmp_path / "elsewhere" / "my_trainer.py"
    third.parent.mkdir()
    third.write_text(THIRD_PARTY)
    assert plugins.get_trainer(str(third), allow_file=True).name == "mine"
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
    with pytest.raises(EmbenchError, match="lacks NAME, KIND, Config, train"):
        plugins.get_trainer(str(bad), allow_file=True)
    bad.write_text(THIRD_PARTY.replace('KIND = "rl"', 'KIND = "Reinforcement"'))
    with pytest.raises(EmbenchError, match="KIND must be a lower-case word"):
        plugins.get_trainer(str(bad), allow_file=True)


def test_a_trainer_that_returns_no_manifest_is_refused(tmp_path):
    bad = tmp_path / "old_style.py"
    bad.write_text(THIRD_PARTY.replace("return manifest.save(run.path)", "return run"))
    plugin = plugins.get_trainer(str(bad), allow_file=True)
    with pytest.raises(EmbenchError, match="returned RunDir; train\\(\\) must return"):
        plugin.run(plugin.make_config(output=str(tmp_path / "out")))


def test_builtin_trainers_declare_their_kind_and_ship_in_the_package():
    found = plugins.discover()
    builtin = {n for n, p in found.items() if p.source.startswith("embench.trainers.")}
    assert builtin == {"grpo", "sft"}  # each one's run is validated against the schema below
    assert (found["grpo"].kind, found["sft"].kind) == ("rl", "sft")
    assert found["grpo"].source == "embench.trainers.grpo"
    # the user-facing file runs the same code
    thin = plugins.get_trainer(
        str(Path(__file__).parents[1] / "trainers" / "grpo.py"), allow_file=True
    )
    assert thin.train is found["grpo"].train and thin.kind == "rl"


def test_grpo_two_steps_writes_complete_run_dir(tmp_path, tiny_model_dir, capsys):
    plugin, config = grpo(tmp_path, tiny_model_dir)
    result = plugin.train(config)
    # stdout is not a terminal here (as under SLURM or nohup): one plain line per step, no bar
    lines = capsys.readouterr().out.splitlines()
    steps = [line for line in lines if line.startswith("step ")]
    assert len(steps) == 2 and not any("━" in line for line in lines)
    for number, line in enumerate(steps, 1):
        assert re.fullmatch(
            rf"step {number}/2  reward -?[\d.e-]+  loss -?[\d.e-]+  [\d.]+ s/step  ETA \d+s", line
        ), line
    assert steps[-1].endswith("ETA 0s")
    run = RunDir(result.run_dir)
    manifest = assert_valid_manifest(run.path)
    assert manifest["manifest_version"] == 1
    assert manifest["status"] == "finished" and manifest["kind"] == "rl"
    assert manifest["summary"]["steps"] == 2 and result.summary.steps == 2
    for key in ("config", "base_model", "dataset_hash", "git_commit", "versions"):
        assert manifest[key]
    assert manifest["reward"] == ["insecure_code"] and manifest["seed"] == 0
    assert manifest["trl_config"]["num_generations"] == 4
    # 2 steps x 8 completions (per-device batch 8, no accumulation, one process)
    assert manifest["global_batch"] == 8 and manifest["world_size"] == 1
    assert manifest["samples"] == {"generated": 16, "consumed": 16}
    assert manifest["dataset_size"] == 8
    assert manifest["base_model"] == str(tiny_model_dir)
    assert (manifest["weights"], manifest["adapter_chain"]) == ("checkpoint", [])
    assert manifest["stages"] == [
        {"trainer": "grpo", "kind": "rl", "run": ".", "lora": False, "steps": 2}
    ]
    assert manifest["error"] is None and manifest["last_checkpoint"] is None
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
    run = RunDir(plugin.train(config).run_dir)
    manifest = assert_valid_manifest(run.path)
    assert manifest["status"] == "finished" and manifest["kind"] == "sft"
    assert manifest["samples"] == {"generated": None, "consumed": 2 * 4}  # 2 steps x batch 4
    if lora:
        assert manifest["weights"] == str(tiny_model_dir)
        assert manifest["adapter_chain"] == ["checkpoint"]
    else:
        assert (manifest["weights"], manifest["adapter_chain"]) == ("checkpoint", [])
    expected = "adapter_config.json" if lora else "config.json"
    assert (run.checkpoint / expected).exists()
    from embench.models.resolve import resolve_model

    assert (resolve_model(str(run.path)).adapter is not None) == lora


def test_sample_matched_sft(tmp_path, tiny_model_dir):
    plugin, config = grpo(tmp_path, tiny_model_dir)
    rl = RunDir(plugin.train(config).run_dir)
    sft = plugins.get_trainer("sft")
    matched = sft.train(
        sft.make_config(
            model=str(tiny_model_dir),
            match=str(rl.path),
            max_length=400,
            output=str(tmp_path / "matched"),
        )
    )
    match = matched.match
    assert match["rl_samples"] == len(rl.read_jsonl(rl.rollouts)) == 16
    assert match["sft_samples"] == 16 and matched.summary.steps == 4
    assert_valid_manifest(matched.run_dir)
    with pytest.raises(EmbenchError, match="--match needs an RL run"):
        sft.train(
            sft.make_config(
                model=str(tiny_model_dir),
                match=str(matched.run_dir),
                output=str(tmp_path / "again"),
            )
        )


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


def _symlinked_output(tmp_path):
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "run").symlink_to(tmp_path / "elsewhere")
    return []


@pytest.mark.parametrize(
    "args, message",
    [
        (["--dataset", "no/such.jsonl"], "no/such.jsonl"),
        (["--warmup", "sft:aesthetic,steps=many"], "steps"),
        (["--warmup", "dpo:aesthetic"], "sft:"),
        ("symlink", "is a symbolic link"),
    ],
)
def test_dry_run_fails_where_the_run_would(args, message, tmp_path):
    """Everything that needs no weights is resolved by --dry-run, so it fails as the run would."""
    if args == "symlink":
        args = _symlinked_output(tmp_path)
    result = cli("train", "--output", str(tmp_path / "run"), *args, "--dry-run")
    assert result.exit_code == 2, result.output
    (line,) = result.output.strip().splitlines()
    assert line.startswith("error: ") and message in line


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


@pytest.mark.slow
def test_the_main_job_trains_on_whole_answers(tmp_path):
    """`make run`'s defaults on the real default model: most answers end before
    max_completion_length (TRL's completions/clipped_ratio), so rewards score whole answers, not
    fragments (the old 24-token cap clipped every answer). Two steps of 16 answers each."""
    plugin = plugins.get_trainer("grpo")
    config = plugin.make_config(max_steps=2, save_steps=10, output=str(tmp_path / "main"))
    plugin.train(config)
    rows = RunDir(tmp_path / "main").read_jsonl(RunDir(tmp_path / "main").metrics)
    clipped = [r["completions/clipped_ratio"] for r in rows]
    assert len(clipped) == 2 and sum(clipped) / 2 <= 0.5, clipped
