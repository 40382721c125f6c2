"""One preflight: every check of a training config that needs no model, before anything loads.

``embench train`` (also ``--dry-run``), ``embench experiment`` (for every cell of the grid, before
the first one trains) and the warm-up stage of a chained run all go through ``check_before_loading``:
the trainer's own ``validate``, the mitigations against the trainer's kind, the rewards against the
domain, ``--match``, and the warm-up's own config the same way.
"""

from __future__ import annotations

import copy
from collections.abc import Collection
from pathlib import Path
from typing import Any

from embench.errors import EmbenchError
from embench.rewards import build_rewards, default_rewards
from embench.run.layout import MANIFEST_FILE
from embench.training.chain import warmup_config
from embench.training.mitigations import parse_all
from embench.training.plugins import TrainerPlugin


def check_before_loading(
    plugin: TrainerPlugin, config: Any, later_runs: Collection[Path] = ()
) -> Any:
    """Raise the first one-line EmbenchError ``config`` would meet while training with
    ``plugin``; loads no model and writes nothing. ``later_runs``: run directories an earlier
    stage writes before this one trains (a grid's matched cells), not required to exist yet.

    Returns a copy of ``config`` as the run will resolve it: the trainer's ``prepare`` hook, where
    it has one, fills in every decision that needs no weights (``--dry-run`` prints it)."""
    resolved = copy.deepcopy(config)  # the hooks may normalise: never the caller's config
    match = getattr(config, "match", None)
    pending = bool(match) and Path(match) in later_runs  # prepare reads the matched run's steps
    hook = plugin.validate if pending else (plugin.prepare or plugin.validate)
    if hook is not None:
        hook(resolved)
    if getattr(config, "mitigations", None):
        parse_all(list(config.mitigations), bool(config.lora), plugin.name, plugin.kind)
    if plugin.kind == "rl" and (resolved.reward or resolved.domain):
        names = list(resolved.reward) or default_rewards(resolved.domain)
        build_rewards(names, resolved.domain, resolved.judge)
        if resolved.reward_weights is not None and len(resolved.reward_weights) != len(names):
            raise EmbenchError(
                f"reward_weights has {len(resolved.reward_weights)} values for {len(names)} "
                f"rewards ({', '.join(names)}): give one weight per reward"
            )
    if match and not pending and not (Path(match) / MANIFEST_FILE).is_file():
        raise EmbenchError(f"--match {match}: not a run directory (no manifest.json)")
    if getattr(config, "warmup", None):
        warm_plugin, warm = warmup_config(config, plugin.name)
        try:
            check_before_loading(warm_plugin, warm)
        except EmbenchError as error:
            raise EmbenchError(f"--warmup: {error}") from None
    return resolved
