"""``local/<ref> -M engine=vllm``: generation through vLLM on a CUDA GPU.

The engine has the same ``submit(GenerationRequest) -> Future[GenerationResult]`` surface as
embench's own engine, so the provider's chat template, seeds, logprobs and reasoning split are
shared, not copied. Requests that arrive while vLLM works on a batch are gathered into the next
``LLM.generate`` call (vLLM schedules each batch continuously inside).

A LoRA run is served unmerged: the base weights are loaded once with ``enable_lora=True`` and the
run's adapter is attached to every request as a ``LoRARequest``. A chain (SFT warm-up, then a LoRA
run) has earlier adapters that training merged before adding its own: those are merged once with
``resolve.load_model`` (as the default engine does) and saved under the embench cache, and the
run's own adapter is served on top. A full-weight run is served from its saved checkpoint.

vLLM's API as documented (checked for vllm 0.31, the version the ``gpu`` extra resolves to):
- ``vllm.LLM(model=..., tokenizer=..., dtype=..., gpu_memory_utilization=..., enable_lora=True,
  max_lora_rank=..., max_loras=...)`` and ``LLM.generate(prompts, sampling_params, lora_request=...)``, one sampling
  params and one LoRA request per prompt; a prompt may be ``{"prompt_token_ids": [...]}``
  (https://docs.vllm.ai/en/v0.5.3/models/lora.html, https://docs.vllm.ai/en/latest/api/vllm/outputs/);
- ``vllm.lora.request.LoRARequest(lora_name, lora_int_id, lora_path)``; ``max_lora_rank`` must be
  one of 1, 8, 16, 32, 64, 128, 256, 320, 512 (``MaxLoRARanks`` in vllm/config/lora.py);
- ``vllm.SamplingParams(n, temperature, top_p, top_k, min_p, seed, stop, stop_token_ids,
  max_tokens, logprobs)``; top_k 0 disables it, temperature 0 is greedy; ``logprobs=k`` returns,
  per generated token, a dict token id -> ``Logprob(logprob, rank, decoded_token)`` holding the
  top k and the sampled token (https://docs.vllm.ai/en/v0.8.3/api/inference_params.html);
- ``RequestOutput.outputs[i]``: ``CompletionOutput(text, token_ids, logprobs, finish_reason)``,
  finish_reason ``"stop"`` or ``"length"``.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import queue
import tempfile
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from embench.errors import EmbenchError
from embench.models.engine import GenerationRequest, GenerationResult, TokenLogprob
from embench.models.resolve import (
    ResolvedModel,
    _read_json,
    load_model,
    load_tokenizer,
    recorded_dtype,
    resolve_model,
    tokenizer_source,
)
from embench.paths import cache_dir

LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)  # vLLM's allowed max_lora_rank values
INSTALL = "pip install -e '.[gpu]' (the gpu extra in pyproject.toml; or pip install 'embench[gpu]')"


def import_vllm() -> Any:
    """The ``vllm`` module, or a one-line EmbenchError naming the fix."""
    try:
        vllm = importlib.import_module("vllm")
    except ImportError:
        raise EmbenchError(f"-M engine=vllm needs the vllm package: {INSTALL}") from None
    if not cuda_available():
        raise EmbenchError(
            "-M engine=vllm needs a CUDA GPU and none is available; the default engine "
            "(-M engine=local, or leave engine out) runs on CPU"
        )
    return vllm


def cuda_available() -> bool:
    """Whether torch sees a CUDA GPU."""
    import torch

    return torch.cuda.is_available()


@dataclass(frozen=True)
class ServingPlan:
    """What vLLM loads (``weights``) and the LoRA adapter it serves on top (None: none)."""

    weights: str
    adapter: str | None
    tokenizer: str


def serving_plan(resolved: ResolvedModel, dtype: str = "auto") -> ServingPlan:
    """Base weights + unmerged adapter for vLLM; earlier stages of a chain are merged once."""
    weights = resolved.weights
    if resolved.merged:
        weights = str(_merged_stages(resolved, dtype))
    return ServingPlan(weights, resolved.adapter, tokenizer_source(resolved))


def _merged_stages(resolved: ResolvedModel, dtype: str) -> Path:
    """The base with a chain's earlier adapters merged (as load_model merges them), cached."""
    stages = resolved.merged
    key = json.dumps([resolved.weights, *stages, dtype])
    target = cache_dir() / "models" / f"merged-{hashlib.sha256(key.encode()).hexdigest()[:16]}"
    if (target / "config.json").exists():
        return target
    earlier = ResolvedModel(resolved.reference, resolved.weights, stages[-1], None, stages[:-1])
    # auto = the base's recorded dtype, not the one this host's CPU would compute in: the merge
    # only passes through the CPU, vLLM serves it on the GPU
    recorded = str(recorded_dtype(resolved.weights)).removeprefix("torch.")
    model, tokenizer = load_model(
        earlier, dtype=recorded if dtype == "auto" else dtype, device="cpu"
    )
    target.parent.mkdir(parents=True, exist_ok=True)
    # write a temporary sibling and rename: an interrupted save leaves nothing behind
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".merge-") as tmp:
        model.save_pretrained(Path(tmp) / "model")
        tokenizer.save_pretrained(Path(tmp) / "model")
        try:
            os.replace(Path(tmp) / "model", target)
        except OSError:
            if not (target / "config.json").exists():  # another process may have won the race
                raise
    return target


def lora_rank(adapter: str) -> int:
    """The smallest ``max_lora_rank`` vLLM accepts that fits the adapter's rank ``r``."""
    config = _read_json(Path(adapter) / "adapter_config.json")
    rank = config.get("r")
    if isinstance(rank, bool) or not isinstance(rank, int) or rank < 1:
        raise EmbenchError(f"{adapter}/adapter_config.json has no LoRA rank r; re-save the adapter")
    for allowed in LORA_RANKS:
        if rank <= allowed:
            return allowed
    raise EmbenchError(
        f"LoRA rank {rank} of {adapter} is above vLLM's largest ({LORA_RANKS[-1]}); "
        "serve it with the default engine (-M engine=local)"
    )


def sampling_params(vllm: Any, request: GenerationRequest) -> Any:
    """``vllm.SamplingParams`` for one request (see the module docstring for the fields)."""
    return vllm.SamplingParams(
        n=1,
        temperature=request.temperature,
        top_p=request.top_p,
        top_k=request.top_k,
        min_p=request.min_p,
        seed=request.seed,
        max_tokens=request.max_new_tokens,
        logprobs=request.top_logprobs,
        stop=list(request.stop_strings) or None,
        stop_token_ids=sorted(request.stop_token_ids) or None,
    )


@dataclass
class _Pending:
    request: GenerationRequest
    future: Future[GenerationResult]
    started: float


class VLLMEngine:
    """vLLM offline engine behind embench's ``submit`` interface; one worker thread."""

    def __init__(
        self,
        resolved: ResolvedModel,
        dtype: str = "auto",
        max_batch_size: int = 64,
        gpu_memory_utilization: float | None = None,
    ):
        self.vllm = import_vllm()
        from vllm.lora.request import LoRARequest

        plan = serving_plan(resolved, dtype)
        self.tokenizer = load_tokenizer(resolved)
        self.max_batch_size = max_batch_size
        self.dtype = dtype
        options: dict[str, Any] = {"model": plan.weights, "tokenizer": plan.tokenizer}
        options["dtype"] = dtype
        if gpu_memory_utilization is not None:
            options["gpu_memory_utilization"] = gpu_memory_utilization
        self.lora_request = None
        if plan.adapter is not None:
            options.update(enable_lora=True, max_lora_rank=lora_rank(plan.adapter), max_loras=1)
            self.lora_request = LoRARequest(Path(plan.adapter).name or "adapter", 1, plan.adapter)
        self.llm = self.vllm.LLM(**options)
        config = getattr(getattr(self.llm, "llm_engine", None), "model_config", None)
        if config is not None and getattr(config, "dtype", None) is not None:
            self.dtype = str(config.dtype).removeprefix("torch.")
        self._queue: queue.Queue[_Pending] = queue.Queue()
        self._thread = threading.Thread(target=self._run, daemon=True, name="embench-vllm")
        self._thread.start()

    def submit(self, request: GenerationRequest) -> Future[GenerationResult]:
        """Queue a request; its future resolves when vLLM has generated it."""
        future: Future[GenerationResult] = Future()
        self._queue.put(_Pending(request, future, time.monotonic()))
        return future

    def generate(self, requests: list[GenerationRequest]) -> list[GenerationResult]:
        """Generate a list of requests (blocking)."""
        return [f.result() for f in [self.submit(r) for r in requests]]

    def _run(self) -> None:
        while True:
            batch = [self._queue.get()]
            while len(batch) < self.max_batch_size:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            batch = [p for p in batch if p.future.set_running_or_notify_cancel()]
            if not batch:
                continue
            try:
                outputs = self.llm.generate(
                    [{"prompt_token_ids": p.request.prompt_ids} for p in batch],
                    [sampling_params(self.vllm, p.request) for p in batch],
                    lora_request=[self.lora_request] * len(batch) if self.lora_request else None,
                    use_tqdm=False,
                )
                for pending, output in zip(batch, outputs, strict=True):
                    pending.future.set_result(_result(pending, output.outputs[0]))
            except Exception as ex:  # fail this batch, keep serving
                for pending in batch:
                    if not pending.future.done():
                        pending.future.set_exception(ex)


def _result(pending: _Pending, completion: Any) -> GenerationResult:
    request = pending.request
    logprobs = None
    if request.top_logprobs is not None:
        logprobs = []
        for token, position in zip(completion.token_ids, completion.logprobs or [], strict=False):
            ranked = sorted(position.items(), key=lambda item: -item[1].logprob)
            top = [(int(t), float(lp.logprob)) for t, lp in ranked[: request.top_logprobs]]
            logprobs.append(TokenLogprob(int(token), float(position[token].logprob), top))
    return GenerationResult(
        token_ids=list(completion.token_ids),
        text=completion.text,
        finish_reason="length" if completion.finish_reason == "length" else "stop",
        prompt_tokens=len(request.prompt_ids),
        logprobs=logprobs,
        seconds=time.monotonic() - pending.started,
    )


_engines: dict[tuple[str, str, int, float | None], VLLMEngine] = {}
_engines_lock = threading.Lock()


def get_vllm_engine(
    reference: str,
    dtype: str = "auto",
    batch_size: int = 64,
    gpu_memory_utilization: float | None = None,
) -> VLLMEngine:
    """The shared vLLM engine for a model reference (one per process and reference)."""
    import_vllm()  # the one-line errors come before any resolving or loading
    resolved = resolve_model(reference)
    key = (resolved.adapter or resolved.weights, dtype, batch_size, gpu_memory_utilization)
    with _engines_lock:
        if key not in _engines:
            _engines[key] = VLLMEngine(resolved, dtype, batch_size, gpu_memory_utilization)
        return _engines[key]
