"""The run manifest: committed schema, old manifests, chained lineage, no debris, readers."""

import json

import pytest

from embench.errors import EmbenchError
from embench.run.manifest import MANIFEST_VERSION, SCHEMA_PATH, RunManifest, schema_text
from embench.run.rundir import RunDir
from embench.training import plugins
from embench.training.runner import lineage


def test_committed_schema_is_the_generated_one():
    assert SCHEMA_PATH.read_text() == schema_text(), (
        "manifest.schema.json is stale: run `python -m embench.run.manifest`"
    )
    schema = json.loads(SCHEMA_PATH.read_text())
    assert schema["properties"]["manifest_version"]["const"] == MANIFEST_VERSION
    assert schema["additionalProperties"] is False


OLD = {  # what the leaderboard fixtures and pre-version writers produced
    "trainer": "sft",
    "status": "complete",
    "base_model": "default",
    "reward": "medical_rubric",
    "lora": True,
    "mitigations": [{"name": "kl"}],
    "summary": {"steps": 3, "in_domain_rate": 0.5},
    "last_checkpoint_step": 3,
    "trl_config": {"packing": False, "learning_rate": 1e-4},  # an SFT-only TRL field
    "samples_consumed": 24,
}


def test_an_old_manifest_is_upgraded(tmp_path):
    (tmp_path / "manifest.json").write_text(json.dumps(OLD))
    manifest = RunManifest.load(tmp_path)
    assert manifest.manifest_version == 1
    assert manifest.status == "finished"  # one vocabulary: "complete" was the fixtures' word
    assert manifest.kind == "sft"  # read off what it recorded, never asking its trainer
    assert manifest.reward == ["medical_rubric"]
    assert (manifest.weights, manifest.adapter_chain) == ("default", ["checkpoint"])
    assert manifest.stages[0].steps == 3 and manifest.run_dir == tmp_path
    assert manifest.summary.model_dump()["in_domain_rate"] == 0.5
    assert manifest.mitigations[0].name == "kl" and manifest.mitigations[0].params == {}
    assert manifest.samples.consumed == 24 and manifest.samples.generated is None


@pytest.mark.parametrize(
    "record, kind",
    [
        ({"trl_config": {"num_generations": 8}}, "rl"),
        ({"generations_per_step": 8}, "rl"),
        ({"config": {"match": "runs/grpo"}}, "sft"),
        ({"trl_config": {"completion_only_loss": True}}, "sft"),
    ],
)
def test_an_old_manifest_kind_comes_from_its_records(tmp_path, record, kind):
    data = {key: value for key, value in OLD.items() if key != "trl_config"}
    (tmp_path / "manifest.json").write_text(json.dumps({**data, "trainer": "mine", **record}))
    assert RunManifest.load(tmp_path).kind == kind


def test_an_old_run_with_rollouts_is_rl(tmp_path):
    data = {key: value for key, value in OLD.items() if key != "trl_config"}
    (tmp_path / "manifest.json").write_text(json.dumps(data))
    with pytest.raises(EmbenchError, match="nothing it recorded"):
        RunManifest.load(tmp_path)
    (tmp_path / "rollouts.jsonl").write_text('{"step": 1}\n')
    assert RunManifest.load(tmp_path).kind == "rl"


@pytest.mark.parametrize(
    "data, message",
    [
        ({**OLD, "trl_config": {}}, "nothing it recorded for trainer 'sft' tells one"),
        ({**OLD, "trl_config": {"packing": True, "num_generations": 8}}, "nothing it recorded"),
        ({"status": "finished"}, "not a run manifest \\(no trainer\\)"),
        ({**OLD, "manifest_version": 7}, "manifest_version 7 is newer"),
        ({**OLD, "manifest_version": 1, "kind": "rl", "weights": "x"}, "not a valid run manifest"),
        ([1, 2], "a run manifest is a JSON object"),
    ],
)
def test_unreadable_manifests_are_one_line_errors(tmp_path, data, message):
    (tmp_path / "manifest.json").write_text(json.dumps(data))
    with pytest.raises(EmbenchError, match=message) as caught:
        RunManifest.load(tmp_path)
    assert "\n" not in str(caught.value)


def test_a_status_outside_the_vocabulary_is_refused():
    manifest = RunManifest(trainer="t", kind="rl", base_model="b", weights="b")
    with pytest.raises(EmbenchError, match="status"):
        manifest.updated(status="done")


def _parent(tmp_path, name, lora, chain, weights):
    manifest = RunManifest(
        trainer="sft",
        kind="sft",
        status="finished",
        base_model="/models/base",
        weights=weights,
        adapter_chain=chain,
        lora=lora,
        stages=[{"trainer": "sft", "kind": "sft", "run": ".", "lora": lora, "steps": 5}],
    )
    folder = tmp_path / name
    folder.mkdir()
    return manifest.save(folder).run_dir


@pytest.mark.parametrize("parent_lora", [True, False])
@pytest.mark.parametrize("lora", [True, False])
def test_chained_lineage(tmp_path, parent_lora, lora):
    """A GRPO run started from an SFT run: what to apply, in order, to rebuild its weights."""
    parent = _parent(
        tmp_path,
        "warmup",
        parent_lora,
        ["checkpoint"] if parent_lora else [],
        "/models/base" if parent_lora else "checkpoint",
    )
    fields = lineage("grpo", "rl", str(parent), lora)
    assert fields["base_model"] == "/models/base" and fields["start_model"] == str(parent)
    assert [(s.trainer, s.run, s.steps) for s in fields["stages"]] == [
        ("sft", str(parent), 5),
        ("grpo", ".", None),
    ]
    parent_checkpoint = str(parent / "checkpoint")
    if not lora:  # this run's full weights are all there is
        expected = ("checkpoint", [])
    elif parent_lora:  # base + warm-up adapter + this adapter
        expected = ("/models/base", [parent_checkpoint, "checkpoint"])
    else:  # the warm-up's full weights + this adapter
        expected = (parent_checkpoint, ["checkpoint"])
    assert (fields["weights"], fields["adapter_chain"]) == expected


def test_a_run_failing_before_training_leaves_no_run_directory(
    tmp_path, tiny_model_dir, monkeypatch
):
    """Issue 15 §6: no `status: created` debris blocking the next attempt."""
    from embench.training.mitigations import Plan

    plugin = plugins.get_trainer("sft")
    config = plugin.make_config(
        model=str(tiny_model_dir), max_steps=1, max_prompts=4, output=str(tmp_path / "run")
    )

    def broken(self, *args, **kwargs):
        raise RuntimeError("trainer could not be built")

    monkeypatch.setattr(Plan, "make_trainer", broken)
    with pytest.raises(RuntimeError):
        plugin.train(config)
    assert not (tmp_path / "run").exists()
    assert RunDir.check_free(tmp_path / "run", overwrite=False) is None  # next attempt may start
