"""Run directories: what a trainer writes and `local/<run dir>` reads.

runs/<name>/manifest.json     everything needed to reproduce the run, its status and summary
runs/<name>/checkpoint/       final HF weights or LoRA adapter (+ tokenizer)
runs/<name>/checkpoints/      periodic TRL checkpoints, for --resume
runs/<name>/rollouts.jsonl    RL: prompt, completion, each reward component, step
runs/<name>/metrics.jsonl     per logged step: loss, reward, KL, ...
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from embench.errors import EmbenchError
from embench.fsutil import atomic_write_text

STATUSES = ("created", "running", "interrupted", "failed", "finished")


class RunDir:
    """A run directory and its manifest."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    manifest_path = property(lambda self: self.path / "manifest.json")
    checkpoint = property(lambda self: self.path / "checkpoint")
    checkpoints = property(lambda self: self.path / "checkpoints")
    rollouts = property(lambda self: self.path / "rollouts.jsonl")
    metrics = property(lambda self: self.path / "metrics.jsonl")

    @classmethod
    def create(cls, path: str | Path, overwrite: bool) -> RunDir:
        """A fresh run directory; an existing one is refused unless ``overwrite``."""
        run = cls(path)
        if run.path.exists() and any(run.path.iterdir()):
            if not overwrite:
                raise EmbenchError(
                    f"output directory {run.path} already exists; pass --overwrite to replace it "
                    f"or --resume {run.path} to continue it"
                )
            shutil.rmtree(run.path)
        run.path.mkdir(parents=True, exist_ok=True)
        return run

    @classmethod
    def open(cls, path: str | Path) -> RunDir:
        """An existing run directory (for --resume, --match)."""
        run = cls(path)
        if not run.manifest_path.exists():
            raise EmbenchError(f"{run.path} is not an embench run directory (no manifest.json)")
        return run

    def read_manifest(self) -> dict[str, Any]:
        """The manifest as a dict."""
        try:
            return json.loads(self.manifest_path.read_text())
        except (OSError, json.JSONDecodeError) as ex:
            raise EmbenchError(f"cannot read {self.manifest_path}: {ex}") from ex

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        """Replace the manifest atomically."""
        atomic_write_text(self.manifest_path, json.dumps(manifest, indent=2, default=str) + "\n")

    def update_manifest(self, **fields: Any) -> dict[str, Any]:
        """Merge ``fields`` into the manifest."""
        manifest = self.read_manifest() if self.manifest_path.exists() else {}
        manifest.update(fields)
        self.write_manifest(manifest)
        return manifest

    def append(self, file: Path, rows: list[dict[str, Any]]) -> None:
        """Append JSON lines."""
        with file.open("a") as handle:
            for row in rows:
                handle.write(json.dumps(row, default=str) + "\n")

    def read_jsonl(self, file: Path) -> list[dict[str, Any]]:
        """All rows of a JSON-lines file (empty when absent)."""
        if not file.exists():
            return []
        return [json.loads(line) for line in file.read_text().splitlines() if line.strip()]

    def last_checkpoint(self) -> Path | None:
        """The newest periodic TRL checkpoint, if any."""
        found = sorted(
            self.checkpoints.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[-1])
        )
        return found[-1] if found else None
