"""Where embench keeps its files: the checkout's folders and the user cache."""

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
DATA_DIR = PACKAGE_DIR / "data"
# embench is used from a checkout (editable install); tasks/, trainers/ and leaderboards/ sit there.
REPO_ROOT = PACKAGE_DIR.parent.parent
TASKS_DIR = REPO_ROOT / "tasks"
TRAINERS_DIR = REPO_ROOT / "trainers"
LEADERBOARDS_DIR = REPO_ROOT / "leaderboards"


def cache_dir() -> Path:
    """The user cache (converted models, judge cache); override with EMBENCH_CACHE."""
    root = os.environ.get("EMBENCH_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "embench"
    )
    return Path(root)
