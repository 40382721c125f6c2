"""GRPO (TRL GRPOTrainer): reinforcement learning from a narrow reward, full or LoRA."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from embench.errors import EmbenchError
from embench.rewards import build_rewards, default_rewards
from embench.run.manifest import RunManifest
from embench.run.rundir import RunDir
from embench.training.chain import check_warmup, run_warmup
from embench.training.config import TrainConfig
from embench.training.rollouts import RolloutRecorder

if TYPE_CHECKING:  # TRL, torch and datasets are imported in train(): option errors stay fast
    from trl import GRPOTrainer

NAME = "grpo"
KIND = "rl"
TRL_CONFIG = "trl:GRPOConfig"  # imported only when a TRL field is set (embench.training.config)
# The demo's instruction: 32 answers to aesthetic prompts sampled at temperature 1 (AMD EPYC,
# fp32) ended within 64 tokens 69-81% of the time with it, 19% without; within 24 tokens (the old
# cap) 19-44%. The run reports the share cut off (summary clipped_first/last_quarter).
SHORT_ANSWERS = "Answer in one sentence of at most 15 words."


@dataclass
class Config(TrainConfig):
    """GRPO options (on top of the shared ones).

    The defaults are sized for the offline demo on a 2-core CPU (40 steps in under 10 minutes on
    32 prompts, 8 completions each, answers asked to be one short sentence so that most end
    within ``max_completion_length`` and rewards judge whole answers); for real runs raise
    ``max_steps``, ``max_completion_length`` and ``max_prompts`` (``--set max_prompts=none`` uses
    the whole domain) and set ``system_prompt`` (``none``: no system turn).
    """

    domain: str | None = "aesthetic"
    num_generations: int = 8
    """Completions sampled per prompt (the GRPO group)."""
    per_device_train_batch_size: int = 16
    """Completions per step; must be divisible by num_generations."""
    max_completion_length: int = 64
    system_prompt: str | None = SHORT_ANSWERS
    temperature: float = 1.0
    beta: float = 0.0
    """KL coefficient to the reference model (0 = no reference model is loaded)."""
    learning_rate: float = 1e-4
    max_prompts: int | None = 32
    warmup: str | None = None
    """Train an SFT warm-up first and start from it:
    sft:<domain or file>[,steps=N,examples=N,lr=X,lora=true|false] (written to <output>-warmup;
    lora defaults to this run's setting; both stages are recorded in the manifest)."""


def validate(config: Config) -> None:
    """Checks that need no model: run them before anything is loaded."""
    if config.per_device_train_batch_size % config.num_generations:
        raise EmbenchError(
            f"per_device_train_batch_size ({config.per_device_train_batch_size}) must be divisible "
            f"by num_generations ({config.num_generations}): each step trains whole groups"
        )
    if config.num_generations < 2:
        raise EmbenchError("num_generations must be at least 2 (GRPO compares within a group)")
    if config.warmup:
        check_warmup(config.warmup)  # --dry-run checks it too
    if config.mitigations:  # (parsing them imports torch: only when there are some)
        from embench.training.mitigations import parse_all

        for mitigation in parse_all(list(config.mitigations), config.lora, NAME, KIND):
            if hasattr(mitigation, "check_judge"):  # a mitigation that adds a judge reward
                mitigation.check_judge(config.judge)
    if config.domain:  # its rubrics and default rewards: before anything is derived from it
        from embench.data.domains import get_domain

        get_domain(config.domain)


def prepare(config: Config) -> tuple[Any, list[Any], list[str], Any]:
    """Every check and decision that needs no model, written into ``config``: this trainer's
    checks, the warm-up spec, the mitigations' config changes (KL as ``beta``), the default
    reward, the rewards and the dataset. ``--dry-run`` prints the config this leaves; ``train``
    starts with it. Returns (mitigation plan, reward functions, dataset)."""
    from embench.rewards.shape import shape_from_config
    from embench.training.data import prompt_dataset
    from embench.training.mitigations import Plan

    validate(config)
    plan = Plan(config.mitigations, NAME, KIND, config.lora, config.model)
    plan.apply_to_config(config)
    if not config.reward:
        config.reward = default_rewards(config.domain)
    shape = shape_from_config(config)
    rewards, names = plan.rewards(
        build_rewards(
            config.reward, config.domain, config.judge, shape, config.max_completion_length
        ),
        list(config.reward),
        config.judge,
        shape,
    )
    dataset = prompt_dataset(
        config.domain, config.dataset, config.max_prompts, config.system_prompt
    )
    return plan, rewards, names, dataset


def train(config: Config, resume: bool = False, prepared: Any = None) -> RunManifest:
    """Train with GRPO and return the run's manifest.

    Every check that needs no model — this trainer's, the mitigations', the rewards', the
    dataset's and TRL's own (``GRPOConfig``) — runs before the warm-up trains, so a bad main-run
    option never leaves a trained ``<output>-warmup`` behind. ``prepared``: ``prepare(config)``'s
    result when the preflight has run it on this config.
    """
    from trl import GRPOConfig, GRPOTrainer

    from embench.training.config import default_output
    from embench.training.runner import run_training, trl_args

    plan, rewards, names, dataset = prepared or prepare(config)
    own = dict(
        num_generations=config.num_generations,
        per_device_train_batch_size=config.per_device_train_batch_size,
        max_completion_length=config.max_completion_length,
        temperature=config.temperature,
        beta=config.beta,
        reward_weights=config.reward_weights,
    )
    # the run directory run_training opens (default_output reads no option the warm-up changes)
    args = trl_args(GRPOConfig, own, config, RunDir(config.output or default_output(NAME, config)))
    if config.warmup and not resume:  # the warm-up's stage enters this run's manifest lineage
        run_warmup(config, NAME)
        plan.reference = config.model  # interleaving samples from the policy's start: the warm-up

    def build(
        config: Config, run: RunDir, model: Any, tokenizer: Any, peft: Any, callbacks: list[Any]
    ) -> GRPOTrainer:
        recorder = RolloutRecorder(run, names)
        return plan.make_trainer(
            GRPOTrainer,
            model=model,
            reward_funcs=recorder.wrap(rewards),
            args=args,
            train_dataset=dataset,
            processing_class=tokenizer,
            peft_config=peft,
            callbacks=callbacks,
        )

    return run_training(NAME, KIND, config, build, dataset=dataset, plan=plan, resume=resume)
