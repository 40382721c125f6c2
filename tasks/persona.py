"""Judge-free persona monitor (defined in embench.evals.persona).

inspect eval tasks/persona.py --model local/<run> -T vector=<file> [-T layer=20]
inspect eval embench/persona ...          (the same task by its registry name)
"""

from typing import Any

from inspect_ai import Task, task
from inspect_ai.scorer import Scorer, scorer

from embench.evals import persona as _persona
from embench.evals.persona import persona_projection as _persona_projection


# `args` lists the task args and their defaults for `inspect list tasks --json`; a test keeps it
# equal to the package task's signature.
@task(
    args={
        "vector": "",
        "layer": None,
        "questions": "general",
        "subset": None,
        "samples": 1,
        "protocol": "embench",
        "temperature": None,
        "top_p": None,
        "top_k": None,
        "min_p": None,
        "max_tokens": None,
        "system_prompt": None,
    }
)
def persona(**task_args: Any) -> Task:
    """Mean projection of the answers onto a persona vector (judge-free)."""
    return _persona(**task_args)


@scorer(metrics=[])  # the task's metrics are read from the log
def persona_projection(**options: Any) -> Scorer:
    """The package's scorer under the name Inspect logs, so `inspect score <log>` reloads it."""
    return _persona_projection(**options)
