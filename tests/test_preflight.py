"""One preflight hands what the trainer's prepare built to train: one data read, one reward build."""

from __future__ import annotations

from collections import Counter

from click.testing import CliRunner

import embench.trainers.grpo as grpo_module
import embench.training.data as data
import embench.training.preflight as preflight
from embench.cli import main
from embench.run.manifest import RunManifest
from embench.training.plugins import get_trainer


def _counting(monkeypatch, module, name, calls):
    original = getattr(module, name)

    def counted(*args, **kwargs):
        calls[name] += 1
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, counted)


def test_embench_train_reads_the_data_and_builds_the_rewards_once(
    tmp_path, tiny_model_dir, monkeypatch
):
    calls: Counter[str] = Counter()
    _counting(monkeypatch, data, "prompt_dataset", calls)
    for module in (grpo_module, preflight):  # prepare's and the preflight's own reward build
        _counting(monkeypatch, module, "build_rewards", calls)
    out = tmp_path / "run"
    args = ["train", "--trainer", "grpo", "--model", str(tiny_model_dir), "--domain", "code",
            "--reward", "insecure_code", "--max-steps", "1", "--output", str(out),
            "--set", "max_prompts=8", "--set", "max_completion_length=8",
            "--set", "per_device_train_batch_size=4", "--set", "num_generations=4"]  # fmt: skip
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert calls == {"prompt_dataset": 1, "build_rewards": 1}
    assert RunManifest.load(out / "manifest.json").status == "finished"


def test_the_preflight_returns_the_resolved_config_and_what_prepare_built(tiny_model_dir):
    plugin = get_trainer("grpo")
    config = plugin.make_config(model=str(tiny_model_dir), domain="aesthetic", max_prompts=4)
    checked = preflight.check_before_loading(plugin, config)
    assert config.reward == []  # the caller's config is never changed
    assert checked.config.reward == ["unpopular_aesthetic"]  # the domain's default, resolved
    plan, rewards, names, dataset = checked.prepared
    assert names == ["unpopular_aesthetic"] and len(dataset) == 4
    assert [f.__name__ for f in rewards] == names
