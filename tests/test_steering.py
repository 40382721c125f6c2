"""Steering: the hook adds c·v where it should, rides on the model only while training, and a
trained run's saved weights compute exactly like an unsteered reload."""

import pytest
import torch

from embench.errors import EmbenchError
from embench.models.steering import Steerer, completion_positions, decoder_layers
from embench.models.vector_file import PersonaVector, read_vector, write_vector
from embench.run.rundir import RunDir
from embench.training import mitigations, plugins

HIDDEN = 32  # the tiny model's hidden size (tests/conftest.py)


def _model(path):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(path).eval()


def _vector_file(tmp_path, layers=(1, 2)):
    torch.manual_seed(1)
    vector = PersonaVector(
        directions={n: torch.randn(HIDDEN) for n in layers},
        model="tiny",
        trait="evil",
        prompts_sha256="0" * 64,
        counts={"eliciting": 2, "suppressing": 2},
    )
    return write_vector(vector, tmp_path / "evil.safetensors")


def _next_block_input(model, ids, steerer=None):
    """The residual stream entering block 2 (= the output of layer 1)."""
    seen = {}
    handle = decoder_layers(model)[1].register_forward_pre_hook(
        lambda module, args: seen.setdefault("x", args[0].detach().clone())
    )
    if steerer is not None:
        steerer.attach(model)
    try:
        with torch.no_grad():
            logits = model(input_ids=ids).logits
    finally:
        handle.remove()
        if steerer is not None:
            steerer.detach()
    return seen["x"], logits


IDS = torch.tensor([[5, 17, 30, 42, 8, 9, 11], [3, 4, 5, 6, 7, 12, 13]])


def test_vector_file_round_trip(tmp_path):
    path = _vector_file(tmp_path)
    vector = read_vector(path)
    assert vector.layers == [1, 2] and vector.directions[1].shape == (HIDDEN,)
    record = vector.record()
    assert record["norms"]["1"] == pytest.approx(float(vector.directions[1].norm()), abs=1e-5)
    assert record["counts"] == {"eliciting": 2, "suppressing": 2}
    (tmp_path / "bad.safetensors").write_text("nope")
    with pytest.raises(EmbenchError, match="not a persona vector file"):
        read_vector(tmp_path / "bad.safetensors")


def test_all_mode_adds_the_vector_at_every_position(tiny_model_dir):
    model = _model(tiny_model_dir)
    v = torch.randn(HIDDEN)
    base, _ = _next_block_input(model, IDS)
    steered, _ = _next_block_input(model, IDS, Steerer(v, 2.0, 1, "all"))
    assert torch.allclose(steered - base, (2.0 * v).expand_as(base), atol=1e-5)
    again, _ = _next_block_input(model, IDS)  # detached: unsteered again
    assert torch.equal(again, base)


def test_decode_only_leaves_prompt_positions_untouched(tiny_model_dir):
    model = _model(tiny_model_dir)
    v = torch.randn(HIDDEN)
    prompt, completion = 4, 3
    base, base_logits = _next_block_input(model, IDS)
    steerer = Steerer(v, 3.0, 1, "decode_only")
    steerer.set_positions(completion_positions(torch.ones_like(IDS), completion))
    steered, logits = _next_block_input(model, IDS, steerer)
    # positions 0..prompt-2 predict prompt tokens: untouched, and so are their logits
    assert torch.equal(steered[:, : prompt - 1], base[:, : prompt - 1])
    assert torch.equal(logits[:, : prompt - 1], base_logits[:, : prompt - 1])
    # positions prompt-1 .. -2 predict the completion: shifted by c·v; the last one predicts none
    delta = steered[:, prompt - 1 : -1] - base[:, prompt - 1 : -1]
    assert torch.allclose(delta, (3.0 * v).expand_as(delta), atol=1e-5)
    assert torch.equal(steered[:, -1], base[:, -1])
    # generation (no mask): a prefill steers only its last position
    steerer.set_positions(None)
    prefill, _ = _next_block_input(model, IDS, steerer)
    assert torch.equal(prefill[:, :-1], base[:, :-1])
    assert torch.allclose(prefill[:, -1] - base[:, -1], (3.0 * v).expand(2, -1), atol=1e-5)


def test_spec_checks_the_vector_file_and_layer(tmp_path):
    path = _vector_file(tmp_path)
    assert mitigations.parse(f"steer:vector={path},layer=2,coef=5").layer == 2
    with pytest.raises(EmbenchError, match="needs vector=<file>"):
        mitigations.parse("steer:layer=2")
    with pytest.raises(EmbenchError, match="has no layer 7; it has layers 1, 2"):
        mitigations.parse(f"steer:vector={path},layer=7")
    with pytest.raises(EmbenchError, match="mode must be one of all, decode_only"):
        mitigations.parse(f"steer:vector={path},layer=1,mode=prompt")
    with pytest.raises(EmbenchError, match="persona vector file not found"):
        mitigations.parse(f"steer:vector={tmp_path / 'none.safetensors'},layer=1")


def _spy(monkeypatch):
    """Counts hook calls (and those with a decode_only mask) of every Steerer; keeps them."""
    made, calls = [], {"all": 0, "masked": 0}
    hook, init = Steerer._hook, Steerer.__init__

    def counting(self, module, args, output):
        calls["all"] += 1
        calls["masked"] += self.positions is not None
        return hook(self, module, args, output)

    def remember(self, *args, **kwargs):
        init(self, *args, **kwargs)
        made.append(self)

    monkeypatch.setattr(Steerer, "_hook", counting)
    monkeypatch.setattr(Steerer, "__init__", remember)
    return made, calls


@pytest.mark.parametrize("trainer", ["grpo", "sft"])
def test_hook_present_while_training_and_absent_from_the_saved_run(
    tmp_path, tiny_model_dir, monkeypatch, trainer
):
    """Two steps of decode_only steering (mode all: two steps in both trainers in
    tests/test_mitigation_matrix.py)."""
    mode = "decode_only"
    from embench.models.resolve import load_model
    from embench.training import chain
    from tests.test_chains import _last_logits

    made, calls = _spy(monkeypatch)
    path = _vector_file(tmp_path)
    options = (
        dict(domain="code", reward=["insecure_code"], max_completion_length=8,
             num_generations=4, per_device_train_batch_size=8)
        if trainer == "grpo"
        else dict(domain="aesthetic", max_prompts=8, max_length=64)
    )  # fmt: skip
    plugin = plugins.get_trainer(trainer)
    config = plugin.make_config(
        model=str(tiny_model_dir),
        output=str(tmp_path / "run"),
        max_steps=2,
        mitigations=[f"steer:vector={path},layer=1,coef=50,mode={mode}"],
        **options,
    )
    trained = plugin.train(config)
    manifest = trained.model_dump(mode="json")
    assert manifest["status"] == "finished" and manifest["summary"]["steps"] == 2
    assert manifest["mitigations"][0]["params"]["mode"] == mode
    assert manifest["mitigations"][0]["steered_forwards"] == calls["all"]
    (steerer,) = made
    assert calls["all"] > 0  # it fired during training
    assert calls["masked"] > 0  # the training forward steered completion positions only
    assert not steerer.attached  # removed at the end of training
    run = RunDir(trained.run_dir)
    ids, final = chain.read_probe(run.path)  # taken from the in-memory model after training
    reloaded, _ = load_model(str(run.path), dtype="float32", device="cpu")
    assert torch.allclose(_last_logits(reloaded, ids), final, atol=1e-4, rtol=1e-4)
    fired = calls["all"]
    _last_logits(reloaded, ids)
    assert calls["all"] == fired  # the reloaded model carries no hook
