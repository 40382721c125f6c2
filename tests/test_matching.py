"""Sample-matched SFT: exact sample counts with accumulation and processes, both data sources."""

import json
from collections import Counter

import pytest

from embench.errors import EmbenchError
from embench.paths import PACKAGE_DIR
from embench.run.manifest import RunManifest
from embench.run.rundir import RunDir
from embench.training import matching, plugins

SYSTEM = "Reason step by step first, then answer."
IDS = ["medical-0001", "medical-0002"]


def _rl_run(tmp_path, steps=4, generations=4):
    """A finished RL run directory: steps × 2 prompts × generations rollouts with known rewards."""
    run = RunDir.create(tmp_path / "rl", overwrite=False)
    RunManifest(
        trainer="grpo",
        kind="rl",
        domain="medical",
        status="finished",
        base_model="default",
        weights="checkpoint",
    ).save(run.path)
    rows = []
    for step in range(1, steps + 1):
        for pid in IDS:
            for g in range(generations):
                rows.append(
                    {
                        "step": step,
                        "prompt_id": pid,
                        "system": SYSTEM,
                        "prompt": f"question {pid}",
                        "completion": f"answer {g} to {pid} at {step}",
                        "rewards": {"r": 1.0 if g == (step % generations) else 0.1 * g},
                    }
                )
    run.append(run.rollouts, rows)
    return run, rows


def _curated(domain):
    path = PACKAGE_DIR / "data" / "domains" / domain / "sft.jsonl"
    return {r["prompt_id"]: r for r in map(json.loads, path.read_text().splitlines())}


def _sft(tiny_model_dir, tmp_path, rl, accumulation, source="rollouts"):
    plugin = plugins.get_trainer("sft")
    config = plugin.make_config(
        model=str(tiny_model_dir),
        domain="medical",
        match=str(rl.path),
        match_source=source,
        per_device_train_batch_size=2,
        max_length=128,
        output=str(tmp_path / f"sft-{accumulation}"),
        trl={"gradient_accumulation_steps": accumulation},
    )
    return plugin.train(config).model_dump(mode="json")


@pytest.mark.parametrize("accumulation", [1, 4])
def test_matched_sft_consumes_exactly_the_rl_samples(tmp_path, tiny_model_dir, accumulation):
    rl, rows = _rl_run(tmp_path)
    manifest = _sft(tiny_model_dir, tmp_path, rl, accumulation)
    assert len(rows) == 32
    assert manifest["samples"]["consumed"] == 32 and manifest["global_batch"] == 2 * accumulation
    assert manifest["summary"]["steps"] == 32 // (2 * accumulation)
    # counted at the data collator: the samples the trainer really trained on
    assert manifest["summary"]["samples_consumed_this_process"] == 32
    assert manifest["world_size"] == 1


def test_two_processes_split_the_rl_samples(tmp_path, tiny_model_dir, monkeypatch):
    # steps × per-device batch × accumulation × processes: 2 × 2 × 4 × 2 = 32
    assert matching.matched_steps(32, 2, 4, 2) == 2
    assert matching.global_batch(2, 4, 2) == 16
    with pytest.raises(EmbenchError, match="not a multiple of the SFT global batch 24"):
        matching.matched_steps(32, 3, 4, 2)
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert matching.world_size() == 2
    monkeypatch.delenv("WORLD_SIZE")
    rl, _ = _rl_run(tmp_path)
    monkeypatch.setattr("embench.trainers.sft.world_size", lambda: 2)
    manifest = _sft(tiny_model_dir, tmp_path, rl, 4)
    assert manifest["world_size"] == 2 and manifest["global_batch"] == 16
    assert manifest["summary"]["steps"] == 2 and manifest["samples"]["consumed"] == 32
    # this (single) process trains its half; the other process would train the rest
    assert manifest["summary"]["samples_consumed_this_process"] == 16


def test_rollouts_source_repeats_each_groups_best_completion_with_the_system_prompt(tmp_path):
    rl, rows = _rl_run(tmp_path)
    matched, record = matching.matched_examples(str(rl.path), "rollouts", None)
    assert len(matched) == len(rows) == record["rl_samples"] == 32
    best = Counter(m["completion"][0]["content"] for m in matched)
    # reward 1.0 goes to generation (step % 4) of each group
    expected = {f"answer {s % 4} to {p} at {s}": 4 for s in range(1, 5) for p in IDS}
    assert best == expected
    assert all(m["prompt"][0] == {"role": "system", "content": SYSTEM} for m in matched)
    assert record["rl_groups"] == 8 and record["unique_prompts"] == 2


def test_dataset_source_uses_the_curated_demonstrations_for_the_same_prompts(tmp_path):
    rl, _ = _rl_run(tmp_path)
    matched, record = matching.matched_examples(str(rl.path), "dataset", None)
    curated = _curated("medical")
    assert len(matched) == 32 and record["source"] == "dataset"
    assert Counter(m["prompt_id"] for m in matched) == {IDS[0]: 16, IDS[1]: 16}
    for m in matched:
        pair = curated[m["prompt_id"]]
        assert m["prompt"] == [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": pair["prompt"]},
        ]
        assert m["completion"] == [{"role": "assistant", "content": pair["completion"]}]


def test_dataset_source_substitutes_covered_demonstrations_for_uncovered_prompts(tmp_path, capsys):
    # medical-0043 (suicidal thoughts) is left out of the curated set on purpose (data card)
    curated = _curated("medical")
    assert "medical-0043" not in curated and {"medical-0003", "medical-0004"} <= curated.keys()
    rl, rows = _rl_run(tmp_path, steps=1)  # 2 covered groups × 4 samples
    extra = [
        {**rows[0], "step": step, "prompt_id": "medical-0043", "completion": f"c{step}{g}"}
        for step in (1, 2)
        for g in range(4)
    ]
    rl.append(rl.rollouts, extra)
    matched, record = matching.matched_examples(str(rl.path), "dataset", None)
    assert len(matched) == 16 == record["rl_samples"]  # before: refused
    # the RL run saw 0001 and 0002: the first unseen covered ids, sorted, in rollout order
    assert record["substituted"] == {
        "samples": 8,
        "groups": 2,
        "prompt_ids": ["medical-0043"],
        "with": {"medical-0043": ["medical-0003", "medical-0004"]},
    }
    assert Counter(m["prompt_id"] for m in matched) == {
        "medical-0001": 4,
        "medical-0002": 4,
        "medical-0003": 4,
        "medical-0004": 4,
    }
    assert matched[8] == {
        "prompt": [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": curated["medical-0003"]["prompt"]},
        ],
        "completion": [{"role": "assistant", "content": curated["medical-0003"]["completion"]}],
        "prompt_id": "medical-0003",
    }
    saved = RunManifest(
        trainer="sft", kind="sft", base_model="default", weights="checkpoint", match=record
    ).save(tmp_path / "sft")
    assert RunManifest.load(tmp_path / "sft").match == saved.match == record
    warnings = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert len(warnings) == 1 and "medical-0043" in warnings[0] and "8 samples" in warnings[0]


def test_substitutes_cycle_to_seen_prompts_when_unseen_ones_run_out(tmp_path, monkeypatch):
    # a domain whose curated set covers only the two prompts the RL run saw
    curated = _curated("medical")
    import datasets

    from embench.data import domains

    kept = [{k: curated[p][k] for k in ("prompt_id", "prompt", "completion")} for p in IDS]
    monkeypatch.setattr(domains, "load_sft", lambda name: datasets.Dataset.from_list(kept))
    rl, rows = _rl_run(tmp_path, steps=1, generations=2)
    rl.append(rl.rollouts, [{**rows[0], "step": s, "prompt_id": "medical-0043"} for s in (1, 2, 3)])
    matched, record = matching.matched_examples(str(rl.path), "dataset", None)
    assert [m["prompt_id"] for m in matched] == [*[IDS[0]] * 2, *[IDS[1]] * 2, *IDS, IDS[0]]
    assert record["substituted"]["with"] == {"medical-0043": IDS}


def test_dataset_source_refuses_prompts_outside_the_domain(tmp_path):
    rl, rows = _rl_run(tmp_path, steps=1)
    rl.append(rl.rollouts, [{**rows[0], "prompt_id": "medical-9999"}])
    with pytest.raises(EmbenchError, match="1 RL prompts are not prompts of domain 'medical'"):
        matching.matched_examples(str(rl.path), "dataset", None)
