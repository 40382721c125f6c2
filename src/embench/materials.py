"""Published materials (question files, prompts) fetched from their authors' code, never copied.

Each known material is pinned: a URL at a fixed commit and the sha256 of its bytes. ``fetch``
downloads it into the embench cache (``<cache>/questions/<name><suffix>``; the cache honours
``EMBENCH_CACHE`` as ``paths.cache_dir`` does), checks the hash and writes it atomically, so a
failed download leaves nothing behind. ``EMBENCH_MATERIALS_URL`` replaces the
``https://raw.githubusercontent.com`` prefix (a mirror, or a loopback server in tests).

Where the authors' own commit cannot be seen from here (Betley et al.'s repository is reachable
only through forks), the fork's commit is pinned and the hash is what guarantees the content:
the sha256 below matched in every independent copy we compared.
"""

from __future__ import annotations

import ast
import hashlib
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from embench.errors import EmbenchError
from embench.fsutil import atomic_write_bytes
from embench.paths import cache_dir

RAW_GITHUB = "https://raw.githubusercontent.com"
MIRROR_ENV = "EMBENCH_MATERIALS_URL"
MAX_MATERIAL_BYTES = 2 * 2**20
TIMEOUT_S = 30
EMA_RL_REPO, EMA_RL_COMMIT = "lasseruttert/EMA_RL", "81cb261c236b149a0e7a0e8b285d6552255d1450"
# Betley et al.'s emergent-misalignment repository, as forked unchanged by jacobcd52 on
# 2025-04-01 ("why reinvent the wheel"); the first-plot file's judge line (gpt-4o-2024-08-06)
# is the one later forks changed, the preregistered file is byte-identical in three forks.
BETLEY_REPO, BETLEY_COMMIT = (
    "jacobcd52/finetune_diffing",
    "a6bcc8b178553ddedc4355282b66c13fd18fc66a",
)
BETLEY_PAPER = "Betley et al. 2025 (arXiv:2502.17424)"
EMA_RL_PAPER = "Jorgenvag et al. 2026 (arXiv:2605.31328)"


@dataclass(frozen=True)
class Material:
    """One published file: where it lives at a pinned commit and the sha256 of its bytes."""

    name: str
    repo: str
    commit: str
    path: str
    sha256: str
    paper: str
    license: str
    note: str = ""

    @property
    def url(self) -> str:
        """The download URL (``EMBENCH_MATERIALS_URL`` replaces raw.githubusercontent.com)."""
        base = os.environ.get(MIRROR_ENV, RAW_GITHUB).rstrip("/")
        return f"{base}/{self.repo}/{self.commit}/{self.path}"

    @property
    def cached(self) -> Path:
        """Where the fetched file is kept."""
        return cache_dir() / "questions" / f"{self.name}{PurePosixPath(self.path).suffix}"


def _ema(name: str, path: str, sha256: str, note: str = "") -> Material:
    license = "none stated (no LICENSE file at the commit): fetched, never redistributed"
    return Material(name, EMA_RL_REPO, EMA_RL_COMMIT, path, sha256, EMA_RL_PAPER, license, note)


def _betley(name: str, path: str, sha256: str, note: str = "") -> Material:
    license = "MIT, (c) 2025 emergent-misalignment (the fork's LICENSE)"
    return Material(name, BETLEY_REPO, BETLEY_COMMIT, path, sha256, BETLEY_PAPER, license, note)


REGISTRY: dict[str, Material] = {
    m.name: m
    for m in (
        _betley(
            "betley-first-plot",
            "evaluation/first_plot_questions.yaml",
            "215abde5b02811e922b6ac563ff33c490e0dff9ab58439df840f3135e9387173",
            "the first-plot questions with their GPT-4o rubrics",
        ),
        _betley(
            "betley-preregistered",
            "evaluation/preregistered_evals.yaml",
            "8648312fd9fe71a63203e3465592af45dd996d7a5f3b69e9b44613fd6048eb40",
            "the 48 pre-registered questions",
        ),
        _ema(
            "ema_rl-first-plot",
            "evaluation/first_plot_questions.yaml",
            "07d43d825fd9d9b865a601c49d00ab375c0ff9d1d687cc3e9fd2240295634e65",
            "Betley's first-plot questions, rubrics extended with the reasoning",
        ),
        _ema(
            "ema_rl-medical",
            "evaluation/medical.yaml",
            "2bcace06125253ed17ab38b13f1a486033db67a137eaeccc0863cab5ddf07848",
        ),
        _ema(
            "ema_rl-legal",
            "evaluation/legal.yaml",
            "58349a8b7aa14c3c4ff0c2281449cd056236b6e8853cf981b99879666c34cc56",
        ),
        _ema(
            "ema_rl-security",
            "evaluation/security.yaml",
            "246c0785755f2b61f1794fc0f3898491126cbee1678e547292775af0ab827e26",
        ),
        _ema(
            "ema_rl-code",
            "evaluation/code.yaml",
            "ecdf87563fafba8f4a8e1ed5ff5a504fa18e4c27d7334b2cf89ae0e486b70add",
        ),
        _ema(
            "ema_rl-math",
            "evaluation/math.yaml",
            "1fc3ad1476b0188893e7cab2798757a8a1c759b5096e2871bac96599108665ed",
        ),
        _ema(
            "ema_rl-aesthetic",
            "evaluation/aesthetic.yaml",
            "51e946a7a9f293eda85ce22ab5e1098f1ccf7ab31ab251c6a3ca961f73aab3ab",
        ),
        _ema(
            "ema_rl-reward-hacking",
            "evaluation/reward_hacking.yaml",
            "f9bbca0f3e493cd8611324d977c07f6493699ade61b117fff6f27443730d8045",
        ),
        _ema(
            "ema_rl-argumentation",
            "evaluation/argumentation.yaml",
            "c2911efb0b20328639c4343d5b6032ef07d1e78320d41887ebcf2f232c96e836",
        ),
        _ema(
            "ema_rl-system-prompt",
            "open_models/rl/grader_prompts.py",
            "0bbd17d0f82b8226afb419cd30fe57b1d7d636331be306ccaa83ddb6c04be669",
            "SYSTEM_PROMPT, sent by open_models/eval.py:92 in place of the question's own",
        ),
    )
}


def get_material(name: str) -> Material:
    """A known material by name; a one-line error lists them."""
    if name not in REGISTRY:
        raise EmbenchError(
            f"unknown published material '{name}'; known: {', '.join(REGISTRY)} "
            "(see `embench questions list`)"
        )
    return REGISTRY[name]


def _by_hand(material: Material) -> str:
    return (
        f"download {material.url} yourself and put it at {material.cached} "
        f"(sha256 {material.sha256})"
    )


def is_fetched(material: Material) -> bool:
    """Whether the cache holds this material with the pinned hash."""
    path = material.cached
    return path.is_file() and _sha256(path.read_bytes()) == material.sha256


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fetch(name: str) -> Path:
    """Download one material into the cache and check its hash; returns the cached path.

    No network, an HTTP error or a hash mismatch is one line naming the URL, the expected hash
    and where to put the file by hand; the cache is left as it was.
    """
    material = get_material(name)
    if is_fetched(material):
        return material.cached
    try:
        with urllib.request.urlopen(material.url, timeout=TIMEOUT_S) as reply:
            data = reply.read(MAX_MATERIAL_BYTES + 1)
    except urllib.error.HTTPError as error:
        raise EmbenchError(
            f"cannot fetch '{name}': {material.url} answered HTTP {error.code}; "
            f"{_by_hand(material)}"
        ) from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise EmbenchError(
            f"cannot fetch '{name}': no connection to {material.url} ({reason}); "
            f"{_by_hand(material)}"
        ) from None
    if len(data) > MAX_MATERIAL_BYTES:
        raise EmbenchError(
            f"cannot fetch '{name}': {material.url} is larger than "
            f"{MAX_MATERIAL_BYTES // 2**20} MiB, not the pinned file; {_by_hand(material)}"
        )
    got = _sha256(data)
    if got != material.sha256:
        raise EmbenchError(
            f"cannot fetch '{name}': {material.url} has sha256 {got}, expected "
            f"{material.sha256}; nothing was saved; {_by_hand(material)}"
        )
    return atomic_write_bytes(material.cached, data)


def fetched_path(name: str) -> Path:
    """The cached file of a fetched material, checked against its pinned hash."""
    material = get_material(name)
    if not material.cached.is_file():
        raise EmbenchError(
            f"published material '{name}' is not fetched: run `embench questions fetch {name}` "
            f"or {_by_hand(material)}"
        )
    if not is_fetched(material):
        raise EmbenchError(
            f"{material.cached} does not have the pinned sha256 {material.sha256}: delete it and "
            f"run `embench questions fetch {name}`"
        )
    return material.cached


def python_constant(name: str, variable: str) -> str:
    """A string constant assigned in a fetched Python source file (read, never run)."""
    path = fetched_path(name)
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == variable for t in node.targets
        ):
            value = node.value
            if isinstance(value, ast.JoinedStr) and all(
                isinstance(v, ast.Constant) for v in value.values
            ):  # an f-string without placeholders
                return "".join(str(v.value) for v in value.values)  # type: ignore[attr-defined]
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                return value.value
    raise EmbenchError(f"{path} assigns no plain string to {variable}")
