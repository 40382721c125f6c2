"""The machinery every trainer shares: run directory, manifest, model, progress, resume, summary.

A trainer plugin supplies only what differs — its TRL config class and a function that builds
the TRL trainer — and calls ``run_training``, which writes the run's ``RunManifest`` (the only
writer of it) and returns it. Nothing is read back from attributes on the TRL trainer.

Crash safety: a periodic checkpoint counts only once TRL has written it to the end (a marker file
written from ``on_save``); the final ``checkpoint/`` is written under a temporary name and
renamed. SIGTERM is handled like Ctrl-C: status ``interrupted``, and the exact ``--resume``
command is printed. A run that fails before training starts leaves no run directory behind.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from transformers import TrainerCallback
from transformers.trainer_callback import PrinterCallback

from embench.errors import EmbenchError
from embench.run.layout import MANIFEST_FILE, OWN_CHECKPOINT
from embench.run.manifest import RunManifest, Samples, Stage
from embench.run.rundir import RunDir, checkpoint_step
from embench.training.budget import TimeBudgetCallback
from embench.training.chain import record_probe
from embench.training.config import TrainConfig, config_to_dict, default_output
from embench.training.progress import ProgressCallback

VERSIONED = ("embench", "torch", "transformers", "trl", "peft", "inspect_ai", "datasets")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def git_commit() -> str | None:
    """The checkout's commit (with -dirty when it has changes), if any."""
    try:
        root = Path(__file__).resolve().parents[3]
        sha = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain"],
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
        return (sha + ("-dirty" if dirty else "")) or None
    except (OSError, subprocess.SubprocessError):
        return None


def versions() -> dict[str, str]:
    """Versions of the packages that shape a run."""
    found = {}
    for name in VERSIONED:
        try:
            found[name] = importlib.metadata.version(name.replace("_", "-"))
        except importlib.metadata.PackageNotFoundError:
            continue
    return found


def reference_for_manifest(reference: str) -> str:
    """Store folders as absolute paths so the run dir works from anywhere."""
    path = Path(reference).expanduser()
    return str(path.resolve()) if path.exists() else reference


def load_policy(config: TrainConfig) -> tuple[Any, Any, Any]:
    """(model, tokenizer, peft_config or None) for training."""
    from embench.models.resolve import load_model

    model, tokenizer = load_model(
        config.model, dtype=config.dtype, device="cpu" if not _cuda() else None
    )
    model.train()
    peft_config = None
    if config.lora:
        from peft import LoraConfig

        target: Any = config.lora_target_modules
        if target != "all-linear":
            target = [t.strip() for t in target.split(",")]
        peft_config = LoraConfig(
            r=config.lora_r,
            lora_alpha=config.lora_alpha,
            lora_dropout=config.lora_dropout,
            target_modules=target,
            use_rslora=config.use_rslora,
            task_type="CAUSAL_LM",
        )
    return model, tokenizer, peft_config


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def machine_precision(config: TrainConfig) -> tuple[str, str]:
    """(fp32 | bf16, a line naming the machine and why) for ``config.precision``."""
    from embench.hardware import choose_precision, describe_cpu

    cuda = _cuda()
    precision, why = choose_precision(config.precision, cuda)
    if cuda:
        import torch

        machine = f"GPU: {torch.cuda.get_device_name()}"
    else:
        machine = f"CPU: {describe_cpu()}"
    return precision, f"{machine}; precision {precision} ({why})"


def trl_common(config: TrainConfig, run: RunDir) -> dict[str, Any]:
    """TRL/transformers fields every embench trainer sets."""
    cuda = _cuda()
    precision, line = machine_precision(config)
    _say(line)
    fields: dict[str, Any] = dict(
        output_dir=str(run.checkpoints),
        max_steps=config.max_steps,
        learning_rate=config.learning_rate,
        seed=config.seed,
        logging_steps=1,
        logging_nan_inf_filter=False,  # log a non-finite loss as it is: it stops the run
        save_strategy="steps",
        save_steps=config.save_steps,
        save_total_limit=2,
        report_to="none",
        disable_tqdm=True,
        use_cpu=not cuda,
        bf16=precision == "bf16",  # autocast; the weights stay in config.dtype
        dataloader_num_workers=0,
    )
    fields.update(config.trl)
    return fields


def trl_args(config_class: type, own: dict[str, Any], config: TrainConfig, run: RunDir) -> Any:
    """The trainer's TRL config: its ``own`` fields, then ``trl_common`` (``config.trl`` last);
    a value TRL refuses is a one-line EmbenchError before any model loads."""
    try:
        return config_class(**{**own, **trl_common(config, run)})
    except (TypeError, ValueError) as ex:
        reason = (str(ex).strip().splitlines() or [type(ex).__name__])[0]
        raise EmbenchError(
            f"TRL's {config_class.__name__} refused this run's options: {reason}; "
            "fix that value (--set trl.<field>=... or the trainer option)"
        ) from None


class CompleteCheckpoints(TrainerCallback):
    """Marks each periodic checkpoint complete once TRL has written all of it.

    transformers calls ``on_save`` after ``_save_checkpoint`` returned (weights, optimizer, RNG
    and ``trainer_state.json`` written); a save cut short by a signal or a kill has no marker and
    ``RunDir.last_checkpoint`` skips it. So does a checkpoint whose trained weights are not all
    finite: the last good checkpoint is the newest one with finite weights.
    """

    def on_save(self, args, state, control, model=None, **kwargs):  # noqa: D102
        if args.should_save:
            folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            if folder.is_dir() and (model is None or finite_weights(model)):
                RunDir.mark_complete(folder)


def finite_weights(model: Any) -> bool:
    """Whether every trained (requires_grad) weight of ``model`` is finite."""
    import torch

    return all(bool(torch.isfinite(p).all()) for p in model.parameters() if p.requires_grad)


class NonFiniteLoss(EmbenchError):
    """Training produced an inf or nan loss or gradient norm."""


class StopOnNonFiniteLoss(TrainerCallback):
    """Stops training at the first logged step whose loss or gradient norm is inf or nan."""

    def on_log(self, args, state, control, logs=None, **kwargs):  # noqa: D102
        for key in ("loss", "grad_norm"):
            value = (logs or {}).get(key)
            if isinstance(value, int | float) and not math.isfinite(value):
                what = "loss" if key == "loss" else "gradient norm"
                raise NonFiniteLoss(f"non-finite {what} at step {state.global_step} ({value})")


def logged(rows: list[dict[str, Any]], key: str) -> list[float]:
    """The numbers logged under ``key``, in step order (NaN left out)."""
    return [r[key] for r in rows if isinstance(r.get(key), int | float) and not math.isnan(r[key])]


def quarter_means(rows: list[dict[str, Any]], key: str) -> tuple[float, float] | None:
    """Mean of ``key`` over the first and the last quarter of the rows that logged it (None:
    fewer than 4 such rows)."""
    values = logged(rows, key)
    if len(values) < 4:
        return None
    q = len(values) // 4
    return sum(values[:q]) / q, sum(values[-q:]) / q


CLIPPED_RATIO = "completions/clipped_ratio"  # TRL's share of completions cut at the length cap


def reward_summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean reward of the first and last quarter of logged steps, and (RL) the share of
    completions cut off at ``max_completion_length`` in the same quarters."""
    summary: dict[str, Any] = {"reward_steps": len(logged(rows, "reward"))}
    rewards = quarter_means(rows, "reward")
    if rewards is not None:
        first, last = rewards
        summary.update(
            reward_first_quarter=first, reward_last_quarter=last, reward_improved=last > first
        )
    clipped = quarter_means(rows, CLIPPED_RATIO)
    if clipped is not None:
        summary.update(clipped_first_quarter=clipped[0], clipped_last_quarter=clipped[1])
    return summary


def lineage(trainer: str, kind: str, start: str, lora: bool) -> dict[str, Any]:
    """Manifest fields saying which weights this run trained on and how to rebuild its result.

    Started from a run directory, the run continues that run's chain: its stages, its pretrained
    ``base_model``, and (LoRA) its weights and adapters with this run's adapter last. Training all
    weights makes this run's own checkpoint the new full weights.
    """
    parent_dir = Path(start).expanduser()
    if (parent_dir / MANIFEST_FILE).is_file():
        parent = RunManifest.load(parent_dir)
        here = str(parent.run_dir.resolve())
        stages = [s.model_copy(update={"run": here}) if s.run == "." else s for s in parent.stages]
        base = parent.base_model
        weights = parent.resolve_path(parent.weights)
        chain = [parent.resolve_path(a) for a in parent.adapter_chain]
    else:
        base = weights = reference_for_manifest(start)
        stages, chain = [], []
    stages.append(Stage(trainer=trainer, kind=kind, run=".", lora=lora))
    return {
        "base_model": base,
        "start_model": reference_for_manifest(start),
        "weights": weights if lora else OWN_CHECKPOINT,
        "adapter_chain": [*chain, OWN_CHECKPOINT] if lora else [],
        "stages": stages,
    }


def resume_command(run: RunDir) -> str:
    """The exact command that continues ``run``."""
    return f"embench train --resume {run.path}"


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Inside the block, SIGTERM (SLURM, Kubernetes, `kill`) raises KeyboardInterrupt like Ctrl-C."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _say(message: str) -> None:
    print(f"[embench] {message}", file=sys.stderr, flush=True)


def _save_final(trainer: Any, tokenizer: Any, run: RunDir, plan: Any, processes: Any) -> list[Any]:
    """Write checkpoint/ under a temporary name, post-process it, rename it into place.

    Every process takes part in ``save_model`` (sharded engines gather the weights there); the
    main process alone writes the tokenizer, the mitigations' save-time work, then the probe (of
    the weights as saved) and the rename.
    """
    partial = run.path / f".{OWN_CHECKPOINT}.partial"
    if processes.is_main_process:
        shutil.rmtree(partial, ignore_errors=True)
    processes.wait_for_everyone()
    records: list[Any] = []
    try:
        trainer.save_model(str(partial))
        if processes.is_main_process:
            tokenizer.save_pretrained(str(partial))
            # save-time mitigations first (SafeLoRA rewrites the saved adapter and loads it back
            # into the model), so the probe describes the weights as saved
            records = plan.finish(trainer, partial) if plan is not None else []
            record_probe(trainer, tokenizer, run)  # the final logits, to check reloads against
            shutil.rmtree(run.checkpoint, ignore_errors=True)
            os.replace(partial, run.checkpoint)
    except BaseException:  # a full disk: keep no half-written checkpoint
        if processes.is_main_process:
            shutil.rmtree(partial, ignore_errors=True)
        raise
    processes.wait_for_everyone()
    return records


def _record_failure(update: Callable[..., Any], error: BaseException, **fields: Any) -> None:
    """Mark the run ``failed`` with its error; a manifest that cannot be written (a full disk)
    stays ``running``, which ``--resume`` continues like an interrupted run."""
    reason = str(error) if isinstance(error, EmbenchError) else f"{type(error).__name__}: {error}"
    try:
        update(status="failed", error=reason, **fields)
    except OSError as ex:
        _say(f"could not record the failure in the manifest ({ex}); --resume continues the run")


def _per_process(local: dict[str, Any], processes: Any) -> list[dict[str, Any]]:
    """Every process's figures, in rank order (gathered; one process: just its own)."""
    row = {"rank": processes.process_index, **local}
    if processes.num_processes == 1:
        return [row]
    from accelerate.utils import gather_object

    return sorted(gather_object([row]), key=lambda r: r["rank"])


def run_training(
    trainer_name: str,
    kind: str,
    config: TrainConfig,
    build: Callable[[TrainConfig, RunDir, Any, Any, Any, list[Any]], Any],
    *,
    dataset: Any = None,
    plan: Any = None,
    match: dict[str, Any] | None = None,
    world_size: int | None = None,
    summary: dict[str, Any] | None = None,
    resume: bool = False,
) -> RunManifest:
    """Load the model, create (or reopen) the run dir, build the TRL trainer with ``build``, train,
    save, and return the finished ``RunManifest``.

    ``build(config, run, model, tokenizer, peft_config, callbacks)`` returns a TRL trainer.
    ``dataset`` (hashed and counted), ``plan`` (the mitigations) and ``match`` (sample matching)
    are recorded in the manifest; ``world_size`` overrides the process count TRL reports (the
    trainer planned its steps with it); ``summary`` holds figures the trainer measured while
    training, added to the summary at the end.
    """
    from accelerate import PartialState

    # under `accelerate launch`/`torchrun`: this process's rank among several (cpu=True, as
    # TrainingArguments(use_cpu=True) creates it, or the shared state would say single-process)
    processes = PartialState(cpu=not _cuda())
    if config.mitigations and plan is None:
        raise EmbenchError(
            f"trainer '{trainer_name}' does not apply mitigations (it passes no Plan to "
            "run_training); train without --mitigation"
        )
    run = RunDir(config.output or default_output(trainer_name, config))
    try:
        return _train_as_writer(
            trainer_name, kind, config, build, run, processes,
            dataset=dataset, plan=plan, match=match, world_size=world_size, summary=summary,
            resume=resume,
        )  # fmt: skip
    finally:
        run.unlock()


def _train_as_writer(
    trainer_name: str,
    kind: str,
    config: TrainConfig,
    build: Callable[[TrainConfig, RunDir, Any, Any, Any, list[Any]], Any],
    run: RunDir,
    processes: Any,
    *,
    dataset: Any,
    plan: Any,
    match: dict[str, Any] | None,
    world_size: int | None,
    summary: dict[str, Any] | None,
    resume: bool,
) -> RunManifest:
    """``run_training``'s work, as the run directory's one writer (its main process locks it)."""
    from embench.training.data import dataset_hash

    main = processes.is_main_process
    checkpoint = None
    if resume:
        run = RunDir.open(run.path)
        if main:
            run.lock()
        if run.manifest().status == "finished":
            raise EmbenchError(f"{run.path} already finished; nothing to resume")
    elif main:
        RunDir.check_free(run.path, config.overwrite)  # before the slow model load

    model, tokenizer, peft_config = load_policy(config)
    if not resume and main:  # the run directory appears only once the model has loaded
        run = RunDir.create(run.path, config.overwrite)
        RunManifest(
            trainer=trainer_name,
            kind=kind,
            created_at=_now(),
            **lineage(trainer_name, kind, config.model, config.lora),
            lora=config.lora,
            domain=config.domain,
            dataset=config.dataset,
            reward=list(config.reward),
            reward_weights=config.reward_weights,
            judge=config.judge,
            seed=config.seed,
            config=config_to_dict(config),
            git_commit=git_commit(),
            versions=versions(),
        ).save(run.path)
    processes.wait_for_everyone()  # the other processes write into the directory main made
    callbacks = [
        ProgressCallback(run, config.max_steps),
        CompleteCheckpoints(),
        StopOnNonFiniteLoss(),
    ]
    budget = TimeBudgetCallback(config.time_budget) if config.time_budget else None
    if budget is not None:
        callbacks.append(budget)
    try:
        trainer = build(config, run, model, tokenizer, peft_config, callbacks)
    except BaseException:
        if not resume and main:  # failed before training: leave nothing behind
            shutil.rmtree(run.path, ignore_errors=True)
        raise
    if plan is not None and plan.items and not plan.attached:
        if not resume and main:
            shutil.rmtree(run.path, ignore_errors=True)
        raise EmbenchError(
            f"trainer '{trainer_name}' built its TRL trainer without Plan.make_trainer: its "
            "mitigations would have no effect"
        )
    trainer.remove_callback(PrinterCallback)  # our progress bar replaces the printed log dicts
    if resume:
        for folder in run.drop_incomplete_checkpoints() if main else []:
            _say(f"dropped {folder.name}: its save was cut short")
        checkpoint = run.last_checkpoint()
        step = checkpoint_step(checkpoint) if checkpoint is not None else 0
        if main:
            run.keep_rows_until(step)
        processes.wait_for_everyone()
        where = f"from {checkpoint.name} (the newest complete)" if checkpoint else "from step 0"
        _say(f"resuming {run.path} {where}")

    args = trainer.args
    world = world_size or int(getattr(args, "world_size", 1) or 1)
    global_batch = args.per_device_train_batch_size * args.gradient_accumulation_steps * world
    update = run.update_manifest if main else (lambda **fields: None)  # one process writes
    update(
        status="running",
        trl_config=_jsonable(args.to_dict()),
        world_size=world,
        global_batch=global_batch,
        dataset_hash=dataset_hash(dataset) if dataset is not None else None,
        dataset_size=len(dataset) if dataset is not None else None,
        mitigations=plan.manifest() if plan is not None else [],
        match=match,
        error=None,
        last_checkpoint=None,
        interrupted_at=None,
    )
    started = time.time()
    with sigterm_as_interrupt():
        try:
            trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
            records = _save_final(trainer, tokenizer, run, plan, processes)
        except KeyboardInterrupt as ex:
            last = run.last_checkpoint()
            update(
                status="interrupted",
                interrupted_at=_now(),
                last_checkpoint=str(last) if last else None,
            )
            cause = str(ex) or "SIGINT"
            kept = f"the newest complete checkpoint is {last.name}" if last else "no checkpoint yet"
            _say(f"interrupted by {cause} ({kept}); continue with:\n  {resume_command(run)}")
            raise
        except NonFiniteLoss as ex:
            last = run.last_checkpoint()
            kept = f"the last good checkpoint is {last.name}" if last else "no good checkpoint yet"
            _record_failure(update, ex, last_checkpoint=str(last) if last else None)
            raise NonFiniteLoss(
                f"training failed: {ex}; {kept} (lower the learning rate)"
            ) from None
        except BaseException as ex:
            _record_failure(update, ex)
            raise
    steps = trainer.state.global_step
    _, machine = machine_precision(config)
    figures = {
        "steps": steps,
        "seconds": round(time.time() - started, 1),
        "machine": machine,
        "precision": "bf16" if args.bf16 else "fp32",
        **(
            {"time_budget": config.time_budget, "stopped_by_time_budget_at": budget.stopped_at}
            if budget is not None
            else {}
        ),
        **reward_summary(run.read_jsonl(run.metrics)),
        **(summary or {}),
    }
    if resume:  # ``seconds`` is this session's; the steps of every session, from their rows
        figures["resumed_at_step"] = checkpoint_step(checkpoint) if checkpoint is not None else 0
        figures["step_seconds_all_sessions"] = round(
            sum(logged(run.read_jsonl(run.metrics), "step_time")), 1
        )
    per_process = _per_process(summary or {}, processes)  # collective: every process calls it
    if len(per_process) > 1:
        figures["processes"] = per_process
    if not main:
        processes.wait_for_everyone()  # until main has written the finished manifest
        return run.manifest()
    manifest = run.manifest()
    stages = [s.model_copy(update={"steps": steps}) if s.run == "." else s for s in manifest.stages]
    generated = len(run.read_jsonl(run.rollouts)) if run.rollouts.exists() else None
    finished = manifest.updated(
        status="finished",
        finished_at=_now(),
        summary=figures,
        stages=stages,
        mitigations=records or manifest.mitigations,
        samples=Samples(generated=generated, consumed=steps * global_batch),
        error=None,
        last_checkpoint=None,
    ).save(run.path)
    processes.wait_for_everyone()
    return finished


def _jsonable(values: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(values, default=str))
