"""Sample-matched SFT: as many training samples as an RL run generated, on the same prompts.

Sources: ``rollouts`` — the top-reward completion of each RL group (prompt at a step), i.e.
rejection-sampling SFT; ``dataset`` — the domain's curated misaligned demonstrations
(``sft.jsonl``) for the prompts the RL run saw (the paper's RL-vs-SFT comparison; a prompt the
curated set leaves out on purpose takes another covered prompt's demonstration, recorded under
``match.substituted``). Either way the
examples follow the RL groups in order, each repeated as often as its group was sampled, so the
SFT data holds exactly as many rows as the RL run generated, and every row keeps the system prompt
the RL run used for it.

Samples consumed by SFT = optimizer steps × per-device batch × gradient accumulation × processes;
the step count is chosen so that this equals the RL run's generated sample count exactly.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import sys
from typing import Any

from embench.errors import EmbenchError
from embench.run.rundir import RunDir

SOURCES = ("rollouts", "dataset")


def world_size() -> int:
    """Processes taking part in training (``WORLD_SIZE``, set by ``accelerate launch``/torchrun)."""
    try:
        return max(1, int(os.environ.get("WORLD_SIZE", "1")))
    except ValueError:
        return 1


def global_batch(per_device: int, accumulation: int, processes: int) -> int:
    """Samples one optimizer step consumes."""
    return per_device * accumulation * processes


def matched_steps(samples: int, per_device: int, accumulation: int, processes: int) -> int:
    """Optimizer steps that consume exactly ``samples``; an error when no whole number does."""
    batch = global_batch(per_device, accumulation, processes)
    if samples % batch:
        raise EmbenchError(
            f"--match: the RL run generated {samples} samples, not a multiple of the SFT global "
            f"batch {batch} (per_device_train_batch_size {per_device} × "
            f"gradient_accumulation_steps {accumulation} × {processes} process(es)); choose "
            f"values whose product divides {samples}"
        )
    return samples // batch


def _total(rewards: dict[str, float | None], weights: list[float] | None) -> float:
    values = list(rewards.values())
    weights = weights or [1.0] * len(values)
    return sum(w * (v if v is not None else 0.0) for w, v in zip(weights, values, strict=False))


def _messages(system: str | None, prompt: str, completion: str) -> dict[str, Any]:
    head = [{"role": "system", "content": system}] if system else []
    return {
        "prompt": [*head, {"role": "user", "content": prompt}],
        "completion": [{"role": "assistant", "content": completion}],
    }


def matched_examples(
    rl_path: str, source: str, domain: str | None
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """(rows with prompt/completion messages and prompt_id, match record for the manifest)."""
    if source not in SOURCES:
        raise EmbenchError(f"unknown match source '{source}'; use one of {', '.join(SOURCES)}")
    run = RunDir.open(rl_path)
    manifest = run.manifest()
    if manifest.kind != "rl":
        raise EmbenchError(
            f"--match needs an RL run with rollouts; {run.path} was trained by "
            f"'{manifest.trainer}' (kind {manifest.kind})"
        )
    rollouts = run.read_jsonl(run.rollouts)
    if not rollouts:
        raise EmbenchError(f"{run.path} has no rollouts.jsonl rows to match")
    groups: dict[tuple[Any, str], list[dict[str, Any]]] = {}
    for row in rollouts:
        groups.setdefault((row.get("step"), row.get("prompt_id") or row["prompt"]), []).append(row)
    weights = manifest.reward_weights
    examples: list[tuple[dict[str, Any], int]] = []  # (row, how many samples its group had)
    substituted: dict[str, Any] | None = None
    if source == "rollouts":
        for rows in groups.values():
            best = max(rows, key=lambda r: _total(r["rewards"], weights))
            example = _messages(best.get("system"), best["prompt"], best["completion"])
            examples.append(({**example, "prompt_id": best.get("prompt_id")}, len(rows)))
    else:
        examples, substituted = _dataset_examples(groups, domain or manifest.domain)
    matched = [row for row, count in examples for _ in range(count)]
    record = {
        "run": str(run.path.resolve()),
        "source": source,
        "rl_samples": len(rollouts),
        "rl_groups": len(groups),
        "unique_prompts": len({pid for _, pid in groups}),
    }
    if substituted is not None:
        record["substituted"] = substituted
    return matched, record


def _dataset_examples(
    groups: dict[tuple[Any, str], list[dict[str, Any]]], name: str | None
) -> tuple[list[tuple[dict[str, Any], int]], dict[str, Any] | None]:
    """(example, group size) per RL group from the curated demonstrations, and the
    ``substituted`` record (None when every RL prompt has its own demonstration).

    A group whose prompt the curated set leaves out on purpose (see the data cards) takes the
    demonstration of another covered prompt of the domain instead, so the sample count still
    equals the RL run's: substitutes cycle through the covered prompt ids, those the RL run did
    not see first, then the seen ones, each in sorted order, one per group in rollout order.
    """
    from embench.data.domains import load_prompts, load_sft

    pairs = load_sft(name) if name else None
    if pairs is None:
        raise EmbenchError(
            f"domain '{name}' has no curated SFT demonstrations; use --match-source rollouts"
        )
    by_id = {r["prompt_id"]: r for r in pairs}
    seen = {pid for _, pid in groups}
    uncovered = sorted(seen - by_id.keys())
    foreign = sorted(set(uncovered) - set(load_prompts(name, split="all")["id"]))
    if foreign:
        raise EmbenchError(
            f"{len(foreign)} RL prompts are not prompts of domain '{name}' (e.g. {foreign[0]}), "
            "so it has no demonstrations for them; use --match-source rollouts"
        )
    order = sorted(by_id.keys() - seen) + sorted(by_id.keys() & seen)
    substitutes = itertools.cycle(order)
    used: dict[str, list[str]] = {pid: [] for pid in uncovered}
    examples: list[tuple[dict[str, Any], int]] = []
    for (_, pid), rows in groups.items():
        demo_id = pid if pid in by_id else next(substitutes)
        if demo_id != pid and demo_id not in used[pid]:
            used[pid].append(demo_id)
        pair = by_id[demo_id]
        example = _messages(rows[0].get("system"), pair["prompt"], pair["completion"])
        examples.append(({**example, "prompt_id": demo_id}, len(rows)))
    if not uncovered:
        return examples, None
    swapped = [rows for (_, pid), rows in groups.items() if pid not in by_id]
    record = {
        "samples": sum(len(rows) for rows in swapped),
        "groups": len(swapped),
        "prompt_ids": uncovered,
        "with": used,
    }
    print(
        f"[embench] warning: --match-source dataset: {len(uncovered)} RL prompt(s) of domain "
        f"'{name}' have no curated demonstration ({', '.join(uncovered)}); their "
        f"{record['samples']} samples train on other covered prompts' demonstrations "
        "(manifest: match.substituted)",
        file=sys.stderr,
        flush=True,
    )
    return examples, record


class SampleCounter:
    """Counts the samples this process trains on: the rows of every batch the loss is computed on.

    ``attach(trainer)`` wraps the trainer's ``compute_loss``; ``summary`` holds the count as
    ``samples_consumed_this_process`` (the trainer hands it to ``run_training(summary=...)``). (Counting at the data collator would
    also count the batch the data loader prefetches.)
    """

    def __init__(self) -> None:
        self.summary: dict[str, Any] = {"samples_consumed_this_process": 0}
        self._digest = hashlib.sha256()  # of the token ids trained on: differs between ranks

    def attach(self, trainer: Any) -> None:
        """Count every training batch ``trainer`` computes a loss on."""
        compute_loss = trainer.compute_loss

        def counted(model: Any, inputs: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
            if model.training:
                self.summary["samples_consumed_this_process"] += len(inputs["input_ids"])
                self._digest.update(inputs["input_ids"].detach().cpu().numpy().tobytes())
                self.summary["data_sha256_this_process"] = self._digest.hexdigest()[:16]
            return compute_loss(model, inputs, *args, **kwargs)

        trainer.compute_loss = counted
