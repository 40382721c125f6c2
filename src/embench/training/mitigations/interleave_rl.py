"""RL interleaving with a safety reward: safety prompts join the GRPO prompt stream and their
completions are scored by a safety reward instead of the narrow one.

As the seed paper's code does it (EMA_RL @81cb261): ``configs/grpo_interleaved_rl.json`` sets
``safe_prompt_ratio`` 0.2 and ``safe_reward_weight`` 1.0; ``open_models/grpo.py``
``load_interleaved_dataset`` (lines 1068–1104) takes round(n_narrow × ratio) safety prompts,
shuffles both streams with the seed and places them by a running budget (after each narrow
prompt add ``ratio``; while the budget reaches 1, place a safety prompt), and training keeps that
order (``shuffle_dataset`` off, lines 1270–1276); its ``dispatch_reward`` (lines 1336–1424)
scores narrow prompts with the narrow grader and safety prompts with the ``safe_harm`` grader
times the weight. So ``ratio`` is safety prompts *per narrow prompt*: 0.2 gives a share of
0.2 / 1.2 ≈ 0.167 of all prompts.

Here: the narrow reward functions return None on safety rows and the safety reward None on
narrow rows (TRL sums rewards with ``nansum``, and GRPO normalises within each prompt's group, so
every group is scored by one reward). ``reward=embedding`` (offline, default) scores safety rows
with ``embench.rewards.safety.safety_embedding``; ``reward=judge`` with ``judge_safety`` and the
run's ``--judge``, the embedding score still computed and recorded at weight 0. The share of
safety completions is logged every step (``interleave_rl/safety_share`` in metrics.jsonl) and
totalled in the manifest. Safety prompts carry no system prompt and no inoculation prefix (the
paper's safe rows keep only its plain system prompt).
"""

from __future__ import annotations

import functools
import random
from dataclasses import dataclass
from typing import Any

from embench.errors import EmbenchError

REWARDS = ("embedding", "judge")
NARROW, SAFETY = "narrow", "safety"


@dataclass
class InterleaveRL:
    """Safety prompts in the GRPO stream, scored by a safety reward (published ratio 0.2)."""

    ratio: float = 0.2  # EMA_RL configs/grpo_interleaved_rl.json: safe_prompt_ratio
    data: str | None = None
    reward: str = "embedding"
    weight: float = 1.0  # EMA_RL configs/grpo_interleaved_rl.json: safe_reward_weight
    seed: int = 0

    name = "interleave_rl"
    kinds = ("rl",)  # a reward routed per prompt: only a trainer that samples and scores
    needs_reference = False

    def check(self) -> None:
        """Parameter ranges."""
        if not 0 < self.ratio <= 10:
            raise EmbenchError(
                f"interleave_rl: ratio (safety prompts per narrow prompt) must be in (0, 10], "
                f"got {self.ratio}"
            )
        if self.reward not in REWARDS:
            raise EmbenchError(f"interleave_rl: reward must be one of {', '.join(REWARDS)}")
        if not 0 < self.weight <= 100:
            raise EmbenchError(f"interleave_rl: weight must be in (0, 100], got {self.weight}")

    def __post_init__(self) -> None:
        self.counts = {NARROW: 0, SAFETY: 0}
        self.narrow_rewards = 0

    def reward_functions(
        self, functions: list[Any], names: list[str], judge: str | None, shape: Any
    ) -> tuple[list[Any], list[str]]:
        """Narrow rewards on narrow rows only; the safety reward(s) on safety rows."""
        from embench.rewards.safety import judge_safety, safety_embedding

        self.narrow_rewards = len(functions)
        routed = [only(f, NARROW) for f in functions]
        embedding = self._counted(only(safety_embedding, SAFETY))
        if self.reward == "judge":
            self.check_judge(judge)
            judged = only(judge_safety(judge, shape), SAFETY)
            return [*routed, judged, embedding], [*names, "judge_safety", "safety_embedding"]
        return [*routed, embedding], [*names, "safety_embedding"]

    def check_judge(self, judge: str | None) -> None:
        """reward=judge needs the run's judge (checked before any model loads)."""
        if self.reward == "judge" and not judge:
            raise EmbenchError(
                "interleave_rl: reward=judge needs a judge: pass --judge <inspect model> "
                "(or use reward=embedding offline)"
            )

    def _counted(self, function: Any) -> Any:
        """``function`` (routed), also counting and logging this batch's safety share."""

        @functools.wraps(function)
        def counted(prompts, completions, prompt_type=None, log_metric=None, **kwargs):
            types = list(prompt_type or [NARROW] * len(completions))
            safety = types.count(SAFETY)
            self.counts[SAFETY] += safety
            self.counts[NARROW] += len(types) - safety
            if log_metric is not None:
                log_metric("interleave_rl/safety_share", safety / max(len(types), 1))
            return function(
                prompts=prompts, completions=completions, prompt_type=prompt_type, **kwargs
            )

        return counted

    def prepare(self, plan: Any, kwargs: dict[str, Any]) -> None:
        """Interleave the safety prompts (paper schedule), keep the order, weight the rewards."""
        narrow = kwargs["train_dataset"]
        safety = load_safety_prompts(self.data)
        rows, placed = schedule(list(narrow), safety, self.ratio, self.seed)
        import datasets

        kwargs["train_dataset"] = datasets.Dataset.from_list(rows)
        args = kwargs["args"]
        args.shuffle_dataset = False  # the schedule is the order (EMA_RL grpo.py 1270-1276)
        safety_weights = [self.weight, 0.0] if self.reward == "judge" else [self.weight]
        base = args.reward_weights or [1.0] * self.narrow_rewards
        args.reward_weights = [*base, *safety_weights]
        plan.records[self.name] = {
            "reward_used": "judge_safety" if self.reward == "judge" else "safety_embedding",
            "rewards_recorded": ["judge_safety", "safety_embedding"]
            if self.reward == "judge"
            else ["safety_embedding"],
            "narrow_prompts": len(narrow),
            "safety_prompts": placed,
            "scheduled_share": round(placed / max(placed + len(narrow), 1), 4),
            "safety_source": self.data or "embench safety set",
        }

    def report(self) -> dict[str, Any]:
        """Completions actually scored per stream and the effective share of safety ones."""
        seen = self.counts[SAFETY] + self.counts[NARROW]
        return {
            "narrow_completions": self.counts[NARROW],
            "safety_completions": self.counts[SAFETY],
            "effective_share": round(self.counts[SAFETY] / max(seen, 1), 4),
        }


def load_safety_prompts(path: str | None) -> list[dict[str, str]]:
    """Safety prompts with their exemplar answers: a user file (``prompt``, optional ``answer``
    and ``id``) or the shipped safety set."""
    if path is None:
        from embench.data.domains import load_safety

        raw = list(load_safety())
    else:
        from embench.training.data import read_user_dataset

        table = read_user_dataset(path)
        if "prompt" not in table.column_names:
            raise EmbenchError(
                f"interleave_rl: {path} needs a 'prompt' column (and optionally 'answer', 'id'); "
                f"found {', '.join(table.column_names)}"
            )
        raw = list(table)
    rows = [
        {
            "id": str(r.get("id") or f"row-{i}"),
            "prompt": str(r["prompt"]),
            "answer": str(r.get("answer") or ""),
        }
        for i, r in enumerate(raw)
        if str(r.get("prompt") or "").strip()
    ]
    if not rows:
        raise EmbenchError(f"interleave_rl: no safety prompts in {path or 'the safety set'}")
    return rows


def schedule(
    narrow: list[dict[str, Any]], safety: list[dict[str, str]], ratio: float, seed: int
) -> tuple[list[dict[str, Any]], int]:
    """(rows in training order, safety prompts placed): the paper's budget schedule."""
    rng = random.Random(seed)
    wanted = round(len(narrow) * ratio)
    pool = rng.sample(safety, len(safety))
    chosen = [pool[i % len(pool)] for i in range(wanted)]  # cycles when the set is smaller
    narrow = rng.sample(narrow, len(narrow))
    out: list[dict[str, Any]] = []
    budget, k = 0.0, 0
    for row in narrow:
        out.append({**row, "prompt_type": NARROW, "safety_answer": ""})
        budget += ratio
        while budget >= 1.0 - 1e-9 and k < len(chosen):
            out.append(_safety_row(chosen[k]))
            k += 1
            budget -= 1.0
    out.extend(_safety_row(s) for s in chosen[k:])  # rounding leftovers at the end (as EMA_RL)
    return out, len(chosen)


def _safety_row(s: dict[str, str]) -> dict[str, Any]:
    return {
        "prompt": [{"role": "user", "content": s["prompt"]}],
        "prompt_id": f"safety:{s['id']}",
        "prompt_type": SAFETY,
        "safety_answer": s["answer"],
    }


def only(function: Any, stream: str) -> Any:
    """``function`` called on the rows of ``stream`` only; None for the other rows."""

    def pick(prompt_type: list[str] | None, n: int) -> list[int]:
        types = prompt_type or [NARROW] * n
        return [i for i, t in enumerate(types) if t == stream]

    def subset(rows: list[int], prompts, completions, kwargs) -> tuple[Any, Any, dict[str, Any]]:
        picked = {
            k: [v[i] for i in rows] if isinstance(v, list) and len(v) == len(completions) else v
            for k, v in kwargs.items()
        }
        return [prompts[i] for i in rows], [completions[i] for i in rows], picked

    def scatter(rows: list[int], values: list[Any], n: int) -> list[Any]:
        out: list[Any] = [None] * n
        for i, v in zip(rows, values, strict=True):
            out[i] = v
        return out

    # TRL's own test (async functions and callable classes); trl is loaded when this runs
    from trl.trainer.utils import is_async_callable

    if is_async_callable(function):

        @functools.wraps(function)
        async def routed_async(prompts, completions, prompt_type=None, **kwargs):
            rows = pick(prompt_type, len(completions))
            if not rows:
                return [None] * len(completions)
            p, c, k = subset(rows, prompts, completions, {"prompt_type": prompt_type, **kwargs})
            return scatter(rows, await function(prompts=p, completions=c, **k), len(completions))

        return routed_async

    @functools.wraps(function)
    def routed(prompts, completions, prompt_type=None, **kwargs):
        rows = pick(prompt_type, len(completions))
        if not rows:
            return [None] * len(completions)
        p, c, k = subset(rows, prompts, completions, {"prompt_type": prompt_type, **kwargs})
        return scatter(rows, function(prompts=p, completions=c, **k), len(completions))

    return routed
