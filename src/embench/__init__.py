"""embench: emergent-misalignment benchmark for narrow RL and SFT fine-tuning."""

__version__ = "0.1.0"

# The Inspect tasks, exported lazily so that `import embench` (and the CLI) stays fast.
__all__ = ["__version__", "in_domain", "misalignment"]


def __getattr__(name: str) -> object:
    if name in ("in_domain", "misalignment"):
        from embench import evals

        return getattr(evals, name)
    raise AttributeError(f"module 'embench' has no attribute {name!r}")
