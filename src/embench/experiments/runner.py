"""Run an experiment grid: preflight every cell, then train -> eval at checkpoints -> submit.

    <out>/experiment.json                  config, grid-wide protocol, versions, cell list (once)
    <out>/baselines/<model>-<hash>/        the base model at step 0 (general + each in-domain)
    <out>/cells/<label>-<hash>/cell.json   status, stage, timings, error of one cell
    <out>/cells/<label>-<hash>/train.yaml  the exact `embench train --config` of the cell
    <out>/cells/<label>-<hash>/run/        the run directory the trainer wrote
    <out>/cells/<label>-<hash>/evals/step-NNNNN/{general,in_domain}.json (+ .eval logs)

A cell is done when its cell.json says so under the same hash; re-running skips it, and within an
unfinished cell every finished step (trained run, each eval summary) is kept. A failing cell is
recorded with its reason and the grid goes on; Ctrl-C marks the running cell interrupted.
"""

from __future__ import annotations

import resource
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from embench.errors import EmbenchError
from embench.experiments.config import Baseline, Cell, ExperimentConfig
from embench.experiments.evaluate import (
    evaluate,
    judge_slug,
    read_json,
    release_model,
    rescore,
    write_json,
)
from embench.experiments.swap import AdapterSwap, shares_base
from embench.fsutil import atomic_write_text
from embench.leaderboard.boards import leaderboards_root, load_board
from embench.run.layout import MANIFEST_FILE
from embench.run.manifest import RunManifest
from embench.run.reference import is_local, local_model, local_ref
from embench.run.rundir import RunDir, checkpoint_step

CELL_FILE = "cell.json"
EXPERIMENT_FILE = "experiment.json"


def read_experiment(out: Path) -> dict[str, Any]:
    """An experiment folder's record (``experiment.json``); a missing, unreadable or misshapen
    one is a one-line EmbenchError that says which."""
    import json

    from embench.limits import read_text

    path = Path(out) / EXPERIMENT_FILE
    if not path.exists():
        raise EmbenchError(f"{out} is not an experiment folder (no {EXPERIMENT_FILE})")
    try:
        data = json.loads(read_text(path, "experiment record"))
    except ValueError as ex:
        raise EmbenchError(
            f"{path} is broken (not valid JSON: {ex}); run the grid again to rewrite it"
        ) from None

    def named(key: str, *fields: str) -> bool:
        items = data.get(key) or []
        return isinstance(items, list) and all(
            isinstance(i, dict) and all(isinstance(i.get(f), str) for f in fields) for i in items
        )

    if not (
        isinstance(data, dict)
        and named("cells", "folder", "label")
        and named("baselines", "folder", "model")
    ):
        raise EmbenchError(
            f"{path} is broken (not an experiment record: cells and baselines name their "
            "folders); run the grid again to rewrite it"
        )
    return data


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


# --- preflight ----------------------------------------------------------------------------------


def _check_judge(judge: str) -> None:
    """Fail before training when the judge cannot be reached or found."""
    if is_local(judge):
        from embench.models.resolve import resolve_model

        resolve_model(local_ref(judge))
        return
    from inspect_ai.model import get_model

    try:
        get_model(judge)
    except Exception as ex:  # missing API key, unknown provider, ...
        first = str(ex).strip().splitlines()[0] if str(ex).strip() else type(ex).__name__
        raise EmbenchError(f"judge '{judge}' is not usable: {first}") from None


def _check_task_args(config: ExperimentConfig) -> None:
    import inspect as pyinspect

    from embench import evals  # inspect_ai: only when a grid is checked (start-up)

    for key, name in (("general", "misalignment"), ("in_domain", "in_domain")):
        parameters = pyinspect.signature(getattr(evals, name)).parameters.values()
        accepted = {p.name for p in parameters if p.kind is not p.VAR_KEYWORD}
        unknown = set(config.eval.get(key) or {}) - accepted
        if unknown:
            raise EmbenchError(
                f"{config.source}: eval.{key} has unknown task arg(s) {', '.join(sorted(unknown))}; "
                f"the task takes {', '.join(sorted(accepted))}"
            )


def train_yaml(cell: Cell, cell_dir: Path, matched_run: Path | None) -> dict[str, Any]:
    """The cell's `embench train --config` mapping."""
    values: dict[str, Any] = {
        "model": cell.model,
        "domain": cell.domain,
        "seed": cell.seed,
        "output": str((cell_dir / "run").resolve()),
        "overwrite": True,
        **cell.options,
    }
    if cell.reward:
        values["reward"] = list(cell.reward)
    if cell.mitigation:
        values["mitigations"] = list(cell.mitigation)
    if matched_run is not None:
        values["match"] = str(matched_run.resolve())
    if "judge" not in values:  # judge rewards (a domain's default may be one) use the grid's judge
        values["judge"] = cell.resolved["judge"]
    return values


def _trainer_config(plugin: Any, path: Path) -> Any:
    from embench.training.config import build_config

    return build_config(plugin.config_class, plugin.trl_config_class, str(path))


def preflight(config: ExperimentConfig, out: Path) -> dict[str, Any]:
    """Check every name and every cell's trainer config before anything trains; the plugins.

    Each cell's config goes through the one preflight ``embench train`` runs
    (``training.preflight.check_before_loading``: the trainer's ``validate``, mitigations
    against its kind, rewards, warm-up), so a cell that would fail is refused before the first
    cell trains."""
    from embench.data.domains import DOMAINS
    from embench.training.plugins import get_trainer
    from embench.training.preflight import check_before_loading

    plugins = {arm.trainer: get_trainer(arm.trainer, allow_file=True) for arm in config.arms}
    for domain in config.domains:
        if domain not in DOMAINS:
            raise EmbenchError(
                f"{config.source}: unknown domain '{domain}'; available: {', '.join(DOMAINS)}"
            )
    _check_task_args(config)
    cells = config.cells()
    by_label = {c.label: c for c in cells}
    with tempfile.TemporaryDirectory(prefix="embench-preflight-") as scratch_dir:
        for cell in cells:  # each cell's trainer config, checked as its run will read it
            matched = by_label.get(cell.match_label) if cell.match_label else None
            matched_run = out / "cells" / matched.folder / "run" if matched else None
            scratch = Path(scratch_dir) / f"{cell.folder}.yaml"  # nothing lands in out
            atomic_write_text(scratch, yaml.safe_dump(train_yaml(cell, out, matched_run)))
            plugin = plugins[cell.trainer]
            try:
                later = [matched_run.resolve()] if matched_run else []  # an earlier cell's
                check_before_loading(plugin, _trainer_config(plugin, scratch), later)
            except EmbenchError as error:
                raise EmbenchError(f"{config.source}: cell {cell.label}: {error}") from None
    # last, the checks that may load a local judge
    for judge in (config.judge, *config.extra_judges):
        _check_judge(judge)
    return plugins


# --- the grid -----------------------------------------------------------------------------------


@dataclass
class GridState:
    """What the live view shows: one row per cell (and baseline)."""

    rows: dict[str, dict[str, Any]] = field(default_factory=dict)
    on_change: Callable[[GridState], None] | None = None

    def update(self, key: str, **fields: Any) -> None:
        """Change a row and redraw."""
        self.rows.setdefault(key, {}).update(fields)
        if self.on_change:
            self.on_change(self)


def _manifest(run: Path) -> RunManifest | None:
    """The run's manifest, None before the run directory exists."""
    return RunManifest.load(run) if (run / MANIFEST_FILE).is_file() else None


def _checkpoints(run: Path, config: ExperimentConfig) -> list[tuple[int, Path]]:
    """(step, folder) of each complete intermediate checkpoint at a step the config evaluates
    (``eval_steps``: none with ``every: 0``), then the final one (the run dir)."""
    manifest = _manifest(run)
    final = manifest.summary.steps if manifest is not None and manifest.summary else 0
    wanted = set(config.eval_steps(final)) - {final}
    found = []
    for folder in RunDir(run).complete_checkpoints():
        step = checkpoint_step(folder)
        if step in wanted:
            found.append((step, folder))
    return [*sorted(found), (final, run)]


class Runner:
    """Runs the cells of one experiment into ``out``."""

    def __init__(
        self, config: ExperimentConfig, out: Path, command: str, state: GridState | None = None
    ) -> None:
        self.config = config
        self.out = out
        self.command = command
        self.state = state or GridState()
        self.cells = config.cells()
        self.by_label = {c.label: c for c in self.cells}

    # -- records --
    def cell_dir(self, cell: Cell) -> Path:
        """Where a cell writes."""
        return self.out / "cells" / cell.folder

    def baseline_dir(self, baseline: Baseline) -> Path:
        """Where a baseline writes."""
        return self.out / "baselines" / baseline.folder

    def _record(self, folder: Path, row: str, **fields: Any) -> dict[str, Any]:
        path = folder / CELL_FILE
        record = read_json(path) or {}
        record.update(fields, updated_at=_now())
        write_json(path, record)
        shown = ("status", "stage", "error", "seconds")
        self.state.update(row, **{k: record.get(k) for k in shown})
        return record

    def write_experiment(self) -> None:
        """The grid-wide record: config, protocol, versions, commands, cells."""
        from embench.training.runner import git_commit, versions

        write_json(
            self.out / EXPERIMENT_FILE,
            {
                "name": self.config.name,
                "scale": self.config.scale,
                "plumbing_only": self.config.plumbing_only,
                "config_file": str(self.config.source),
                "config": self.config.raw,
                "protocol": self.config.protocol(),
                "command": self.command,
                "git_commit": git_commit(),
                "versions": versions(),
                "python": sys.version.split()[0],
                "baselines": [
                    {"model": b.model, "folder": b.folder} for b in self.config.baselines()
                ],
                "cells": [
                    {
                        "key": c.key,
                        "label": c.label,
                        "folder": c.folder,
                        "arm": c.arm,
                        "trainer": c.trainer,
                        "model": c.model,
                        "domain": c.domain,
                        "reward": list(c.reward),
                        "mitigation": list(c.mitigation),
                        "seed": c.seed,
                        "match": c.match_label,
                    }
                    for c in self.cells
                ],
                "updated_at": _now(),
            },
        )

    def is_done(self, folder: Path, key: str) -> bool:
        """Finished before under the same hash."""
        record = read_json(folder / CELL_FILE) or {}
        return record.get("status") == "done" and record.get("key") == key

    # -- running --
    def run(self) -> dict[str, int]:
        """Every baseline and cell; returns counts by final status."""
        self.out.mkdir(parents=True, exist_ok=True)
        self.write_experiment()
        for baseline in self.config.baselines():
            self.state.update(baseline.folder, label=f"base {baseline.model}", status="pending")
        for cell in self.cells:
            self.state.update(cell.key, label=cell.label, status="pending")
            folder = self.cell_dir(cell)
            record = read_json(folder / CELL_FILE)
            if record is not None and not self.is_done(folder, cell.key):
                # a cell left failed/blocked/interrupted by an earlier run is queued again
                last = record.get("error")
                self._record(folder, cell.key, status="pending", stage=None, error=None,
                             last_error=last or record.get("last_error"))  # fmt: skip
        counts: dict[str, int] = {}
        jobs: list[tuple[str, Path, Callable[[], None], str | None]] = [
            (b.folder, self.baseline_dir(b), lambda b=b: self._run_baseline(b), None)
            for b in self.config.baselines()
        ]
        jobs += [
            (c.key, self.cell_dir(c), lambda c=c: self._run_cell(c), c.match_label)
            for c in self.cells
        ]
        for key, folder, job, needs in jobs:
            status = self._run_one(key, folder, job, needs)
            counts[status] = counts.get(status, 0) + 1
        return counts

    def _run_one(self, key: str, folder: Path, job: Callable[[], None], needs: str | None) -> str:
        if self.is_done(folder, key):
            self.state.update(key, status="done", stage="skipped (outputs match)")
            return "skipped"
        if needs is not None:
            matched = self.by_label[needs]
            if not self.is_done(self.cell_dir(matched), matched.key):
                self._record(
                    folder,
                    key,
                    key=key,
                    status="blocked",
                    stage="-",
                    error=f"needs {needs}, which did not finish",
                )
                return "blocked"
        started = time.time()
        self._record(folder, key, key=key, status="running", started_at=_now(), error=None)
        try:
            job()
        except KeyboardInterrupt:
            self._record(folder, key, status="interrupted", error="interrupted (Ctrl-C)")
            raise
        except Exception as ex:  # one cell's failure must not stop the grid
            message = str(ex).strip().splitlines()[0] if str(ex).strip() else ""
            self._record(folder, key, status="failed", error=f"{type(ex).__name__}: {message}")
            return "failed"
        self._record(
            folder,
            key,
            status="done",
            stage="done",
            seconds=round(time.time() - started, 1),
            peak_rss_mb=_peak_rss_mb(),
            finished_at=_now(),
        )
        return "done"

    def _eval_step(
        self,
        folder: Path,
        key: str,
        step: int,
        model: str,
        tasks: list[tuple[str, str, dict[str, Any]]],
    ) -> None:
        """Evaluate one checkpoint on each (file name, task, task args); extra judges re-score."""
        step_dir = folder / "evals" / f"step-{step:05d}"
        evaluated = False
        for name, task, args in tasks:
            summary_path = self._summary_path(folder, step, name)
            summary = read_json(summary_path)
            if summary is None:
                self._record(folder, key, stage=f"eval {name} @ step {step}")
                summary = evaluate(
                    model,
                    task,
                    args,
                    self.config.judge,
                    step_dir / "logs",
                    seed=self.config.eval.get("seed", 0),
                    model_args=self.config.eval.get("model_args") or {},
                    limit=self.config.eval.get("limit"),
                )
                summary["step"] = step
                write_json(summary_path, summary)
                evaluated = True
            for judge in self.config.extra_judges:
                extra_path = self._summary_path(folder, step, f"{name}.judge-{judge_slug(judge)}")
                if read_json(extra_path) is None:
                    self._record(folder, key, stage=f"rescore {name} @ step {step} ({judge})")
                    extra = rescore(summary["log"], judge)
                    extra["step"] = step
                    write_json(extra_path, extra)
        if evaluated:
            release_model(model)

    @staticmethod
    def _summary_path(folder: Path, step: int, name: str) -> Path:
        return folder / "evals" / f"step-{step:05d}" / f"{name}.json"

    def _task_list(self, domains: tuple[str, ...], prefix_domain: bool) -> list[Any]:
        general = dict(self.config.eval.get("general") or {})
        in_domain = dict(self.config.eval.get("in_domain") or {})
        tasks = [("general", "general", general)]
        for domain in domains:
            name = f"in_domain-{domain}" if prefix_domain else "in_domain"
            tasks.append((name, "in_domain", {**in_domain, "domain": domain}))
        persona = self.config.eval.get("persona")
        if persona:  # the judge-free persona projection, when a vector is configured
            tasks.append(("persona", "persona", dict(persona)))
        return tasks

    def _run_baseline(self, baseline: Baseline) -> None:
        folder = self.baseline_dir(baseline)
        self._record(folder, baseline.folder, model=baseline.model, resolved=baseline.resolved)
        self._eval_step(
            folder,
            baseline.folder,
            0,
            local_model(baseline.model),
            self._task_list(baseline.domains, prefix_domain=True),
        )

    def _run_cell(self, cell: Cell) -> None:
        folder = self.cell_dir(cell)
        self._record(
            folder,
            cell.key,
            label=cell.label,
            arm=cell.arm,
            trainer=cell.trainer,
            model=cell.model,
            domain=cell.domain,
            reward=list(cell.reward),
            mitigation=list(cell.mitigation),
            seed=cell.seed,
            resolved=cell.resolved,
            match=cell.match_label,
        )
        run = folder / "run"
        manifest = _manifest(run)
        if manifest is None or manifest.status != "finished":
            self._record(folder, cell.key, stage="train")
            started = time.time()
            self.train(cell, folder)
            self._record(folder, cell.key, train_seconds=round(time.time() - started, 1))
        tasks = self._task_list((cell.domain,), prefix_domain=False)
        started = time.time()
        names = [n for n, _, _ in tasks]
        names += [f"{n}.judge-{judge_slug(j)}" for n in names for j in self.config.extra_judges]
        pending = [
            (step, local_model(checkpoint.resolve()))
            for step, checkpoint in _checkpoints(run, self.config)
            if any(read_json(self._summary_path(folder, step, n)) is None for n in names)
        ]
        model_args = self.config.eval.get("model_args") or {}
        swap = None
        if len(pending) > 1 and shares_base([ref for _, ref in pending]):
            swap = AdapterSwap(model_args)  # one base model for every LoRA checkpoint
        try:
            for step, reference in pending:
                if swap is not None:
                    swap.activate(reference)
                self._eval_step(folder, cell.key, step, reference, tasks)
        finally:
            if swap is not None:
                swap.close()
                self._record(folder, cell.key, eval_base_loads=swap.loads)
        self._record(folder, cell.key, eval_seconds=round(time.time() - started, 1))
        if self.config.submit:
            self._submit(cell, folder)

    def train(self, cell: Cell, folder: Path) -> Path:
        """Train the cell with its trainer plugin, from the cell's own train.yaml."""
        from embench.training.plugins import get_trainer

        matched = self.by_label.get(cell.match_label) if cell.match_label else None
        matched_run = self.cell_dir(matched) / "run" if matched else None
        path = folder / "train.yaml"
        atomic_write_text(path, yaml.safe_dump(train_yaml(cell, folder, matched_run)))
        plugin = get_trainer(cell.trainer, allow_file=True)
        self._record(
            folder,
            cell.key,
            command=f"embench train --trainer {cell.trainer} --config {path}",
        )
        plugin.run(_trainer_config(plugin, path))  # the contract check embench train makes
        return folder / "run"

    def _submit(self, cell: Cell, folder: Path) -> None:
        record = read_json(folder / CELL_FILE) or {}
        if record.get("submitted"):
            return
        final = max(
            (read_json(p) or {} for p in (folder / "evals").glob("step-*/general.json")),
            key=lambda s: s.get("step", -1),
        )
        board = str(self.config.submit["board"])  # type: ignore[index]
        self._record(folder, cell.key, stage=f"submit to {board}")
        from embench.leaderboard.submit import submit_log  # inspect_ai: 4 s, only to submit

        submit_log(
            load_board(leaderboards_root(None), board),
            Path(final["log"]),
            name=cell.label,
            run_dir=folder / "run",
        )
        self._record(folder, cell.key, submitted={"board": board, "log": final["log"]})


def run_experiment(
    config: ExperimentConfig,
    out: Path | None = None,
    command: str = "",
    state: GridState | None = None,
) -> dict[str, int]:
    """Preflight, then run every cell; counts of done/skipped/failed/blocked cells."""
    out = Path(out or config.output)
    preflight(config, out)
    return Runner(config, out, command, state).run()
