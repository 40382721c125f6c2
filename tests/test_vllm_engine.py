"""``local/<ref> -M engine=vllm``: its errors, and what it asks of vLLM (a recording fake).

vLLM needs a CUDA GPU and is not installed here, so the calls are checked against a small fake
``vllm`` module that records them; the expected values are written out by hand.
"""

from __future__ import annotations

import asyncio
import copy
import json
import sys
import types
from dataclasses import dataclass, field

import pytest
import torch
from inspect_ai.model import ChatMessageUser, ContentReasoning, GenerateConfig, get_model

from embench.models import vllm_engine
from embench.run.manifest import RunManifest


@dataclass(frozen=True)
class LoRARequest:
    lora_name: str
    lora_int_id: int
    lora_path: str


@dataclass
class Logprob:
    logprob: float
    rank: int


@dataclass
class Completion:
    text: str
    token_ids: list[int]
    logprobs: list[dict[int, Logprob]] | None
    finish_reason: str


@dataclass
class Recorder:
    """What the fake vllm was asked, and what it answers."""

    llm: list[dict] = field(default_factory=list)
    generate: list[tuple] = field(default_factory=list)
    answer: Completion = field(
        default_factory=lambda: Completion(
            "<think>plan it</think>Hello there", [7, 8], None, "stop"
        )
    )


def fake_vllm(recorder: Recorder) -> dict[str, types.ModuleType]:
    vllm = types.ModuleType("vllm")

    class SamplingParams:
        def __init__(self, **kwargs):
            self.kwargs = kwargs

    class LLM:
        def __init__(self, **kwargs):
            recorder.llm.append(kwargs)

        def generate(self, prompts, sampling_params, lora_request=None, use_tqdm=True):
            recorder.generate.append((prompts, sampling_params, lora_request))
            return [types.SimpleNamespace(outputs=[recorder.answer]) for _ in prompts]

    vllm.LLM, vllm.SamplingParams = LLM, SamplingParams
    lora = types.ModuleType("vllm.lora")
    request = types.ModuleType("vllm.lora.request")
    request.LoRARequest = LoRARequest
    lora.request = request
    vllm.lora = lora
    return {"vllm": vllm, "vllm.lora": lora, "vllm.lora.request": request}


@pytest.fixture
def recorder(monkeypatch):
    recorder = Recorder()
    for name, module in fake_vllm(recorder).items():
        monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.setattr(vllm_engine, "_engines", {})
    return recorder


@pytest.fixture
def gpu(recorder, monkeypatch):
    """The fake vllm on a machine that reports a GPU to the vLLM engine (only to it: torch
    elsewhere would then pin memory for CUDA)."""
    monkeypatch.setattr(vllm_engine, "cuda_available", lambda: True)
    return recorder


def lora_run(tmp_path, tiny_model_dir, rank=12):
    run = tmp_path / "lora-run"
    run.mkdir()
    RunManifest(
        trainer="sft",
        kind="sft",
        base_model=str(tiny_model_dir),
        weights=str(tiny_model_dir),
        adapter_chain=["checkpoint"],
        lora=True,
        status="finished",
    ).save(run)
    (run / "checkpoint").mkdir()
    config = {"r": rank, "base_model_name_or_path": str(tiny_model_dir), "peft_type": "LORA"}
    (run / "checkpoint" / "adapter_config.json").write_text(json.dumps(config))
    return run


def test_engine_vllm_without_vllm_names_the_extra(monkeypatch, tiny_model_dir):
    monkeypatch.setitem(sys.modules, "vllm", None)  # import vllm -> ImportError
    with pytest.raises(Exception) as caught:
        get_model(f"local/{tiny_model_dir}", memoize=False, engine="vllm")
    message = str(caught.value)
    assert type(caught.value).__name__ == "PrerequisiteError"
    assert message.startswith("embench: -M engine=vllm needs the vllm package: ")
    assert "pip install -e '.[gpu]'" in message and "\n" not in message


def test_engine_vllm_without_a_gpu_points_to_the_default_engine(
    recorder, monkeypatch, tiny_model_dir
):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(Exception) as caught:
        get_model(f"local/{tiny_model_dir}", memoize=False, engine="vllm")
    message = str(caught.value)
    assert message == (
        "embench: -M engine=vllm needs a CUDA GPU and none is available; the default engine "
        "(-M engine=local, or leave engine out) runs on CPU"
    )
    assert recorder.llm == []  # nothing was loaded


def test_unknown_engine_is_one_line(tiny_model_dir):
    with pytest.raises(Exception, match="-M engine=tgi: unknown engine; use local or vllm"):
        get_model(f"local/{tiny_model_dir}", memoize=False, engine="tgi")


def test_lora_run_is_served_unmerged_on_its_base(gpu, recorder, tmp_path, tiny_model_dir):
    run = lora_run(tmp_path, tiny_model_dir, rank=12)
    model = get_model(f"local/{run}", memoize=False, engine="vllm")
    config = GenerateConfig(temperature=0.7, top_p=0.9, max_tokens=33, extra_body={"min_p": 0.05})
    output = asyncio.run(model.generate([ChatMessageUser(content="hi")], config=config))

    # vLLM's allowed ranks are 1, 8, 16, ...: rank 12 needs max_lora_rank 16
    assert recorder.llm == [
        {
            "model": str(tiny_model_dir),
            "tokenizer": str(tiny_model_dir),
            "dtype": "auto",
            "enable_lora": True,
            "max_lora_rank": 16,
            "max_loras": 1,
        }
    ]
    ((prompts, params, lora),) = recorder.generate
    adapter = str(run / "checkpoint")
    assert lora == [LoRARequest("checkpoint", 1, adapter)]
    # the tiny model's chat template (tests/conftest.py), written out
    expected_prompt = "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
    tokenizer = model.api.tokenizer
    assert prompts == [{"prompt_token_ids": tokenizer.encode(expected_prompt)}]
    assert [p.kwargs for p in params] == [
        {
            "n": 1,
            "temperature": 0.7,
            "top_p": 0.9,
            "top_k": 0,
            "min_p": 0.05,
            "seed": None,
            "max_tokens": 33,
            "logprobs": None,
            "stop": None,
            "stop_token_ids": None,
        }
    ]
    # the reasoning split is the local engine's
    content = output.choices[0].message.content
    assert isinstance(content[0], ContentReasoning) and content[0].reasoning == "plan it"
    assert output.completion == "Hello there"
    assert output.metadata == {"dtype": "auto", "engine": "vllm"}


def test_logprobs_and_greedy_judge_settings_reach_vllm(gpu, recorder, tmp_path, tiny_model_dir):
    run = lora_run(tmp_path, tiny_model_dir, rank=8)
    recorder.answer = Completion(
        "x",
        [9],
        # vLLM returns the top k and the sampled token, each with its logprob
        [{9: Logprob(-0.5, 1), 4: Logprob(-1.5, 2), 6: Logprob(-2.0, 3)}],
        "length",
    )
    model = get_model(f"local/{run}", memoize=False, engine="vllm")
    config = GenerateConfig(
        temperature=0.0, max_tokens=1, logprobs=True, top_logprobs=2, seed=0, stop_seqs=["END"]
    )
    output = asyncio.run(model.generate("rate it", config=config))
    ((_, params, _),) = recorder.generate
    (sent,) = [p.kwargs for p in params]
    assert (sent["temperature"], sent["max_tokens"], sent["logprobs"]) == (0.0, 1, 2)
    assert sent["stop"] == ["END"] and isinstance(sent["seed"], int)
    assert recorder.llm[0]["max_lora_rank"] == 8
    assert "gpu_memory_utilization" not in recorder.llm[0]  # vLLM's own default unless asked

    (position,) = output.choices[0].logprobs.content
    decode = model.api.tokenizer.decode
    assert position.token == decode([9]) and position.logprob == -0.5
    assert [(t.token, t.logprob) for t in position.top_logprobs] == [
        (decode([9]), -0.5),
        (decode([4]), -1.5),
    ]
    assert output.choices[0].stop_reason == "max_tokens"


def test_lora_rank_is_rounded_up_to_a_rank_vllm_accepts(tmp_path):
    for rank, expected in [(1, 1), (2, 8), (8, 8), (9, 16), (64, 64), (300, 320), (512, 512)]:
        (tmp_path / "adapter_config.json").write_text(json.dumps({"r": rank}))
        assert vllm_engine.lora_rank(str(tmp_path)) == expected
    (tmp_path / "adapter_config.json").write_text(json.dumps({"r": 1024}))
    with pytest.raises(vllm_engine.EmbenchError, match="above vLLM's largest"):
        vllm_engine.lora_rank(str(tmp_path))


def _random_adapter(base_model, folder, seed):
    """A LoRA adapter with non-zero random weights (peft's init would leave B = 0)."""
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(seed)
    config = LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    peft_model = get_peft_model(copy.deepcopy(base_model), config)  # peft edits in place
    peft_model.save_pretrained(folder)
    return peft_model.merge_and_unload()


def test_chain_serves_the_last_adapter_on_the_earlier_stages_merged(
    gpu, recorder, monkeypatch, tmp_path, tiny_model_dir
):
    from transformers import AutoModelForCausalLM

    monkeypatch.setenv("EMBENCH_CACHE", str(tmp_path / "cache"))
    base = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir), dtype=torch.float32)
    warm = _random_adapter(base, tmp_path / "warm", seed=1)  # base + warm-up merged, by hand
    _random_adapter(warm, tmp_path / "last", seed=2)
    run = lora_run(tmp_path, tiny_model_dir)
    manifest = json.loads((run / "manifest.json").read_text())
    manifest["adapter_chain"] = [str(tmp_path / "warm"), str(tmp_path / "last")]
    (run / "manifest.json").write_text(json.dumps(manifest))

    model = get_model(f"local/{run}", memoize=False, engine="vllm", dtype="float32")
    (options,) = recorder.llm
    merged_dir = options["model"]
    assert merged_dir.startswith(str(tmp_path / "cache" / "models" / "merged-"))
    assert model.api.engine.lora_request == LoRARequest("last", 1, str(tmp_path / "last"))
    assert options["max_lora_rank"] == 8 and options["dtype"] == "float32"
    served = AutoModelForCausalLM.from_pretrained(merged_dir, dtype=torch.float32)
    ids = torch.tensor([[1, 5, 9, 14]])
    with torch.no_grad():
        expected, got = warm(ids).logits, served(ids).logits
        assert not torch.allclose(base(ids).logits, expected, atol=1e-3)  # the warm-up matters
    assert torch.allclose(got, expected, atol=1e-5)


def test_gpu_memory_share_reaches_vllm(gpu, recorder, tmp_path, tiny_model_dir):
    run = lora_run(tmp_path, tiny_model_dir)
    get_model(f"local/{run}", memoize=False, engine="vllm", gpu_memory_utilization=0.45)
    assert recorder.llm[0]["gpu_memory_utilization"] == 0.45
    with pytest.raises(Exception, match="gpu_memory_utilization is a vLLM setting: add -M engine"):
        get_model(f"local/{run}", memoize=False, gpu_memory_utilization=0.45)
    with pytest.raises(
        Exception, match=r"gpu_memory_utilization=1.5: must be a number in \(0, 1\]"
    ):
        get_model(f"local/{run}", memoize=False, engine="vllm", gpu_memory_utilization=1.5)


def test_chain_merge_keeps_the_base_dtype_whatever_the_host_cpu(
    gpu, recorder, monkeypatch, tmp_path, tiny_bf16_model_dir, cpu_flags
):
    """The merge only passes through the host CPU: under dtype auto the merged folder vLLM
    serves keeps the base's recorded bf16 even where that CPU has no native bf16 (where
    load_model's own auto would compute in fp32)."""
    from transformers import AutoConfig, AutoModelForCausalLM

    monkeypatch.setenv("EMBENCH_CACHE", str(tmp_path / "cache"))
    cpu_flags("avx2 fma")
    base = AutoModelForCausalLM.from_pretrained(str(tiny_bf16_model_dir), dtype=torch.float32)
    warm = _random_adapter(base, tmp_path / "warm", seed=1)
    _random_adapter(warm, tmp_path / "last", seed=2)
    run = lora_run(tmp_path, tiny_bf16_model_dir)
    manifest = json.loads((run / "manifest.json").read_text())
    manifest["adapter_chain"] = [str(tmp_path / "warm"), str(tmp_path / "last")]
    (run / "manifest.json").write_text(json.dumps(manifest))

    get_model(f"local/{run}", memoize=False, engine="vllm")
    (options,) = recorder.llm
    assert str(AutoConfig.from_pretrained(options["model"]).dtype) == "torch.bfloat16"
