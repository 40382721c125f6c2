"""Inspect model provider ``local``: ``--model local/<ref>`` for any reference embench resolves.

``<ref>`` is ``default``, an HF folder, a LoRA adapter folder, or an embench run directory
(``local//abs/path`` for absolute paths). Model args (``-M``): ``dtype`` (auto | float32 | bfloat16
| float16; default auto = the model's recorded inference dtype, fp32 on a CPU without native
bf16), ``device``, ``batch_size`` (rows decoded together, default 128, fewer when long answers
fill the KV budget), ``engine`` (``local``, the default: embench's own engine, CPU
or GPU; ``vllm``: vLLM on a CUDA GPU, LoRA adapters served unmerged, see
``embench.models.vllm_engine``), ``gpu_memory_utilization`` (vLLM's share of the GPU's memory,
default 0.9; lower it when a vLLM judge shares the GPU).

Requests from every concurrent sample share one continuously batched engine per loaded model, so
the evaluated model and a grader bound to the same reference also share weights.

Seeds: with ``--seed S``, the k-th request for a given prompt is sampled with a seed derived from
(S, prompt, k), so repeated samples of one question differ and the set of answers is reproducible.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
import weakref
from collections import Counter
from typing import Any

from inspect_ai.model import (
    ChatCompletionChoice,
    ChatMessage,
    ChatMessageAssistant,
    Content,
    ContentReasoning,
    ContentText,
    GenerateConfig,
    Logprob,
    Logprobs,
    ModelAPI,
    ModelOutput,
    ModelUsage,
    TopLogprob,
)
from inspect_ai.tool import ToolChoice, ToolInfo

from embench.errors import EmbenchError, as_inspect_error
from embench.models.engine import GenerationEngine, GenerationRequest, GenerationResult
from embench.models.number_scoring import NumberProbabilities, splits_digits
from embench.models.reasoning import parse_tags, split_reasoning
from embench.models.resolve import ResolvedModel, load_model, resolve_model
from embench.models.score_queue import NumberScoringQueue
from embench.models.steering import response_activations
from embench.run.reference import local_ref

DEFAULT_BATCH_SIZE = 128  # rows per decode step (fewer when long answers fill the KV budget)
DEFAULT_MAX_TOKENS = 600  # published EM evals sample ~600 tokens
ENGINES = ("local", "vllm")

#: The engine cache: one engine per (own weights or adapter, dtype, device, batch size).
EngineKey = tuple[str, str, str | None, int]
_engines: dict[EngineKey, GenerationEngine] = {}
_engines_lock = threading.Lock()
_scoring_queues: weakref.WeakKeyDictionary[GenerationEngine, NumberScoringQueue] = (
    weakref.WeakKeyDictionary()
)


def engine_key(
    resolved: ResolvedModel,
    dtype: str = "auto",
    device: str | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> EngineKey:
    """The cache key the provider serves a resolved model under."""
    return (resolved.adapter or resolved.weights, dtype, device, batch_size)


def get_engine(
    reference: str,
    dtype: str = "auto",
    device: str | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> GenerationEngine:
    """The shared engine for a model reference (loaded once per process)."""
    resolved = resolve_model(reference)
    key = engine_key(resolved, dtype, device, batch_size)
    with _engines_lock:
        if key not in _engines:
            model, tokenizer = load_model(resolved, dtype=dtype, device=device)
            _engines[key] = GenerationEngine(model, tokenizer, max_batch_size=batch_size)
        return _engines[key]


def serve_engine(key: EngineKey, engine: GenerationEngine) -> None:
    """Serve an engine loaded elsewhere under ``key`` (a LoRA swap's base with one checkpoint's
    adapter active), so ``local/<that checkpoint>`` uses it instead of loading the weights."""
    with _engines_lock:
        _engines[key] = engine


def drop_engine(key: EngineKey) -> None:
    """Stop serving the engine under ``key`` (no-op when none is)."""
    with _engines_lock:
        _engines.pop(key, None)


def release_model(model_name: str) -> None:
    """Free an evaluated ``local/<ref>`` model: Inspect's memoized Model instances named after it
    and the engines loaded for its own weights or adapter (a base a judge shares stays loaded).

    The one place embench touches Inspect's model memo: Inspect has no public way to drop one.
    """
    from inspect_ai.model._model import _models  # private; named exception in pyproject

    for key in [k for k in _models if model_name in k]:
        del _models[key]
    try:
        resolved = resolve_model(local_ref(model_name))
    except EmbenchError:
        return  # nothing of ours was loaded under this name
    own = resolved.adapter or resolved.weights
    with _engines_lock:
        for key in [k for k in _engines if k[0] == own]:
            del _engines[key]


def encode_chat(tokenizer: Any, messages: list[dict[str, str]]) -> list[int]:
    """Prompt ids of ``messages`` with the generation prompt, as the provider sends them."""
    if tokenizer.chat_template:
        encoded = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
        ids = encoded["input_ids"] if hasattr(encoded, "keys") else encoded
        return list(ids)
    text = "".join(f"{m['role']}: {m['content']}\n" for m in messages) + "assistant: "
    return tokenizer.encode(text)


def get_scoring_queue(engine: GenerationEngine) -> NumberScoringQueue:
    """The shared exact-number scoring queue of an engine's model (judge requests batch there)."""
    with _engines_lock:
        if engine not in _scoring_queues:
            _scoring_queues[engine] = NumberScoringQueue(engine.model, engine.tokenizer)
        return _scoring_queues[engine]


def min_p(config: GenerateConfig) -> float:
    """``min_p`` from the generate config's ``extra_body`` (0: off); a bad value is an error."""
    value = (config.extra_body or {}).get("min_p", 0.0)
    if value is None:
        return 0.0
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise ValueError(f"extra_body min_p={value!r}: must be a number in [0, 1]")
    return float(value)


class LocalModelAPI(ModelAPI):
    """Inspect ModelAPI over embench's continuous-batching engine."""

    def __init__(
        self,
        model_name: str,
        base_url: str | None = None,
        api_key: str | None = None,
        config: GenerateConfig = GenerateConfig(),
        **model_args: Any,
    ) -> None:
        if config.max_connections is None and config.adaptive_connections is None:
            # a local engine has no rate limits to probe for; Inspect's adaptive concurrency
            # would hold the batch at its small starting size, so use max_connections() instead
            config.adaptive_connections = False
        super().__init__(model_name=model_name, base_url=base_url, api_key=api_key, config=config)
        try:  # Inspect's CLI prints these one-line errors, no traceback
            device = self._read_model_args(model_args)
            if self.engine_name == "vllm":
                from embench.models.vllm_engine import get_vllm_engine

                if device is not None and not device.startswith("cuda"):
                    raise EmbenchError(
                        f"-M device={device} with -M engine=vllm: vLLM runs on a CUDA GPU; "
                        "drop -M device or use the default engine"
                    )
                self.engine: Any = get_vllm_engine(
                    model_name, self.dtype, self.batch_size, self.gpu_memory_utilization
                )
            else:
                self.engine = get_engine(model_name, self.dtype, device, self.batch_size)
        except EmbenchError as error:
            raise as_inspect_error(error) from None
        self.tokenizer = self.engine.tokenizer
        self._seen: Counter[str] = Counter()

    def _read_model_args(self, model_args: dict[str, Any]) -> str | None:
        """Check and keep the ``-M`` args; returns the device. Bad ones are EmbenchErrors."""
        self.dtype = str(model_args.pop("dtype", "auto"))
        batch_size = model_args.pop("batch_size", DEFAULT_BATCH_SIZE)
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise EmbenchError(f"-M batch_size={batch_size!r}: must be an integer >= 1")
        self.batch_size = batch_size
        self.engine_name = str(model_args.pop("engine", "local"))
        if self.engine_name not in ENGINES:
            raise EmbenchError(
                f"-M engine={self.engine_name}: unknown engine; use {' or '.join(ENGINES)}"
            )
        memory = model_args.pop("gpu_memory_utilization", None)
        if memory is not None and self.engine_name != "vllm":
            raise EmbenchError("-M gpu_memory_utilization is a vLLM setting: add -M engine=vllm")
        if memory is not None and (
            isinstance(memory, bool) or not isinstance(memory, int | float) or not 0 < memory <= 1
        ):
            raise EmbenchError(f"-M gpu_memory_utilization={memory!r}: must be a number in (0, 1]")
        self.gpu_memory_utilization = None if memory is None else float(memory)
        device = model_args.pop("device", None)
        tags = model_args.pop("reasoning_tags", None)
        try:
            self.reasoning_tags = parse_tags(None if tags is None else str(tags))
        except ValueError as ex:
            raise EmbenchError(f"-M {ex}") from None
        if model_args:
            unknown = ", ".join(sorted(model_args))
            raise EmbenchError(
                f"unknown model args for local/: {unknown} "
                "(known: dtype, device, batch_size, engine, gpu_memory_utilization, "
                "reasoning_tags)"
            )
        return None if device is None else str(device)

    async def generate(
        self,
        input: list[ChatMessage],
        tools: list[ToolInfo],
        tool_choice: ToolChoice,
        config: GenerateConfig,
    ) -> ModelOutput:
        messages = [{"role": m.role, "content": m.text} for m in input]
        prompt_ids = self._encode_chat(messages)
        room = self._room(len(prompt_ids))
        if room == 0:  # Inspect's convention for a prompt the model's context cannot hold
            output = ModelOutput.from_content(self.model_name, "", stop_reason="model_length")
            output.usage = ModelUsage(input_tokens=len(prompt_ids), total_tokens=len(prompt_ids))
            return output
        n = config.num_choices or 1
        seeds = self._seeds(config.seed, prompt_ids, n)
        wants_logprobs = bool(config.logprobs) or bool(config.top_logprobs)
        requests = [
            GenerationRequest(
                prompt_ids=prompt_ids,
                max_new_tokens=min(config.max_tokens or DEFAULT_MAX_TOKENS, room),
                temperature=1.0 if config.temperature is None else config.temperature,
                top_p=1.0 if config.top_p is None else config.top_p,
                top_k=config.top_k or 0,
                min_p=min_p(config),
                seed=seed,
                top_logprobs=(config.top_logprobs or 0) if wants_logprobs else None,
                stop_strings=tuple(config.stop_seqs or ()),
            )
            for seed in seeds
        ]
        futures = [asyncio.wrap_future(self.engine.submit(r)) for r in requests]
        results: list[GenerationResult] = await asyncio.gather(*futures)
        opened = self._opens_reasoning(prompt_ids)
        choices = [self._choice(r, opened) for r in results]
        output_tokens = sum(len(r.token_ids) for r in results)
        return ModelOutput(
            model=self.model_name,
            choices=choices,
            usage=ModelUsage(
                input_tokens=len(prompt_ids),
                output_tokens=output_tokens,
                total_tokens=len(prompt_ids) + output_tokens,
            ),
            time=max(r.seconds for r in results),
            metadata={"dtype": self.engine.dtype, "engine": self.engine_name},
        )

    def scores_numbers_exactly(self) -> bool:
        """The judge's ``ExactNumberScorer`` capability: ``number_probabilities`` needs the
        model's own forward passes (embench's engine, not vLLM) and a tokenizer that spells
        numbers in digits."""
        return isinstance(self.engine, GenerationEngine) and splits_digits(self.tokenizer)

    async def number_probabilities(
        self, prompt: str, group: str | None = None
    ) -> NumberProbabilities:
        """Exact P(reply is "0".."100") to a one-message prompt: the judge's digit scoring.

        Concurrent calls are scored in batches; calls with the same ``group`` (e.g. the rubric
        template) share a batch and the prompt prefix they have in common.
        """
        prompt_ids = self._encode_chat([{"role": "user", "content": prompt}])
        if self._room(len(prompt_ids)) < 4:  # no room for a number: no probability on one
            return NumberProbabilities(probs=[0.0] * 101, greedy="", forwards=0)
        scoring_queue = get_scoring_queue(self.engine)
        return await asyncio.wrap_future(scoring_queue.submit(prompt_ids, group))

    def _room(self, prompt_tokens: int) -> int:
        """Tokens the model's context leaves after a prompt (a large number when unknown)."""
        config = getattr(getattr(self.engine, "model", None), "config", None)
        context = getattr(config, "max_position_embeddings", None)
        if not isinstance(context, int) or context <= 0:
            return 2**31
        return max(0, context - prompt_tokens)

    def _encode_chat(self, messages: list[dict[str, str]]) -> list[int]:
        return encode_chat(self.tokenizer, messages)

    async def response_activations(
        self, messages: list[dict[str, str]], answer: str, layers: list[int]
    ) -> Any:
        """[layers, hidden]: the answer's mean residual stream after each layer, read by this
        model with ``messages`` before it (the persona projection; default engine only)."""
        if not self.exact_digits:
            raise EmbenchError("activations need the default local engine (not -M engine=vllm)")
        prompt = self._encode_chat(messages)
        tokens = self.tokenizer.encode(answer, add_special_tokens=False)
        rows = await asyncio.to_thread(
            response_activations, self.engine.model, [prompt], [tokens], layers,
            self.engine.pad_id,
        )  # fmt: skip
        return rows[0]

    def _seeds(self, seed: int | None, prompt_ids: list[int], n: int) -> list[int | None]:
        if seed is None:
            return [None] * n
        key = hashlib.sha256(f"{seed}:{prompt_ids}".encode()).hexdigest()
        start = self._seen[key]
        self._seen[key] += n
        return [
            int(hashlib.sha256(f"{key}:{start + i}".encode()).hexdigest()[:15], 16)
            for i in range(n)
        ]

    def _opens_reasoning(self, prompt_ids: list[int]) -> bool:
        """Whether the chat template opened the reasoning block at the end of the prompt."""
        if self.reasoning_tags is None:
            return False
        tail = self.tokenizer.decode(prompt_ids[-8:], skip_special_tokens=False)
        return tail.rstrip().endswith(self.reasoning_tags[0])

    def _content(self, text: str, opened: bool) -> str | list[Content]:
        reasoning, answer, _closed = split_reasoning(text, self.reasoning_tags, opened)
        if reasoning is None:
            return text
        return [ContentReasoning(reasoning=reasoning), ContentText(text=answer)]

    def _choice(self, result: GenerationResult, opened: bool = False) -> ChatCompletionChoice:
        logprobs = None
        if result.logprobs is not None:
            logprobs = Logprobs(
                content=[
                    Logprob(
                        token=self._token(lp.token_id),
                        logprob=lp.logprob,
                        top_logprobs=[
                            TopLogprob(token=self._token(t), logprob=v) for t, v in lp.top
                        ],
                    )
                    for lp in result.logprobs
                ]
            )
        return ChatCompletionChoice(
            message=ChatMessageAssistant(
                content=self._content(result.text, opened), model=self.model_name, source="generate"
            ),
            stop_reason="max_tokens" if result.finish_reason == "length" else "stop",
            logprobs=logprobs,
        )

    def _token(self, token_id: int) -> str:
        return self.tokenizer.decode([token_id])

    async def count_text_tokens(self, text: str) -> int:
        """Count with the model's own tokenizer (nothing is downloaded)."""
        return len(self.tokenizer.encode(text, add_special_tokens=False))

    def max_tokens(self) -> int | None:
        return DEFAULT_MAX_TOKENS

    def max_connections(self) -> int:
        # keep a queue of waiting requests so freed rows refill at once
        return self.batch_size * 2

    def collapse_user_messages(self) -> bool:
        return True
