"""embench's Inspect tasks, defined once here: ``misalignment``, ``in_domain`` and
``persona`` (the judge-free persona-vector monitor).

Run them by registry name (``inspect eval embench/misalignment``) or through the thin files in
the checkout's ``tasks/`` folder; both build the same task.
"""

from embench.evals.in_domain import in_domain
from embench.evals.misalignment import misalignment
from embench.evals.persona import persona

__all__ = ["in_domain", "misalignment", "persona"]
