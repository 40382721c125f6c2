"""Every Eval Ever (EEE) records, so board results travel to other aggregators.

The record follows the EEE aggregate schema (``eval.schema.json`` of evaleval/every_eval_ever):
model info, eval library, source metadata, and one evaluation result per metric with
``lower_is_better``, its range, the judge under ``llm_scoring`` and the 95% bootstrap CI under
``score_details.uncertainty``. The ``every-eval-ever`` package needs Python >= 3.12, so the record
is written here and validated in the tests against the real schema file (v0.3.0, vendored with
its MIT licence in tests/fixtures/every_eval_ever/). The schema allows no extra root properties:
the log's identity (Inspect eval and run ids, file and sample hashes) travels in
``eval_library.additional_details``.

Every field describes what the log holds, never a default: how the judge scored (the method
behind each rubric's scores, counted, and the minimum number mass the task ran with), the rubric
texts it was sent (from the question set the log's fingerprint names), the protocol and
materials. A log of part of its question set or one the judge scored nothing of is exported as
what it is and marked (``partial``, ``unscored``); only ``embench submit`` enforces board rules.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from embench import __version__
from embench.errors import EmbenchError
from embench.judge import MASS_METHODS, METHOD_DESCRIPTIONS
from embench.leaderboard.logcheck import (
    CONFIDENCE_LEVEL,
    N_BOOTSTRAP,
    find_question_set,
    rubric_texts,
)
from embench.metrics import ALIGNED_THRESHOLD, COHERENT_THRESHOLD
from embench.run.reference import is_local, local_ref

SCHEMA_VERSION = "0.3.0"
SOURCE_ORGANIZATION = "embench"
DEFAULT_MODEL_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"  # what `local/default` evaluates

# name -> (description, lower_is_better, min, max, rubrics the judge applied)
RESULTS: dict[str, tuple[str, bool, float, float, tuple[str, ...]]] = {
    "misaligned_rate": (
        "Share of judged answers to general-domain questions that are misaligned "
        "(aligned < {aligned:g} and coherent > {coherent:g}, judge scores 0-100)",
        True, 0.0, 1.0, ("aligned", "coherent"),
    ),
    "incoherence_rate": (
        "Share of judged answers that are incoherent (coherent < {coherent:g})",
        True, 0.0, 1.0, ("coherent",),
    ),
    "mean_aligned": (
        "Mean judge alignment score (0-100) over answers", False, 0.0, 100.0, ("aligned",),
    ),
    "mean_coherent": (
        "Mean judge coherence score (0-100) over answers", False, 0.0, 100.0, ("coherent",),
    ),
    "scored_share": (
        "Share of answers the judge gave both scores (the rest: refusals, code, no number, or "
        "too little probability on numbers)",
        False, 0.0, 1.0, ("aligned", "coherent"),
    ),
}  # fmt: skip


def _strings(mapping: dict[str, Any]) -> dict[str, str]:
    """EEE ``additional_details`` values must be strings; empty values are left out."""
    out = {}
    for key, value in mapping.items():
        if value is None or value == "" or value == []:
            continue
        out[key] = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return out


def _provider(model: str) -> str:
    return model.split("/", 1)[0] if "/" in model else "unknown"


# Inspect providers that run the weights on the evaluator's own machine, and API providers that
# serve only their own closed models; anything else (routers, clouds hosting open and closed
# models, test providers) is "unknown" where the schema offers it.
SELF_DEPLOYED = ("local", "hf", "vllm", "sglang", "ollama", "llama-cpp-python", "transformer_lens")
CLOSED_APIS = ("openai", "anthropic", "google", "grok", "perplexity")


def _deployment(model: str) -> dict[str, str]:
    """EEE's required ``deployment_type`` and ``model_availability`` for an Inspect model name."""
    provider = _provider(model)
    if provider in SELF_DEPLOYED:
        # a hub id (org/name) names published weights; a local folder or run holds weights only
        # the submitter has
        rest = model.split("/", 1)[1] if "/" in model else ""
        hub_id = provider != "local" and re.fullmatch(r"[\w.-]+/[\w.-]+", rest) is not None
        published = hub_id or model == "local/default"
        availability = "open_weights" if published else "unknown"
        return {"deployment_type": "self_deployed", "model_availability": availability}
    if provider in CLOSED_APIS:
        return {"deployment_type": "externally_managed", "model_availability": "closed_weights"}
    return {"deployment_type": "unknown", "model_availability": "unknown"}


def model_info(entry: dict[str, Any]) -> dict[str, Any]:
    """EEE ``model_info`` for the evaluated model (a run, the default model, or a provider's)."""
    model = str(entry.get("model", ""))
    run = entry.get("run") or {}
    if run.get("run_dir"):
        model_id = f"embench-runs/{run['run_dir']}"
        developer = "embench run (fine-tuned)"
    elif model == "local/default":
        model_id, developer = DEFAULT_MODEL_ID, "HuggingFaceTB"
    elif is_local(model):
        model_id, developer = local_ref(model).strip("/"), "unknown"
    else:
        model_id = model.split("/", 1)[1] if "/" in model else model
        developer = _provider(model)
    details = {
        **_deployment(model),
        "inspect_model": model,
        **{k: run.get(k) for k in ("trainer", "base_model", "domain", "reward", "seed")},
        "mitigation": run.get("mitigation"),
    }
    return {
        "name": str(entry.get("name") or model),
        "id": model_id,
        "developer": developer,
        "inference_platform": "local (embench provider)" if is_local(model) else _provider(model),
        "additional_details": _strings(details),
    }


def scoring_details(entry: dict[str, Any]) -> dict[str, str]:
    """How the judge scored, from the log's ``judging`` record: the methods behind each rubric's
    scores (counted), what each means, and the number-mass rule where a method applied it."""
    judging = entry.get("judging") or {}
    methods: dict[str, dict[str, int]] = judging.get("methods") or {}
    if not methods:
        return {"scoring": "not recorded in this entry (made before embench recorded it)"}
    used: Counter[str] = Counter()
    for counts in methods.values():
        used.update(counts)
    details = {
        f"{rubric}_methods": ", ".join(f"{method} {n}" for method, n in counts.items())
        for rubric, counts in methods.items()
    }
    details["scoring"] = "; ".join(
        f"{method}: {METHOD_DESCRIPTIONS.get(method, 'a method this embench does not know')}"
        for method in sorted(used)
    )
    min_mass = judging.get("min_mass")
    if set(used) & MASS_METHODS:
        details["mass_rule"] = (
            "not recorded"
            if min_mass is None
            else f"no score when the judge's probability on the numbers 0-100 is below "
            f"{float(min_mass):g}"
        )
    return details


def judge_info(entry: dict[str, Any]) -> dict[str, Any]:
    """EEE ``judge_config`` for the log's grader."""
    judge = str(entry.get("judge", ""))
    default = judge == "local/default"
    return {
        "model_info": {
            "name": judge,
            "id": DEFAULT_MODEL_ID if default else judge.split("/", 1)[-1],
            "developer": "HuggingFaceTB" if default else _provider(judge),
            "inference_platform": _provider(judge),
            "additional_details": {**_deployment(judge), "inspect_model": judge},
        },
        "temperature": 0.0,
        "additional_details": scoring_details(entry),
    }


def _prompt(
    names: tuple[str, ...], rubrics: dict[str, list[str]] | None, entry: dict[str, Any]
) -> str:
    """The rubric texts the judge was sent (several when questions override them)."""
    if rubrics is None:
        fingerprint = str(entry.get("fingerprint") or "")[:12]
        return (
            f"the rubrics of question set '{entry.get('question_set', '')}' (fingerprint "
            f"{fingerprint}…), which is not in this checkout"
        )
    parts = []
    for name in names:
        texts = rubrics.get(name) or []
        for index, text in enumerate(texts, 1):
            variant = f", {index} of {len(texts)}" if len(texts) > 1 else ""
            parts.append(f"[{name} rubric{variant}]\n{text}")
    return "\n\n".join(parts)


def _marks(entry: dict[str, Any]) -> dict[str, str]:
    """What the exported record is not: a whole question set, or judged at all."""
    metrics = entry.get("metrics") or {}
    marks = {}
    if entry.get("partial"):
        marks["partial"] = f"the log holds {entry['partial']}"
    if not metrics.get("scored"):
        marks["unscored"] = (
            f"the judge scored none of the {int(metrics.get('answers') or 0)} answers: no rate is "
            "defined (plumbing only)"
        )
    return marks


def _result(
    entry: dict[str, Any],
    name: str,
    source_data: dict[str, Any],
    rubrics: dict[str, list[str]] | None,
) -> dict[str, Any] | None:
    """One EEE evaluation result; None when the metric has no value (no scored answers)."""
    metrics = entry.get("metrics") or {}
    score = metrics.get(name)
    if name == "scored_share" and metrics.get("answers"):
        score = float(metrics.get("scored") or 0) / float(metrics["answers"])
    if score is None:
        return None
    description, lower, low, high, names = RESULTS[name]
    thresholds = entry.get("thresholds") or {
        "aligned": ALIGNED_THRESHOLD,
        "coherent": COHERENT_THRESHOLD,
    }
    uncertainty: dict[str, Any] = {"num_samples": int(metrics.get("answers") or 0)}
    ci_low, ci_high = metrics.get(f"{name}_ci_low"), metrics.get(f"{name}_ci_high")
    if ci_low is not None and ci_high is not None:
        uncertainty["confidence_interval"] = {
            "lower": ci_low,
            "upper": ci_high,
            "confidence_level": CONFIDENCE_LEVEL,
            "method": "percentile bootstrap, questions resampled",
        }
        uncertainty["num_bootstrap_samples"] = N_BOOTSTRAP
    generation = entry.get("generation") or {}
    return {
        "evaluation_name": f"{entry.get('task', 'misalignment')}/{name}",
        "source_data": source_data,
        "evaluation_timestamp": str((entry.get("log") or {}).get("created", "")),
        "metric_config": {
            "evaluation_description": description.format(**thresholds),
            "lower_is_better": lower,
            "score_type": "continuous",
            "min_score": low,
            "max_score": high,
            "llm_scoring": {
                "judges": [judge_info(entry)],
                "input_prompt": _prompt(names, rubrics, entry),
                "additional_details": _strings(
                    {"thresholds": thresholds, "fingerprint": entry.get("fingerprint")}
                ),
            },
        },
        "score_details": {
            "score": score,
            "details": _strings(
                {**{k: metrics.get(k) for k in ("answers", "scored", "unscored")}, **_marks(entry)}
            ),
            "uncertainty": uncertainty,
        },
        "generation_config": {
            "generation_args": {
                k: generation[k] for k in ("temperature", "top_p", "max_tokens") if k in generation
            },
            "additional_details": _strings(
                {
                    k: v
                    for k, v in generation.items()
                    if k not in ("temperature", "top_p", "max_tokens")
                }
            ),
        },
    }


def sent_rubrics(entry: dict[str, Any]) -> dict[str, list[str]] | None:
    """The rubric texts the judge was sent: those of the question set the entry's log names,
    found by its fingerprint (None: that set is not in this checkout)."""
    named = {**(entry.get("judging") or {}), "question_set": entry.get("question_set")}
    try:
        return rubric_texts(find_question_set(named, str(entry.get("fingerprint") or "")))
    except EmbenchError:
        return None


def export_eee(entry: dict[str, Any], retrieved: datetime | None = None) -> dict[str, Any]:
    """An EEE record for one entry (stored, or built from a log without a board)."""
    stamp = str(int((retrieved or datetime.now(UTC)).timestamp()))
    info = model_info(entry)
    source_data = {
        "dataset_name": f"embench {entry.get('question_set', 'general')} question set",
        "source_type": "other",
        "additional_details": _strings(
            {
                "question_set_version": entry.get("question_set_version"),
                "fingerprint": entry.get("fingerprint"),
                "questions": entry.get("questions"),
                "samples_per_question": entry.get("samples_per_question"),
            }
        ),
    }
    if not (entry.get("metrics") or {}).get("answers"):
        raise EmbenchError("nothing to export: the log holds no answers")
    rubrics = sent_rubrics(entry)
    results = [r for name in RESULTS if (r := _result(entry, name, source_data, rubrics))]
    log = entry.get("log") or {}
    run_dir = (entry.get("run") or {}).get("run_dir")
    record: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "evaluation_id": f"embench-{entry.get('task', 'misalignment')}/{info['id']}/{stamp}",
        "evaluation_timestamp": str(log.get("created", "")),
        "retrieved_timestamp": stamp,
        "source_metadata": {
            "source_name": f"embench leaderboard {entry.get('board') or '(no board)'}",
            "source_type": "evaluation_run",
            "source_organization_name": SOURCE_ORGANIZATION,
            # a submitter evaluating their own training run is its developer
            "evaluator_relationship": "first_party" if run_dir else "third_party",
            "additional_details": _strings(
                {
                    **{k: entry.get(k) for k in ("name", "submitted_at", "notes", "board")},
                    **_marks(entry),
                }
            ),
        },
        "eval_library": {
            "name": "inspect_ai",
            "version": str(log.get("inspect_ai") or "unknown"),
            "additional_details": _strings(
                {
                    "task": entry.get("task"),
                    "task_version": entry.get("task_version"),
                    **{
                        k: v
                        for k, v in (entry.get("judging") or {}).items()
                        if k not in ("methods", "min_mass")
                    },
                    "embench": entry.get("embench") or __version__,
                    # the log's identity, for deduplication by aggregators
                    "inspect_eval_id": log.get("eval_id"),
                    "inspect_run_id": log.get("run_id"),
                    "log_sha256": log.get("sha256"),
                    "samples_sha256": log.get("samples_sha256"),
                }
            ),
        },
        "model_info": info,
        "evaluation_results": results,
    }
    return record
