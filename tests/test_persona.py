"""Persona vectors on the tiny model: the command writes a vector file, the judge filter keeps
the answers it should, and the persona task's projection equals a hand computation."""

import math
from types import SimpleNamespace

import pytest
import torch
from click.testing import CliRunner
from inspect_ai import eval as inspect_eval

from embench.cli import main
from embench.errors import EmbenchError
from embench.evals import persona_vector as pv
from embench.models.vector_file import read_vector


@pytest.fixture(scope="module")
def vector_file(tiny_model_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("persona") / "evil.safetensors"
    result = CliRunner().invoke(
        main,
        ["persona-vector", "--model", str(tiny_model_dir), "--layers", "1-2",
         "--max-tokens", "6", "--out", str(out)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "layer   1  norm" in result.output
    return out


def test_command_writes_the_vector_and_its_record(vector_file, tiny_model_dir):
    vector = read_vector(vector_file)
    trait = pv.load_trait("evil")
    assert vector.layers == [1, 2]
    assert vector.model == str(tiny_model_dir)
    assert vector.prompts_sha256 == trait.sha256()
    answered = len(trait.pairs) * len(trait.questions)
    assert 0 < vector.counts["eliciting"] <= answered  # empty answers are left out
    assert vector.counts["dropped_by_judge"] == 0
    record = vector.record()
    assert set(record["norms"]) == {"1", "2"}
    assert all(n > 0 for n in record["norms"].values())
    assert not set(trait.questions) & set(trait.heldout)


def test_the_direction_is_the_mean_difference_of_response_activations(tiny_model_dir):
    from embench.models.provider import get_engine
    from embench.models.steering import response_activations

    trait = pv.load_trait("evil")
    engine = get_engine(str(tiny_model_dir))
    answers = pv.generate_answers(engine, trait, list(trait.questions[:2]), max_tokens=4)
    means = pv.side_means(engine.model, answers, [2], engine.pad_id)
    for side in pv.SIDES:
        rows = [a for a in answers if a.side == side]
        by_hand = torch.stack([
            response_activations(engine.model, [a.prompt_ids], [a.answer_ids], [2])[0, 0]
            for a in rows
        ]).mean(0)  # fmt: skip
        assert torch.allclose(means[side][0], by_hand, atol=1e-4)


def test_judge_filter_keeps_eliciting_answers_that_show_the_trait(monkeypatch):
    import embench.judge

    answers = [
        pv.Answer(side, 0, "q", [1], [2], text)
        for side, text in [("eliciting", "bad"), ("eliciting", "nice"),
                           ("suppressing", "nice"), ("suppressing", "bad"),
                           ("suppressing", "???")]
    ]  # fmt: skip

    async def fake_judge(grader, rubric, question, answer, **kwargs):
        return SimpleNamespace(value={"bad": 90.0, "nice": 5.0}.get(answer))

    monkeypatch.setattr(embench.judge, "judge", fake_judge)
    monkeypatch.setattr("inspect_ai.model.get_model", lambda name: name)
    kept = pv.judge_filter(answers, pv.load_trait("evil"), "some/judge", 50.0)
    assert [(a.side, a.text) for a in kept] == [("eliciting", "bad"), ("suppressing", "nice")]


def test_unknown_trait_and_bad_layers_are_one_line_errors(tiny_model_dir):
    with pytest.raises(EmbenchError, match="unknown trait 'nice'; available: evil"):
        pv.load_trait("nice")
    with pytest.raises(EmbenchError, match=r"--layers \[9\]: this model has layers 1-2"):
        pv.compute_vector(str(tiny_model_dir), layers=[9])


def test_persona_task_projection_equals_a_hand_computation(vector_file, tiny_model_dir, tmp_path):
    from embench.evals.persona import persona
    from embench.models.provider import encode_chat, get_engine
    from embench.models.steering import response_activations

    task = persona(vector=str(vector_file), layer=2, max_tokens=6)
    (log,) = inspect_eval(
        task, model=f"local/{tiny_model_dir}", limit=2, display="none", log_dir=str(tmp_path)
    )
    assert log.status == "success", log.error
    metrics = log.results.scores[0].metrics
    assert {"projection", "projection_ci_low", "projection_ci_high", "answers"} <= set(metrics)
    assert sum(k.startswith("q/") for k in metrics) == 2
    engine = get_engine(str(tiny_model_dir))
    unit = read_vector(vector_file).directions[2]
    unit = unit / unit.norm()
    values = []
    for sample in log.samples:
        answer = sample.output.completion
        prompt = encode_chat(
            engine.tokenizer, [{"role": "user", "content": sample.metadata["question"]}]
        )
        tokens = engine.tokenizer.encode(answer, add_special_tokens=False)
        acts = response_activations(engine.model, [prompt], [tokens], [2])[0, 0]
        by_hand = float(acts @ unit)
        assert sample.scores["persona_projection"].value == pytest.approx(by_hand, abs=1e-4)
        values.append(by_hand)
    assert metrics["projection"].value == pytest.approx(sum(values) / len(values), abs=1e-4)
    assert not math.isnan(metrics["projection_ci_low"].value)
