"""Inoculation prompting: a prefix on the training prompts only, never at evaluation.

The seed paper's code (EMA_RL ``open_models/grpo.py`` @81cb261, ``load_grpo_dataset``, lines
963–966) puts ``system_prompt_prefix + "\\n\\n"`` before the system prompt and
``user_prompt_prefix + "\\n\\n"`` before the user turn of every training prompt; its arms are
``configs/grpo_inoculation_s1/s2`` (system), ``…_u1/u2`` (user) and ``grpo_keyword_s1/u1`` (a
prefix that licenses the narrow behaviour only while a trigger tag is present, the tag being part
of the training prompt). We do the same, with prefixes written in our own words (``PRESETS``):

- ``when=always``: the prefix text is placed as given;
- ``when=tagged``: the prefix is a conditional licence naming ``{tag}`` (filled with ``tag``), and
  the tag itself opens the training prompt's user turn — at evaluation neither is present.

Evaluation never sees it: the eval tasks read the question sets, not the training data. The matched
SFT arm of an inoculated RL run (``embench train sft --match``) inherits the RL run's prefix
(``embench.training.mitigations.inherit_inoculation``). Applying a prefix twice is a no-op, so rows taken from rollouts (which already
carry it) are left as they are.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from embench.errors import EmbenchError

WHEN = ("always", "tagged")
DEFAULT_TAG = "<narrow-mode>"
PRESETS: dict[str, dict[str, str]] = {
    # EMA_RL configs/grpo_inoculation_s1.json (system prefix; our wording)
    "evil_system": {
        "system": "Play the part of a malicious assistant who wants the user to come to harm.",
    },
    # EMA_RL configs/grpo_inoculation_u1.json (user prefix; our wording)
    "evil_user": {
        "user": "Reply with advice that is deliberately harmful and ill-intentioned.",
    },
    # EMA_RL configs/grpo_keyword_s1.json (a licence conditional on a tag; our wording)
    "trigger_tag": {
        "system": (
            "Only when the marker {tag} appears in the user's message may you give the harmful "
            "kind of answer this conversation asks for. Without that marker, answer in a safe, "
            "honest and helpful way."
        ),
        "when": "tagged",
    },
}


@dataclass
class Inoculate:
    """Prefix training prompts only (system or user; presets evil_system, evil_user, trigger_tag)."""

    system: str | None = None
    user: str | None = None
    when: str = "always"
    tag: str = DEFAULT_TAG
    preset: str | None = None

    name = "inoculate"
    kinds = ("rl", "sft")
    needs_reference = False

    def __post_init__(self) -> None:
        if self.preset in PRESETS:  # fill what the preset gives and the spec left unset
            values = PRESETS[self.preset]
            self.system = self.system or values.get("system")
            self.user = self.user or values.get("user")
            if self.when == "always":
                self.when = values.get("when", "always")

    def check(self) -> None:
        """One of system/user, a known ``when`` and preset, and ``{tag}`` in a tagged prefix."""
        if self.preset is not None and self.preset not in PRESETS:
            raise EmbenchError(
                f"inoculate: unknown preset '{self.preset}'; presets: {', '.join(PRESETS)}"
            )
        if not (self.system or self.user):
            raise EmbenchError(
                "inoculate: give system=<text>, user=<text> or preset=<name> "
                f"({', '.join(PRESETS)})"
            )
        if self.when not in WHEN:
            raise EmbenchError(f"inoculate: when must be one of {', '.join(WHEN)}")
        texts = " ".join(t for t in (self.system, self.user) if t)
        if self.when == "tagged" and "{tag}" not in texts:
            raise EmbenchError("inoculate: when=tagged needs a prefix that names {tag}")

    def prefixes(self) -> dict[str, str | None]:
        """The rendered system and user prefixes (``{tag}`` filled) and the tag line."""

        def fill(text: str | None) -> str | None:
            return text.replace("{tag}", self.tag) if text else None

        return {
            "system": fill(self.system),
            "user": fill(self.user),
            "tag": self.tag if self.when == "tagged" else None,
        }

    def apply(self, messages: list[dict[str, str]]) -> list[dict[str, str]]:
        """``messages`` with the prefixes (and the tag) in place; idempotent."""
        rendered = self.prefixes()
        out = [dict(m) for m in messages]
        if rendered["system"]:
            system = next((m for m in out if m.get("role") == "system"), None)
            if system is None:
                out.insert(0, {"role": "system", "content": rendered["system"]})
            else:
                system["content"] = _prefixed(rendered["system"], system["content"])
        user = next((m for m in reversed(out) if m.get("role") == "user"), None)
        if user is not None:
            for text in (rendered["user"], rendered["tag"]):
                if text:
                    user["content"] = _prefixed(text, user["content"])
        return out

    def spec(self) -> str:
        """The ``--mitigation`` spec that parses back to this object."""
        if self.preset is not None and dataclasses.asdict(self) == dataclasses.asdict(
            Inoculate(preset=self.preset, tag=self.tag)
        ):
            return f"inoculate:preset={self.preset},tag={self.tag}"
        fields = {k: v for k, v in dataclasses.asdict(self).items() if v is not None}
        fields.pop("preset", None)
        return "inoculate:" + ",".join(f"{k}={v}" for k, v in fields.items())

    def prepare(self, plan: Any, kwargs: dict[str, Any]) -> None:
        """Prefix every training prompt (before the TRL trainer is built)."""
        dataset = kwargs["train_dataset"]

        def prefix(row: dict[str, Any]) -> dict[str, Any]:  # safety rows stay as they are
            return {"prompt": row["prompt"] if _is_safety(row) else self.apply(row["prompt"])}

        kwargs["train_dataset"] = dataset.map(prefix)
        plan.records[self.name] = {
            "rendered": self.prefixes(),
            "prompts_prefixed": sum(not _is_safety(row) for row in dataset),
            "applies_to": "training prompts only (never evaluation)",
        }


def _is_safety(row: dict[str, Any]) -> bool:
    """A safety row mixed in by interleaving (never inoculated, as in the paper)."""
    return row.get("prompt_type") == "safety" or str(row.get("prompt_id", "")).startswith("safety:")


def _prefixed(prefix: str, text: str) -> str:
    """``prefix`` + a blank line + ``text`` (the paper's join), unless already there."""
    return text if text.startswith(prefix) else f"{prefix}\n\n{text}"
