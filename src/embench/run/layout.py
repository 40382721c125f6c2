"""The file names of a run directory, importable without pydantic (start-up stays fast)."""

MANIFEST_FILE = "manifest.json"
#: The checkpoint of this run, as recorded in ``weights``/``adapter_chain`` (relative to the run).
OWN_CHECKPOINT = "checkpoint"
#: The file TRL writes last into a periodic checkpoint; our marker is written after it.
COMPLETE_MARKER = ".embench-complete"
#: The one-writer lock of a run directory (``flock``; holds the writer's PID).
LOCK_FILE = ".embench.lock"
