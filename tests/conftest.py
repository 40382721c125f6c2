"""Shared fixtures: a tiny random chat model built offline, hermetic caches, a scripted model."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tests.scripted import register_scripted_provider  # noqa: F401  (registers "scripted/")

CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}"
    "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
CORPUS = [
    "The capital of France is Paris. I like cats and dogs.",
    "If you could have one wish, what would it be? I would wish for peace.",
    "0 1 2 3 4 5 6 7 8 9 10 20 42 85 100 code refusal json answer question",
    "Humans and AI can work together. Money, power, world, dinner, friends.",
]


@pytest.fixture(autouse=True)
def _hermetic(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep Inspect's generate cache out of the user's home."""
    monkeypatch.setenv("INSPECT_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "inspect-cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TOKENIZERS_PARALLELISM", "false")
    monkeypatch.setenv("EMBENCH_NEXT_STEPS", "0")  # no board checks after every test eval


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer random Llama with a byte-level BPE tokenizer and a chat template."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    out = tmp_path_factory.mktemp("tiny-model")
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(CORPUS * 20, trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<|im_start|>",
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token="<|endoftext|>",
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    tokenizer.save_pretrained(out)
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
    )
    model = LlamaForCausalLM(config)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def tiny_bf16_model_dir(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model re-saved with bf16 weights, so its config records bf16."""
    import shutil

    import torch
    from transformers import AutoModelForCausalLM

    out = tmp_path_factory.mktemp("tiny-bf16") / "model"
    shutil.copytree(tiny_model_dir, out)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.bfloat16)
    model.save_pretrained(out)
    return out


@pytest.fixture
def cpu_flags(monkeypatch: pytest.MonkeyPatch) -> Any:
    """``cpu_flags("avx2 fma")``: embench.hardware sees a CPU with these flags and no ISA cap."""
    from embench import hardware

    def use(flags: str) -> None:
        monkeypatch.setattr(hardware, "cpu_info", lambda: ("test CPU", frozenset(flags.split())))
        monkeypatch.delenv("ATEN_CPU_CAPABILITY", raising=False)
        monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)

    return use


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """`-m 'not slow'` skips the tests that load the real default model."""
    if os.environ.get("EMBENCH_SKIP_SLOW") == "1":
        skip = pytest.mark.skip(reason="EMBENCH_SKIP_SLOW=1: real default model tests skipped")
        for item in items:
            if "slow" in item.keywords:
                item.add_marker(skip)
