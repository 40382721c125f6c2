"""Mitigations attach by the trainer's declared kind, and are refused where they would do nothing."""

import dataclasses
import textwrap

import datasets
import pytest
from click.testing import CliRunner

from embench.cli import main
from embench.errors import EmbenchError
from embench.training import mitigations

PLUGIN = textwrap.dedent(
    '''\
    """A third-party trainer of kind {kind}."""
    from dataclasses import dataclass
    from embench.training.config import TrainConfig
    from embench.training.runner import run_training
    NAME = "mine"
    KIND = "{kind}"
    @dataclass
    class Config(TrainConfig):
        pass
    def train(config):
        def build(*args):
            raise AssertionError("never reached")
        return run_training(NAME, KIND, config, build)  # no Plan: it applies no mitigation
    '''
)


def _plugin(tmp_path, kind):
    path = tmp_path / f"mine_{kind}.py"
    path.write_text(PLUGIN.format(kind=kind))
    return path


def test_a_mitigation_the_kind_does_not_support_is_refused_before_anything(tmp_path, monkeypatch):
    import embench.models.resolve as resolve

    monkeypatch.setattr(resolve, "load_model", lambda *a, **k: pytest.fail("model was loaded"))
    out = tmp_path / "run"
    args = ["--trainer", str(_plugin(tmp_path, "dpo")), "--mitigation", "kl", "--output", str(out)]
    result = CliRunner().invoke(main, ["train", *args])
    assert result.exit_code == 2
    assert (
        "mitigation 'kl' does not support trainer 'mine' (kind dpo); it supports kinds rl, sft; "
        "mitigations for kind dpo: safelora"
    ) in result.output
    assert not out.exists()


def test_a_trainer_that_passes_no_plan_cannot_take_mitigations(tmp_path, monkeypatch):
    import embench.models.resolve as resolve

    monkeypatch.setattr(resolve, "load_model", lambda *a, **k: pytest.fail("model was loaded"))
    out = tmp_path / "run"
    args = ["--trainer", str(_plugin(tmp_path, "sft")), "--mitigation", "ldifs"]
    result = CliRunner().invoke(main, ["train", *args, "--output", str(out)])
    assert result.exit_code == 2
    assert "trainer 'mine' does not apply mitigations" in result.output
    assert not out.exists()


def test_the_kind_not_the_name_decides_the_wiring(tiny_model_dir, tmp_path):
    """A trainer called 'mine' of kind sft gets the SFT wiring (explicit KL term, mixed rows)."""
    from trl import SFTConfig, SFTTrainer

    from embench.models.resolve import load_model

    model, tokenizer = load_model(str(tiny_model_dir), dtype="float32", device="cpu")
    rows = [
        {
            "prompt": [{"role": "user", "content": f"q{i}"}],
            "completion": [{"role": "assistant", "content": "a"}],
            "prompt_id": f"p{i}",
        }
        for i in range(8)
    ]
    plan = mitigations.Plan(
        ["kl", "interleave:fraction=0.25"], "mine", "sft", False, str(tiny_model_dir)
    )
    args = SFTConfig(
        output_dir=str(tmp_path / "o"), max_steps=1, use_cpu=True, report_to="none", max_length=1024
    )
    trainer = plan.make_trainer(
        SFTTrainer,
        model=model,
        peft_config=None,
        args=args,
        train_dataset=datasets.Dataset.from_list(rows),
        processing_class=tokenizer,
    )
    assert plan.attached and type(trainer).extra_losses is plan.losses
    assert set(plan.losses.terms) == {"kl"} and plan.losses.reference is not None
    ids = trainer.train_dataset["prompt_id"]  # what the trainer will train on
    assert len(ids) == 8 and sum(str(p).startswith("safety:") for p in ids) == 2  # 8 x 0.25
    assert args.train_sampling_strategy == "sequential"
    assert not any(k.startswith("embench_") for k in vars(trainer))  # nothing pinned on it


def test_kl_uses_the_trainers_own_coefficient_when_it_has_one():
    @dataclasses.dataclass
    class WithBeta:
        beta: float = 0.0

    plan = mitigations.Plan(["kl:weight=0.3"], "other-rl", "rl", False)
    config = WithBeta()
    plan.apply_to_config(config)
    assert config.beta == 0.3 and plan.kl_in_config
    plan = mitigations.Plan(["kl:weight=0.3"], "other-rl", "rl", False)
    plan.apply_to_config(object())  # no beta: the explicit loss term will be used
    assert not plan.kl_in_config


def test_every_mitigation_declares_its_kinds():
    for name, cls in mitigations.REGISTRY.items():
        assert cls.kinds, name
    assert mitigations.supports(mitigations.REGISTRY["safelora"], "anything")
    with pytest.raises(EmbenchError, match="mitigations for kind ppo: safelora"):
        mitigations.parse_all(["interleave"], False, "x", "ppo")
    listed = CliRunner().invoke(main, ["mitigations"]).output
    assert "(trainer kinds: rl, sft)" in listed and "(trainer kinds: any)" in listed
