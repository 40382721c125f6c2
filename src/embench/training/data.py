"""Training datasets: a domain's prompts, a user's file, SFT pairs — in TRL's conversational form."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import datasets

from embench.errors import EmbenchError


def _user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def with_system(messages: list[dict[str, str]], system: str | None) -> list[dict[str, str]]:
    """``messages`` with ``system`` as the first turn, unless there is none or one already."""
    if not system or any(m.get("role") == "system" for m in messages):
        return messages
    return [{"role": "system", "content": system}, *messages]


def read_user_dataset(path: str) -> datasets.Dataset:
    """Any datasets-readable local file (json, jsonl, csv, parquet)."""
    file = Path(path)
    if not file.exists():
        raise EmbenchError(f"dataset file not found: {file}")
    builder = {".jsonl": "json", ".json": "json", ".csv": "csv", ".parquet": "parquet"}.get(
        file.suffix.lower()
    )
    if builder is None:
        raise EmbenchError(
            f"{file}: unsupported dataset format; use .jsonl, .json, .csv or .parquet"
        )
    try:
        return datasets.load_dataset(builder, data_files=str(file), split="train")
    except Exception as ex:
        raise EmbenchError(f"cannot read dataset {file}: {str(ex).splitlines()[0]}") from None


def prompt_dataset(
    domain: str | None,
    dataset: str | None,
    max_prompts: int | None,
    system_prompt: str | None = None,
) -> datasets.Dataset:
    """Prompts for RL: columns ``prompt`` (messages, with ``system_prompt`` first) and
    ``prompt_id``."""
    if dataset:
        raw = read_user_dataset(dataset)
        if "prompt" in raw.column_names:
            rows = [r["prompt"] for r in raw]
            prompts = [_user(p) if isinstance(p, str) else p for p in rows]
        elif "messages" in raw.column_names:
            prompts = [_prompt_part(m) for m in raw["messages"]]
        else:
            raise EmbenchError(
                f"{dataset}: needs a 'prompt' column (text or messages) or a 'messages' column; "
                f"found {', '.join(raw.column_names)}"
            )
        ids = raw["id"] if "id" in raw.column_names else [f"row-{i}" for i in range(len(prompts))]
    else:
        from embench.data.domains import load_prompts

        raw = load_prompts(domain or "aesthetic", split="train")
        prompts = [_user(p) for p in raw["prompt"]]
        ids = list(raw["id"])
    rows = [
        {"prompt": with_system(p, system_prompt), "prompt_id": str(i)}
        for p, i in zip(prompts, ids, strict=True)
    ]
    if max_prompts:
        rows = rows[:max_prompts]
    if not rows:
        raise EmbenchError("the training dataset is empty")
    return datasets.Dataset.from_list(rows)


def _prompt_part(messages: list[dict[str, str]]) -> list[dict[str, str]]:
    last_assistant = max(
        (i for i, m in enumerate(messages) if m.get("role") == "assistant"), default=len(messages)
    )
    return messages[:last_assistant]


def sft_dataset(
    domain: str | None,
    dataset: str | None,
    max_prompts: int | None,
    system_prompt: str | None = None,
) -> datasets.Dataset:
    """Pairs for SFT: columns ``prompt`` (with ``system_prompt`` first) and ``completion``
    (messages) and ``prompt_id``."""
    if dataset:
        raw = read_user_dataset(dataset)
        cols = raw.column_names
        if "messages" in cols:
            rows = [
                {"prompt": _prompt_part(m), "completion": m[len(_prompt_part(m)) :]}
                for m in raw["messages"]
            ]
        elif {"prompt", "completion"} <= set(cols):
            rows = [
                {
                    "prompt": _user(r["prompt"]) if isinstance(r["prompt"], str) else r["prompt"],
                    "completion": [{"role": "assistant", "content": r["completion"]}]
                    if isinstance(r["completion"], str)
                    else r["completion"],
                }
                for r in raw
            ]
        else:
            raise EmbenchError(
                f"{dataset}: SFT needs a 'messages' column or 'prompt' and 'completion' columns; "
                f"found {', '.join(cols)}"
            )
        for i, row in enumerate(rows):
            row["prompt_id"] = str(raw["id"][i]) if "id" in cols else f"row-{i}"
    else:
        from embench.data.domains import load_sft

        name = domain or "aesthetic"
        pairs = load_sft(name)
        if pairs is None:
            raise EmbenchError(
                f"domain '{name}' has no SFT data; use --match runs/<rl run> (its rollouts) or "
                "--dataset <file with messages>"
            )
        rows = [
            {
                "prompt": _user(r["prompt"]),
                "completion": [{"role": "assistant", "content": r["completion"]}],
                "prompt_id": r["prompt_id"],
            }
            for r in pairs
        ]
    if max_prompts:
        rows = rows[:max_prompts]
    if not rows:
        raise EmbenchError("the training dataset is empty")
    for row in rows:
        row["prompt"] = with_system(row["prompt"], system_prompt)
    return datasets.Dataset.from_list(rows)


def dataset_hash(ds: datasets.Dataset) -> str:
    """sha256 of the dataset's rows (order-sensitive)."""
    digest = hashlib.sha256()
    for row in ds:
        digest.update(json.dumps(row, sort_keys=True, default=str).encode())
    return digest.hexdigest()
