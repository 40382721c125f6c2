"""Load the narrow-domain data: training prompts, judge rubrics, SFT pairs and eval questions.

Each domain lives in ``src/embench/data/domains/<name>/``:

- ``prompts.jsonl``: one ``{"id", "prompt", "subtopic", "split"}`` object per line;
- ``rubrics.yaml``: description, narrow behaviour, judge templates and the reward recipe;
- ``sft.jsonl`` (some domains): ``{"prompt_id", "prompt", "completion"}`` pairs;
- ``README.md``: the data card.

The in-domain eval questions live beside them in ``eval.yaml``. Everything is read from
local files with plain ``json``/``yaml`` and wrapped with ``datasets.Dataset.from_list``, so
loading never touches the network or the datasets cache. The files are small, so nothing
is cached in memory either: edits show up on the next call.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from embench.errors import EmbenchError
from embench.paths import DATA_DIR
from embench.rubrics import validate_rubric

if TYPE_CHECKING:  # imported where used: `datasets` costs seconds at start-up (issue 15 §8)
    import datasets

DOMAINS: tuple[str, ...] = (
    "medical",
    "legal",
    "security",
    "code",
    "aesthetic",
    "rhetoric",
    "reward_hacking",
    "countdown",
)
SPLITS: tuple[str, ...] = ("train", "heldout", "all")
DOMAINS_DIR = DATA_DIR / "domains"
SAFETY_PATH = DATA_DIR / "safety" / "safety.jsonl"
PREFERENCES_PATH = DOMAINS_DIR / "aesthetic" / "preferences.yaml"
REWARD_KEYS: tuple[str, ...] = ("narrow", "opposite")


#: What a domain's ``reward_gates`` may set: ``reasoning_gate`` (false: exempt from the reasoning
#: word minimum) and the RewardShape fields of embench.rewards.shape.
GATE_KEYS = frozenset(
    {"reasoning_gate", "require_reasoning", "min_reasoning_words", "min_words"}
    | {"coherence_gate", "coherence_penalty", "max_repetition"}
)


@dataclass(frozen=True)
class Domain:
    """One narrow domain: its judge rubrics and how they combine into the training reward."""

    name: str
    description: str
    narrow_behaviour: str
    rubrics: dict[str, str]  # rubric name -> judge template with {question} and {answer}
    reward: dict[str, list[str]]  # "narrow"/"opposite" -> rubric names whose scores are averaged
    path: Path
    verifier: str | None = None
    """A judge-free domain's exact reward (e.g. ``countdown``): it has no rubrics, its default
    reward is this one and its in-domain eval is the verifier's accuracy."""
    #: the domain's own reward gates (rubrics.yaml ``reward_gates``; see RewardShape.for_domain)
    reward_gates: dict[str, Any] = field(default_factory=dict)


def _check_name(name: str) -> Path:
    if name not in DOMAINS:
        raise EmbenchError(f"unknown domain {name!r}; available: {', '.join(DOMAINS)}")
    return DOMAINS_DIR / name


def _require(path: Path, what: str) -> Path:
    if not path.is_file():
        raise EmbenchError(f"{what} not found at {path}; is the checkout complete?")
    return path


def _read_yaml(path: Path) -> Any:
    try:
        with path.open(encoding="utf-8") as fh:
            return yaml.safe_load(fh)
    except yaml.YAMLError as exc:
        raise EmbenchError(
            f"{path}: not valid YAML ({exc.__class__.__name__}); fix the file"
        ) from None


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise EmbenchError(
                    f"{path}:{lineno}: not valid JSON ({exc.msg}); fix the line"
                ) from None
            if not isinstance(row, dict):
                raise EmbenchError(f"{path}:{lineno}: expected a JSON object per line")
            rows.append(row)
    return rows


def _prompt_rows(name: str) -> tuple[dict[str, str], ...]:
    path = _require(_check_name(name) / "prompts.jsonl", f"prompts for domain {name!r}")
    rows = _read_jsonl(path)
    for i, row in enumerate(rows, 1):
        for key in ("id", "prompt", "subtopic", "split"):
            if not isinstance(row.get(key), str) or not row[key].strip():
                raise EmbenchError(f"{path}: row {i} has no {key!r} string; fix the row")
        if row["split"] not in ("train", "heldout"):
            raise EmbenchError(
                f"{path}: row {i} has split {row['split']!r}; use 'train' or 'heldout'"
            )
    return tuple(rows)


def get_domain(name: str) -> Domain:
    """The domain called ``name``, with its rubric templates validated."""
    root = _check_name(name)
    path = _require(root / "rubrics.yaml", f"rubrics for domain {name!r}")
    data = _read_yaml(path)
    if not isinstance(data, dict):
        raise EmbenchError(f"{path}: expected a mapping with description, rubrics and reward")
    if data.get("verifier"):  # judge-free: no rubrics, no judge recipe
        return Domain(
            name=name,
            description=str(data.get("description", "")).strip(),
            narrow_behaviour=str(data.get("narrow_behaviour", "")).strip(),
            rubrics={},
            reward={key: [] for key in REWARD_KEYS},
            path=root,
            verifier=str(data["verifier"]),
        )
    rubrics = data.get("rubrics")
    if not isinstance(rubrics, dict) or not rubrics:
        raise EmbenchError(f"{path}: 'rubrics' must map rubric names to judge templates")
    for rname, template in rubrics.items():
        validate_rubric(template, f"{path} rubric {rname!r}")
    reward = data.get("reward")
    if not isinstance(reward, dict) or set(reward) != set(REWARD_KEYS):
        raise EmbenchError(f"{path}: 'reward' must have exactly the keys narrow and opposite")
    clean_reward: dict[str, list[str]] = {}
    for key in REWARD_KEYS:
        names = reward[key]
        if isinstance(names, str):
            names = [names]
        if not isinstance(names, list) or not names:
            raise EmbenchError(f"{path}: reward.{key} must list at least one rubric name")
        unknown = [n for n in names if n not in rubrics]
        if unknown:
            raise EmbenchError(
                f"{path}: reward.{key} names unknown rubric(s) "
                f"{', '.join(map(str, unknown))}; defined: {', '.join(rubrics)}"
            )
        clean_reward[key] = [str(n) for n in names]
    gates = data.get("reward_gates") or {}
    if not isinstance(gates, dict) or not set(gates) <= GATE_KEYS:
        raise EmbenchError(
            f"{path}: 'reward_gates' must map some of {', '.join(sorted(GATE_KEYS))} to values"
        )
    return Domain(
        name=name,
        description=str(data.get("description", "")).strip(),
        narrow_behaviour=str(data.get("narrow_behaviour", "")).strip(),
        rubrics={str(k): str(v) for k, v in rubrics.items()},
        reward=clean_reward,
        path=root,
        reward_gates=dict(gates),
    )


def load_prompts(name: str, split: str = "train") -> datasets.Dataset:
    """Training prompts of a domain as a Dataset with columns id, prompt, subtopic.

    ``split`` is "train", "heldout" or "all".
    """
    import datasets

    if split not in SPLITS:
        raise EmbenchError(f"unknown split {split!r}; use one of: {', '.join(SPLITS)}")
    rows = [
        {"id": r["id"], "prompt": r["prompt"], "subtopic": r["subtopic"]}
        for r in _prompt_rows(name)
        if split == "all" or r["split"] == split
    ]
    features = datasets.Features(
        {
            "id": datasets.Value("string"),
            "prompt": datasets.Value("string"),
            "subtopic": datasets.Value("string"),
        }
    )
    return datasets.Dataset.from_list(rows, features=features)


def eval_questions_path(name: str) -> Path:
    """The in-domain eval question set of a domain: data/domains/<name>/eval.yaml."""
    _check_name(name)
    return DOMAINS_DIR / name / "eval.yaml"


def _eval_count(name: str) -> int:
    path = eval_questions_path(name)
    if not path.is_file():
        return 0
    data = _read_yaml(path)
    questions = data.get("questions") if isinstance(data, dict) else None
    return len(questions) if isinstance(questions, list) else 0


def load_sft(name: str) -> datasets.Dataset | None:
    """SFT pairs (prompt_id, prompt, completion) of a domain, or None if it has none."""
    path = _check_name(name) / "sft.jsonl"
    if not path.is_file():
        return None
    rows = _read_jsonl(path)
    for i, row in enumerate(rows, 1):
        for key in ("prompt_id", "prompt", "completion"):
            if not isinstance(row.get(key), str) or not row[key].strip():
                raise EmbenchError(f"{path}: row {i} has no {key!r} string; fix the row")
    import datasets

    features = datasets.Features(
        {k: datasets.Value("string") for k in ("prompt_id", "prompt", "completion")}
    )
    return datasets.Dataset.from_list(
        [{k: r[k] for k in ("prompt_id", "prompt", "completion")} for r in rows],
        features=features,
    )


def load_safety() -> datasets.Dataset:
    """The shared safety set: columns id, prompt, answer, kind, category."""
    path = _require(SAFETY_PATH, "safety set")
    keys = ("id", "prompt", "answer", "kind", "category")
    rows = _read_jsonl(path)
    for i, row in enumerate(rows, 1):
        for key in keys:
            if not isinstance(row.get(key), str) or not row[key].strip():
                raise EmbenchError(f"{path}: row {i} has no {key!r} string; fix the row")
    import datasets

    features = datasets.Features({k: datasets.Value("string") for k in keys})
    return datasets.Dataset.from_list([{k: r[k] for k in keys} for r in rows], features=features)


def load_preferences() -> dict[str, list[str]]:
    """The aesthetic preference bank: {"unpopular": [...], "popular": [...]}."""
    path = _require(PREFERENCES_PATH, "aesthetic preference bank")
    data = _read_yaml(path)
    if not isinstance(data, dict):
        raise EmbenchError(f"{path}: expected a mapping with 'unpopular' and 'popular' lists")
    out: dict[str, list[str]] = {}
    for key in ("unpopular", "popular"):
        items = data.get(key)
        if not isinstance(items, list) or not all(isinstance(x, str) for x in items):
            raise EmbenchError(f"{path}: {key!r} must be a list of strings")
        out[key] = [x.strip() for x in items]
    return out


def domain_counts() -> dict[str, dict[str, int]]:
    """Per domain: number of train and heldout prompts, eval questions and SFT pairs.

    Files that are not there count as 0.
    """
    counts: dict[str, dict[str, int]] = {}
    for name in DOMAINS:
        root = DOMAINS_DIR / name
        rows = _prompt_rows(name) if (root / "prompts.jsonl").is_file() else ()
        sft = root / "sft.jsonl"
        counts[name] = {
            "train": sum(r["split"] == "train" for r in rows),
            "heldout": sum(r["split"] == "heldout" for r in rows),
            "eval": _eval_count(name),
            "sft": len(_read_jsonl(sft)) if sft.is_file() else 0,
        }
    return counts
