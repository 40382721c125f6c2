"""The keyword a model's ``forward`` takes its KV cache under.

transformers renamed ``past_key_values`` to ``cache`` during 5.x (5.17, which the ``gpu`` extra
resolves to with vLLM, takes only ``past_key_values``; 5.25 takes ``cache`` and still accepts the
old name with a deprecation warning). An unknown keyword is swallowed by ``**kwargs`` there, so a
cache passed under the wrong name is silently ignored: the model builds its own, and ours stays
empty. Ask the signature instead of the version.
"""

from __future__ import annotations

import inspect
from functools import cache
from typing import Any


@cache
def _keyword(forward_class: type) -> str:
    parameters = inspect.signature(forward_class.forward).parameters
    return "cache" if "cache" in parameters else "past_key_values"


def cache_kwargs(model: Any, kv_cache: Any) -> dict[str, Any]:
    """``{<the keyword model.forward takes its cache under>: kv_cache}``."""
    return {_keyword(type(model)): kv_cache}
