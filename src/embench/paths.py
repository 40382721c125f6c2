"""Where embench keeps its files: package data, the user cache, and the leaderboards folder.

The library needs nothing outside the installed package. Boards are a folder of the project that
uses embench (``leaderboards/`` in this repository), found from the working directory.
"""

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
DATA_DIR = PACKAGE_DIR / "data"

LEADERBOARDS_FOLDER = "leaderboards"


def cache_dir() -> Path:
    """The user cache (converted models, judge cache); override with EMBENCH_CACHE."""
    root = os.environ.get("EMBENCH_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "embench"
    )
    return Path(root)


def leaderboards_dir(start: str | Path | None = None) -> Path:
    """The nearest ``leaderboards/`` folder in ``start`` (default: the working directory) or one of
    its parents, as git finds its repository; ``<start>/leaderboards`` when there is none."""
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / LEADERBOARDS_FOLDER).is_dir():
            return folder / LEADERBOARDS_FOLDER
    return here / LEADERBOARDS_FOLDER


def script(name: str) -> str:
    """How to call one of this environment's console scripts (``embench``, ``inspect``) in a
    printed command: README's ``.venv/bin/<name>`` form from the project root, the bare name when
    it is this environment's on PATH, else its absolute path."""
    import shutil
    import sys

    folder = Path(sys.prefix) / "bin"
    try:
        return str((folder / name).relative_to(Path.cwd()))
    except ValueError:
        pass
    found = shutil.which(name)
    if found and Path(found).parent == folder:
        return name
    return str(folder / name)
