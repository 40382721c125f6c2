"""The machinery every trainer shares: run directory, model, progress, resume, summary.

A trainer plugin supplies only what differs — its TRL config class and a function that builds
the TRL trainer — and calls ``run_training``.
"""

from __future__ import annotations

import importlib.metadata
import json
import math
import subprocess
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from transformers import TrainerCallback
from transformers.trainer_callback import PrinterCallback

from embench.errors import EmbenchError
from embench.training.chain import record_probe
from embench.training.config import TrainConfig, config_to_dict
from embench.training.rundir import RunDir

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


def default_output(trainer: str, config: TrainConfig) -> str:
    """runs/<trainer>-<domain or dataset>-s<seed>."""
    source = config.domain or (Path(config.dataset).stem if config.dataset else "default")
    return f"runs/{trainer}-{source}-s{config.seed}"


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


def trl_common(config: TrainConfig, run: RunDir) -> dict[str, Any]:
    """TRL/transformers fields every embench trainer sets."""
    cuda = _cuda()
    fields: dict[str, Any] = dict(
        output_dir=str(run.checkpoints),
        max_steps=config.max_steps,
        learning_rate=config.learning_rate,
        seed=config.seed,
        logging_steps=1,
        save_strategy="steps",
        save_steps=config.save_steps,
        save_total_limit=2,
        report_to="none",
        disable_tqdm=True,
        use_cpu=not cuda,
        bf16=False,
        dataloader_num_workers=0,
    )
    fields.update(config.trl)
    return fields


class ProgressCallback(TrainerCallback):
    """A rich progress bar (step, reward, loss), metrics.jsonl rows and manifest heartbeats."""

    def __init__(self, run: RunDir, total: int) -> None:
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        self.run = run
        self.total = total
        self.progress = Progress(
            TextColumn("[bold]train"),
            BarColumn(),
            TextColumn("step {task.completed}/{task.total}"),
            TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(),
        )
        self.task = None

    def on_train_begin(self, args, state, control, **kwargs):  # noqa: D102
        self.progress.start()
        self.task = self.progress.add_task(
            "train", total=self.total, completed=state.global_step, info=""
        )

    def on_log(self, args, state, control, logs=None, **kwargs):  # noqa: D102
        if not logs or "train_runtime" in logs:
            return
        row = {"step": state.global_step, "time": time.time(), **logs}
        self.run.append(self.run.metrics, [row])
        info = "  ".join(
            f"{k} {logs[k]:.4g}" for k in ("reward", "loss", "kl") if isinstance(logs.get(k), float)
        )
        self.progress.update(self.task, completed=state.global_step, info=info)

    def on_step_end(self, args, state, control, **kwargs):  # noqa: D102
        self.progress.update(self.task, completed=state.global_step)

    def on_save(self, args, state, control, **kwargs):  # noqa: D102
        self.run.update_manifest(last_checkpoint_step=state.global_step)

    def on_train_end(self, args, state, control, **kwargs):  # noqa: D102
        self.progress.stop()


def reward_summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean reward of the first and last quarter of logged steps."""
    rewards = [
        r["reward"]
        for r in rows
        if isinstance(r.get("reward"), int | float) and not math.isnan(r["reward"])
    ]
    if len(rewards) < 4:
        return {"reward_steps": len(rewards)}
    q = max(len(rewards) // 4, 1)
    first, last = sum(rewards[:q]) / q, sum(rewards[-q:]) / q
    return {
        "reward_steps": len(rewards),
        "reward_first_quarter": first,
        "reward_last_quarter": last,
        "reward_improved": last > first,
    }


def run_training(
    trainer_name: str,
    config: TrainConfig,
    build: Callable[[TrainConfig, RunDir, Any, Any, Any, list[Any]], Any],
    extra_manifest: dict[str, Any] | None = None,
    resume: bool = False,
) -> RunDir:
    """Create (or reopen) the run dir, build the TRL trainer with ``build``, train, save, summarise.

    ``build(config, run, model, tokenizer, peft_config, callbacks)`` returns a TRL trainer.
    """
    output = config.output or default_output(trainer_name, config)
    if resume:
        run = RunDir.open(output)
    else:
        run = RunDir.create(output, config.overwrite)
        run.write_manifest(
            {
                "trainer": trainer_name,
                "status": "created",
                "created_at": _now(),
                "base_model": reference_for_manifest(config.model),
                "domain": config.domain,
                "dataset": config.dataset,
                "reward": list(config.reward),
                "reward_weights": config.reward_weights,
                "judge": config.judge,
                "lora": config.lora,
                "seed": config.seed,
                "mitigations": [],
                "config": config_to_dict(config),
                "git_commit": git_commit(),
                "versions": versions(),
                **(extra_manifest or {}),
            }
        )
    checkpoint = run.last_checkpoint() if resume else None
    if resume and checkpoint is None:
        raise EmbenchError(
            f"{run.path} has no periodic checkpoint to resume from; start it anew with --overwrite"
        )
    if checkpoint is not None:
        step = int(checkpoint.name.split("-")[-1])
        for file in (run.metrics, run.rollouts):  # drop rows logged after the checkpoint
            kept = [r for r in run.read_jsonl(file) if r.get("step", 0) <= step]
            file.write_text("".join(json.dumps(r) + "\n" for r in kept))

    model, tokenizer, peft_config = load_policy(config)
    callbacks = [ProgressCallback(run, config.max_steps)]
    started = time.time()
    trainer = build(config, run, model, tokenizer, peft_config, callbacks)
    trainer.remove_callback(PrinterCallback)  # our progress bar replaces the printed log dicts
    run.update_manifest(
        status="running",
        trl_config=_jsonable(trainer.args.to_dict()),
        **getattr(trainer, "embench_manifest", {}),
    )
    try:
        trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    except KeyboardInterrupt:
        last = run.last_checkpoint()
        run.update_manifest(
            status="interrupted", interrupted_at=_now(), last_checkpoint=str(last) if last else None
        )
        raise
    except BaseException as ex:
        run.update_manifest(status="failed", error=f"{type(ex).__name__}: {ex}")
        raise
    trainer.save_model(str(run.checkpoint))
    tokenizer.save_pretrained(str(run.checkpoint))
    record_probe(trainer, tokenizer, run)  # the final logits, to check reloads against
    finish = getattr(trainer, "embench_finish", None)  # mitigations: save-time work, costs
    mitigations = {"mitigations": finish(run)} if finish else {}
    summary = {
        "steps": trainer.state.global_step,
        "seconds": round(time.time() - started, 1),
        **reward_summary(run.read_jsonl(run.metrics)),
        **getattr(trainer, "embench_summary", {}),
    }
    run.update_manifest(status="finished", finished_at=_now(), summary=summary, **mitigations)
    return run


def _jsonable(values: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(values, default=str))
