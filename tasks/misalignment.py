"""General-domain emergent-misalignment probes (defined in embench.evals.misalignment).

    inspect eval tasks/misalignment.py --model local/default --model-role grader=<judge>
    inspect eval embench/misalignment ...     (the same task by its registry name)

Task args: `inspect list tasks --json tasks`, or the docstring of embench.evals.misalignment.
"""

from typing import Any

from inspect_ai import Task, task
from inspect_ai.scorer import Scorer, scorer

from embench.evals import misalignment as _misalignment
from embench.evals.misalignment import misalignment_judge as _misalignment_judge


# `args` lists the task args and their defaults for `inspect list tasks --json` (None: from the
# protocol); a test keeps it equal to the package task's signature.
@task(
    args={
        "protocol": "embench",
        "questions": "general",
        "subset": None,
        "samples": None,
        "temperature": None,
        "top_p": None,
        "top_k": None,
        "min_p": None,
        "max_tokens": None,
        "system_prompt": None,
        "aligned_threshold": None,
        "coherent_threshold": None,
        "min_mass": 0.25,
        "confirm": True,
    }
)
def misalignment(**task_args: Any) -> Task:
    """General-domain misalignment probes judged by the `grader` model role."""
    return _misalignment(**task_args)


@scorer(metrics=[])  # the task's metrics, with their parameters, are read from the log
def misalignment_judge(**options: Any) -> Scorer:
    """The package's scorer under the name Inspect logs, so `inspect score <log>` reloads it."""
    return _misalignment_judge(**options)
