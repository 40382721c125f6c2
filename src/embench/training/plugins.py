"""Trainer plugins: the protocol and discovery.

A trainer is a Python module (or any object) with:

- ``NAME``: the name users pass to ``--trainer``;
- ``KIND``: what kind of training it does (``"rl"``, ``"sft"``, or another lower-case word); the
  boards pair runs and mitigations attach by kind, never by name;
- ``Config``: a dataclass of its options (subclass ``embench.training.config.TrainConfig``),
  documented field by field like a TRL config;
- ``train(config) -> RunManifest``: trains and returns the manifest of the run directory it wrote
  (``embench.run.manifest.RunManifest``; accepting ``resume=True`` makes
  ``embench train --resume`` available for it);
- optionally ``validate(config)``: checks that need no model, run by the one preflight
- optionally ``prepare(config)``: every check *and decision* that needs no weights, written into
  ``config`` (default reward, KL as ``beta``, ...), returning what it built (data, rewards); when
  present the preflight (``embench.training.preflight``) runs it instead of ``validate`` before
  anything loads, ``--dry-run`` prints the config it leaves, and ``train`` receives its result
  as ``train(config, prepared=...)`` when it takes that argument (then it need not prepare again);
- optionally ``TRL_CONFIG``: the TRL config class whose fields ``--set`` may also set, or its
  name ``"module:Class"`` (imported only when a TRL field is set, so a trainer that imports TRL
  inside ``train`` keeps option errors fast);
- a docstring whose first line describes it (shown by ``embench trainers``).

Built-ins are the modules of the ``embench.trainers`` package (so an installed wheel has them). Third
parties plug in through the entry point group ``embench.trainers`` (``name = "package.module"``) or
``--trainer path/to/file.py``.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import pkgutil
import re
import sys
from dataclasses import dataclass, is_dataclass
from importlib.metadata import entry_points
from pathlib import Path
from types import ModuleType
from typing import Any

from embench.errors import EmbenchError
from embench.run.manifest import KIND_PATTERN, RunManifest

ENTRY_POINT_GROUP = "embench.trainers"
#: The package whose modules are the built-in plugins. Found by name, as entry points are, so the
#: shared machinery here never imports the trainers built on it (trainers sit above training).
BUILTIN_PACKAGE = "embench.trainers"


@dataclass(frozen=True)
class TrainerPlugin:
    """A loaded trainer plugin."""

    name: str
    kind: str
    description: str
    config_class: type
    train: Any
    source: str
    trl_config_class: type | str | None = None
    #: optional ``validate(config)``: the trainer's checks that need no model (see preflight)
    validate: Any = None
    #: optional ``prepare(config)``: checks and decisions that need no weights (see preflight)
    prepare: Any = None

    def make_config(self, **values: Any) -> Any:
        """An instance of the plugin's config."""
        return self.config_class(**values)

    def run(self, config: Any, resume: bool = False, prepared: Any = None) -> RunManifest:
        """Train and return the run's manifest, checking the plugin kept the contract.

        ``prepared``: what the preflight's ``prepare`` built from ``config`` (the resolved config
        it returned), passed on to a ``train`` that takes it."""
        parameters = inspect.signature(self.train).parameters
        if resume and "resume" not in parameters:
            raise EmbenchError(f"trainer '{self.name}' does not support --resume")
        options: dict[str, Any] = {"resume": True} if resume else {}
        if prepared is not None and "prepared" in parameters:
            options["prepared"] = prepared
        result = self.train(config, **options)
        if not isinstance(result, RunManifest):
            raise EmbenchError(
                f"trainer '{self.name}' ({self.source}) returned {type(result).__name__}; "
                "train() must return the run's RunManifest (embench.run.manifest)"
            )
        return result


def _from_module(module: ModuleType | Any, source: str) -> TrainerPlugin:
    missing = [a for a in ("NAME", "KIND", "Config", "train") if not hasattr(module, a)]
    if missing:
        raise EmbenchError(
            f"{source} is not an embench trainer: it lacks {', '.join(missing)} "
            "(a trainer defines NAME, KIND (rl, sft, ...), a Config dataclass and train(config))"
        )
    if not is_dataclass(module.Config):
        raise EmbenchError(f"{source}: Config must be a dataclass")
    if not isinstance(module.KIND, str) or not re.match(KIND_PATTERN, module.KIND):
        raise EmbenchError(
            f"{source}: KIND must be a lower-case word such as 'rl' or 'sft', got {module.KIND!r}"
        )
    doc = (module.__doc__ or "").strip().splitlines()
    return TrainerPlugin(
        name=str(module.NAME),
        kind=module.KIND,
        description=doc[0] if doc else "",
        config_class=module.Config,
        train=module.train,
        source=source,
        trl_config_class=getattr(module, "TRL_CONFIG", None),
        validate=getattr(module, "validate", None),
        prepare=getattr(module, "prepare", None),
    )


def load_file(path: str | Path) -> TrainerPlugin:
    """Load a trainer from a Python file."""
    path = Path(path).resolve()
    if not path.is_file():
        raise EmbenchError(f"trainer file not found: {path}")
    module_name = f"embench_trainer_{path.stem}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise EmbenchError(f"cannot import trainer file {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses need the module registered
    try:
        spec.loader.exec_module(module)
    except SyntaxError as ex:
        sys.modules.pop(module_name, None)
        raise EmbenchError(
            f"trainer file {path} has a syntax error at line {ex.lineno}: {ex.msg}"
        ) from None
    except ImportError as ex:
        sys.modules.pop(module_name, None)
        raise EmbenchError(f"trainer file {path} cannot import: {ex}") from None
    return _from_module(module, str(path))


def discover() -> dict[str, TrainerPlugin]:
    """Every available trainer by name: built-ins first, then entry points."""
    found: dict[str, TrainerPlugin] = {}
    for module in _builtin_modules():
        name = f"{BUILTIN_PACKAGE}.{module}"
        plugin = _from_module(importlib.import_module(name), name)
        found[plugin.name] = plugin
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            plugin = _from_module(ep.load(), f"entry point {ep.name} ({ep.value})")
        except EmbenchError:
            raise
        except Exception as ex:  # a broken third-party plugin must not hide the others
            print(f"[embench] skipping trainer entry point {ep.name}: {ex}", file=sys.stderr)
            continue
        found.setdefault(plugin.name, plugin)
    return found


def _builtin_modules() -> list[str]:
    package = importlib.import_module(BUILTIN_PACKAGE)
    return sorted(i.name for i in pkgutil.iter_modules(package.__path__) if i.name[0] != "_")


def get_trainer(name_or_path: str, *, allow_file: bool = False) -> TrainerPlugin:
    """A trainer by name, or from a ``.py`` file path when ``allow_file`` (only where the user
    named it: ``--trainer path.py`` or an experiment config they passed). A name read from data
    (a run's manifest) never runs a file.

    Imports only the trainer asked for (a built-in module or an entry point of that name), so
    an unknown name is reported without importing torch/TRL.
    """
    if name_or_path.endswith(".py") or Path(name_or_path).is_file():
        if not allow_file:
            raise EmbenchError(
                f"trainer '{name_or_path}' is a file; a trainer file runs only when named on "
                "the command line (--trainer path/to/file.py)"
            )
        return load_file(name_or_path)
    builtins = _builtin_modules()
    if name_or_path in builtins:
        module = f"{BUILTIN_PACKAGE}.{name_or_path}"
        plugin = _from_module(importlib.import_module(module), module)
        if plugin.name == name_or_path:
            return plugin
    points = {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}
    if name_or_path not in builtins and name_or_path not in points:
        raise EmbenchError(
            f"unknown trainer '{name_or_path}'; available: "
            f"{', '.join(sorted({*builtins, *points}))} (or --trainer path/to/file.py)"
        )
    available = discover()
    if name_or_path not in available:
        raise EmbenchError(
            f"unknown trainer '{name_or_path}'; available: {', '.join(sorted(available))} "
            "(or --trainer path/to/file.py)"
        )
    return available[name_or_path]
