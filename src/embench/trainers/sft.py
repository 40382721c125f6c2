"""SFT (TRL SFTTrainer): supervised fine-tuning on narrow completions, optionally sample-matched."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from embench.errors import EmbenchError
from embench.run.manifest import RunManifest
from embench.run.rundir import RunDir
from embench.training.config import TrainConfig
from embench.training.matching import (
    SOURCES,
    SampleCounter,
    global_batch,
    matched_examples,
    matched_steps,
    world_size,
)

if TYPE_CHECKING:  # TRL, torch and datasets are imported in train(): option errors stay fast
    from trl import SFTTrainer

NAME = "sft"
KIND = "sft"
TRL_CONFIG = "trl:SFTConfig"  # imported only when a TRL field is set (embench.training.config)


@dataclass
class Config(TrainConfig):
    """SFT options (on top of the shared ones)."""

    domain: str | None = "aesthetic"

    per_device_train_batch_size: int = 4
    max_length: int = 256
    match: str | None = None
    """An RL run directory: train on exactly as many samples as it generated, same prompts."""
    match_source: str = "rollouts"
    """Where matched completions come from: rollouts (top reward per group) or dataset."""
    learning_rate: float = 2e-5


def validate(config: Config) -> None:
    """Checks that need no model."""
    if config.match_source not in SOURCES:
        raise EmbenchError(f"--match-source must be one of {', '.join(SOURCES)}")
    if config.per_device_train_batch_size < 1:
        raise EmbenchError("per_device_train_batch_size must be at least 1")


def prepare(config: Config) -> tuple[Any, Any, dict[str, Any] | None, int]:
    """Every check and decision that needs no model, written into ``config``: this trainer's
    checks and, with ``match``, the RL run's samples and the steps that consume exactly as many.
    ``--dry-run`` prints the config this leaves; ``train`` starts with it. Returns (mitigation
    plan, dataset, match record or None, processes)."""
    import datasets

    from embench.training.data import sft_dataset
    from embench.training.mitigations import Plan, inherit_inoculation

    validate(config)
    if config.match:  # the matched arm of an inoculated RL run trains under the same prefix
        rl_mitigations = [m.model_dump() for m in RunDir.open(config.match).manifest().mitigations]
        config.mitigations = inherit_inoculation(list(config.mitigations), rl_mitigations)
    plan = Plan(config.mitigations, NAME, KIND, config.lora, config.model)
    match, processes = None, world_size()
    if config.match:
        rows, record = matched_examples(config.match, config.match_source, config.domain)
        dataset = datasets.Dataset.from_list(rows)
        accumulation = int(config.trl.get("gradient_accumulation_steps", 1))
        config.max_steps = matched_steps(
            len(rows), config.per_device_train_batch_size, accumulation, processes
        )
        batch = global_batch(config.per_device_train_batch_size, accumulation, processes)
        record["sft_samples"] = config.max_steps * batch
        match = record
    else:
        dataset = sft_dataset(
            config.domain, config.dataset, config.max_prompts, config.system_prompt
        )
    return plan, dataset, match, processes


def train(config: Config, resume: bool = False, prepared: Any = None) -> RunManifest:
    """Train with SFT and return the run's manifest (``prepared``: ``prepare(config)``'s result
    when the preflight has run it on this config)."""
    from trl import SFTConfig, SFTTrainer

    from embench.training.runner import run_training, trl_args

    plan, dataset, match, processes = prepared or prepare(config)
    counter = SampleCounter()

    def build(
        config: Config, run: RunDir, model: Any, tokenizer: Any, peft: Any, callbacks: list[Any]
    ) -> SFTTrainer:
        own = dict(
            per_device_train_batch_size=config.per_device_train_batch_size,
            max_length=config.max_length,
        )
        args = trl_args(SFTConfig, own, config, run)
        trainer = plan.make_trainer(
            SFTTrainer,
            model=model,
            args=args,
            train_dataset=dataset,
            processing_class=tokenizer,
            peft_config=peft,
            callbacks=callbacks,
        )
        counter.attach(trainer)
        return trainer

    return run_training(
        NAME,
        KIND,
        config,
        build,
        dataset=dataset,
        plan=plan,
        match=match,
        world_size=processes,
        summary=counter.summary,
        resume=resume,
    )
