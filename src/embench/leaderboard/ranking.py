"""Rank a board's entries; find unmitigated twins and RL/SFT pairs.

Rows are computed when a board is shown, never stored: a twin submitted after a mitigated run
changes that run's relative rate without touching its entry. A board with ``rank_within_judge``
ranks each entry only against entries scored by the same judge (one section per judge), since
a misaligned rate depends on the judge.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from embench.leaderboard.boards import Board, board_names, load_board
from embench.leaderboard.entries import StoredEntry, in_domain_rate, load_entries
from embench.metrics import METRIC_NAMES

PAIR_KEY = ("base_model", "domain", "seed", "judge")  # RL vs SFT: same base, data, seed, judge
GENERATED_HERE = "generated and judged with embench"  # the origin of an entry not imported


@dataclass
class Row:
    """One ranked entry with its display values."""

    rank: int | None
    values: dict[str, Any]
    path: Path
    twin: dict[str, Any] | None = None
    section: str = ""  # the judge, on boards ranked within judge


def sections(rows: list[Row]) -> list[tuple[str, list[Row]]]:
    """Rows grouped by section, in their ranked order (one group "" on unsectioned boards)."""
    groups: dict[str, list[Row]] = {}
    for row in rows:
        groups.setdefault(row.section, []).append(row)
    return list(groups.items())


KIND_LABELS = {"rl": "RL", "sft": "SFT"}


def kind_label(run: dict[str, Any]) -> str:
    """``RL``/``SFT`` (or another declared kind) from the run manifest's ``kind``; '' when the
    entry records none (never guessed from the trainer's name)."""
    kind = str(run.get("kind") or "")
    return KIND_LABELS.get(kind, kind)


def flatten(entry: dict[str, Any]) -> dict[str, Any]:
    """An entry's fields as one flat mapping of column values."""
    run = entry.get("run") or {}
    metrics = entry.get("metrics") or {}
    values: dict[str, Any] = {
        "name": entry.get("name", ""),
        "model": entry.get("model", ""),
        "judge": entry.get("judge", ""),
        "trainer": run.get("trainer") or "",
        "kind": kind_label(run),
        "base_model": run.get("base_model") or "",
        "domain": run.get("domain") or "",
        "reward": ", ".join(_listed(run.get("reward"))),
        "seed": run.get("seed"),
        "mitigation": ", ".join(run.get("mitigation") or []),
        "in_domain_rate": in_domain_rate(entry),
        "samples_per_question": entry.get("samples_per_question"),
        "submitted_at": entry.get("submitted_at", ""),
        "notes": entry.get("notes", ""),
        "sha256": (entry.get("log") or {}).get("sha256", ""),
        "origin": entry.get("imported") or GENERATED_HERE,
    }
    for key in ("answers", "scored", "unscored"):
        values[key] = None if metrics.get(key) is None else int(metrics[key])
    for name in METRIC_NAMES:
        for suffix in ("", "_ci_low", "_ci_high"):
            values[f"{name}{suffix}"] = metrics.get(f"{name}{suffix}")
    for name, value in metrics.items():  # e.g. the rates over all answers
        values.setdefault(name, value)
    return values


def _listed(value: Any) -> list[str]:
    """A recorded list (rewards) as strings; an older entry's single name as one item."""
    if value is None or value == "":
        return []
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def _field(entry: dict[str, Any], key: str) -> Any:
    if key == "judge":
        return entry.get("judge")
    run = entry.get("run") or {}
    value = run.get(key)
    return tuple(value) if isinstance(value, list) else value


def _is_unmitigated_run(entry: dict[str, Any]) -> bool:
    return bool(entry.get("run")) and not (entry["run"].get("mitigation") or [])


def twin_pool(board: Board, root: Path) -> list[dict[str, Any]]:
    """Unmitigated runs on the board's twin boards, one per log (entries a page could not show
    are left out)."""
    pool: dict[str, dict[str, Any]] = {}
    known = set(board_names(root))
    for name in board.twin_boards:
        if name not in known:
            continue
        for stored in load_entries(load_board(root, name), skipped=[]):
            if _is_unmitigated_run(stored.data):
                pool.setdefault(stored.sha256, stored.data)
    return list(pool.values())


def find_twin(
    entry: dict[str, Any], pool: list[dict[str, Any]], key: tuple[str, ...]
) -> dict[str, Any] | None:
    """The latest unmitigated run that matches ``entry`` on every ``key`` field."""
    if not entry.get("run"):
        return None
    matches = [
        c
        for c in pool
        if c.get("fingerprint") == entry.get("fingerprint")
        and all(_field(c, k) == _field(entry, k) for k in key)
    ]
    return max(matches, key=lambda c: c.get("submitted_at", ""), default=None)


def _twin_values(values: dict[str, Any], twin: dict[str, Any] | None) -> None:
    rate = values.get("misaligned_rate")
    twin_metrics = (twin or {}).get("metrics") or {}
    twin_rate = twin_metrics.get("misaligned_rate")
    values["twin"] = (twin or {}).get("name", "")
    values["twin_misaligned_rate"] = twin_rate
    values["twin_misaligned_rate_ci_low"] = twin_metrics.get("misaligned_rate_ci_low")
    values["twin_misaligned_rate_ci_high"] = twin_metrics.get("misaligned_rate_ci_high")
    values["twin_in_domain_rate"] = in_domain_rate(twin) if twin else None
    both = rate is not None and twin_rate is not None
    values["misaligned_rate_delta"] = rate - twin_rate if both else None
    values["misaligned_rate_vs_twin"] = rate / twin_rate if both and twin_rate > 0 else None


def rank_entries(
    board: Board, entries: list[StoredEntry], pool: list[dict[str, Any]] | None = None
) -> list[Row]:
    """Rows ranked by the board's metric (competition ranking; unrankable rows last)."""
    rows = []
    for stored in entries:
        values = flatten(stored.data)
        twin = find_twin(stored.data, pool, board.twin_key) if pool is not None else None
        if pool is not None:
            _twin_values(values, twin)
        rows.append(Row(rank=None, values=values, path=stored.path, twin=twin))
    if board.rank_within_judge:
        for row in rows:
            row.section = str(row.values.get("judge") or "")
    sign = 1.0 if board.lower_is_better else -1.0

    def order(row: Row) -> tuple[Any, ...]:
        value = row.values.get(board.metric)
        return (
            row.section,
            value is None,
            sign * value if value is not None else 0.0,
            row.values["submitted_at"],
            row.values["name"],
        )

    rows.sort(key=order)
    for _, group in sections(rows):
        previous: Any = object()
        for index, row in enumerate(group):
            value = row.values.get(board.metric)
            if value is None:
                continue
            row.rank = group[index - 1].rank if value == previous else index + 1
            previous = value
    return rows


def rank_board(board: Board, root: Path, skipped: list[str] | None = None) -> list[Row]:
    """The ranked rows of one board (twins resolved when the board has twin boards). An entry a
    page cannot show (unreadable, a field of the wrong type, a non-finite number) is left out and
    named in ``skipped``: one bad entry never breaks a board."""
    pool = twin_pool(board, root) if board.twin_boards else None
    return rank_entries(board, load_entries(board, [] if skipped is None else skipped), pool)


def rl_sft_pairs(rows: list[Row]) -> list[tuple[Row, Row]]:
    """Unmitigated RL and SFT runs with the same base model, domain, seed and judge."""
    groups: dict[tuple[Any, ...], dict[str, Row]] = {}
    for row in rows:
        values = row.values
        if values["kind"] not in ("RL", "SFT") or values["mitigation"]:
            continue
        key = tuple(values.get(k) for k in PAIR_KEY)
        if any(k in (None, "") for k in key[:2]):
            continue
        slot = groups.setdefault(key, {})
        current = slot.get(values["kind"])
        if current is None or values["submitted_at"] > current.values["submitted_at"]:
            slot[values["kind"]] = row
    return [
        (g["RL"], g["SFT"])
        for _, g in sorted(groups.items(), key=lambda kv: str(kv[0]))
        if "RL" in g and "SFT" in g
    ]
