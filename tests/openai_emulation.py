"""A local OpenAI-compatible chat-completions server over a causal LM, answering like vLLM.

For tests of judges that reach an open model through a server (``openai-api/<service>/<model>``):
``POST /v1/chat/completions`` honours ``max_tokens``, ``logprobs``/``top_logprobs`` (tokens as
decoded text), greedy decoding (temperature 0 only), vLLM's ``add_generation_prompt`` /
``continue_final_message`` (an assistant prefix is continued, not answered in a new turn) and
vLLM's ``prompt_logprobs`` (the logprob of each prompt token, first ``null``). Like vLLM's
automatic prefix caching, a prompt that extends one seen before reuses that prompt's KV cache, so
a continuation request costs only its new tokens. Listens on 127.0.0.1 only; counts the requests
it served.
"""

from __future__ import annotations

import copy
import json
import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import torch
from transformers import DynamicCache

from embench.models.cache_arg import cache_kwargs

CACHED_PROMPTS = 64  # prompts whose KV cache is kept for later requests that extend them


class EmulatedServer(ThreadingHTTPServer):
    """The HTTP server; ``requests`` counts the chat completions it answered."""

    daemon_threads = True

    def __init__(self, model: Any, tokenizer: Any) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.model = model
        self.tokenizer = tokenizer
        self.requests = 0
        self.lock = threading.Lock()
        self.prompts: OrderedDict[tuple[int, ...], tuple[DynamicCache, torch.Tensor, list[Any]]] = (
            OrderedDict()
        )

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"

    def complete(self, body: dict[str, Any]) -> dict[str, Any]:
        if float(body.get("temperature") or 0.0) != 0.0:
            raise ValueError("the emulated server decodes greedily: temperature 0 only")
        tokenizer = self.tokenizer
        messages = [{"role": m["role"], "content": _text(m["content"])} for m in body["messages"]]
        continuing = bool(body.get("continue_final_message", False))
        encoded = tokenizer.apply_chat_template(
            messages,
            add_generation_prompt=bool(body.get("add_generation_prompt", not continuing)),
            continue_final_message=continuing,
            tokenize=True,
        )
        prompt_ids = list(encoded["input_ids"] if hasattr(encoded, "keys") else encoded)
        top = int(body.get("top_logprobs") or 0) if body.get("logprobs") else None
        max_new = body.get("max_completion_tokens") or body.get("max_tokens") or 16
        with self.lock, torch.inference_mode():
            self.requests += 1
            number = self.requests
            cache, logits, entries = self._cached(prompt_ids)
            wanted = body.get("prompt_logprobs") is not None
            prompt_logprobs = [None, *entries] if wanted else None
            tokens, logprobs, reason = self._decode(cache, logits[-1], max_new, top)
        message = {
            "role": "assistant",
            "content": tokenizer.decode(tokens, skip_special_tokens=True),
        }
        return {
            "id": f"emulated-{number}",
            "object": "chat.completion",
            "created": 0,
            "model": body.get("model", "emulated"),
            "choices": [
                {"index": 0, "message": message, "finish_reason": reason, "logprobs": logprobs}
            ],
            "prompt_logprobs": prompt_logprobs,
            "usage": {
                "prompt_tokens": len(prompt_ids),
                "completion_tokens": len(tokens),
                "total_tokens": len(prompt_ids) + len(tokens),
            },
        }

    def _cached(self, prompt_ids: list[int]) -> tuple[DynamicCache, torch.Tensor, list[Any]]:
        """The KV cache and logits after ``prompt_ids`` and its prompt-logprob entries, starting
        from the longest cached prompt it extends; a prompt that extends none is kept."""
        key = tuple(prompt_ids)
        base = max(
            (k for k in self.prompts if len(k) <= len(key) and key[: len(k)] == k),
            key=len,
            default=None,
        )
        if base is None:
            cache, logits = self._forward([], None, prompt_ids)
            entries = self._entries(prompt_ids, 1, logits)
            self.prompts[key] = (copy.deepcopy(cache), logits[-1:], entries)
            while len(self.prompts) > CACHED_PROMPTS:
                self.prompts.popitem(last=False)
            return cache, logits, entries
        self.prompts.move_to_end(base)
        stored, last, entries = self.prompts[base]
        cache, logits = self._forward(list(base), (copy.deepcopy(stored), last), prompt_ids)
        return cache, logits, entries + self._entries(prompt_ids, len(base), logits)

    def _entries(self, prompt_ids: list[int], start: int, logits: torch.Tensor) -> list[Any]:
        """vLLM prompt-logprob entries of tokens ``start``.. (``logits[i]`` precedes token
        ``len(prompt_ids) - len(logits) + 1 + i``)."""
        first = len(prompt_ids) - len(logits) + 1
        return [
            _entry(self.tokenizer, logits[i - first], prompt_ids[i])
            for i in range(start, len(prompt_ids))
        ]

    def _forward(
        self,
        done: list[int],
        state: tuple[DynamicCache, torch.Tensor] | None,
        prompt_ids: list[int],
    ) -> tuple[DynamicCache, torch.Tensor]:
        """Run ``prompt_ids`` after the ``done`` tokens whose cache and last logits are ``state``;
        returns the cache and the log-probabilities after each token from the last done one."""
        cache, last = state if state else (DynamicCache(config=self.model.config), None)
        rest = prompt_ids[len(done) :]
        if not rest:
            return cache, last
        device = next(self.model.parameters()).device
        out = self.model(
            input_ids=torch.tensor([rest], device=device),
            **cache_kwargs(self.model, cache),
            use_cache=True,
        )
        logits = torch.log_softmax(out.logits[0].float(), -1)
        return cache, logits if last is None else torch.cat([last, logits])

    def _decode(
        self, cache: DynamicCache, logits: torch.Tensor, max_new: int, top: int | None
    ) -> tuple[list[int], dict[str, Any] | None, str]:
        """Greedy decoding from ``logits`` (log-probabilities) for up to ``max_new`` tokens."""
        tokens: list[int] = []
        content = []
        device = next(self.model.parameters()).device
        eos = self.tokenizer.eos_token_id
        for step in range(max_new):
            token = int(logits.argmax())
            tokens.append(token)
            if top is not None:
                content.append(_logprob(self.tokenizer, logits, token, top))
            if token == eos:
                return tokens, {"content": content} if top is not None else None, "stop"
            if step + 1 < max_new:
                out = self.model(
                    input_ids=torch.tensor([[token]], device=device),
                    **cache_kwargs(self.model, cache),
                    use_cache=True,
                )
                logits = torch.log_softmax(out.logits[0, -1].float(), -1)
        return tokens, {"content": content} if top is not None else None, "length"


def _logprob(tokenizer: Any, logits: torch.Tensor, token: int, top: int) -> dict[str, Any]:
    values, ids = logits.topk(top) if top else (torch.empty(0), torch.empty(0, dtype=torch.long))
    return {
        "token": tokenizer.decode([token]),
        "logprob": float(logits[token]),
        "bytes": None,
        "top_logprobs": [
            {"token": tokenizer.decode([int(i)]), "logprob": float(v), "bytes": None}
            for v, i in zip(values, ids, strict=True)
        ],
    }


def _entry(tokenizer: Any, logits: torch.Tensor, token: int) -> dict[str, Any]:
    """vLLM's prompt-logprob entry for one prompt token: {id: {logprob, rank, decoded_token}}."""
    value = float(logits[token])
    rank = int((logits > logits[token]).sum()) + 1
    return {
        str(token): {"logprob": value, "rank": rank, "decoded_token": tokenizer.decode([token])}
    }


class _Handler(BaseHTTPRequestHandler):
    server: EmulatedServer

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        if not self.path.rstrip("/").endswith("/chat/completions"):
            self.send_error(404)
            return
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        payload = json.dumps(self.server.complete(body)).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") for part in content)


@contextmanager
def emulated_server(model: Any, tokenizer: Any) -> Iterator[EmulatedServer]:
    """Serve ``model`` on 127.0.0.1 for the duration of the block."""
    server = EmulatedServer(model, tokenizer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
