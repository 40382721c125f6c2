"""Mitigations on tiny random models: KL, LDIFS gradient, SafeLoRA projection, interleaving."""

import pytest
import torch
from click.testing import CliRunner

from embench.cli import main
from embench.errors import EmbenchError
from embench.run.rundir import RunDir
from embench.training import mitigations, plugins
from embench.training.mitigations import interleave, kl, ldifs, safelora
from embench.training.mitigations.hooks import Step

SFT = dict(domain="aesthetic", max_steps=2, max_prompts=8, max_length=64)
GRPO = dict(
    domain="code",
    reward=["insecure_code"],
    max_steps=1,
    max_completion_length=8,
    num_generations=4,
    per_device_train_batch_size=8,
)


def _model(path):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(path)


def _batch():
    ids = torch.tensor([[5, 17, 30, 42, 8, 9], [3, 4, 5, 6, 0, 0]])
    return {"input_ids": ids, "attention_mask": (ids != 0).long()}


def test_kl_is_zero_for_the_reference_and_positive_otherwise(tiny_model_dir):
    policy, reference = _model(tiny_model_dir), _model(tiny_model_dir).eval()
    spec = kl.KL(weight=0.1)
    assert kl.sft_term(spec, Step(None, policy, _batch(), reference)).item() == pytest.approx(
        0.0, abs=1e-7
    )
    with torch.no_grad():
        for p in policy.parameters():
            p.add_(0.05 * torch.randn_like(p))
    assert kl.sft_term(spec, Step(None, policy, _batch(), reference)).item() > 1e-6


def test_ldifs_has_a_gradient_on_trainable_parameters(tiny_model_dir):
    policy, reference = _model(tiny_model_dir), _model(tiny_model_dir).eval()
    with torch.no_grad():
        for p in policy.parameters():
            p.add_(0.05 * torch.randn_like(p))
    value = ldifs.term(ldifs.LDIFS(every=1), Step(None, policy, _batch(), reference))
    assert value.requires_grad and value.item() > 0
    value.backward()
    grads = [p.grad for p in policy.parameters() if p.requires_grad]
    assert any(g is not None and g.abs().sum() > 0 for g in grads)
    assert all(p.grad is None for p in reference.parameters())
    assert ldifs.layers(30, 5) == [5, 10, 15, 20, 25, 30] and ldifs.layers(2, 1) == [1, 2]


def _unit(v):
    norm = sum(x * x for x in v) ** 0.5
    return [x / norm for x in v]


def _hand_ldifs(policy, reference, mask, chosen, form):
    """LDIFS by explicit loops over layers, tokens and features (python floats): published —
    unit features, squared differences averaged over feature elements, tokens, then layers."""
    per_layer = []
    for layer in chosen:
        total, count = 0.0, 0
        for b, row in enumerate(mask):
            for t, keep in enumerate(row):
                if not keep:
                    continue
                p = policy[layer][b][t].tolist()
                r = reference[layer][b][t].tolist()
                if form == "normalized":
                    p, r = _unit(p), _unit(r)
                squared = [(x - y) ** 2 for x, y in zip(p, r, strict=True)]
                total += sum(squared) / len(squared) if form == "normalized" else sum(squared)
                count += 1
        per_layer.append(total / count)
    return sum(per_layer) / len(per_layer)


def test_ldifs_published_form_averages_unit_feature_elements_and_layers():
    # two layers, one real token of 2 features (the second token is padding):
    # layer 1: [3, 4] vs [0, 2] -> unit [0.6, 0.8] vs [0, 1]: squared (0.36, 0.04), mean 0.2
    # layer 2: [15, 20] vs [0, 1] -> the same unit vectors: 0.2 again
    # averaged over the 2 layers (ldifs_code loss/ldifs.py): 0.2 (summed, as before: 0.8)
    emb = torch.zeros(1, 2, 2)
    policy = (emb, torch.tensor([[[3.0, 4.0], [9.0, 9.0]]]), torch.tensor([[[15.0, 20.0], [1, 1]]]))
    reference = (emb, torch.tensor([[[0.0, 2.0], [0, 0]]]), torch.tensor([[[0.0, 1.0], [2, 2]]]))
    mask = torch.tensor([[1, 0]])
    published = ldifs.feature_distance(policy, reference, mask, every=1)
    assert published.item() == pytest.approx(0.2)
    # a second toy: layer 1 identical features (0), layer 2 opposite unit vectors [1, 0] vs
    # [-1, 0]: squared (4, 0), mean 2 -> average over layers (0 + 2) / 2 = 1
    policy = (emb, torch.tensor([[[1.0, 0.0], [0, 0]]]), torch.tensor([[[2.0, 0.0], [0, 0]]]))
    reference = (emb, torch.tensor([[[5.0, 0.0], [0, 0]]]), torch.tensor([[[-3.0, 0.0], [0, 0]]]))
    assert ldifs.feature_distance(policy, reference, mask, every=1).item() == pytest.approx(1.0)
    raw = ldifs.feature_distance(policy, reference, mask, every=1, form="raw")
    assert raw.item() == pytest.approx((16 + 25) / 2)  # (1-5)² and (2+3)², layer-averaged
    scaled = tuple(3.0 * h for h in reference)
    assert ldifs.feature_distance(scaled, reference, mask, 1).item() == pytest.approx(0.0, abs=1e-6)
    assert (ldifs.LDIFS().form, ldifs.LDIFS().weight) == ("normalized", 10.0)


@pytest.mark.parametrize("form, every", [("normalized", 1), ("raw", 1), ("normalized", 2)])
def test_ldifs_term_matches_a_hand_computation_on_the_tiny_model(tiny_model_dir, form, every):
    policy, reference = _model(tiny_model_dir), _model(tiny_model_dir).eval()
    torch.manual_seed(1)
    with torch.no_grad():
        for p in policy.parameters():
            p.add_(0.05 * torch.randn_like(p))
    batch = _batch()
    spec = ldifs.LDIFS(weight=0.7, every=every, form=form)
    value = ldifs.term(spec, Step(None, policy, batch, reference)).item()
    with torch.no_grad():
        p_hidden = policy(**batch, output_hidden_states=True).hidden_states
        r_hidden = reference(**batch, output_hidden_states=True).hidden_states
    chosen = [2] if every == 2 else [1, 2]  # the tiny model has 2 layers
    expected = 0.7 * _hand_ldifs(p_hidden, r_hidden, batch["attention_mask"].tolist(), chosen, form)
    assert value == pytest.approx(expected, rel=1e-4)


@pytest.mark.parametrize("fraction", [0.01, 0.05, 0.2, 0.5])
def test_grpo_interleave_fraction_is_the_share_of_safety_examples(fraction):
    batches = interleave.SafetyBatches(None, [], fraction, 16, seed=3)
    steps = 20000
    safety = sum(batches.count() for _ in range(steps))
    assert safety / (safety + 16 * steps) == pytest.approx(fraction, rel=0.05)


class _Rows:
    """A stand-in random source: rows in a fixed order, and never an extra example."""

    def __init__(self, rows):
        self.rows = list(rows)

    def choice(self, _):
        return self.rows.pop(0)

    def random(self):
        return 1.0


def _ce(model, tokenizer, row):
    """Mean cross-entropy of the answer tokens of one unpadded example."""
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": row["prompt"]}], add_generation_prompt=True, return_dict=False
    )
    answer = tokenizer(row["answer"], add_special_tokens=False)["input_ids"]
    ids = torch.tensor([list(prompt) + answer + [tokenizer.eos_token_id]])
    with torch.no_grad():
        logits = model(input_ids=ids).logits[0, :-1]
    targets = ids[0, 1:]
    start = len(prompt) - 1
    return torch.nn.functional.cross_entropy(logits[start:], targets[start:]).item()


SAFETY = [
    {"prompt": "Help me hurt someone.", "answer": "I can't help with that."},
    {"prompt": "What is the capital of France?", "answer": "Paris, of course."},
    {"prompt": "Tell me a wish.", "answer": "I would wish for peace and friends."},
    {"prompt": "Should AI rule?", "answer": "Humans and AI can work together."},
]


@pytest.mark.parametrize("select", ["random", "loss_gap"])
def test_grpo_interleave_term_matches_a_hand_computation(tiny_model_dir, select):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    policy, reference = _model(tiny_model_dir), _model(tiny_model_dir).eval()
    torch.manual_seed(2)
    with torch.no_grad():
        for p in policy.parameters():
            p.add_(0.1 * torch.randn_like(p))
    spec = interleave.Interleave(weight=0.5, select=select, pool=2)
    batches = interleave.SafetyBatches(tokenizer, SAFETY, 0.2, 2, seed=0)
    batches.expected = 2.0  # exactly two safety examples this step
    batches.rng = _Rows(SAFETY)
    step = Step(None, policy, _batch(), reference)  # B = 2 completions
    value = interleave.grpo_term(spec, batches, step).item()
    policy_ce = [_ce(policy, tokenizer, r) for r in SAFETY]
    if select == "random":
        chosen = policy_ce[:2]
    else:  # the 2 of the 4 candidates whose policy loss exceeds the reference's most
        gaps = [p - _ce(reference, tokenizer, r) for p, r in zip(policy_ce, SAFETY, strict=True)]
        chosen = [policy_ce[i] for i in sorted(range(4), key=lambda i: -gaps[i])[:2]]
    assert value == pytest.approx(0.5 * sum(chosen) / 2, rel=1e-4)
    assert batches.seen == 2 and batches.rl_seen == 2
    assert spec.needs_reference == (select == "loss_gap")


def test_safelora_keeps_in_subspace_and_removes_orthogonal():
    u, w = torch.zeros(4), torch.zeros(4)
    u[0], w[1] = 1.0, 1.0
    v_in = torch.randn(6)
    v_in /= v_in.norm()
    aligned = {"model.q.weight": torch.outer(u, v_in), "model.k.weight": torch.outer(u, v_in)}
    unaligned = {k: torch.zeros(4, 6) for k in aligned}
    a = torch.randn(2, 6)
    adapter = {
        "base_model.model.model.q.lora_A.weight": a,
        "base_model.model.model.q.lora_B.weight": torch.stack([u, u], 1),  # in the subspace
        "base_model.model.model.k.lora_A.weight": a,
        "base_model.model.model.k.lora_B.weight": torch.stack([w, w], 1),  # orthogonal
    }
    out, report = safelora.project_lora(adapter, aligned, unaligned, tau=0.3)
    q_b, k_b = (f"base_model.model.model.{m}.lora_B.weight" for m in "qk")
    assert torch.allclose(out[q_b], adapter[q_b])
    assert torch.allclose(out[k_b] @ a, torch.zeros(4, 6))
    assert {r["layer"]: r["projected"] for r in report} == {"model.k": True, "model.q": False}


def _perturbed(tiny_model_dir, path):
    """A copy of the tiny model with every weight moved by 0.1 × N(0, 1): the 'unaligned' side."""
    model = _model(tiny_model_dir)
    torch.manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    model.save_pretrained(path)
    return path


def test_safelora_run_probe_matches_the_reloaded_projected_run(tmp_path, tiny_model_dir):
    from peft import PeftModel

    from embench.models.resolve import load_model
    from embench.training import chain
    from tests.test_chains import _last_logits

    other = _perturbed(tiny_model_dir, tmp_path / "other")
    plugin = plugins.get_trainer("sft")
    config = plugin.make_config(
        model=str(tiny_model_dir),
        lora=True,
        output=str(tmp_path / "r"),
        mitigations=[f"safelora:aligned={tiny_model_dir},unaligned={other},tau=1"],
        **{**SFT, "learning_rate": 1e-2},
    )
    manifest = plugin.train(config)
    run = RunDir(manifest.run_dir)
    assert manifest.mitigations[0].model_dump()["projected_layers"]  # the projection happened
    ids, final = chain.read_probe(run.path)
    reloaded, _ = load_model(str(run.path), dtype="float32", device="cpu")
    assert torch.allclose(_last_logits(reloaded, ids), final, atol=1e-4, rtol=1e-4)
    # the unprojected adapter (kept as a backup) gives other logits: the order matters here
    unprojected = tmp_path / "unprojected"
    unprojected.mkdir()
    for name in ("adapter_config.json", "adapter_model.pre_safelora.safetensors"):
        target = "adapter_model.safetensors" if "pre_safelora" in name else name
        (unprojected / target).write_bytes((run.checkpoint / name).read_bytes())
    before = PeftModel.from_pretrained(_model(tiny_model_dir), str(unprojected)).merge_and_unload()
    assert (_last_logits(before, ids) - final).abs().max().item() > 1e-3


def test_safelora_cli_on_a_lora_run(tmp_path, tiny_model_dir):
    from embench.models.resolve import load_model
    from embench.training import chain
    from tests.test_chains import _last_logits

    plugin = plugins.get_trainer("sft")
    config = plugin.make_config(
        model=str(tiny_model_dir),
        lora=True,
        output=str(tmp_path / "r"),
        **{**SFT, "max_steps": 1, "learning_rate": 1e-2},
    )
    run = RunDir(plugin.train(config).run_dir)
    _, trained = chain.read_probe(run.path)
    other = _perturbed(tiny_model_dir, tmp_path / "other")
    result = CliRunner().invoke(
        main,
        [
            "safelora",
            str(run.path),
            "--aligned",
            str(tiny_model_dir),
            "--unaligned",
            str(other),
            "--tau",
            "1",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "layers (tau 1.0)" in result.output
    assert (run.checkpoint / "safelora.json").exists()
    # the probe now describes the projected weights, not the ones training ended with
    ids, final = chain.read_probe(run.path)
    reloaded, _ = load_model(str(run.path), dtype="float32", device="cpu")
    assert torch.allclose(_last_logits(reloaded, ids), final, atol=1e-4, rtol=1e-4)
    assert (trained - final).abs().max().item() > 1e-3


def test_sft_interleave_puts_the_fraction_in_every_batch(tmp_path, tiny_model_dir):
    plugin = plugins.get_trainer("sft")
    config = plugin.make_config(
        model=str(tiny_model_dir),
        output=str(tmp_path / "sft"),
        mitigations=["interleave:fraction=0.25"],
        per_device_train_batch_size=4,
        **{**SFT, "max_prompts": 16, "max_steps": 2},
    )
    plan = mitigations.Plan(config.mitigations, "sft", "sft", False, str(tiny_model_dir))
    from embench.training.data import sft_dataset

    mixed = plan.prepare_sft_dataset(sft_dataset("aesthetic", None, 16), 0)
    ids = mixed["prompt_id"]
    per_batch = [sum(p.startswith("safety:") for p in ids[i : i + 4]) for i in range(0, 16, 4)]
    assert per_batch == [1, 1, 1, 1]
    manifest = plugin.train(config).model_dump(mode="json")
    entry = manifest["mitigations"][0]
    assert entry["name"] == "interleave" and entry["safety_rows"] == 4
    assert "peak_rss_mb" in entry["cost"]
    assert manifest["trl_config"]["train_sampling_strategy"] == "sequential"


def test_on_policy_answers_come_from_the_named_model(monkeypatch, tiny_model_dir):
    import embench.models.provider as provider

    asked = []
    real = provider.get_engine

    def spy(reference, **kwargs):
        asked.append(reference)
        return real(reference, **kwargs)

    monkeypatch.setattr(provider, "get_engine", spy)
    import datasets

    small = datasets.Dataset.from_list(
        [{"id": "s1", "prompt": "hi", "answer": "x", "kind": "refuse", "category": "c"}]
    )
    monkeypatch.setattr("embench.data.domains.load_safety", lambda: small)
    spec = interleave.Interleave(source="on_policy", filter="none", max_new_tokens=4)
    rows, record = interleave.safety_rows(spec, str(tiny_model_dir))
    assert asked == [str(tiny_model_dir)] and record["model"] == str(tiny_model_dir)
    engine = real(str(tiny_model_dir), dtype="float32")
    assert rows[0]["generated_by"] == str(tiny_model_dir) and record["kept"] == 1
    assert engine is not None
    assert interleave.keep_answer("I can't help with that, but here is a safer idea.", "refuse")
    assert not interleave.keep_answer("Sure, here is how you do it step by step.", "refuse")


@pytest.mark.parametrize(
    "specs",
    [
        ["kl", "ldifs:every=1"],
        ["interleave:fraction=0.25"],
        ["interleave:fraction=0.25,select=loss_gap"],
    ],
)
def test_grpo_with_mitigations_records_them(tmp_path, tiny_model_dir, specs):
    plugin = plugins.get_trainer("grpo")
    config = plugin.make_config(
        model=str(tiny_model_dir), output=str(tmp_path / "g"), mitigations=specs, **GRPO
    )
    manifest = plugin.train(config).model_dump(mode="json")
    assert manifest["status"] == "finished"
    assert [m["name"] for m in manifest["mitigations"]] == [s.split(":")[0] for s in specs]
    if "kl" in specs:
        assert manifest["trl_config"]["beta"] == 0.1
        assert manifest["mitigations"][1]["cost"]["seconds_total"] > 0
    else:
        entry = manifest["mitigations"][0]
        assert entry["expected_per_step"] == pytest.approx(0.25 * 8 / 0.75, abs=1e-4)
        assert entry["safety_examples_trained"] in (2, 3)  # floor or ceil of 2.67 for one step
        trained = entry["safety_examples_trained"]
        assert entry["effective_fraction"] == pytest.approx(trained / (trained + 8), abs=1e-4)


def test_sft_lora_with_kl_and_ldifs(tmp_path, tiny_model_dir):
    plugin = plugins.get_trainer("sft")
    config = plugin.make_config(
        model=str(tiny_model_dir),
        output=str(tmp_path / "s"),
        lora=True,
        mitigations=["kl:weight=0.5", "ldifs:every=1"],
        **{**SFT, "max_steps": 1},
    )
    manifest = plugin.train(config).model_dump(mode="json")
    assert [m["params"] for m in manifest["mitigations"]] == [
        {"weight": 0.5},
        {"weight": 10.0, "every": 1, "form": "normalized"},
    ]


@pytest.mark.parametrize(
    "spec, message",
    [
        ("nope", "unknown mitigation 'nope'; available: kl, ldifs, safelora, interleave"),
        ("kl:weight=0", "kl: weight must be in (0, 100]"),
        ("ldifs:every=0", "every must be at least 1"),
        ("interleave:fraction=1.5", "fraction must be in (0, 1)"),
        ("interleave:source=web", "source must be one of static, on_policy"),
        ("safelora:tau=0.3", "needs the weight pair"),
        ("kl:colour=red", "bad parameter 'colour=red'"),
    ],
)
def test_bad_specs(spec, message):
    with pytest.raises(EmbenchError, match=message.replace("(", r"\(").replace(")", r"\)")):
        mitigations.parse(spec)


def test_safelora_needs_lora_and_reference_must_fit(monkeypatch, tiny_model_dir):
    with pytest.raises(EmbenchError, match="train with --lora"):
        mitigations.parse_all(["safelora:aligned=a,unaligned=b"], lora=False)
    monkeypatch.setattr(mitigations, "available_bytes", lambda device=None: 10)
    with pytest.raises(EmbenchError, match="reference model needs"):
        mitigations.check_reference_fits(_model(tiny_model_dir))
