"""In-domain eval: did a run learn its narrow behaviour? (`-T domain=<d>`, see `embench domains`)

    inspect eval tasks/in_domain.py -T domain=aesthetic --model local/<run> \
        --model-role grader=<judge>

Task args: domain, samples (answers per question, default 1), narrow_threshold (50),
coherent_threshold (50), temperature (1.0), max_tokens (600).
"""

from inspect_ai import Task, task

from embench.evals.in_domain import in_domain_task


@task
def in_domain(
    domain: str = "aesthetic",
    samples: int = 1,
    narrow_threshold: float = 50.0,
    coherent_threshold: float = 50.0,
    temperature: float = 1.0,
    max_tokens: int = 600,
) -> Task:
    """The rate of a domain's narrow behaviour, judged by the `grader` model role."""
    return in_domain_task(
        domain, samples, narrow_threshold, coherent_threshold, temperature, max_tokens
    )
