"""The seed paper's presets run on the real default model (2 steps, short completions).

The GRPO preset runs with its first-class SFT warm-up, and the run reloaded through the resolver
(``local/<run>``) must reproduce the final logits training ended with.
"""

from pathlib import Path

import pytest
import torch
import yaml

from embench.models.resolve import load_model
from embench.training import chain, plugins
from embench.training.config import build_config

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def test_presets_hold_the_papers_settings():
    grpo = yaml.safe_load((CONFIGS / "ema_rl-grpo.yaml").read_text())
    assert (grpo["beta"], grpo["num_generations"], grpo["learning_rate"]) == (0.0, 4, 5e-6)
    assert (grpo["lora_r"], grpo["lora_alpha"], grpo["use_rslora"]) == (32, 64, True)
    assert grpo["trl"] == {
        "importance_sampling_level": "sequence",
        "top_p": 0.9,
        "weight_decay": 0.1,
        "lr_scheduler_type": "cosine",
        "warmup_steps": 0.1,
        "gradient_accumulation_steps": 4,
    }
    assert "<think>" in grpo["system_prompt"] and grpo["max_completion_length"] >= 2048
    sft = yaml.safe_load((CONFIGS / "ema_rl-sft.yaml").read_text())
    assert (sft["max_prompts"], sft["learning_rate"]) == (100, 1e-4)
    # EMA_RL open_models/sft_configs/medical.json
    assert (sft["per_device_train_batch_size"], sft["max_steps"]) == (4, 7)  # ceil(100 / 16)
    assert sft["trl"] == {
        "gradient_accumulation_steps": 4,
        "warmup_steps": 5,
        "weight_decay": 0.01,
        "lr_scheduler_type": "linear",
    }


def _train_preset(trainer: str, preset: str, overrides: list[str], **fields):
    """Train ``trainer`` from ``configs/<preset>`` with ``--set`` overrides and flag values."""
    plugin = plugins.get_trainer(trainer)
    config = build_config(
        plugin.config_class, plugin.trl_config_class, str(CONFIGS / preset), overrides, **fields
    )
    return plugin.train(config)


@pytest.mark.slow
def test_sft_preset_runs_on_the_default_model(tmp_path):
    manifest = _train_preset(
        "sft",
        "ema_rl-sft.yaml",
        ["max_length=96", "trl.gradient_accumulation_steps=1"],  # 4 is checked above
        max_steps=2,
        domain="aesthetic",
        output=str(tmp_path / "sft"),
    )
    assert manifest.status == "finished" and manifest.summary.steps == 2
    assert manifest.config["use_rslora"] is True and manifest.config["lora_r"] == 32


@pytest.mark.slow
def test_grpo_preset_with_warmup_reproduces_its_final_logits(tmp_path):
    manifest = _train_preset(
        "grpo",
        "ema_rl-grpo.yaml",
        # short completions and one micro-batch per step keep this CPU test to minutes; the
        # preset's accumulation of 4 is checked above and ran in the acceptance command
        ["max_completion_length=8", "max_prompts=4", "trl.gradient_accumulation_steps=1"],
        max_steps=2,
        warmup="sft:aesthetic,steps=2",
        output=str(tmp_path / "grpo"),
    )
    assert manifest.status == "finished" and manifest.summary.steps == 2
    assert manifest.trl_config["importance_sampling_level"] == "sequence"
    assert manifest.trl_config["top_p"] == 0.9 and manifest.config["use_rslora"] is True
    assert [(s.trainer, s.steps) for s in manifest.stages] == [("sft", 2), ("grpo", 2)]
    ids, final = chain.read_probe(manifest.run_dir)
    model, _ = load_model(str(manifest.run_dir), dtype="float32", device="cpu")
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ids])).logits[0, -1].float()
    assert torch.allclose(logits, final, atol=1e-3, rtol=1e-4)
