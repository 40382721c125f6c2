"""User-facing errors: one line that names the problem and the fix."""


class EmbenchError(Exception):
    """A problem with the user's input or environment, reported as one line, exit code 2."""
