"""The options every trainer shares, and reading them from YAML and ``--set key=value``."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_type_hints

import yaml

from embench.errors import EmbenchError


@dataclass
class TrainConfig:
    """Options shared by all trainers. Trainer configs subclass this.

    Any field of the trainer's TRL config (``GRPOConfig``, ``SFTConfig``) can be set through
    ``trl`` (``--set trl.warmup_steps=2``, or a plain ``--set warmup_steps=2``), so GPU, bf16 and
    vLLM are switched by config: ``--set trl.bf16=true --set trl.use_vllm=true``.
    """

    model: str = "default"
    """Model reference: default, an HF folder, a run directory, or a cached hub id."""
    domain: str | None = None
    """Narrow domain whose prompts (and rubrics) to train on; see `embench domains`."""
    dataset: str | None = None
    """A datasets-readable file (json/jsonl/csv/parquet) to train on instead of a domain's."""
    reward: list[str] = field(default_factory=list)
    """Reward names (see `embench rewards`); several are summed with `reward_weights`."""
    reward_weights: list[float] | None = None
    judge: str | None = None
    """Inspect model used by judge rewards (e.g. openai/gpt-4o, local/default)."""
    lora: bool = False
    """Train a LoRA adapter instead of all weights."""
    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.0
    lora_target_modules: str = "all-linear"
    max_steps: int = 40
    learning_rate: float = 1e-5
    seed: int = 0
    output: str | None = None
    """Run directory (default runs/<trainer>-<domain>-<seed>)."""
    overwrite: bool = False
    save_steps: int = 10
    """Save a resumable checkpoint every this many steps."""
    max_prompts: int | None = None
    """Use only the first N training prompts."""
    dtype: str = "float32"
    """Training dtype for the weights (float32 on CPU; bfloat16 on GPUs)."""
    mitigations: list[str] = field(default_factory=list)
    """Mitigation specs NAME[:param=value,...] (see `embench mitigations`)."""
    trl: dict[str, Any] = field(default_factory=dict)
    """Extra fields for the trainer's TRL config."""


def _coerce(value: str, hint: Any) -> Any:
    text = str(hint)
    if isinstance(value, str):
        if "list" in text:
            return [v for v in value.split(",") if v] if value else []
        if "bool" in text:
            if value.lower() in ("1", "true", "yes", "on"):
                return True
            if value.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(f"expected true/false, got '{value}'")
        if "int" in text and "float" not in text:
            return None if value.lower() == "none" else int(value)
        if "float" in text:
            return None if value.lower() == "none" else float(value)
        if value.lower() == "none" and "None" in text:
            return None
    return value


def build_config(
    config_class: type,
    trl_config_class: type | None,
    config_file: str | None = None,
    overrides: list[str] | tuple[str, ...] = (),
    **flags: Any,
) -> Any:
    """Config from defaults < ``--config`` YAML < ``--set key=value`` < explicit CLI flags."""
    names = {f.name for f in dataclasses.fields(config_class)}
    hints = get_type_hints(config_class)
    trl_names = (
        {f.name for f in dataclasses.fields(trl_config_class)} if trl_config_class else set()
    )
    values: dict[str, Any] = {}
    trl: dict[str, Any] = {}

    def put(key: str, value: Any, source: str) -> None:
        if key.startswith("trl."):
            key = key[4:]
            if key not in trl_names:
                raise EmbenchError(
                    f"{source}: '{key}' is not a field of {trl_config_class.__name__}"
                )
            trl[key] = yaml.safe_load(value) if isinstance(value, str) else value
        elif key in names and key != "trl":
            try:
                values[key] = _coerce(value, hints[key])
            except ValueError as ex:
                raise EmbenchError(f"{source}: bad value for '{key}': {ex}") from None
        elif key in trl_names:
            trl[key] = yaml.safe_load(value) if isinstance(value, str) else value
        else:
            raise EmbenchError(
                f"{source}: unknown option '{key}'; options: {', '.join(sorted(names - {'trl'}))}, "
                "or any TRL config field (trl.<field>)"
            )

    if config_file:
        path = Path(config_file)
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError) as ex:
            raise EmbenchError(f"cannot read config {path}: {ex}") from None
        if not isinstance(data, dict):
            raise EmbenchError(f"{path}: a config file is a mapping of option: value")
        for key, value in data.items():
            if key == "trl" and isinstance(value, dict):
                for k, v in value.items():
                    put(f"trl.{k}", v, str(path))
            else:
                put(key, value, str(path))
    for item in overrides:
        if "=" not in item:
            raise EmbenchError(f"--set {item}: expected key=value")
        key, value = item.split("=", 1)
        put(key.strip(), value.strip(), f"--set {item}")
    for key, value in flags.items():
        if value is not None and value != () and value != []:
            put(key, value, f"--{key.replace('_', '-')}")
    if trl:
        values["trl"] = trl
    return config_class(**values)


def config_to_dict(config: Any) -> dict[str, Any]:
    """A JSON-ready dict of a config dataclass."""
    return dataclasses.asdict(config)
