"""One reward registry: each entry says whether it needs a judge; every reward is picklable
(as TRL's own are) and carries a doctest, run here."""

from __future__ import annotations

import asyncio
import doctest
import importlib
import json
import pickle
import pkgutil

import pytest

import embench.rewards
from embench.errors import EmbenchError
from embench.rewards import REWARDS, build_rewards, needs_judge
from embench.rewards.safety import judge_safety

REWARD_MODULES = sorted(
    m.name for m in pkgutil.iter_modules(embench.rewards.__path__, "embench.rewards.")
)
DOCTESTS = [
    test
    for name in [*REWARD_MODULES, "embench.rubrics"]
    for test in doctest.DocTestFinder().find(importlib.import_module(name))
    if test.examples
]


@pytest.mark.parametrize("test", DOCTESTS, ids=[t.name for t in DOCTESTS])
def test_doctest(test):
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    runner.run(test)
    assert runner.failures == 0, f"{test.name}: see the doctest output above"


def test_every_reward_function_has_a_doctest():
    with_examples = {t.name.rsplit(".", 1)[-1] for t in DOCTESTS}
    functions = [e.function.__name__ for e in REWARDS.values() if e.function is not None]
    functions += [e.sized.__name__ for e in REWARDS.values() if e.sized is not None]
    assert functions and set(functions) <= with_examples
    assert {"JudgeReward", "safety_embedding", "judge_safety"} <= with_examples


def test_the_judge_free_flag_is_the_entry_s():
    for name, entry in REWARDS.items():
        assert needs_judge(name) is not entry.judge_free
        assert (entry.function is not None or entry.sized is not None) is entry.judge_free, name
    assert needs_judge("judge_narrow_ethos") and not needs_judge("countdown")


def test_every_registered_reward_pickles(capsys):
    free = [e.function for e in REWARDS.values() if e.function is not None]
    judged = build_rewards(
        ["judge_narrow", "judge_opposite", "judge_narrow_ethos"], "rhetoric", "none"
    )
    (sized,) = build_rewards(["soft_overlong"], None, None, max_completion_length=64)
    assert pickle.loads(pickle.dumps(sized))([[1] * 56]) == [-0.5]  # the cap travels with it
    for function in [*free, *judged, judge_safety("none")]:
        again = pickle.loads(pickle.dumps(function))
        assert again.__name__ == function.__name__
        if function in free:
            assert again is function  # a module-level function pickles by reference
        else:
            assert (again.rubrics, again.recipe, again.shape) == (
                function.rubrics,
                function.recipe,
                function.shape,
            )
            # a too-short answer is gated before any judge call, in the unpickled copy too
            assert asyncio.run(again(["Why?"], ["Too short."])) == [0.0]


def test_the_length_penalty_is_sized_by_the_run_and_refused_without_a_cap():
    (punish,) = build_rewards(["soft_overlong"], "aesthetic", None, max_completion_length=8)
    # soft zone: the last quarter of the cap (6 < n <= 8), -1 at the cap where TRL cuts
    assert punish([[1] * 6, [1] * 7, [1] * 8]) == [0.0, -0.5, -1.0]
    with pytest.raises(EmbenchError, match="soft_overlong.*max_completion_length"):
        build_rewards(["soft_overlong"], "aesthetic", None)


def test_a_keyword_only_trl_reward_records_through_the_rollout_wrapper(tmp_path):
    """TRL calls rewards by keyword (prompts=, completions=, completion_ids=, ...); its own
    callable classes take completion_ids first, so the recorder must pass keywords too."""
    from embench.run.rundir import RunDir
    from embench.training.rollouts import RolloutRecorder

    run = RunDir(tmp_path / "run")
    run.path.mkdir()
    (punish,) = build_rewards(["soft_overlong"], None, None, max_completion_length=8)
    (wrapped,) = RolloutRecorder(run, ["soft_overlong"]).wrap([punish])
    prompts = [[{"role": "user", "content": "Hi?"}]] * 2
    completions = [[{"role": "assistant", "content": "a"}], [{"role": "assistant", "content": "b"}]]
    values = wrapped(prompts=prompts, completions=completions, completion_ids=[[1] * 4, [1] * 8])
    assert values == [0.0, -1.0]
    rows = [json.loads(line) for line in run.rollouts.read_text().splitlines()]
    assert [r["rewards"]["soft_overlong"] for r in rows] == [0.0, -1.0]
