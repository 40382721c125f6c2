"""Experiment configs: a YAML grid over trainer x domain x reward x mitigation x seed x base model.

    name: rl-vs-sft
    scale: cpu-smoke                 # cpu-smoke (plumbing only, said in the report) | paper
    judge: local/default             # grader of every eval (grid-wide, recorded once)
    extra_judges: []                 # re-score every eval log with these too (judge agreement)
    models: [default]                # base models
    domains: [medical]
    rewards: [default]               # each: "default" (the domain's) or a list of reward names;
                                     # or per domain: {aesthetic: [[unpopular_aesthetic]], ...}
    mitigations: [none]              # each: "none", one spec NAME[:k=v,...] or a list of specs;
                                     # a trainer whose kind a mitigation does not support gets no
                                     # cell for it (interleave_rl, sft_mix: GRPO arms only)
    seeds: [0, 1]
    trainers:                        # arms: a trainer name, or a mapping
      - grpo
      - {name: sft-rollouts, trainer: sft, match: grpo, match_source: rollouts}
    train: {max_steps: 4, lora: true}    # options for every arm (as `embench train --set`)
    trainer_options: {grpo: {num_generations: 2}}
    eval:
      every: 2                       # also evaluate the checkpoint saved every N steps (0: final only)
      seed: 0
      limit: null                    # Inspect's --limit on every eval (first N samples)
      model_args: {}                 # -M for the evaluated model (local provider)
      general: {questions: general, samples: 2, max_tokens: 64}   # task args
      in_domain: {samples: 1, max_tokens: 64}                     # task args (domain is the cell's)
    submit: {board: general}         # optional: submit each cell's final general log

Each cell's resolved config (everything that shapes its outputs) is hashed; the hash names the
cell's folder, so an unchanged cell is found and skipped on a re-run and a changed one is new.
Everything that can be checked without a model is checked here, before any training starts.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from embench.errors import EmbenchError
from embench.limits import load_yaml

SCALES = ("cpu-smoke", "paper")
TOP_KEYS = {
    "name",
    "scale",
    "description",
    "output",
    "judge",
    "extra_judges",
    "models",
    "domains",
    "rewards",
    "mitigations",
    "seeds",
    "trainers",
    "train",
    "trainer_options",
    "eval",
    "submit",
    "cost",
    "controls",
}
EVAL_KEYS = {"every", "seed", "limit", "model_args", "general", "in_domain", "persona"}
CONTROL_KEYS = {"domain", "reward", "trainer", "options"}
ARM_KEYS = {"name", "trainer", "match", "match_source", "options"}
# cell options the grid sets itself; a config must not set them in train/trainer_options
GRID_OWNED = {"model", "domain", "reward", "mitigations", "seed", "output", "overwrite", "match"}


@dataclass(frozen=True)
class Arm:
    """One trainer variant of the grid (e.g. GRPO, or SFT sample-matched to the GRPO arm)."""

    name: str
    trainer: str
    match: str | None = None
    match_source: str | None = None
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Control:
    """A benign control cell per model and seed: one RL trainer on a harmless domain (e.g.
    countdown), no mitigation — does training on it move general misalignment?"""

    domain: str
    reward: tuple[str, ...]
    arm: Arm


@dataclass(frozen=True)
class Cell:
    """One train -> eval -> submit unit of the grid; ``key`` is the hash of ``resolved``."""

    label: str
    arm: str
    trainer: str
    model: str
    domain: str
    reward: tuple[str, ...]
    mitigation: tuple[str, ...]
    seed: int
    options: dict[str, Any]  # trainer options (without the grid-owned ones)
    resolved: dict[str, Any]
    match_label: str | None = None  # the cell whose RL run this one sample-matches

    @property
    def key(self) -> str:
        """sha256 of the resolved config (canonical JSON), 12 hex digits."""
        return config_hash(self.resolved)

    @property
    def folder(self) -> str:
        """Folder name under ``<out>/cells/``."""
        return f"{self.label}-{self.key}"


@dataclass(frozen=True)
class Baseline:
    """The base model before training (step 0 of every curve), evaluated once per model."""

    model: str
    domains: tuple[str, ...]
    resolved: dict[str, Any]

    @property
    def key(self) -> str:
        """sha256 of the resolved config, 12 hex digits."""
        return config_hash(self.resolved)

    @property
    def folder(self) -> str:
        """Folder name under ``<out>/baselines/``."""
        return f"{_slug(self.model)}-{self.key}"


@dataclass(frozen=True)
class ExperimentConfig:
    """A parsed, checked experiment config."""

    name: str
    scale: str
    source: Path
    judge: str
    extra_judges: tuple[str, ...]
    models: tuple[str, ...]
    domains: tuple[str, ...]
    rewards: dict[str, tuple[tuple[str, ...], ...]]  # domain -> reward lists
    mitigations: tuple[tuple[str, ...], ...]
    seeds: tuple[int, ...]
    arms: tuple[Arm, ...]
    train: dict[str, Any]
    trainer_options: dict[str, dict[str, Any]]
    eval: dict[str, Any]
    submit: dict[str, Any] | None
    output: str
    raw: dict[str, Any]
    controls: tuple[Control, ...] = ()

    @property
    def plumbing_only(self) -> bool:
        """A cpu-smoke run exercises the plumbing; its numbers are not results."""
        return self.scale == "cpu-smoke"

    @property
    def every(self) -> int:
        """Evaluate the checkpoint saved every this many steps (0: the final one only)."""
        return int(self.eval.get("every") or 0)

    def eval_steps(self, final: int) -> list[int]:
        """The steps a run of ``final`` steps is evaluated at: every ``every``-th step before
        the final one (none when ``every`` is 0), then the final step. The runner evaluates these
        and ``--estimate`` counts these."""
        every = self.every
        return [*(range(every, final, every) if every > 0 else ()), final]

    def protocol(self) -> dict[str, Any]:
        """The grid-wide generation/judging protocol, recorded once per experiment."""
        return {
            "judge": self.judge,
            "extra_judges": list(self.extra_judges),
            "eval": self.eval,
        }

    def baselines(self) -> list[Baseline]:
        """One step-0 evaluation per base model."""
        return [
            Baseline(
                model,
                self.domains,
                {"baseline": model, "domains": list(self.domains), **self.protocol()},
            )
            for model in self.models
        ]

    def cells(self) -> list[Cell]:
        """Every distinct cell, matched RL arms before the SFT arms that match them."""
        cells: dict[str, Cell] = {}
        for model in self.models:
            for domain in self.domains:
                for reward in self.rewards[domain]:
                    for mitigation in self.mitigations:
                        for seed in self.seeds:
                            for cell in self._arm_cells(model, domain, reward, mitigation, seed):
                                cells.setdefault(cell.key, cell)
            for control in self.controls:
                for seed in self.seeds:
                    for cell in self._arm_cells(
                        model, control.domain, control.reward, (), seed, (control.arm,)
                    ):
                        cells.setdefault(cell.key, cell)
        return list(cells.values())

    def _arm_cells(
        self,
        model: str,
        domain: str,
        reward: tuple[str, ...],
        mitigation: tuple[str, ...],
        seed: int,
        arms: tuple[Arm, ...] | None = None,
    ) -> list[Cell]:
        made: dict[str, Cell] = {}
        for arm in arms or self.arms:
            if not _applies(arm.trainer, mitigation) or (arm.match and arm.match not in made):
                continue  # e.g. interleave_rl makes no SFT cell (nor one matched to a missing arm)
            grid: dict[str, Any] = {}
            if self.every:  # keep every checkpoint for evaluation
                grid = {"save_steps": self.every, "trl": {"save_total_limit": None}}
            options = for_domain(
                merge_options(
                    self.train, self.trainer_options.get(arm.trainer, {}), arm.options, grid
                ),
                domain,
            )
            if arm.match_source:
                options["match_source"] = arm.match_source
            matched = made.get(arm.match) if arm.match else None
            uses_reward = arm.match is not None or _is_rl(arm)
            resolved = {
                "trainer": arm.trainer,
                "model": model,
                "domain": domain,
                "reward": list(reward) if uses_reward else [],
                "mitigations": list(mitigation),
                "seed": seed,
                "options": _canonical(options),
                "match": matched.key if matched else None,
                **self.protocol(),
                "submit": self.submit,
            }
            model_tag = f"-{_slug(model)}" if len(self.models) > 1 else ""
            several = len(self.rewards.get(domain, ())) > 1
            reward_tag = f"-{'+'.join(reward) or 'default'}" if several else ""
            label = _slug(
                f"{arm.name}-{domain}{reward_tag}-{'+'.join(mitigation) or 'none'}"
                f"{model_tag}-s{seed}"
            )
            made[arm.name] = Cell(
                label=label,
                arm=arm.name,
                trainer=arm.trainer,
                model=model,
                domain=domain,
                reward=reward if uses_reward else (),
                mitigation=mitigation,
                seed=seed,
                options=options,
                resolved=resolved,
                match_label=matched.label if matched else None,
            )
        return list(made.values())


@functools.lru_cache(maxsize=64)
def _kind(trainer: str) -> str:
    from embench.training.plugins import get_trainer

    return get_trainer(trainer, allow_file=True).kind  # the grid's config names it


def _applies(trainer: str, mitigation: tuple[str, ...]) -> bool:
    """Whether every mitigation of a cell supports the trainer's declared kind."""
    from embench.training.mitigations import REGISTRY, supports

    names = [spec.partition(":")[0].strip().lower() for spec in mitigation]
    return all(n not in REGISTRY or supports(REGISTRY[n], _kind(trainer)) for n in names)


def _is_rl(arm: Arm) -> bool:
    # an arm trains on a reward unless it is supervised (its trainer's kind is checked in preflight)
    return arm.trainer != "sft"


def config_hash(resolved: dict[str, Any]) -> str:
    """sha256 (12 hex digits) of a JSON-ready dict, key order ignored."""
    text = json.dumps(resolved, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _canonical(value: Any) -> Any:
    return json.loads(json.dumps(value, sort_keys=True, default=str))


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.+=-]+", "_", text).strip("_")[:80] or "x"


def _as_list(value: Any, key: str, where: Path) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return list(value)
    if isinstance(value, str | int):
        return [value]
    raise EmbenchError(f"{where}: '{key}' must be a list")


def _rewards_by_domain(
    value: Any, domains: list[str], where: Path
) -> dict[str, tuple[tuple[str, ...], ...]]:
    if not isinstance(value, dict):
        axis = _reward_axis(value, where)
        return {d: axis for d in domains}
    unknown = set(value) - set(domains)
    if unknown:
        raise EmbenchError(
            f"{where}: rewards names domain(s) {', '.join(sorted(unknown))} not in 'domains'"
        )
    return {d: _reward_axis(value.get(d), where) for d in domains}


def _reward_axis(value: Any, where: Path) -> tuple[tuple[str, ...], ...]:
    axis = []
    for item in _as_list(value, "rewards", where) or ["default"]:
        names = _as_list(item, "rewards", where)
        axis.append(() if names == ["default"] else tuple(str(n) for n in names))
    return tuple(axis)


def _mitigation_axis(value: Any, where: Path) -> tuple[tuple[str, ...], ...]:
    axis = []
    for item in _as_list(value, "mitigations", where) or ["none"]:
        specs = _as_list(item, "mitigations", where)
        axis.append(() if specs in (["none"], []) else tuple(str(s) for s in specs))
    return tuple(axis)


def _arms(value: Any, where: Path) -> tuple[Arm, ...]:
    arms: list[Arm] = []
    for item in _as_list(value, "trainers", where):
        if isinstance(item, str):
            item = {"trainer": item}
        if not isinstance(item, dict) or "trainer" not in item:
            raise EmbenchError(
                f"{where}: each trainers entry is a trainer name or a mapping with 'trainer'"
            )
        unknown = set(item) - ARM_KEYS
        if unknown:
            raise EmbenchError(
                f"{where}: unknown key(s) {', '.join(sorted(unknown))} in trainers entry; "
                f"keys: {', '.join(sorted(ARM_KEYS))}"
            )
        name = str(item.get("name") or item["trainer"])
        match = item.get("match")
        if match is not None and match not in {a.name for a in arms}:
            raise EmbenchError(
                f"{where}: arm '{name}' matches '{match}', which is not an arm listed before it"
            )
        if name in {a.name for a in arms}:
            raise EmbenchError(f"{where}: two trainers entries are named '{name}'; name them")
        arms.append(
            Arm(
                name=name,
                trainer=str(item["trainer"]),
                match=match,
                match_source=item.get("match_source"),
                options=_options(item.get("options"), f"trainers.{name}.options", where),
            )
        )
    if not arms:
        raise EmbenchError(f"{where}: 'trainers' lists no trainer")
    return tuple(arms)


def _controls(value: Any, where: Path) -> tuple[Control, ...]:
    from embench.data.domains import DOMAINS

    controls = []
    for item in _as_list(value, "controls", where):
        if not isinstance(item, dict) or not item.get("domain"):
            raise EmbenchError(f"{where}: each controls entry is a mapping with a 'domain'")
        unknown = set(item) - CONTROL_KEYS
        if unknown:
            raise EmbenchError(
                f"{where}: unknown key(s) {', '.join(sorted(unknown))} in controls entry; "
                f"keys: {', '.join(sorted(CONTROL_KEYS))}"
            )
        domain = str(item["domain"])
        if domain not in DOMAINS:
            raise EmbenchError(
                f"{where}: control domain '{domain}' is unknown; available: {', '.join(DOMAINS)}"
            )
        trainer = str(item.get("trainer") or "grpo")
        reward = tuple(str(r) for r in _as_list(item.get("reward"), "controls.reward", where))
        options = _options(item.get("options"), f"controls.{domain}.options", where)
        controls.append(
            Control(domain, reward, Arm(f"control-{trainer}", trainer, None, None, options))
        )
    return tuple(controls)


def _options(value: Any, key: str, where: Path) -> dict[str, Any]:
    options = dict(value or {})
    owned = GRID_OWNED & set(options)
    if owned:
        raise EmbenchError(
            f"{where}: {key} sets {', '.join(sorted(owned))}, which the grid sets per cell "
            "(use models/domains/rewards/mitigations/seeds/trainers)"
        )
    if not isinstance(options.get("trl", {}), dict):
        raise EmbenchError(f"{where}: {key}.trl must be a mapping of TRL field: value")
    return options


def for_domain(options: dict[str, Any], domain: str) -> dict[str, Any]:
    """Options with ``{domain}`` in a text value replaced by the cell's domain (e.g. ``warmup:
    sft:{domain}``: each domain's GRPO arm warms up on that domain's SFT data)."""
    return {
        k: v.replace("{domain}", domain) if isinstance(v, str) else v for k, v in options.items()
    }


def merge_options(*layers: dict[str, Any]) -> dict[str, Any]:
    """Later layers win; their ``trl`` mappings are merged field by field."""
    merged: dict[str, Any] = {}
    for layer in layers:
        for k, v in layer.items():
            merged[k] = {**merged.get("trl", {}), **v} if k == "trl" else v
    return merged


def load_experiment(path: str | Path) -> ExperimentConfig:
    """Read and shape-check an experiment YAML (names are checked by ``preflight``)."""
    where = Path(path)
    data = load_yaml(where, "experiment config")
    if not isinstance(data, dict):
        raise EmbenchError(
            f"{where}: an experiment config is a mapping (see `embench experiment --help`)"
        )
    unknown = set(data) - TOP_KEYS
    if unknown:
        raise EmbenchError(
            f"{where}: unknown key(s) {', '.join(sorted(unknown))}; keys: {', '.join(sorted(TOP_KEYS))}"
        )
    scale = str(data.get("scale", "paper"))
    if scale not in SCALES:
        raise EmbenchError(f"{where}: scale must be one of {', '.join(SCALES)}, got '{scale}'")
    if not data.get("judge"):
        raise EmbenchError(
            f"{where}: set 'judge' (the grader of every eval), e.g. openai/gpt-4o or local/default"
        )
    eval_ = dict(data.get("eval") or {})
    unknown = set(eval_) - EVAL_KEYS
    if unknown:
        raise EmbenchError(
            f"{where}: unknown eval key(s) {', '.join(sorted(unknown))}; keys: {', '.join(sorted(EVAL_KEYS))}"
        )
    if "domain" in (eval_.get("in_domain") or {}):
        raise EmbenchError(f"{where}: eval.in_domain must not set domain (each cell uses its own)")
    seeds = _as_list(data.get("seeds", [0]), "seeds", where)
    if not seeds or not all(isinstance(s, int) for s in seeds):
        raise EmbenchError(f"{where}: 'seeds' must be a list of integers")
    domains = [str(d) for d in _as_list(data.get("domains"), "domains", where)]
    if not domains:
        raise EmbenchError(f"{where}: 'domains' lists no domain (see `embench domains`)")
    trainer_options = data.get("trainer_options") or {}
    if not isinstance(trainer_options, dict):
        raise EmbenchError(f"{where}: 'trainer_options' maps a trainer name to its options")
    submit = data.get("submit")
    if submit is not None and not (isinstance(submit, dict) and submit.get("board")):
        raise EmbenchError(f"{where}: 'submit' needs a board, e.g. submit: {{board: general}}")
    return ExperimentConfig(
        name=str(data.get("name") or where.stem),
        scale=scale,
        source=where,
        judge=str(data["judge"]),
        extra_judges=tuple(
            str(j) for j in _as_list(data.get("extra_judges"), "extra_judges", where)
        ),
        models=tuple(str(m) for m in _as_list(data.get("models", ["default"]), "models", where)),
        domains=tuple(domains),
        rewards=_rewards_by_domain(data.get("rewards"), domains, where),
        mitigations=_mitigation_axis(data.get("mitigations"), where),
        seeds=tuple(seeds),
        arms=_arms(data.get("trainers"), where),
        train=_options(data.get("train"), "train", where),
        trainer_options={
            str(k): _options(v, f"trainer_options.{k}", where) for k, v in trainer_options.items()
        },
        eval=eval_,
        submit=submit,
        output=str(data.get("output") or f"experiments/{where.stem}"),
        raw=data,
        controls=_controls(data.get("controls"), where),
    )
