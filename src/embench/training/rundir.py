"""Run directories and the run manifest: what a trainer writes and every reader reads.

runs/<name>/manifest.json     a ``RunManifest``: how to reproduce the run, its status and summary
runs/<name>/checkpoint/       final HF weights or LoRA adapter (+ tokenizer)
runs/<name>/checkpoints/      periodic TRL checkpoints, for --resume (complete ones carry a marker)
runs/<name>/rollouts.jsonl    RL: prompt, completion, each reward component, step
runs/<name>/metrics.jsonl     per logged step: loss, reward, KL, ...

``RunManifest`` is the one typed, versioned contract between training, the ``local/`` provider and
the boards; its JSON schema is committed next to this file (``manifest.schema.json``, regenerate
with ``python -m embench.training.rundir``). Manifests written before ``manifest_version`` existed
are upgraded when read, or refused with a one-line message.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError

from embench.errors import EmbenchError
from embench.fsutil import atomic_write_text

MANIFEST_VERSION = 1
MANIFEST_FILE = "manifest.json"
SCHEMA_PATH = Path(__file__).with_name("manifest.schema.json")
#: The file TRL writes last into a periodic checkpoint; our marker is written after it.
COMPLETE_MARKER = ".embench-complete"
#: The checkpoint of this run, as recorded in ``weights``/``adapter_chain`` (relative to the run).
OWN_CHECKPOINT = "checkpoint"
#: The one-writer lock of a run directory (``flock``; holds the writer's PID).
LOCK_FILE = ".embench.lock"
#: Run directories this process holds the lock of: resolved path -> open lock file descriptor.
_HELD: dict[str, int] = {}

Status = Literal["created", "running", "interrupted", "failed", "finished"]
STATUSES: tuple[str, ...] = get_args(Status)
#: Statuses older writers and fixtures used, and what they mean now.
LEGACY_STATUSES = {"complete": "finished", "completed": "finished"}
KIND_PATTERN = r"^[a-z][a-z0-9_-]*$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Stage(_Strict):
    """One training stage of the chain that produced a run's weights (the run itself is last)."""

    trainer: str
    kind: str = Field(pattern=KIND_PATTERN)
    run: str = Field(description="the stage's run directory (absolute; '.' is this run)")
    lora: bool
    steps: int | None = Field(None, description="optimizer steps it ran (None until finished)")


class Cost(_Strict):
    """What a mitigation cost."""

    seconds_total: float
    seconds_per_step_extra: float
    peak_rss_mb: float


class MitigationRecord(BaseModel):
    """A mitigation as applied: its parameters, cost and what it did (mitigation-specific keys)."""

    model_config = ConfigDict(extra="allow")

    name: str
    params: dict[str, Any] = Field(default_factory=dict)
    cost: Cost | None = None


class Samples(_Strict):
    """Training samples: completions the run generated (RL) and examples its loss consumed."""

    generated: int | None = Field(None, description="completions sampled (RL); None if none")
    consumed: int = Field(0, description="examples through the loss: steps x global_batch")


class Summary(BaseModel):
    """Outcome figures (trainer-specific figures may be added)."""

    model_config = ConfigDict(extra="allow")

    steps: int = 0
    seconds: float | None = None
    machine: str | None = Field(
        default=None, description="CPU model and bf16-relevant features, or the GPU's name"
    )
    precision: Literal["fp32", "bf16"] | None = Field(
        default=None, description="compute precision actually used (bf16 = autocast)"
    )
    time_budget: float | None = Field(default=None, description="training seconds allowed")
    stopped_by_time_budget_at: int | None = Field(
        default=None, description="the step at which the time budget ended training, if it did"
    )


class RunManifest(_Strict):
    """Everything needed to reproduce, resolve and rank a run. See docs/architecture.md."""

    manifest_version: Literal[1] = MANIFEST_VERSION
    trainer: str = Field(description="the trainer plugin's NAME")
    kind: str = Field(
        pattern=KIND_PATTERN, description="declared by the plugin (KIND): rl, sft, ..."
    )
    status: Status = "created"
    created_at: str | None = None
    finished_at: str | None = None
    interrupted_at: str | None = None

    base_model: str = Field(
        description="the pretrained model the first stage started from (folders absolute)"
    )
    start_model: str | None = Field(
        None, description="the reference this run started from (a run directory when chained)"
    )
    weights: str = Field(
        description="full weights the adapter chain applies to: a model reference, or a "
        "checkpoint folder ('checkpoint' = this run's; others absolute)"
    )
    adapter_chain: list[str] = Field(
        default_factory=list,
        description="LoRA adapter folders to apply and merge on `weights`, in order",
    )
    stages: list[Stage] = Field(default_factory=list)
    lora: bool = False

    domain: str | None = None
    dataset: str | None = None
    dataset_hash: str | None = None
    dataset_size: int | None = None
    reward: list[str] = Field(default_factory=list)
    reward_weights: list[float] | None = None
    reward_config: dict[str, Any] = Field(default_factory=dict)
    judge: str | None = None
    mitigations: list[MitigationRecord] = Field(default_factory=list)
    match: dict[str, Any] | None = Field(None, description="sample matching (SFT --match)")
    samples: Samples = Field(default_factory=Samples)
    world_size: int = 1
    global_batch: int | None = Field(
        None, description="per_device_batch x gradient_accumulation x world_size"
    )
    seed: int = 0

    config: dict[str, Any] = Field(default_factory=dict, description="the trainer's Config")
    trl_config: dict[str, Any] = Field(default_factory=dict)
    versions: dict[str, str] = Field(default_factory=dict)
    git_commit: str | None = None

    summary: Summary | None = None
    error: str | None = None
    last_checkpoint: str | None = None

    _run_dir: Path | None = PrivateAttr(default=None)

    @property
    def run_dir(self) -> Path:
        """The run directory this manifest was loaded from or saved to."""
        if self._run_dir is None:
            raise EmbenchError("this manifest has not been saved to or loaded from a run directory")
        return self._run_dir

    @classmethod
    def load(cls, path: str | Path) -> RunManifest:
        """The manifest of a run directory (or a manifest.json path), upgraded if old."""
        file = Path(path)
        file = file / MANIFEST_FILE if file.is_dir() else file
        try:
            data = json.loads(file.read_text())
        except (OSError, json.JSONDecodeError) as ex:
            raise EmbenchError(f"cannot read {file}: {ex}") from ex
        manifest = cls.from_dict(data, str(file))
        manifest._run_dir = file.parent
        return manifest

    @classmethod
    def from_dict(cls, data: Any, source: str = "manifest") -> RunManifest:
        """Validate ``data`` (upgrading a manifest without ``manifest_version``)."""
        if not isinstance(data, dict):
            raise EmbenchError(f"{source}: a run manifest is a JSON object")
        version = data.get("manifest_version")
        if version is None:
            data = _upgrade_v0(data, source)
        elif not isinstance(version, int) or version > MANIFEST_VERSION:
            raise EmbenchError(
                f"{source}: manifest_version {version} is newer than this embench understands "
                f"({MANIFEST_VERSION}); upgrade embench"
            )
        try:
            return cls.model_validate(data)
        except ValidationError as ex:
            first = ex.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "manifest"
            raise EmbenchError(
                f"{source}: not a valid run manifest: {where}: {first['msg']}"
            ) from None

    def save(self, run_dir: str | Path | None = None) -> RunManifest:
        """Write ``manifest.json`` atomically (into ``run_dir`` or where it came from)."""
        folder = Path(run_dir) if run_dir is not None else self.run_dir
        atomic_write_text(folder / MANIFEST_FILE, self.model_dump_json(indent=2) + "\n")
        self._run_dir = folder
        return self

    def updated(self, **fields: Any) -> RunManifest:
        """A validated copy with ``fields`` replaced (keeps the run directory)."""
        try:
            copy = type(self).model_validate({**self.model_dump(), **fields})
        except ValidationError as ex:
            first = ex.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise EmbenchError(f"bad manifest update: {where}: {first['msg']}") from None
        copy._run_dir = self._run_dir
        return copy

    def resolve_path(self, recorded: str) -> str:
        """A folder recorded in ``weights``/``adapter_chain`` as an absolute path."""
        path = Path(recorded)
        if path.is_absolute() or self._run_dir is None:
            return recorded
        if recorded == OWN_CHECKPOINT or (self._run_dir / path).exists():
            return str(self._run_dir / path)
        return recorded  # a model reference (default, hub id)


def schema_text() -> str:
    """The JSON schema of ``RunManifest``, as committed in ``manifest.schema.json``."""
    return json.dumps(RunManifest.model_json_schema(), indent=2, sort_keys=True) + "\n"


def _upgrade_v0(data: dict[str, Any], source: str) -> dict[str, Any]:
    """A manifest written before manifest_version 1, in today's shape; refuse what cannot be."""
    old = dict(data)
    trainer = old.get("trainer")
    if not trainer:
        raise EmbenchError(f"{source}: not a run manifest (no trainer); retrain the run")
    kind = old.get("kind") or _declared_kind(str(trainer))
    if kind is None:
        raise EmbenchError(
            f"{source}: an old manifest (no manifest_version) without a kind, and trainer "
            f'\'{trainer}\' is not installed to declare it; add "kind": "rl" or "sft" to it'
        )
    status = old.get("status", "created")
    status = LEGACY_STATUSES.get(status, status)
    reward = old.get("reward") or []
    lora = bool(old.get("lora", False))
    base = old.get("base_model")
    if not base:
        raise EmbenchError(f"{source}: an old manifest without base_model; retrain the run")
    summary = old.get("summary") if isinstance(old.get("summary"), dict) else None
    steps = (summary or {}).get("steps")
    mitigations = old.get("mitigations") or []
    upgraded = {
        "trainer": trainer,
        "kind": kind,
        "status": status,
        "base_model": base,
        "start_model": base,
        "weights": base if lora else OWN_CHECKPOINT,
        "adapter_chain": [OWN_CHECKPOINT] if lora else [],
        "stages": [{"trainer": trainer, "kind": kind, "run": ".", "lora": lora, "steps": steps}],
        "lora": lora,
        "reward": [reward] if isinstance(reward, str) else list(reward),
        "mitigations": [m if isinstance(m, dict) else {"name": str(m)} for m in mitigations],
        "summary": summary,
    }
    if isinstance(old.get("samples_consumed"), int):  # flat, before ``samples`` existed
        upgraded["samples"] = {"consumed": old["samples_consumed"]}
    keep = set(RunManifest.model_fields) - set(upgraded)
    upgraded.update({k: v for k, v in old.items() if k in keep})
    return upgraded


def _declared_kind(trainer: str) -> str | None:
    """The KIND an installed trainer plugin declares (old manifests only)."""
    from embench.training.plugins import get_trainer

    try:
        return get_trainer(trainer).kind
    except EmbenchError:
        return None


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


if __name__ == "__main__":  # regenerate the committed schema
    atomic_write_text(SCHEMA_PATH, schema_text())
    print(f"wrote {SCHEMA_PATH}", file=sys.stderr)
