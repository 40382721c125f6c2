"""What a grid costs, computed from its config (`embench experiment CONFIG --estimate`).

Counts are exact for the config (cells, training generations, eval answers, judge calls). Time
and money need the target machine's speed, which a config states under ``cost`` (assumptions,
printed as such): ``train_seconds_per_step`` per trainer, ``generation_tokens_per_second`` for
evals, ``judge_usd_per_1k_calls``. Eval time counts every answer at ``max_tokens``
(an upper bound). Without ``cost``, time comes from this machine's measured rates: the
experiment folder's finished runs and eval logs (``embench.experiments.rates``), when it has any.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from embench.experiments.config import ExperimentConfig
from embench.experiments.rates import MeasuredRates

DEFAULT_SAMPLES = 50  # the general task's default answers per question (published: 50-100)


@dataclass(frozen=True)
class Estimate:
    """The cost of one grid."""

    cells: int
    cells_by_trainer: dict[str, int]
    training_steps: int
    training_generations: int
    training_judge_calls: int
    evaluated_checkpoints: int
    eval_answers: int
    eval_judge_calls: int
    rescore_judge_calls: int
    gpu_hours: float
    judge_usd: float
    assumptions: dict[str, Any]
    measured: MeasuredRates | None = None
    measured_hours: float = 0.0
    unmeasured_trainers: tuple[str, ...] = ()

    @property
    def judge_calls(self) -> int:
        """Every judge call: training rewards, evals, re-scoring."""
        return self.training_judge_calls + self.eval_judge_calls + self.rescore_judge_calls


def _general_answers(config: ExperimentConfig) -> int:
    from embench.questions import load_question_set

    args = config.eval.get("general") or {}
    qset = load_question_set(args.get("questions", "general"))
    total = 0
    for question in qset.questions:
        samples = args.get("samples") or question.samples_per_paraphrase or DEFAULT_SAMPLES
        total += samples * len(question.paraphrases)
    return _limited(config, total)


def _in_domain(config: ExperimentConfig, domain: str) -> tuple[int, int]:
    """(answers, judge calls per answer) of the in-domain eval of ``domain``."""
    from embench.data.domains import eval_questions_path, get_domain
    from embench.questions import load_question_set

    args = config.eval.get("in_domain") or {}
    qset = load_question_set(eval_questions_path(domain))
    answers = sum(len(q.paraphrases) * int(args.get("samples", 1)) for q in qset.questions)
    spec = get_domain(domain)
    if spec.verifier:  # scored exactly: no judge call
        return _limited(config, answers), 0
    rubrics = {name for direction in ("narrow", "opposite") for name in spec.reward[direction]}
    return _limited(config, answers), len(rubrics) + 1  # + coherence


def _limited(config: ExperimentConfig, answers: int) -> int:
    limit = config.eval.get("limit")
    return min(answers, int(limit)) if limit else answers


def _reward_calls(domain: str, rewards: tuple[str, ...]) -> int:
    """Judge calls per training generation for a reward list (+1 coherence per judged reward)."""
    from embench.data.domains import get_domain
    from embench.rewards import default_rewards, needs_judge
    from embench.rewards.registry import JUDGE_PREFIX

    calls = 0
    spec = None
    for name in rewards or default_rewards(domain):
        if not needs_judge(name):
            continue
        spec = spec or get_domain(domain)
        key = name.removeprefix(JUDGE_PREFIX)
        calls += len(spec.reward.get(key, [key])) + 1
    return calls


def _trainer_value(plugin: Any, options: dict[str, Any], name: str) -> Any:
    if name in options:
        return options[name]
    import dataclasses

    fields = {f.name: f for f in dataclasses.fields(plugin.config_class)}
    default = fields[name].default if name in fields else None
    return None if default is dataclasses.MISSING else default


def estimate_cost(config: ExperimentConfig, measured: MeasuredRates | None = None) -> Estimate:
    """Count every cell's training and evaluation work, and price it with ``cost`` (or, without
    it, time it at ``measured`` rates)."""
    from embench.training.plugins import get_trainer

    cost = dict(config.raw.get("cost") or {})
    step_seconds = dict(cost.get("train_seconds_per_step") or {})
    tokens_per_second = float(cost.get("generation_tokens_per_second") or 0)
    usd_per_1k = float(cost.get("judge_usd_per_1k_calls") or 0)
    general = _general_answers(config)
    general_tokens = int((config.eval.get("general") or {}).get("max_tokens", 600))
    in_domain_tokens = int((config.eval.get("in_domain") or {}).get("max_tokens", 600))
    by_domain = {d: _in_domain(config, d) for d in config.domains}
    controls = {c.domain: _in_domain(config, c.domain) for c in config.controls}
    plugins: dict[str, Any] = {}
    cells = config.cells()
    by_trainer: dict[str, int] = {}
    steps = generations = train_calls = checkpoints = answers = eval_calls = 0
    seconds = measured_seconds = 0.0
    measured_steps = dict(measured.train_seconds_per_step) if measured else {}
    unmeasured: set[str] = set()
    rl_generations: dict[str, int] = {}
    for cell in cells:
        plugin = plugins.setdefault(cell.trainer, get_trainer(cell.trainer, allow_file=True))
        by_trainer[cell.trainer] = by_trainer.get(cell.trainer, 0) + 1
        cell_steps = int(_trainer_value(plugin, cell.options, "max_steps") or 0)
        if cell.match_label:  # sample-matched SFT: as many samples as its RL run generated
            batch = int(_trainer_value(plugin, cell.options, "per_device_train_batch_size") or 1)
            cell_steps = math.ceil(rl_generations.get(cell.match_label, 0) / batch)
        elif cell.reward or cell.trainer != "sft":
            batch = int(_trainer_value(plugin, cell.options, "per_device_train_batch_size") or 0)
            made = cell_steps * batch
            rl_generations[cell.label] = made
            generations += made
            train_calls += made * _reward_calls(cell.domain, cell.reward)
        steps += cell_steps
        seconds += cell_steps * float(step_seconds.get(cell.trainer, 0))
        if cell.trainer in measured_steps:
            measured_seconds += cell_steps * measured_steps[cell.trainer]
        elif cell_steps:
            unmeasured.add(cell.trainer)
        evaluated = len(config.eval_steps(cell_steps))
        checkpoints += evaluated
        domain_answers, per_answer = {**controls, **by_domain}[cell.domain]
        answers += evaluated * (general + domain_answers)
        eval_calls += evaluated * (general * 2 + domain_answers * per_answer)
        if tokens_per_second:
            seconds += (
                evaluated
                * (general * general_tokens + domain_answers * in_domain_tokens)
                / tokens_per_second
            )
    for _ in config.models:  # step-0 baselines: general + every domain
        checkpoints += 1
        answers += general + sum(a for a, _ in by_domain.values())
        eval_calls += general * 2 + sum(a * c for a, c in by_domain.values())
    if measured and measured.eval_seconds_per_answer is not None:
        measured_seconds += answers * measured.eval_seconds_per_answer
    rescore_calls = eval_calls * len(config.extra_judges)
    total_calls = train_calls + eval_calls + rescore_calls
    return Estimate(
        cells=len(cells),
        cells_by_trainer=by_trainer,
        training_steps=steps,
        training_generations=generations,
        training_judge_calls=train_calls,
        evaluated_checkpoints=checkpoints,
        eval_answers=answers,
        eval_judge_calls=eval_calls,
        rescore_judge_calls=rescore_calls,
        gpu_hours=seconds / 3600,
        judge_usd=total_calls / 1000 * usd_per_1k,
        assumptions=cost,
        measured=measured if measured else None,
        measured_hours=measured_seconds / 3600,
        unmeasured_trainers=tuple(sorted(unmeasured)),
    )


def format_estimate(estimate: Estimate) -> str:
    """The estimate as a few lines for the terminal and the README."""
    trainers = ", ".join(f"{n} {t}" for t, n in sorted(estimate.cells_by_trainer.items()))
    lines = [
        f"cells: {estimate.cells} ({trainers})",
        f"training: {estimate.training_steps} steps, {estimate.training_generations} RL "
        f"generations, {estimate.training_judge_calls} judge calls for rewards",
        f"evals: {estimate.evaluated_checkpoints} checkpoints, {estimate.eval_answers} answers, "
        f"{estimate.eval_judge_calls} judge calls (+{estimate.rescore_judge_calls} re-scoring)",
        f"judge calls in all: {estimate.judge_calls}",
    ]
    if estimate.assumptions:
        lines.append(
            f"at the config's assumed speeds and prices ({estimate.assumptions}): "
            f"~{estimate.gpu_hours:.1f} GPU hours, ~${estimate.judge_usd:.0f} of judge calls"
        )
    elif estimate.measured:
        rates = estimate.measured
        steps = ", ".join(f"{t} {s:.1f} s/step" for t, s in rates.train_seconds_per_step.items())
        answer = (
            f"{rates.eval_seconds_per_answer:.2f} s per eval answer"
            if rates.eval_seconds_per_answer is not None
            else "no eval rate"
        )
        lines.append(
            f"at this machine's measured rates ({steps or 'no training rate'}; {answer}; from "
            f"{rates.runs} finished runs and {rates.logs} eval logs in the experiment folder): "
            f"~{estimate.measured_hours:.2f} hours"
            + (
                f" (without {', '.join(estimate.unmeasured_trainers)}: no run of it measured)"
                if estimate.unmeasured_trainers
                else ""
            )
        )
    else:
        lines.append(
            "no `cost` assumptions in the config and nothing measured in its folder yet: time "
            "not estimated (run one cell, or state `cost`)"
        )
    return "\n".join(lines)
