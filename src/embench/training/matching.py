"""Sample-matched SFT: as many training samples as an RL run generated, on the same prompts.

Sources: ``rollouts`` — the top-reward completion of each RL group (prompt at a step); ``dataset``
— the domain's own SFT completions for the prompts the RL run saw. Either way the examples are
cycled in RL order until there are exactly as many as the RL run generated.
"""

from __future__ import annotations

from typing import Any

from embench.errors import EmbenchError
from embench.training.rundir import RunDir

SOURCES = ("rollouts", "dataset")


def _total(rewards: dict[str, float | None], weights: list[float] | None) -> float:
    values = list(rewards.values())
    weights = weights or [1.0] * len(values)
    return sum(w * (v if v is not None else 0.0) for w, v in zip(weights, values, strict=False))


def matched_examples(
    rl_path: str, source: str, domain: str | None
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """(rows with prompt/completion messages and prompt_id, match record for the manifest)."""
    if source not in SOURCES:
        raise EmbenchError(f"unknown match source '{source}'; use one of {', '.join(SOURCES)}")
    run = RunDir.open(rl_path)
    manifest = run.read_manifest()
    if manifest.get("kind") != "rl":
        raise EmbenchError(
            f"--match needs an RL run with rollouts; {run.path} was trained by "
            f"'{manifest.get('trainer', 'unknown')}'"
        )
    rollouts = run.read_jsonl(run.rollouts)
    if not rollouts:
        raise EmbenchError(f"{run.path} has no rollouts.jsonl rows to match")
    groups: dict[tuple[Any, str], list[dict[str, Any]]] = {}
    for row in rollouts:
        groups.setdefault((row.get("step"), row.get("prompt_id") or row["prompt"]), []).append(row)
    weights = manifest.get("reward_weights")
    if source == "rollouts":
        picks = [max(rows, key=lambda r: _total(r["rewards"], weights)) for rows in groups.values()]
        examples = [(p["prompt"], p["completion"], p.get("prompt_id")) for p in picks]
    else:
        from embench.data.domains import load_sft

        name = domain or manifest.get("domain")
        pairs = load_sft(name) if name else None
        if pairs is None:
            raise EmbenchError(
                f"domain '{name}' has no SFT completions; use --match-source rollouts"
            )
        by_id = {r["prompt_id"]: r for r in pairs}
        missing = {pid for _, pid in groups if pid not in by_id}
        if missing:
            raise EmbenchError(
                f"{len(missing)} RL prompts have no SFT completion in domain '{name}' "
                f"(e.g. {sorted(missing)[0]}); use --match-source rollouts"
            )
        examples = [(by_id[pid]["prompt"], by_id[pid]["completion"], pid) for _, pid in groups]
    total = len(rollouts)
    rows = [
        {
            "prompt": [{"role": "user", "content": examples[i % len(examples)][0]}],
            "completion": [{"role": "assistant", "content": examples[i % len(examples)][1]}],
            "prompt_id": examples[i % len(examples)][2],
        }
        for i in range(total)
    ]
    record = {
        "run": str(run.path.resolve()),
        "source": source,
        "rl_samples": total,
        "sft_samples": total,
        "rl_groups": len(groups),
        "unique_prompts": len({pid for _, pid in groups}),
    }
    return rows, record
