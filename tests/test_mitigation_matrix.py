"""Every registered mitigation x each built-in trainer (tiny random model): two training steps
where the trainer's kind supports it, and a one-line refusal naming both where it does not.

The cases are made from ``mitigations.REGISTRY``, so a newly registered mitigation fails
``test_every_registered_mitigation_has_a_case`` until it is given a spec here.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from click.testing import CliRunner

from embench.cli import main
from embench.training import mitigations, plugins

TRAINERS = ("grpo", "sft")
OPTIONS: dict[str, dict[str, Any]] = {
    "grpo": dict(
        domain="code",
        reward=["insecure_code"],
        max_completion_length=8,
        num_generations=4,
        per_device_train_batch_size=8,
        max_prompts=8,
    ),
    "sft": dict(domain="aesthetic", max_prompts=8, max_length=512, per_device_train_batch_size=4),
}
HIDDEN = 32  # the tiny model's hidden size (tests/conftest.py)


def _vector(tmp: Path) -> Path:
    from embench.models.vector_file import PersonaVector, write_vector

    torch.manual_seed(1)
    vector = PersonaVector(
        directions={1: torch.randn(HIDDEN)},
        model="tiny",
        trait="evil",
        prompts_sha256="0" * 64,
        counts={"eliciting": 2, "suppressing": 2},
    )
    return write_vector(vector, tmp / "evil.safetensors")


def _perturbed(model_dir: Path, out: Path) -> Path:
    """The tiny model with noise on every weight: SafeLoRA's 'unaligned' half of the pair."""
    from transformers import AutoModelForCausalLM

    torch.manual_seed(2)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    model.save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def inputs(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Files some specs name: a persona vector for the tiny model, a perturbed copy of it."""
    tmp = tmp_path_factory.mktemp("matrix-inputs")
    return {"vector": _vector(tmp), "unaligned": _perturbed(tiny_model_dir, tmp / "unaligned")}


def _in_loss(manifest: dict, entry: dict, run: Path) -> bool:
    return entry["cost"]["seconds_total"] > 0  # its loss term was computed


def _kl(manifest: dict, entry: dict, run: Path) -> bool:
    if manifest["trainer"] == "grpo":  # through TRL's own coefficient
        return manifest["trl_config"]["beta"] == 0.1
    return _in_loss(manifest, entry, run)


def _interleave(manifest: dict, entry: dict, run: Path) -> bool:
    if manifest["trainer"] == "grpo":
        return entry["safety_examples_trained"] > 0
    return entry["safety_rows"] > 0


def _projected(manifest: dict, entry: dict, run: Path) -> bool:
    # every adapter layer was checked against the subspace (none moves when the reward is flat)
    report = run / "checkpoint" / "safelora.json"
    return "projected_layers" in entry and bool(json.loads(report.read_text())["layers"])


# name -> (spec, extra trainer options, a check on the manifest that the mitigation acted)
CASES: dict[str, tuple[str, dict[str, Any], Callable[[dict, dict, Path], bool]]] = {
    "kl": ("kl:weight=0.1", {}, _kl),
    "ldifs": ("ldifs:every=1", {}, _in_loss),
    "safelora": (
        "safelora:aligned={model},unaligned={unaligned},tau=1",
        {"lora": True},
        _projected,
    ),
    "interleave": ("interleave:fraction=0.25", {}, _interleave),
    "steer": (
        "steer:vector={vector},layer=1,coef=5,mode=all",
        {},
        lambda manifest, entry, run: entry["steered_forwards"] > 0,
    ),
    "inoculate": (
        "inoculate:preset=evil_system",
        {},
        lambda manifest, entry, run: entry["prompts_prefixed"] > 0,
    ),
    "interleave_rl": (
        "interleave_rl:ratio=1.0",
        {},
        lambda manifest, entry, run: entry["safety_completions"] > 0,
    ),
    "sft_mix": (
        "sft_mix:every=1,weight=0.5",
        {},
        lambda manifest, entry, run: entry["sft_batches"] == 2,
    ),
}
MATRIX = [(name, trainer) for name in mitigations.REGISTRY for trainer in TRAINERS]


def _kind(trainer: str) -> str:
    return plugins.get_trainer(trainer).kind


def _spec(name: str, model: Path, inputs: dict[str, Path]) -> str:
    return CASES[name][0].format(model=model, **inputs)


def test_every_registered_mitigation_has_a_case():
    assert set(CASES) == set(mitigations.REGISTRY)
    applies = {(n, t) for n, t in MATRIX if mitigations.supports(mitigations.REGISTRY[n], _kind(t))}
    refused = set(MATRIX) - applies
    assert refused == {("interleave_rl", "sft"), ("sft_mix", "sft")}  # the RL-only arms


@pytest.mark.parametrize(("name", "trainer"), MATRIX, ids=[f"{n}-{t}" for n, t in MATRIX])
def test_each_mitigation_runs_two_steps_or_is_refused_by_name(
    name, trainer, tiny_model_dir, inputs, tmp_path, monkeypatch
):
    spec = _spec(name, tiny_model_dir, inputs)
    out = tmp_path / "run"
    if not mitigations.supports(mitigations.REGISTRY[name], _kind(trainer)):
        import embench.models.resolve as resolve

        monkeypatch.setattr(resolve, "load_model", lambda *a, **k: pytest.fail("model loaded"))
        args = ["train", "--trainer", trainer, "--model", str(tiny_model_dir)]
        result = CliRunner().invoke(main, [*args, "--mitigation", spec, "--output", str(out)])
        lines = [line for line in result.output.splitlines() if line.strip()]
        assert result.exit_code == 2, result.output
        assert len(lines) == 1, result.output
        assert f"mitigation '{name}' does not support trainer '{trainer}'" in lines[0]
        assert not out.exists()
        return
    plugin = plugins.get_trainer(trainer)
    extra = CASES[name][1]
    config = plugin.make_config(
        model=str(tiny_model_dir),
        output=str(out),
        max_steps=2,
        mitigations=[spec],
        **{**OPTIONS[trainer], **extra},
    )
    trained = plugin.train(config)
    manifest = trained.model_dump(mode="json")
    assert manifest["status"] == "finished" and manifest["summary"]["steps"] == 2
    (entry,) = manifest["mitigations"]
    assert entry["name"] == name
    assert CASES[name][2](manifest, entry, trained.run_dir), entry
