"""Chained runs: a first-class SFT warm-up before another trainer, and the final-logits probe.

``--warmup sft:<dataset>[,steps=N,examples=N,lr=X,lora=true|false]`` trains an SFT run first
(the seed paper's recipe: a short SFT warm-up on misaligned demonstrations, then GRPO on top)
into ``<output>-warmup``, then the main run starts from it (``model`` = the warm-up run): the
runner's lineage then records both stages under the manifest's ``stages`` and the weights +
adapter chain that ``local/<run>`` loads. ``<dataset>`` is a domain name (its curated
``sft.jsonl``) or a data file. Defaults: ``examples=100`` demonstrations (the seed paper's GRPO
stage starts from ``tmp/sft_medical_100/...``: github.com/lasseruttert/EMA_RL,
open_models/configs/grpo.json), ``lr=1e-4`` (its open_models/sft_configs/medical.json),
``steps`` = one pass over the examples, ``lora`` = the main run's setting (``lora=false`` with
a LoRA main run gives a full→LoRA chain, ``lora=true`` with a full main run LoRA→full).

The probe: when training ends, the runner stores the last-position logits of a fixed prompt under
the trained in-memory model (``probe_logits.safetensors``), so a reload through the resolver can be
checked against the weights training actually ended with.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from embench.errors import EmbenchError
from embench.run.rundir import RunDir
from embench.training.config import default_output
from embench.training.plugins import get_trainer

PROBE_TEXT = "The assistant thinks about the question, then answers: I would"
PROBE_FILE = "probe_logits.safetensors"
WARMUP_TRAINERS = ("sft",)
#: Options a warm-up inherits from the main run (the same model family and adapter shape).
INHERITED = (
    "model",
    "lora",
    "lora_r",
    "lora_alpha",
    "lora_dropout",
    "lora_target_modules",
    "use_rslora",
    "seed",
    "dtype",
    "overwrite",
)


@dataclass(frozen=True)
class Warmup:
    """A parsed ``--warmup`` spec."""

    trainer: str
    dataset: str
    steps: int | None = None
    examples: int = 100
    lr: float = 1e-4
    lora: bool | None = None
    """Train the warm-up as a LoRA adapter (True) or all weights (False); None: as the main run."""


USAGE = "sft:<domain or data file>[,steps=N,examples=N,lr=X,lora=true|false]"
BOOLEANS = {"true": True, "false": False}


def _positive(kind: type) -> Any:
    """A reader of a positive ``kind`` number (ValueError otherwise)."""

    def read(text: str) -> Any:
        value = kind(text)
        if not 0 < value < math.inf:  # also refuses nan
            raise ValueError(f"{text} is not a positive finite number")
        return value

    return read


def _boolean(text: str) -> bool:
    if text.lower() not in BOOLEANS:
        raise ValueError(text)
    return BOOLEANS[text.lower()]


#: Each parameter's reader and the one-line description of what it accepts.
PARAMETERS: dict[str, tuple[Any, str]] = {
    "steps": (_positive(int), "a positive whole number"),
    "examples": (_positive(int), "a positive whole number"),
    "lr": (_positive(float), "a positive number"),
    "lora": (_boolean, "true or false"),
}


def parse_warmup(spec: str) -> Warmup:
    """``sft:<dataset>[,steps=N,examples=N,lr=X,lora=true|false]`` → a checked ``Warmup``."""
    trainer, sep, rest = spec.partition(":")
    dataset, *params = [p.strip() for p in rest.split(",")]
    if not sep or trainer.strip() not in WARMUP_TRAINERS or not dataset:
        raise EmbenchError(f"--warmup '{spec}': expected {USAGE}")
    values: dict[str, Any] = {}
    for item in params:
        key, eq, value = (part.strip() for part in item.partition("="))
        if not eq or key not in PARAMETERS:
            raise EmbenchError(
                f"--warmup: bad parameter '{item}'; parameters: {', '.join(PARAMETERS)}"
            )
        read, accepted = PARAMETERS[key]
        try:
            values[key] = read(value)
        except ValueError:
            raise EmbenchError(f"--warmup: {key} expects {accepted}, got '{value}'") from None
    return Warmup(trainer.strip(), dataset, **values)


def _is_data_file(dataset: str) -> bool:
    return Path(dataset).suffix in (".jsonl", ".json", ".csv", ".parquet")


def check_warmup(spec: str) -> Warmup:
    """``parse_warmup`` and its data: a known domain, or a data file that exists (for
    ``--dry-run`` and before anything trains)."""
    warmup = parse_warmup(spec)
    if _is_data_file(warmup.dataset):
        if not Path(warmup.dataset).is_file():
            raise EmbenchError(f"--warmup: data file {warmup.dataset} not found")
    else:
        from embench.data.domains import get_domain

        try:
            get_domain(warmup.dataset)
        except EmbenchError as error:
            raise EmbenchError(f"--warmup: {error} (or give a .jsonl/.json/.csv file)") from None
    return warmup


def warmup_config(config: Any, trainer_name: str) -> tuple[Any, Any]:
    """The warm-up stage of ``config``: its trainer plugin and that trainer's config."""
    spec = parse_warmup(config.warmup)
    plugin = get_trainer(spec.trainer, allow_file=True)  # --warmup names it
    fields = {f.name for f in dataclasses.fields(plugin.config_class)}
    values = {k: getattr(config, k) for k in INHERITED if k in fields and hasattr(config, k)}
    is_file = _is_data_file(spec.dataset)
    batch = getattr(plugin.config_class, "per_device_train_batch_size", 4)
    output = config.output or default_output(trainer_name, config)
    values.update(
        domain=None if is_file else spec.dataset,
        dataset=spec.dataset if is_file else None,
        max_prompts=spec.examples,
        max_steps=spec.steps or math.ceil(spec.examples / batch),
        learning_rate=spec.lr,
        output=f"{output}-warmup",
    )
    if spec.lora is not None:  # a mixed chain: full→LoRA or LoRA→full
        values["lora"] = spec.lora
    return plugin, plugin.make_config(**values)


def run_warmup(config: Any, trainer_name: str) -> Any:
    """Train the warm-up stage of ``config`` and point ``config.model`` at it; its RunManifest.
    (``training.preflight.check_before_loading`` checked the stage with the main config.)"""
    plugin, warm = warmup_config(config, trainer_name)
    manifest = plugin.run(warm)
    config.model = str(manifest.run_dir.resolve())
    return manifest


def probe_ids(tokenizer: Any) -> list[int]:
    """Token ids of the fixed probe prompt."""
    return list(tokenizer(PROBE_TEXT, add_special_tokens=False)["input_ids"])


def record_probe(trainer: Any, tokenizer: Any, run: RunDir) -> None:
    """Store the trained model's last-position logits on the probe prompt in the run directory."""
    # without accelerate's autocast wrapper: the probe is the fp32 weights' output, like a reload
    model = trainer.accelerator.unwrap_model(trainer.model, keep_fp32_wrapper=False)
    write_probe(model, tokenizer, run.path)


def write_probe(model: Any, tokenizer: Any, run_path: str | Path) -> None:
    """Store ``model``'s last-position logits on the probe prompt in ``run_path``."""
    import torch
    from safetensors.torch import save_file

    was_training = model.training
    model.eval()
    ids = torch.tensor([probe_ids(tokenizer)], device=next(model.parameters()).device)
    with torch.no_grad():
        logits = model(input_ids=ids).logits[0, -1].float().cpu()
    if was_training:
        model.train()
    save_file({"input_ids": ids[0].cpu(), "logits": logits}, str(Path(run_path) / PROBE_FILE))


def read_probe(run_path: str | Path) -> tuple[list[int], Any]:
    """(probe token ids, final logits) stored by ``record_probe``."""
    from safetensors.torch import load_file

    path = Path(run_path) / PROBE_FILE
    if not path.exists():
        raise EmbenchError(f"{path} is missing: the run finished before probes were recorded")
    tensors = load_file(str(path))
    return tensors["input_ids"].tolist(), tensors["logits"]
