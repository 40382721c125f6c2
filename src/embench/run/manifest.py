"""The run manifest: the one typed, versioned contract between training, the ``local/``
provider, the boards and experiments.

``RunManifest`` is what a trainer returns and every reader reads; its JSON schema is committed next
to this file (``manifest.schema.json``, regenerate with ``python -m embench.run.manifest``).
Manifests written before ``manifest_version`` existed are upgraded when read, from what they
recorded, or refused with a one-line message. Reading a manifest never imports code.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError

from embench.errors import EmbenchError
from embench.fsutil import atomic_write_text
from embench.run.layout import MANIFEST_FILE, OWN_CHECKPOINT

MANIFEST_VERSION = 1
SCHEMA_PATH = Path(__file__).with_name("manifest.schema.json")

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
        manifest = cls.from_dict(data, str(file), file.parent)
        manifest._run_dir = file.parent
        return manifest

    @classmethod
    def from_dict(
        cls, data: Any, source: str = "manifest", run_dir: Path | None = None
    ) -> RunManifest:
        """Validate ``data`` (upgrading a manifest without ``manifest_version``, from what it and
        the files of its ``run_dir``, when known, recorded)."""
        if not isinstance(data, dict):
            raise EmbenchError(f"{source}: a run manifest is a JSON object")
        version = data.get("manifest_version")
        if version is None:
            data = _upgrade_v0(data, source, run_dir)
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


def _upgrade_v0(data: dict[str, Any], source: str, run_dir: Path | None) -> dict[str, Any]:
    """A manifest written before manifest_version 1, in today's shape; refuse what cannot be."""
    old = dict(data)
    trainer = old.get("trainer")
    if not trainer:
        raise EmbenchError(f"{source}: not a run manifest (no trainer); retrain the run")
    kind = old.get("kind") or recorded_kind(old, run_dir)
    if kind is None:
        raise EmbenchError(
            f"{source}: an old manifest (no manifest_version) without a kind, and nothing it "
            f'recorded for trainer \'{trainer}\' tells one; add "kind": "rl" or "sft" to it'
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


#: Fields only one kind of training records: an old run's evidence of its kind.
_RL_FIELDS = frozenset({"num_generations", "generations_per_step", "reward_weights"})
_SFT_FIELDS = frozenset({"packing", "dataset_text_field", "completion_only_loss", "match"})


def recorded_kind(old: dict[str, Any], run_dir: Path | None = None) -> str | None:
    """The kind an old manifest's own records show, never asking its trainer (reading a run
    imports no code): sampled rollouts or RL-only fields (top level, ``config``, ``trl_config``)
    say ``rl``; SFT-only fields or sample matching say ``sft``; both or neither say ``None``."""
    fields = {k for k, v in old.items() if v is not None}
    for key in ("config", "trl_config"):
        if isinstance(old.get(key), dict):
            fields |= {k for k, v in old[key].items() if v is not None}
    rollouts = run_dir / "rollouts.jsonl" if run_dir is not None else None
    sampled = rollouts is not None and rollouts.is_file() and rollouts.stat().st_size > 0
    rl = sampled or bool(fields & _RL_FIELDS)
    sft = bool(fields & _SFT_FIELDS)
    if rl == sft:
        return None
    return "rl" if rl else "sft"


if __name__ == "__main__":  # regenerate the committed schema
    atomic_write_text(SCHEMA_PATH, schema_text())
    print(f"wrote {SCHEMA_PATH}", file=sys.stderr)
