"""One preflight: every check of a training config that needs no model, before anything loads.

``embench train`` (also ``--dry-run``), ``embench experiment`` (for every cell of the grid, before
the first one trains) and the warm-up stage of a chained run all go through ``check_before_loading``:
the trainer's own ``validate``, the mitigations against the trainer's kind, the rewards against the
domain, ``--match``, and the warm-up's own config the same way.

What a trainer's ``prepare`` hook builds there (its mitigation plan, reward functions, dataset)
comes back in the ``Preflight`` result, which ``TrainerPlugin.run`` hands to ``train``: the data
is read and the rewards are built once per run.
"""

from __future__ import annotations

import copy
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from embench.errors import EmbenchError
from embench.rewards import build_rewards, default_rewards
from embench.run.layout import MANIFEST_FILE
from embench.training.chain import warmup_config
from embench.training.mitigations import parse_all
from embench.training.plugins import TrainerPlugin


@dataclass
class Preflight:
    """What the preflight resolved: ``config`` as the run will use it and, for a trainer with a
    ``prepare`` hook, what that hook built from it (``prepared``: hand both to
    ``TrainerPlugin.run``), else None."""

    config: Any
    prepared: Any = None


def check_before_loading(
    plugin: TrainerPlugin, config: Any, later_runs: Collection[Path] = ()
) -> Preflight:
    """Raise the first one-line EmbenchError ``config`` would meet while training with
    ``plugin``; loads no model and writes nothing. ``later_runs``: run directories an earlier
    stage writes before this one trains (a grid's matched cells), not required to exist yet.

    Returns a copy of ``config`` as the run will resolve it: the trainer's ``prepare`` hook, where
    it has one, fills in every decision that needs no weights (``--dry-run`` prints it), and what
    it built."""
    resolved = copy.deepcopy(config)  # the hooks may normalise: never the caller's config
    match = getattr(config, "match", None)
    pending = bool(match) and Path(match) in later_runs  # prepare reads the matched run's steps
    prepares = plugin.prepare is not None and not pending
    prepared = plugin.prepare(resolved) if prepares else None
    if not prepares and plugin.validate is not None:
        plugin.validate(resolved)
    if getattr(config, "mitigations", None):
        parse_all(list(config.mitigations), bool(config.lora), plugin.name, plugin.kind)
    if plugin.kind == "rl" and (resolved.reward or resolved.domain):
        names = list(resolved.reward) or default_rewards(resolved.domain)
        if not prepares:  # a prepare hook has built them already
            build_rewards(
                names,
                resolved.domain,
                resolved.judge,
                max_completion_length=getattr(resolved, "max_completion_length", None),
            )
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
    return Preflight(resolved, prepared)
