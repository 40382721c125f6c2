"""Config parsing: every value from YAML, ``--set`` and flags is checked against its declared type
(the trainer's Config and the TRL config class), and one place sets each value."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from click.testing import CliRunner

from embench.cli import main
from embench.errors import EmbenchError
from embench.training.config import (
    build_config,
    config_from_values,
    config_to_dict,
    describe,
)
from embench.training.plugins import get_trainer


@pytest.fixture(scope="module")
def grpo():
    return get_trainer("grpo")


@pytest.fixture(scope="module")
def sft():
    return get_trainer("sft")


def build(plugin, overrides=(), config_file=None, **flags):
    return build_config(
        plugin.config_class, plugin.trl_config_class, config_file, list(overrides), **flags
    )


def error_of(plugin, overrides=(), config_file=None, **flags) -> str:
    with pytest.raises(EmbenchError) as info:
        build(plugin, overrides, config_file, **flags)
    message = str(info.value)
    assert "\n" not in message
    return message


def write_yaml(tmp_path: Path, text: str) -> str:
    path = tmp_path / "run.yaml"
    path.write_text(text)
    return str(path)


# --- values become the declared types --------------------------------------------------------


def test_reward_weights_from_set_are_floats(grpo):
    config = build(grpo, ["reward_weights=1,0.5"])
    assert config.reward_weights == [1.0, 0.5]
    assert all(type(w) is float for w in config.reward_weights)


def test_set_values_take_their_field_types(grpo):
    config = build(
        grpo,
        [
            "max_steps=3",
            "learning_rate=1e-5",
            "lora=yes",
            "max_prompts=none",
            "reward=a,b",
            "trl.warmup_steps=2",
            "gradient_accumulation_steps=4",  # a TRL field without the trl. prefix
            "trl.report_to=none",  # TRL's "none" is a string, not None
            "trl.model_init_kwargs={attn_implementation: eager}",
        ],
    )
    assert (config.max_steps, config.learning_rate, config.lora) == (3, 1e-5, True)
    assert config.max_prompts is None
    assert config.reward == ["a", "b"]
    assert config.trl == {
        "warmup_steps": 2.0,
        "gradient_accumulation_steps": 4,
        "report_to": "none",
        "model_init_kwargs": {"attn_implementation": "eager"},
    }
    assert type(config.trl["warmup_steps"]) is float  # GRPOConfig.warmup_steps is a float


def test_yaml_values_and_yaml_strings(grpo, tmp_path):
    # PyYAML reads 1e-5 (no dot) as a string: it is still a number for a float field
    path = write_yaml(
        tmp_path, "max_steps: 7\nlearning_rate: 1e-5\nreward_weights: [2, 1]\ntrl:\n  beta: 0.0\n"
    )
    with pytest.raises(EmbenchError, match="'beta' is a trainer option"):
        build(grpo, config_file=path)
    path = write_yaml(tmp_path, "max_steps: 7\nlearning_rate: 1e-5\nreward_weights: [2, 1]\n")
    config = build(grpo, config_file=path)
    assert (config.max_steps, config.learning_rate, config.reward_weights) == (7, 1e-5, [2.0, 1.0])


# --- bad values: one line naming the key and the type -----------------------------------------


@pytest.mark.parametrize("value", ["2.7", "[1, 2]", "abc", "true"])
def test_yaml_max_steps_must_be_an_integer(grpo, tmp_path, value):
    message = error_of(grpo, config_file=write_yaml(tmp_path, f"max_steps: {value}\n"))
    assert "'max_steps' expects an integer >= 1" in message
    assert "run.yaml" in message


def test_trl_field_is_checked_against_the_trl_config_type(grpo):
    message = error_of(grpo, ["trl.warmup_steps=abc"])
    assert message.startswith("--set trl.warmup_steps=abc: 'trl.warmup_steps' expects a number")
    message = error_of(grpo, ["trl.use_vllm=maybe"])
    assert "'trl.use_vllm' expects true or false" in message
    assert "not a field of GRPOConfig" in error_of(grpo, ["trl.no_such_field=1"])


def test_ranges_are_checked(grpo):
    assert "'max_steps' expects an integer >= 1, got 0" in error_of(grpo, max_steps=0)
    assert "'learning_rate' expects a number > 0" in error_of(grpo, ["learning_rate=0"])
    assert "'lora_dropout' expects a number >= 0 < 1" in error_of(grpo, ["lora_dropout=1"])


def test_other_bad_inputs(grpo, tmp_path):
    assert "expected key=value" in error_of(grpo, ["max_steps"])
    assert "unknown option 'nope'" in error_of(grpo, ["nope=1"])
    assert "'reward_weights' expects a comma-separated list of numbers" in error_of(
        grpo, ["reward_weights=1,x"]
    )
    assert "'trl' must be a mapping" in error_of(
        grpo, config_file=write_yaml(tmp_path, "trl: [1]\n")
    )
    assert "a config file is a mapping" in error_of(grpo, config_file=write_yaml(tmp_path, "- 1\n"))
    assert "run.yaml: not valid YAML" in error_of(grpo, config_file=write_yaml(tmp_path, "a: [\n"))


# --- one place sets each value ----------------------------------------------------------------


def test_trainer_option_is_not_also_a_trl_field(grpo):
    message = error_of(grpo, ["trl.beta=0.1"])
    assert "'beta' is a trainer option; set it once with --set beta=" in message
    assert "use --output" in error_of(grpo, ["trl.output_dir=/tmp/x"])


def test_kl_mitigation_and_beta_together_is_an_error(grpo):
    message = error_of(grpo, ["beta=0.1"], mitigations=["kl:weight=0.2"])
    assert "--mitigation kl:weight=0.2" in message and "--set beta=0.1" in message
    # either one alone is fine
    assert build(grpo, ["beta=0.1"]).beta == 0.1
    assert build(grpo, mitigations=["kl:weight=0.2"]).mitigations == ["kl:weight=0.2"]


def test_sft_has_no_beta(sft):
    assert "unknown option 'beta'" in error_of(sft, ["beta=0.1"])


def test_duplicates_on_the_command_line_name_both(grpo):
    message = error_of(grpo, ["max_steps=2"], max_steps=3)
    assert "'max_steps' is set twice: --set max_steps=2 and --max-steps" in message
    message = error_of(grpo, ["warmup_steps=2", "trl.warmup_steps=3"])
    assert "'trl.warmup_steps' is set twice" in message


def test_command_line_overrides_the_config_file(grpo, tmp_path):
    path = write_yaml(tmp_path, "max_steps: 7\nseed: 3\n")
    config = build(grpo, ["max_steps=2"], config_file=path)
    assert (config.max_steps, config.seed) == (2, 3)
    assert build(grpo, config_file=path, max_steps=5).max_steps == 5


def test_stored_config_round_trips(grpo):
    config = build(grpo, ["reward_weights=1,0.5", "trl.warmup_steps=2"], lora=True)
    again = config_from_values(
        grpo.config_class, grpo.trl_config_class, config_to_dict(config), "manifest.json"
    )
    assert again == config
    # a resolved config may hold both a kl mitigation and the beta it set
    resolved = dataclasses.replace(config, beta=0.2, mitigations=["kl:weight=0.2"])
    stored = config_to_dict(resolved)
    assert config_from_values(grpo.config_class, grpo.trl_config_class, stored, "m").beta == 0.2


def test_describe():
    from typing import Annotated

    from annotated_types import Ge

    assert describe(int) == "an integer"
    assert describe(list[float] | None) == "a comma-separated list of numbers or none"
    assert describe(Annotated[int, Ge(1)] | None) == "an integer >= 1 or none"


# --- through the command line -------------------------------------------------------------------


def test_cli_bad_value_is_one_line_and_writes_nothing(tmp_path):
    out = tmp_path / "run"
    result = CliRunner().invoke(
        main, ["train", "--trainer", "grpo", "--max-steps", "0", "--output", str(out)]
    )
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        "error: --max-steps: 'max_steps' expects an integer >= 1, got 0 "
        "(Input should be greater than or equal to 1)"
    ]
    assert not out.exists()


def test_trl_config_named_by_string_is_imported_only_for_trl_fields(tmp_path):
    # a trainer may name its TRL config "module:Class": trainer-option errors then need no TRL
    # (with an empty embench cache: once TRL's fields are cached, TRL fields need no import either,
    # see test_cli.py)
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from embench.errors import EmbenchError\n"
        "from embench.training.config import TrainConfig, build_config\n"
        "try:\n"
        "    build_config(TrainConfig, 'trl:GRPOConfig', None, ['max_steps=2.7'])\n"
        "except EmbenchError as ex:\n"
        "    print(ex)\n"
        "print('trl' in sys.modules)\n"
        "config = build_config(TrainConfig, 'trl:GRPOConfig', None, ['warmup_steps=2'])\n"
        "print(config.trl, 'trl' in sys.modules)\n"
    )
    src = str(Path(__file__).resolve().parents[1] / "src")
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=300,
        env={
            "PYTHONPATH": src,
            "PATH": "/usr/bin:/bin",
            "HF_HUB_OFFLINE": "1",
            "EMBENCH_CACHE": str(tmp_path),
        },
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [
        "--set max_steps=2.7: 'max_steps' expects an integer >= 1, got '2.7' "
        "(Input should be a valid integer, unable to parse string as an integer)",
        "False",
        "{'warmup_steps': 2.0} True",
    ]


def test_mitigation_parameters_go_through_the_same_parser():
    from embench.training import mitigations

    with pytest.raises(EmbenchError) as info:
        mitigations.parse("kl:weight=abc")
    assert str(info.value).startswith("kl: 'weight' expects a number, got 'abc'")
    with pytest.raises(EmbenchError, match="'pool' expects an integer, got '2.5'"):
        mitigations.parse("interleave:pool=2.5")
    spec = mitigations.parse("interleave:fraction=0.1,model=none,pool=3")
    assert (spec.fraction, spec.model, spec.pool) == (0.1, None, 3)


# --- the config file names its trainer; mistyped names get a suggestion -------------------------


def test_a_config_file_may_name_its_trainer_and_the_command_line_wins(tmp_path):
    config = write_yaml(tmp_path, "trainer: sft\nmax_length: 64\nmax_steps: 3\n")
    out = tmp_path / "run"
    result = CliRunner().invoke(main, ["train", "--config", config, "--output", str(out),
                                       "--dry-run"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "# ok: trainer sft" in result.output and "max_length: 64" in result.output
    result = CliRunner().invoke(
        main, ["train", "--trainer", "grpo", "--config", config, "--output", str(out), "--dry-run"]
    )
    assert result.exit_code == 2  # grpo has no max_length: the command line chose grpo
    assert "unknown option 'max_length'" in result.output


def test_a_mistyped_option_suggests_the_nearest_name(grpo, tmp_path):
    assert "unknown option 'max_step' (did you mean 'max_steps'?)" in error_of(grpo, ["max_step=3"])
    assert "(did you mean 'learning_rate'?)" in error_of(
        grpo, config_file=write_yaml(tmp_path, "learning_rte: 0.1\n")
    )
    assert "(did you mean 'trl.weight_decay'?)" in error_of(grpo, ["trl.weight_decy=0.1"])
    assert "did you mean" not in error_of(grpo, ["colour=red"])  # nothing close: no guess
