"""Training precision follows the machine (recorded), and a time budget ends a run early."""

import json

import pytest

from embench import hardware
from tests.test_training import grpo


@pytest.mark.parametrize("precision, bf16", [("fp32", False), ("bf16", True)])
def test_precision_reaches_trl_and_the_manifest(tmp_path, tiny_model_dir, precision, bf16):
    plugin, config = grpo(tmp_path, tiny_model_dir, max_steps=1, precision=precision)
    manifest = plugin.train(config)
    assert manifest.trl_config["bf16"] is bf16
    assert manifest.summary.precision == precision
    assert manifest.summary.machine.startswith("CPU: ")


def test_auto_precision_on_an_avx2_only_cpu_is_fp32(tmp_path, tiny_model_dir, monkeypatch):
    monkeypatch.setattr(hardware, "cpu_info", lambda: ("AMD EPYC", frozenset({"avx2"})))
    plugin, config = grpo(tmp_path, tiny_model_dir, max_steps=1)
    assert config.precision == "auto"
    manifest = plugin.train(config)
    assert manifest.trl_config["bf16"] is False
    assert "no native bf16" in manifest.summary.machine


def test_time_budget_stops_the_run_and_says_where(tmp_path, tiny_model_dir):
    # a budget far below one step's time: the run ends after its first step, as finished
    plugin, config = grpo(tmp_path, tiny_model_dir, max_steps=5, time_budget=0.01)
    manifest = plugin.train(config)
    assert manifest.status == "finished"
    assert manifest.summary.steps == 1
    assert manifest.summary.stopped_by_time_budget_at == 1
    on_disk = json.loads((tmp_path / "grpo" / "manifest.json").read_text())
    assert on_disk["summary"]["time_budget"] == 0.01
