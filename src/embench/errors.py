"""User-facing errors: one line that names the problem and the fix."""


class EmbenchError(Exception):
    """A problem with the user's input or environment, reported as one line, exit code 2."""


def as_inspect_error(error: EmbenchError) -> Exception:
    """The same message as Inspect's PrerequisiteError, which its CLI prints without a traceback."""
    from inspect_ai._util.error import PrerequisiteError

    return PrerequisiteError(f"embench: {error}")
