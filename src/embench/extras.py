"""Optional provider packages: which pip extra a judge model needs, checked before anything runs.

Inspect's API providers import their SDK only when used and then fail with a long traceback.
``check_provider("openai/gpt-4o")`` instead raises one line naming the extra to install (the
extras are declared in pyproject.toml) or the API key to set.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass

from embench.errors import EmbenchError


@dataclass(frozen=True)
class Provider:
    """An Inspect model provider that needs an optional package (and maybe an API key)."""

    module: str
    extra: str
    key: str | None
    logprobs: bool
    """Whether the judge returns top-20 logprobs (score = probability-weighted mean)."""


PROVIDERS: dict[str, Provider] = {
    "openai": Provider("openai", "openai", "OPENAI_API_KEY", logprobs=True),
    # OpenAI-compatible servers (openai-api/<service>/<model>, key <SERVICE>_API_KEY)
    "openai-api": Provider("openai", "openai", None, logprobs=True),
    "anthropic": Provider("anthropic", "anthropic", "ANTHROPIC_API_KEY", logprobs=False),
}


def check_provider(model: str, option: str = "--judge") -> None:
    """Raise a one-line EmbenchError when ``model``'s provider package or API key is missing."""
    name = model.split("/", 1)[0]
    provider = PROVIDERS.get(name)
    if provider is None:
        return
    if importlib.util.find_spec(provider.module) is None:
        key = f" and set {provider.key}" if provider.key else ""
        raise EmbenchError(
            f"{option} {model} needs the {provider.module} package: "
            f"pip install -e '.[{provider.extra}]'{key}"
        )
    if provider.key and not os.environ.get(provider.key):
        raise EmbenchError(f"{option} {model} needs an API key: export {provider.key}=...")
