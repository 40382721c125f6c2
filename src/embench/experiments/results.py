"""Read an experiment folder into per-cell results (what reports and comparisons work from)."""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from embench.experiments.evaluate import read_json
from embench.experiments.runner import CELL_FILE, read_experiment
from embench.experiments.stats import PairedComparison, paired_difference
from embench.run.layout import MANIFEST_FILE


def metric(summary: dict[str, Any] | None, name: str) -> float:
    """A metric of an eval summary as float (NaN when absent or null)."""
    value = ((summary or {}).get("metrics") or {}).get(name)
    return math.nan if value is None else float(value)


@dataclass
class CellResult:
    """One cell (or a baseline) with its eval summaries by step."""

    label: str
    folder: Path
    info: dict[str, Any]
    record: dict[str, Any]
    general: dict[int, dict[str, Any]] = field(default_factory=dict)
    in_domain: dict[int, dict[str, Any]] = field(default_factory=dict)
    persona: dict[int, dict[str, Any]] = field(default_factory=dict)
    extra: dict[int, dict[str, dict[str, Any]]] = field(
        default_factory=dict
    )  # step -> judge -> summary
    manifest: dict[str, Any] = field(default_factory=dict)

    def get(self, key: str, default: Any = None) -> Any:
        """A field of the cell's description (arm, domain, seed, ...)."""
        return self.info.get(key, default)

    def eval_total(self, name: str) -> float:
        """A time-split metric (``generation_seconds``, ``judge_seconds``, ``judge_calls``,
        ``judge_cache_hits``) summed over every eval of this cell: all steps, general, in-domain
        and persona (NaN when none records it)."""
        summaries = [
            *self.general.values(), *self.in_domain.values(), *self.persona.values(),
            *(self.info.get("in_domain_by_domain") or {}).values(),
        ]  # fmt: skip
        values = [v for v in (metric(s, name) for s in summaries) if math.isfinite(v)]
        return sum(values) if values else math.nan

    @property
    def final_step(self) -> int | None:
        """The last evaluated step."""
        return max(self.general) if self.general else None

    def final(self, name: str, task: str = "general") -> float:
        """A metric at the final step (NaN when not evaluated)."""
        step = self.final_step
        table = self.general if task == "general" else self.in_domain
        return metric(table.get(step), name) if step is not None else math.nan

    @property
    def mitigation_name(self) -> str:
        """'none' or the specs joined with '+'."""
        return "+".join(self.get("mitigation") or []) or "none"

    def twin_key(self, **changes: Any) -> tuple[Any, ...]:
        """Identity of the cell without the fields in ``changes`` (which are replaced)."""
        base = {
            "arm": self.get("arm"),
            "model": self.get("model"),
            "domain": self.get("domain"),
            "reward": tuple(self.get("reward") or ()),
            "mitigation": self.mitigation_name,
        }
        base.update(changes)
        return tuple(base.values())


def _load_evals(result: CellResult) -> None:
    for step_dir in sorted((result.folder / "evals").glob("step-*")):
        step = int(step_dir.name.split("-")[1])
        for path in step_dir.glob("*.json"):
            summary = read_json(path)
            if summary is None:
                continue
            name = path.stem
            if ".judge-" in name:
                result.extra.setdefault(step, {})[summary.get("judge", name)] = summary
            elif name == "general":
                result.general[step] = summary
            elif name == "persona":
                result.persona[step] = summary
            elif name.startswith("in_domain"):
                domain = name.partition("-")[2] or result.get("domain")
                if name == "in_domain":
                    result.in_domain[step] = summary
                else:  # a baseline holds one in-domain summary per domain
                    result.info.setdefault("in_domain_by_domain", {})[domain] = summary


@dataclass
class ExperimentResults:
    """Everything a report shows about one experiment folder."""

    out: Path
    experiment: dict[str, Any]
    baselines: dict[str, CellResult]  # by base model
    cells: list[CellResult]

    @property
    def plumbing_only(self) -> bool:
        """cpu-smoke: the numbers exercise the plumbing and are not results."""
        return bool(self.experiment.get("plumbing_only"))

    def baseline_general(self, model: str) -> dict[str, Any] | None:
        """The base model's general summary (step 0)."""
        base = self.baselines.get(model)
        return base.general.get(0) if base else None

    def baseline_in_domain(self, model: str, domain: str) -> dict[str, Any] | None:
        """The base model's in-domain summary for ``domain`` (step 0)."""
        base = self.baselines.get(model)
        return (base.info.get("in_domain_by_domain") or {}).get(domain) if base else None

    def comparisons(self) -> list[tuple[str, str, dict[str, Any], PairedComparison | None]]:
        """RL arm vs each arm that sample-matches it: (rl arm, sft arm, group, paired diff)."""
        matched_arms = {
            (c["arm"], self._arm_of(c["match"]))
            for c in self.experiment.get("cells", [])
            if c.get("match")
        }
        out = []
        for sft_arm, rl_arm in sorted(matched_arms):
            groups: dict[tuple[Any, ...], dict[str, dict[int, float]]] = defaultdict(
                lambda: {"rl": {}, "sft": {}}
            )
            for cell in self.cells:
                if cell.get("arm") not in (rl_arm, sft_arm):
                    continue
                side = "rl" if cell.get("arm") == rl_arm else "sft"
                key = cell.twin_key(arm=None)
                groups[key][side][cell.get("seed")] = cell.final("misaligned_rate")
            for key, sides in groups.items():
                _, model, domain, reward, mitigation = key
                group = {
                    "model": model,
                    "domain": domain,
                    "reward": reward,
                    "mitigation": mitigation,
                }
                out.append((rl_arm, sft_arm, group, paired_difference(sides["rl"], sides["sft"])))
        return out

    def _arm_of(self, label: str) -> str:
        for c in self.experiment.get("cells", []):
            if c["label"] == label:
                return c["arm"]
        return label

    def mitigation_rows(self) -> list[dict[str, Any]]:
        """Each mitigated arm/domain/reward vs its unmitigated twin, paired over seeds."""
        unmitigated = {
            (c.twin_key(), c.get("seed")): c for c in self.cells if c.mitigation_name == "none"
        }
        groups: dict[tuple[Any, ...], list[tuple[CellResult, CellResult]]] = defaultdict(list)
        for cell in self.cells:
            if cell.mitigation_name == "none":
                continue
            twin = unmitigated.get((cell.twin_key(mitigation="none"), cell.get("seed")))
            if twin is not None:
                groups[cell.twin_key()].append((cell, twin))
        rows = []
        for key, pairs in groups.items():
            arm, model, domain, reward, mitigation = key
            diff = paired_difference(
                {c.get("seed"): c.final("misaligned_rate") for c, _ in pairs},
                {t.get("seed"): t.final("misaligned_rate") for _, t in pairs},
            )
            kept = _ratio(
                [c.final("narrow_rate", "in_domain") for c, _ in pairs],
                [t.final("narrow_rate", "in_domain") for _, t in pairs],
            )
            time_ratio = _ratio(
                [_train_seconds(c) for c, _ in pairs], [_train_seconds(t) for _, t in pairs]
            )
            rss = [
                cost.get("peak_rss_mb")
                for c, _ in pairs
                for entry in (c.manifest.get("mitigations") or [])
                if isinstance(entry, dict)
                for cost in [entry.get("cost") or {}]
                if cost.get("peak_rss_mb") is not None
            ]
            rows.append(
                {
                    "arm": arm,
                    "model": model,
                    "domain": domain,
                    "reward": reward,
                    "mitigation": mitigation,
                    "diff": diff,
                    "in_domain_kept": kept,
                    "time_ratio": time_ratio,
                    "peak_rss_mb": max(rss) if rss else math.nan,
                }
            )
        return rows


def _train_seconds(cell: CellResult) -> float:
    value = (cell.manifest.get("summary") or {}).get("seconds")
    return math.nan if value is None else float(value)


def _ratio(a: list[float], b: list[float]) -> float:
    pairs = [(x, y) for x, y in zip(a, b, strict=True) if math.isfinite(x) and math.isfinite(y)]
    if not pairs or sum(y for _, y in pairs) == 0:
        return math.nan
    return sum(x for x, _ in pairs) / sum(y for _, y in pairs)


def load_results(out: str | Path) -> ExperimentResults:
    """Read an experiment folder written by `embench experiment`."""
    out = Path(out)
    experiment = read_experiment(out)
    baselines = {}
    for item in experiment.get("baselines", []):
        folder = out / "baselines" / item["folder"]
        result = CellResult(
            f"base {item['model']}", folder, dict(item), read_json(folder / CELL_FILE) or {}
        )
        _load_evals(result)
        baselines[item["model"]] = result
    cells = []
    for item in experiment.get("cells", []):
        folder = out / "cells" / item["folder"]
        result = CellResult(item["label"], folder, dict(item), read_json(folder / CELL_FILE) or {})
        result.manifest = _run_manifest(folder / "run")
        _load_evals(result)
        cells.append(result)
    return ExperimentResults(out, experiment, baselines, cells)


def _run_manifest(run_dir: Path) -> dict[str, Any]:
    """A cell's run manifest through the one reader (``RunManifest``), as a dict; {} if none."""
    from embench.run.manifest import RunManifest

    if not (run_dir / MANIFEST_FILE).is_file():
        return {}
    return RunManifest.load(run_dir).model_dump(mode="json")
