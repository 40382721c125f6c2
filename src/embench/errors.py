"""User-facing errors: one line that names the problem and the fix."""


class EmbenchError(Exception):
    """A problem with the user's input or environment, reported as one line, exit code 2."""


def as_inspect_error(error: EmbenchError) -> Exception:
    """The same message as Inspect's PrerequisiteError, which its CLI prints without a traceback."""
    from inspect_ai._util.error import PrerequisiteError

    return PrerequisiteError(f"embench: {error}")


def from_inspect_error(error: BaseException) -> EmbenchError | None:
    """The EmbenchError that ``as_inspect_error`` turned into ``error``, if it is one (a task
    built outside Inspect's CLI, e.g. by rescore, raises it)."""
    message = str(getattr(error, "message", error))
    if type(error).__name__ == "PrerequisiteError" and message.startswith("embench: "):
        return EmbenchError(message.removeprefix("embench: "))
    return None
