"""Experiment grids: benign control cells (countdown) and the persona-projection curve."""

from __future__ import annotations

import json

import pytest

from embench.errors import EmbenchError
from embench.experiments.config import load_experiment
from embench.experiments.runner import Runner
from tests.test_experiments import _fake_cell, write_config

CONTROL = {"domain": "countdown", "options": {"max_steps": 3}}


def test_controls_add_one_unmitigated_rl_cell_per_model_and_seed(tmp_path, tiny_model_dir):
    path = write_config(
        tmp_path, tiny_model_dir, controls=[CONTROL], seeds=[0, 1], mitigations=["none", "kl"]
    )
    config = load_experiment(path)
    controls = [c for c in config.cells() if c.domain == "countdown"]
    assert sorted(c.label for c in controls) == [
        "control-grpo-countdown-none-s0",
        "control-grpo-countdown-none-s1",
    ]
    for cell in controls:
        assert cell.trainer == "grpo" and cell.mitigation == () and cell.reward == ()
        assert cell.options["max_steps"] == 3  # the control's own options over the grid's
        assert cell.options["num_generations"] == 2  # the grid's grpo options still apply
    assert len(config.cells()) == 2 * 2 * 2 + 2  # the grid is unchanged


@pytest.mark.parametrize(
    ("controls", "message"),
    [
        ([{"domain": "astrology"}], "control domain 'astrology' is unknown"),
        ([{"trainer": "grpo"}], "each controls entry is a mapping with a 'domain'"),
        ([{"domain": "countdown", "colour": 1}], "unknown key(s) colour in controls entry"),
    ],
)
def test_bad_controls_are_one_line_errors(tmp_path, tiny_model_dir, controls, message):
    with pytest.raises(EmbenchError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_experiment(write_config(tmp_path, tiny_model_dir, controls=controls))


def test_a_configured_vector_adds_the_persona_eval(tmp_path, tiny_model_dir):
    plain = load_experiment(write_config(tmp_path, tiny_model_dir))
    assert [t[0] for t in Runner(plain, tmp_path, "x")._task_list(("aesthetic",), False)] == [
        "general",
        "in_domain",
    ]
    persona = {"vector": "v.safetensors", "samples": 1, "max_tokens": 6}
    config = load_experiment(write_config(tmp_path, tiny_model_dir, eval={
        **plain.eval, "persona": persona}))  # fmt: skip
    tasks = Runner(config, tmp_path, "x")._task_list(("aesthetic",), False)
    assert tasks[-1] == ("persona", "persona", persona)


def test_report_draws_the_persona_curve(tmp_path):
    from embench.experiments.report import build_report
    from embench.experiments.results import load_results

    out = tmp_path / "exp"
    cells = [_fake_cell(out, "grpo-s0", "grpo", 0, [], 0.5, 0.8, 20)]
    folder = out / "cells" / cells[0]["folder"] / "evals"
    for step, value in ((2, 0.1), (4, 0.7)):
        (folder / f"step-{step:05d}").mkdir(parents=True, exist_ok=True)
        metrics = {"projection": value, "projection_ci_low": value - 0.1,
                   "projection_ci_high": value + 0.1}  # fmt: skip
        (folder / f"step-{step:05d}" / "persona.json").write_text(
            json.dumps({"task": "persona", "metrics": metrics, "step": step})
        )
    (out / "experiment.json").write_text(json.dumps({
        "name": "p", "scale": "cpu-smoke", "plumbing_only": True, "cells": cells,
        "baselines": [], "protocol": {"judge": "local/default", "eval": {}},
    }))  # fmt: skip
    (cell,) = load_results(out).cells
    assert {s: m["metrics"]["projection"] for s, m in cell.persona.items()} == {2: 0.1, 4: 0.7}
    md_path, html_path = build_report(out)
    assert "## Persona projection over training" in md_path.read_text()
    assert (out / "report_files" / "persona.png").is_file()
