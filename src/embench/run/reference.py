"""The ``local/<ref>`` model grammar: how an Inspect model name names something embench loads.

``<ref>`` is any reference ``embench.models.resolve`` understands (``default``, a run directory,
an HF folder, a hub id). An absolute path gives ``local//abs/path``, as Inspect wants. This is the
one parser of that prefix; reading a name never touches the files it names, except where a function
says it looks for a run directory.
"""

from __future__ import annotations

from pathlib import Path

from embench.run.layout import MANIFEST_FILE

LOCAL_PREFIX = "local/"


def is_local(model: str) -> bool:
    """Whether an Inspect model name is served by embench's ``local`` provider.

    >>> is_local("local/default"), is_local("openai/gpt-4o")
    (True, False)
    """
    return model.startswith(LOCAL_PREFIX)


def local_ref(model: str) -> str:
    """The reference after ``local/`` (a name without the prefix is returned as it is).

    >>> local_ref("local//abs/run"), local_ref("default")
    ('/abs/run', 'default')
    """
    return model.removeprefix(LOCAL_PREFIX)


def local_model(reference: str | Path) -> str:
    """The Inspect model name that evaluates ``reference``.

    >>> local_model("default"), local_model(Path("/abs/run"))
    ('local/default', 'local//abs/run')
    """
    return f"{LOCAL_PREFIX}{reference}"


def local_path(model: str) -> Path | None:
    """The folder a ``local/<path>`` model names (``~`` expanded); None for other models."""
    return Path(local_ref(model)).expanduser() if is_local(model) else None


def run_dir_of(model: str) -> Path | None:
    """The folder named by a ``local/<path>`` model, if it is a run directory here."""
    path = local_path(model)
    return path if path is not None and (path / MANIFEST_FILE).is_file() else None


def same_model(a: str, b: str) -> bool:
    """Whether two Inspect model names name one model (``local/`` paths compared resolved)."""
    first, second = local_path(a), local_path(b)
    if first is not None and second is not None:
        return a == b or first.resolve() == second.resolve()
    return a == b
