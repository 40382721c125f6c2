"""A local OpenAI-compatible chat-completions server over embench's engine, answering like vLLM.

For tests of judges that reach an open model through a server (``openai-api/<service>/<model>``):
``POST /v1/chat/completions`` honours ``max_tokens``, ``logprobs``/``top_logprobs`` (tokens as
decoded text), greedy decoding at temperature 0, and vLLM's ``add_generation_prompt`` /
``continue_final_message``, so an assistant prefix is continued, not answered in a new turn.
Listens on 127.0.0.1 only; counts the requests it served.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from embench.models.engine import GenerationEngine, GenerationRequest


class EmulatedServer(ThreadingHTTPServer):
    """The HTTP server; ``requests`` counts the chat completions it answered."""

    daemon_threads = True

    def __init__(self, engine: GenerationEngine) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.engine = engine
        self.requests = 0
        self.lock = threading.Lock()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"

    def complete(self, body: dict[str, Any]) -> dict[str, Any]:
        tokenizer = self.engine.tokenizer
        messages = [{"role": m["role"], "content": _text(m["content"])} for m in body["messages"]]
        continuing = bool(body.get("continue_final_message", False))
        encoded = tokenizer.apply_chat_template(
            messages,
            add_generation_prompt=bool(body.get("add_generation_prompt", not continuing)),
            continue_final_message=continuing,
            tokenize=True,
        )
        prompt_ids = list(encoded["input_ids"] if hasattr(encoded, "keys") else encoded)
        top = body.get("top_logprobs") if body.get("logprobs") else None
        request = GenerationRequest(
            prompt_ids=prompt_ids,
            max_new_tokens=body.get("max_completion_tokens") or body.get("max_tokens") or 16,
            temperature=float(body.get("temperature") or 0.0),
            top_logprobs=top,
        )
        result = self.engine.submit(request).result()
        with self.lock:
            self.requests += 1
        logprobs = None
        if result.logprobs is not None:
            logprobs = {
                "content": [
                    {
                        "token": tokenizer.decode([lp.token_id]),
                        "logprob": lp.logprob,
                        "bytes": None,
                        "top_logprobs": [
                            {"token": tokenizer.decode([t]), "logprob": v, "bytes": None}
                            for t, v in lp.top
                        ],
                    }
                    for lp in result.logprobs
                ]
            }
        return {
            "id": f"emulated-{self.requests}",
            "object": "chat.completion",
            "created": 0,
            "model": body.get("model", "emulated"),
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": result.text},
                    "finish_reason": result.finish_reason,
                    "logprobs": logprobs,
                }
            ],
            "usage": {
                "prompt_tokens": len(prompt_ids),
                "completion_tokens": len(result.token_ids),
                "total_tokens": len(prompt_ids) + len(result.token_ids),
            },
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
def emulated_server(engine: GenerationEngine) -> Iterator[EmulatedServer]:
    """Serve ``engine`` on 127.0.0.1 for the duration of the block."""
    server = EmulatedServer(engine)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
