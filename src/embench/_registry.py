"""Inspect entry point: registers the `local` model provider, the `embench/...` tasks and the
hook that prints the submit command after an embench eval (``EMBENCH_NEXT_STEPS=0``: no hook,
and no "hooks enabled" line from Inspect)."""

import os

from inspect_ai.model import ModelAPI, modelapi

from embench.evals import in_domain, misalignment, persona
from embench.evals.in_domain import in_domain_exact, in_domain_judge
from embench.evals.misalignment import misalignment_judge
from embench.evals.persona import persona_projection

__all__ = [
    "in_domain",
    "in_domain_exact",
    "in_domain_judge",
    "local",
    "misalignment",
    "misalignment_judge",
    "persona",
    "persona_projection",
]

if os.environ.get("EMBENCH_NEXT_STEPS", "1") != "0":
    from embench.leaderboard.next_steps import NextSteps  # registers the hook with Inspect

    __all__ += ["NextSteps"]


@modelapi(name="local")
def local() -> type[ModelAPI]:
    """embench's continuous-batching provider for local models (see embench.models.provider)."""
    from embench.models.provider import LocalModelAPI

    return LocalModelAPI
