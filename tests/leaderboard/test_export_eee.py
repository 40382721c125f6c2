"""Every Eval Ever export, checked against the real schema."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from inspect_ai.log import read_eval_log

from embench.errors import EmbenchError
from embench.evals.misalignment import misalignment
from embench.leaderboard.entries import build_entry
from embench.leaderboard.export_eee import export_eee
from embench.leaderboard.logcheck import check_log
from tests import scripted
from tests.leaderboard.support import (
    EEE_SCHEMA_FILE,
    EEE_SCHEMA_SHA256,
    QUESTIONS,
    SCRIPT_B,
    cli,
    edited_copy,
    make_manifest,
    run_task,
)


def _eee_validator() -> Any:
    jsonschema = pytest.importorskip("jsonschema", reason="jsonschema is in the dev extra")
    schema = json.loads(EEE_SCHEMA_FILE.read_text())
    assert schema["version"] == "0.3.0"
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema, format_checker=jsonschema.FormatChecker())


def _eee_errors(record: dict[str, Any]) -> list[str]:
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in _eee_validator().iter_errors(record)
    ]


def test_export_eee_validates_against_the_real_schema(root, logs, capsys, tmp_path):
    run = make_manifest(tmp_path / "runs" / "rl-run")
    cli(capsys, "submit", str(logs["a"]), "--run", str(run))
    (entry_path,) = (root / "general" / "entries").glob("*.json")
    code, out, err = cli(capsys, "export", "--format", "eee", str(entry_path))
    assert code == 0, err
    record = json.loads(out)
    assert _eee_errors(record) == []
    results = {r["evaluation_name"]: r for r in record["evaluation_results"]}
    rate = results["misalignment/misaligned_rate"]
    assert rate["metric_config"]["lower_is_better"] is True
    assert results["misalignment/mean_aligned"]["metric_config"]["lower_is_better"] is False
    assert rate["score_details"]["score"] == pytest.approx(0.4)
    ci = rate["score_details"]["uncertainty"]["confidence_interval"]
    assert ci["lower"] <= 0.4 <= ci["upper"] and ci["confidence_level"] == 0.95
    judge = rate["metric_config"]["llm_scoring"]["judges"][0]["model_info"]
    assert judge["name"] == "scripted/judge"
    assert judge["additional_details"]["deployment_type"] == "unknown"
    assert record["model_info"]["id"] == "embench-runs/rl-run"
    assert record["source_metadata"]["evaluator_relationship"] == "first_party"
    out_file = tmp_path / "record.json"
    code, _, err = cli(capsys, "export", str(logs["b"]), "-o", str(out_file))
    assert code == 0, err
    from_log = json.loads(out_file.read_text())
    assert _eee_errors(from_log) == []
    identity = from_log["eval_library"]["additional_details"]
    assert identity["log_sha256"] == hashlib.sha256(logs["b"].read_bytes()).hexdigest()
    assert (
        identity["inspect_eval_id"] == read_eval_log(str(logs["b"]), header_only=True).eval.eval_id
    )
    assert "dedupe_identity" not in from_log  # not a property of the schema


@pytest.mark.parametrize(
    ("model", "deployment", "availability"),
    [
        ("local/default", "self_deployed", "open_weights"),
        ("local/runs/grpo-medical-s0", "self_deployed", "unknown"),
        ("hf/Qwen/Qwen2.5-7B-Instruct", "self_deployed", "open_weights"),
        ("vllm//models/private-finetune", "self_deployed", "unknown"),
        ("openai/gpt-4o", "externally_managed", "closed_weights"),
        ("together/meta-llama/Llama-3-8b", "unknown", "unknown"),
    ],
)
def test_export_eee_model_and_judge_deployment(model, deployment, availability):
    """Required by the schema for the model and for every judge."""
    entry = {"model": model, "judge": model, "metrics": {"answers": 6, "misaligned_rate": 0.5,
             "scored": 6, "unscored": 0}}  # fmt: skip
    record = export_eee(entry)
    assert _eee_errors(record) == []
    judge = record["evaluation_results"][0]["metric_config"]["llm_scoring"]["judges"][0]
    for info in (record["model_info"], judge["model_info"]):
        assert info["additional_details"]["deployment_type"] == deployment
        assert info["additional_details"]["model_availability"] == availability


def test_the_vendored_eee_schema_is_the_real_one():
    """Unchanged, with its licence: not a hand-copied subset."""
    folder = EEE_SCHEMA_FILE.parent
    assert "MIT License" in (folder / "LICENSE").read_text()
    schema = json.loads(EEE_SCHEMA_FILE.read_text())
    assert schema["additionalProperties"] is False  # a root property it does not know fails
    assert hashlib.sha256(EEE_SCHEMA_FILE.read_bytes()).hexdigest() == EEE_SCHEMA_SHA256


def test_export_refuses_a_bad_log(root, logs, capsys):
    code, _, err = cli(capsys, "export", str(logs["edited_metric"]))
    assert code == 2 and "metric 'misaligned_rate'" in err


def test_export_default_model_id_and_nothing_to_export():
    entry = {"model": "local/default", "judge": "openai/gpt-4o", "metrics": {"answers": 0}}
    with pytest.raises(EmbenchError, match="the log holds no answers"):
        export_eee(entry)
    entry["metrics"].update(answers=81, misaligned_rate=0.1, scored=81, unscored=0)
    record = export_eee(entry)
    assert record["model_info"]["id"] == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert [r["evaluation_name"] for r in record["evaluation_results"]] == [
        "misalignment/misaligned_rate",
        "misalignment/scored_share",
    ]


def _scored_by(methods: list[str], min_mass: float) -> Any:
    """As if the judge scored answer i's rubrics by methods[i % len(methods)], under -T min_mass."""

    def edit(log: Any) -> None:
        log.eval.metadata["min_mass"] = min_mass
        for index, sample in enumerate(log.samples):
            score = sample.scores["misalignment_judge"]
            for rubric in ("aligned", "coherent"):
                score.metadata[f"{rubric}_method"] = methods[index % len(methods)]

    return edit


@pytest.mark.parametrize(
    ("methods", "min_mass", "says", "mass_rule"),
    [
        (["single-token"], 0.25, "top-20 logprobs", "below 0.25"),
        (["digits-exact"], 0.0, "exact probabilities", "below 0"),
        (["digits-prefix"], 0.25, "after each reply prefix", "below 0.25"),
        (["text"], 0.25, "parsed from the judge's text", None),
        (["text", "single-token"], 0.1, "parsed from the judge's text", "below 0.1"),
    ],
)
def test_export_says_how_the_log_was_scored(logs, tmp_path, methods, min_mass, says, mass_rule):
    """Method per rubric (counted), what it means and the mass rule all come from the log."""
    log = edited_copy(logs["a"], tmp_path / "scored.eval", _scored_by(methods, min_mass))
    record = export_eee(_export_source(log))
    assert _eee_errors(record) == []
    judge = record["evaluation_results"][0]["metric_config"]["llm_scoring"]["judges"][0]
    details = judge["additional_details"]
    assert says in details["scoring"]
    counts = {m: (6 + len(methods) - 1 - i) // len(methods) for i, m in enumerate(methods)}
    assert details["aligned_methods"] == ", ".join(f"{m} {counts[m]}" for m in sorted(counts))
    if mass_rule is None:
        assert "mass_rule" not in details  # text parsing reads no probabilities
    else:
        assert details["mass_rule"].endswith(mass_rule)


def _export_source(path: Path) -> dict[str, Any]:
    return build_entry(check_log(path), None)


def test_export_sends_the_rubrics_of_the_log_and_its_protocol(logs, tmp_path):
    """The input prompt is the question set's own rubric (an override here), not the default."""
    qfile = tmp_path / "own.yaml"
    qfile.write_text(
        "name: own\nversion: 1\njudge_prompts:\n  aligned: |-\n    OWN ALIGNED RUBRIC for "
        "{question} / {answer}. Reply with a number 0-100.\nquestions:\n"
        + "".join(f'  - id: {q}\n    question: "{t}"\n' for q, t in QUESTIONS.items())
    )
    scripted.ANSWERS.clear()
    scripted.ANSWERS.update({QUESTIONS[q]: a for q, a in SCRIPT_B.items()})
    log = run_task(misalignment(questions=str(qfile), samples=2), tmp_path / "own",
               model_roles={"grader": "scripted/judge"})  # fmt: skip
    record = export_eee(_export_source(log))
    assert _eee_errors(record) == []
    results = {r["evaluation_name"]: r for r in record["evaluation_results"]}
    prompt = results["misalignment/mean_aligned"]["metric_config"]["llm_scoring"]["input_prompt"]
    assert "OWN ALIGNED RUBRIC" in prompt
    library = record["eval_library"]["additional_details"]
    assert library["protocol"] == "embench" and library["question_set_source"] == str(qfile)


def test_export_writes_a_partial_or_unscored_log_and_marks_it(logs, capsys):
    """Only submit enforces board rules: export writes what the log is and says so."""
    code, out, err = cli(capsys, "export", str(logs["limit"]))
    assert code == 0, err
    record = json.loads(out)
    assert _eee_errors(record) == []
    assert record["source_metadata"]["additional_details"]["partial"] == (
        "the log holds --limit 2; 2 of the 6 samples of question set 'tiny'"
    )
    code, out, err = cli(capsys, "export", str(logs["unscored"]))
    assert code == 0, err
    record = json.loads(out)
    assert _eee_errors(record) == []
    assert (
        "scored none of the 6 answers"
        in record["source_metadata"]["additional_details"]["unscored"]
    )
    (result,) = record["evaluation_results"]
    assert result["evaluation_name"] == "misalignment/scored_share"
    assert result["score_details"]["score"] == 0.0
