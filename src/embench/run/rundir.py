"""Run directories: what a trainer writes, locked to one writer.

runs/<name>/manifest.json     a ``RunManifest`` (``embench.run.manifest``)
runs/<name>/checkpoint/       final HF weights or LoRA adapter (+ tokenizer)
runs/<name>/checkpoints/      periodic TRL checkpoints, for --resume (complete ones carry a marker)
runs/<name>/rollouts.jsonl    RL: prompt, completion, each reward component, step
runs/<name>/metrics.jsonl     per logged step: loss, reward, KL, ...
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
from pathlib import Path
from typing import Any

from embench.errors import EmbenchError
from embench.fsutil import atomic_write_text
from embench.run.layout import COMPLETE_MARKER, LOCK_FILE, MANIFEST_FILE, OWN_CHECKPOINT
from embench.run.manifest import RunManifest

#: Run directories this process holds the lock of: resolved path -> open lock file descriptor.
_HELD: dict[str, int] = {}


class RunDir:
    """A run directory: its files, its manifest and its periodic checkpoints."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    manifest_path = property(lambda self: self.path / MANIFEST_FILE)
    checkpoint = property(lambda self: self.path / OWN_CHECKPOINT)
    checkpoints = property(lambda self: self.path / "checkpoints")
    rollouts = property(lambda self: self.path / "rollouts.jsonl")
    metrics = property(lambda self: self.path / "metrics.jsonl")

    @classmethod
    def check_free(cls, path: str | Path, overwrite: bool) -> None:
        """Refuse an output embench may not write (nothing is written): an existing, non-empty
        folder without ``overwrite``; with it, anything but an embench run directory (one holding
        a manifest), the working directory or a folder above it, a symbolic link, a file, and a
        run another process is writing."""
        run = cls(path)
        if run.path.is_symlink():
            raise EmbenchError(
                f"output {run.path} is a symbolic link; give the real folder it points to"
            )
        if run.path.exists() and not run.path.is_dir():
            raise EmbenchError(
                f"output {run.path} is a file, not a folder; choose another --output"
            )
        if run.path.is_dir():
            run.check_unlocked()
        if not run.would_remove(run.path):
            return
        if not overwrite:
            raise EmbenchError(
                f"output directory {run.path} already exists; pass --overwrite to replace it "
                f"or --resume {run.path} to continue it"
            )
        here = Path.cwd().resolve()
        if run.path.resolve() in (here, *here.parents):
            raise EmbenchError(
                f"--overwrite would remove {run.path}, which holds the working directory; "
                "choose another --output"
            )
        if not _made_by_embench(run.path):
            raise EmbenchError(
                f"--overwrite replaces only embench run directories, and {run.path} holds no "
                f"{MANIFEST_FILE}; move its files away or choose another --output"
            )

    @classmethod
    def would_remove(cls, path: str | Path) -> list[Path]:
        """What ``create(path, overwrite=True)`` removes (after ``check_free`` accepted it)."""
        run = cls(path)
        if not run.path.is_dir() or run.path.is_symlink():
            return []
        return sorted(p for p in run.path.iterdir() if p.name != LOCK_FILE)

    @classmethod
    def create(cls, path: str | Path, overwrite: bool) -> RunDir:
        """A fresh run directory, locked for this process (see ``lock``); an existing one is
        refused unless ``overwrite`` and it is an embench run directory (``check_free``)."""
        cls.check_free(path, overwrite)
        run = cls(path)
        run.path.mkdir(parents=True, exist_ok=True)
        run.lock()
        for item in run.would_remove(run.path):
            if item.is_dir() and not item.is_symlink():
                shutil.rmtree(item)
            else:
                item.unlink()
        return run

    def lock(self) -> None:
        """Become the run directory's one writer (an ``flock`` held until ``unlock`` or exit);
        another process holding it is refused in one line naming its PID. Re-entrant."""
        key = str(self.path.resolve())
        if key in _HELD:
            return
        fd = os.open(self.path / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise self._in_use() from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        _HELD[key] = fd

    def unlock(self) -> None:
        """Release this process's lock on the run directory (no-op when not held)."""
        fd = _HELD.pop(str(self.path.resolve()), None)
        if fd is not None:
            os.close(fd)

    def check_unlocked(self) -> None:
        """Refuse, in one line naming its PID, a run directory another process is writing."""
        file = self.path / LOCK_FILE
        if str(self.path.resolve()) in _HELD or not file.is_file():
            return
        fd = os.open(file, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            raise self._in_use() from None
        finally:
            os.close(fd)

    def _in_use(self) -> EmbenchError:
        try:
            pid = (self.path / LOCK_FILE).read_text().strip() or "?"
        except OSError:
            pid = "?"
        return EmbenchError(
            f"run directory {self.path} is being written by process {pid}; wait for it to end "
            "or choose another --output"
        )

    @classmethod
    def open(cls, path: str | Path) -> RunDir:
        """An existing run directory (for --resume, --match)."""
        run = cls(path)
        if not run.manifest_path.exists():
            raise EmbenchError(f"{run.path} is not an embench run directory (no manifest.json)")
        return run

    def manifest(self) -> RunManifest:
        """The typed manifest."""
        return RunManifest.load(self.path)

    def update_manifest(self, **fields: Any) -> RunManifest:
        """Replace ``fields`` in the manifest (validated) and write it atomically."""
        return self.manifest().updated(**fields).save(self.path)

    def append(self, file: Path, rows: list[dict[str, Any]]) -> None:
        """Append JSON lines in one write, so processes appending together never interleave."""
        text = "".join(json.dumps(row, default=str) + "\n" for row in rows)
        fd = os.open(file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
        try:
            os.write(fd, text.encode("utf-8"))
        finally:
            os.close(fd)

    def read_jsonl(self, file: Path) -> list[dict[str, Any]]:
        """All rows of a JSON-lines file (empty when absent; a torn last line is dropped)."""
        if not file.exists():
            return []
        rows = []
        for line in filter(str.strip, file.read_text().splitlines()):
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a line cut by a kill mid-write
        return rows

    def keep_rows_until(self, step: int) -> None:
        """Drop metrics/rollouts rows logged after ``step`` (before resuming from it)."""
        for file in (self.metrics, self.rollouts):
            if file.exists():
                kept = [r for r in self.read_jsonl(file) if (r.get("step") or 0) <= step]
                atomic_write_text(file, "".join(json.dumps(r, default=str) + "\n" for r in kept))

    def _numbered_checkpoints(self) -> list[Path]:
        found = [p for p in self.checkpoints.glob("checkpoint-*") if p.name[11:].isdigit()]
        return sorted(found, key=checkpoint_step)

    @staticmethod
    def mark_complete(folder: Path) -> None:
        """Record that a periodic checkpoint was written to the end (TRL's on_save)."""
        atomic_write_text(folder / COMPLETE_MARKER, "complete\n")

    def complete_checkpoints(self) -> list[Path]:
        """Periodic checkpoints written to the end, oldest first (a save cut short is left out)."""
        return [p for p in self._numbered_checkpoints() if (p / COMPLETE_MARKER).is_file()]

    def last_checkpoint(self) -> Path | None:
        """The newest complete periodic checkpoint."""
        complete = self.complete_checkpoints()
        return complete[-1] if complete else None

    def drop_incomplete_checkpoints(self) -> list[Path]:
        """Remove checkpoint folders a kill left half-written; returns them."""
        dropped = [p for p in self._numbered_checkpoints() if not (p / COMPLETE_MARKER).is_file()]
        for folder in dropped:
            shutil.rmtree(folder, ignore_errors=True)
        return dropped


def _made_by_embench(folder: Path) -> bool:
    """Whether ``folder`` holds an embench manifest (a JSON object naming its trainer)."""
    try:
        data = json.loads((folder / MANIFEST_FILE).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and bool(data.get("trainer"))


def checkpoint_step(folder: Path) -> int:
    """The global step of a ``checkpoint-N`` folder."""
    return int(folder.name.rsplit("-", 1)[-1])
