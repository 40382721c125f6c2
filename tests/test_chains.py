"""Chained runs: local/<run> reloads exactly the weights training ended with, for every chain."""

import pytest
import torch

from embench.errors import EmbenchError
from embench.models.resolve import load_model, resolve_model
from embench.run.rundir import RunDir
from embench.training import chain, plugins

SFT = dict(domain="aesthetic", max_steps=2, max_prompts=8, max_length=64, learning_rate=1e-2)
GRPO = dict(
    domain="aesthetic",
    max_steps=1,
    max_prompts=4,
    max_completion_length=8,
    num_generations=4,
    per_device_train_batch_size=4,
    learning_rate=1e-2,
)


def _last_logits(model, ids):
    with torch.no_grad():
        return model(input_ids=torch.tensor([ids])).logits[0, -1].float()


@pytest.mark.parametrize(
    "first, second", [(False, False), (True, True), (False, True), (True, False)]
)
def test_local_run_reproduces_the_final_logits_of_a_chain(tmp_path, tiny_model_dir, first, second):
    sft, grpo = plugins.get_trainer("sft"), plugins.get_trainer("grpo")
    warm = sft.train(
        sft.make_config(model=str(tiny_model_dir), lora=first, output=str(tmp_path / "a"), **SFT)
    )
    warm = RunDir(warm.run_dir)
    manifest = grpo.train(
        grpo.make_config(model=str(warm.path), lora=second, output=str(tmp_path / "b"), **GRPO)
    )
    run = RunDir(manifest.run_dir)
    ids, final = chain.read_probe(run.path)
    model, _ = load_model(str(run.path), dtype="float32", device="cpu")
    assert torch.allclose(_last_logits(model, ids), final, atol=1e-4, rtol=1e-4)
    assert [(s.trainer, s.run) for s in manifest.stages] == [
        ("sft", str(warm.path.resolve())),
        ("grpo", "."),
    ]
    assert [s.lora for s in manifest.stages] == [first, second]
    if first and second:  # the old resolution: base weights + the last adapter only
        resolved = resolve_model(str(run.path))
        assert resolved.adapters == (str(warm.checkpoint.resolve()), str(run.checkpoint))
        gap = _dropped_warmup_gap(tiny_model_dir, run, ids, final)
        assert gap > 1e-3, "the warm-up adapter must matter for this test to mean anything"


def _dropped_warmup_gap(base_dir, run, ids, final):
    """Largest logit gap between ``final`` and base weights + ``run``'s own adapter only."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(str(base_dir), dtype=torch.float32)
    dropped = PeftModel.from_pretrained(base, str(run.checkpoint)).merge_and_unload()
    return (_last_logits(dropped, ids) - final).abs().max().item()


@pytest.mark.parametrize(
    "warm_lora, main_lora, lora_param",
    [(True, True, ""), (False, True, ",lora=false"), (True, False, ",lora=true")],
    ids=["lora-lora-inherited", "full-lora", "lora-full"],
)
def test_first_class_warmup_records_both_stages(
    tmp_path, tiny_model_dir, warm_lora, main_lora, lora_param
):
    grpo = plugins.get_trainer("grpo")
    config = grpo.make_config(
        model=str(tiny_model_dir),
        lora=main_lora,
        output=str(tmp_path / "g"),
        warmup=f"sft:aesthetic,steps=2,examples=8,lr=0.01{lora_param}",
        **GRPO,
    )
    manifest = grpo.train(config)
    run = RunDir(manifest.run_dir)
    warm_dir = tmp_path / "g-warmup"
    warm, main = manifest.stages
    assert (warm.trainer, warm.kind, warm.steps, warm.lora) == ("sft", "sft", 2, warm_lora)
    assert warm.run == str(warm_dir.resolve()) == manifest.start_model
    assert manifest.base_model == str(tiny_model_dir)
    assert (main.trainer, main.kind, main.run, main.lora, main.steps) == (
        "grpo",
        "rl",
        ".",
        main_lora,
        1,
    )
    # how to rebuild the result, by chain kind (RunManifest.weights / adapter_chain)
    expected = {
        (True, True): (str(tiny_model_dir), [str(warm_dir / "checkpoint"), "checkpoint"]),
        (False, True): (str(warm_dir / "checkpoint"), ["checkpoint"]),
        (True, False): ("checkpoint", []),
    }[(warm_lora, main_lora)]
    assert (manifest.weights, manifest.adapter_chain) == expected
    warm_manifest = RunDir.open(warm_dir).manifest()
    assert warm_manifest.lora is warm_lora
    assert warm_manifest.config["learning_rate"] == 0.01
    assert warm_manifest.config["max_prompts"] == 8
    ids, final = chain.read_probe(run.path)
    model, _ = load_model(str(run.path), dtype="float32", device="cpu")
    assert torch.allclose(_last_logits(model, ids), final, atol=1e-4, rtol=1e-4)
    if main_lora:  # the warm-up's weights must matter for the comparison to mean anything
        assert _dropped_warmup_gap(tiny_model_dir, run, ids, final) > 1e-3


@pytest.mark.parametrize(
    "spec, message",
    [
        ("dpo:aesthetic", "expected sft:<domain or data file>"),
        ("sft:", "expected sft:"),
        ("sft:aesthetic,epochs=2", "bad parameter 'epochs=2'"),
        ("sft:aesthetic,steps=0", "steps expects a positive whole number, got '0'"),
        ("sft:aesthetic,lr=abc", "lr expects a positive number, got 'abc'"),
        ("sft:aesthetic,lora=maybe", "lora expects true or false, got 'maybe'"),
    ],
)
def test_bad_warmup_specs(spec, message):
    with pytest.raises(EmbenchError, match=message):
        chain.parse_warmup(spec)


def test_warmup_spec_parameters():
    assert chain.parse_warmup("sft: data.jsonl , steps=3, lr=2e-4, lora=False") == chain.Warmup(
        "sft", "data.jsonl", steps=3, examples=100, lr=2e-4, lora=False
    )
    assert chain.parse_warmup("sft:aesthetic").lora is None  # inherits the main run's setting


@pytest.mark.parametrize(
    "option, message",
    [
        (dict(mitigations=["safelora:aligned=a,unaligned=b"]), "safelora projects a LoRA adapter"),
        (dict(mitigations=["nope"]), "unknown mitigation 'nope'"),
        (dict(reward=["no_such_reward"]), "no_such_reward"),
        (dict(domain="no_such_domain"), "no_such_domain"),
        (
            dict(trl={"generation_batch_size": 6}),
            r"GRPOConfig refused .*generation_batch_size \(6\) must be divisible",
        ),
    ],
    ids=["mitigation-kind", "unknown-mitigation", "reward", "domain", "trl-value"],
)
def test_bad_main_run_option_fails_before_the_warmup_trains(
    tmp_path, tiny_model_dir, option, message
):
    grpo = plugins.get_trainer("grpo")
    config = grpo.make_config(
        **{
            **GRPO,
            "model": str(tiny_model_dir),
            "lora": False,
            "output": str(tmp_path / "g"),
            "warmup": "sft:aesthetic,steps=1,examples=4",
            **option,
        }
    )
    with pytest.raises(EmbenchError, match=message) as info:
        grpo.train(config)
    assert "\n" not in str(info.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no <output>-warmup, no <output>
