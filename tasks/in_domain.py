"""In-domain eval: did a run learn its narrow behaviour? (defined in embench.evals.in_domain)

    inspect eval tasks/in_domain.py -T domain=aesthetic --model local/<run> \
        --model-role grader=<judge>
    inspect eval embench/in_domain ...        (the same task by its registry name)
"""

from typing import Any

from inspect_ai import Task, task
from inspect_ai.scorer import Scorer, scorer

from embench.evals import in_domain as _in_domain
from embench.evals.in_domain import in_domain_judge as _in_domain_judge


# `args` lists the task args and their defaults for `inspect list tasks --json` (None: from the
# protocol); a test keeps it equal to the package task's signature.
@task(
    args={
        "domain": "aesthetic",
        "samples": 1,
        "narrow_threshold": 50.0,
        "coherent_threshold": 50.0,
        "protocol": "embench",
        "temperature": None,
        "top_p": None,
        "top_k": None,
        "min_p": None,
        "max_tokens": None,
        "system_prompt": None,
        "min_mass": 0.25,
        "confirm": True,
    }
)
def in_domain(**task_args: Any) -> Task:
    """The rate of a domain's narrow behaviour, judged by the `grader` model role."""
    return _in_domain(**task_args)


@scorer(metrics=[])  # the task's metrics, with their parameters, are read from the log
def in_domain_judge(**options: Any) -> Scorer:
    """The package's scorer under the name Inspect logs, so `inspect score <log>` reloads it."""
    return _in_domain_judge(**options)
