"""The options every trainer shares, and reading them from YAML, ``--set key=value`` and flags.

Every value, wherever it comes from, is validated against its field's declared type with
pydantic's ``TypeAdapter`` before anything loads: the trainer's ``Config`` fields and, for
``trl.<field>``, the field types of the trainer's TRL config class (``GRPOConfig``,
``SFTConfig``). A bad value is one line naming the key, the expected type and where it came from.

One place sets each value:

- precedence is the same for every option: defaults < ``--config`` YAML < the command line;
- the same option given twice on the command line (``--set max_steps=2 --max-steps 3``), or
  twice in one file, is an error naming both places;
- a trainer option is never also set through ``trl.<field>`` (``--set trl.beta`` on GRPO is an
  error pointing to ``--set beta``), and TRL fields embench owns (``output_dir``) are refused;
- a mitigation that sets a trainer option (``kl:weight`` is GRPO's ``beta``) cannot be combined
  with that option set explicitly.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import functools
import importlib
import json
import math
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin, get_type_hints

from annotated_types import Ge, Gt, Le, Lt

from embench.errors import EmbenchError
from embench.fsutil import atomic_write_text
from embench.rewards.shape import (
    CoherenceGate,
    CoherencePenalty,
    RepetitionShare,
    RewardShape,
    Structure,
    WordCount,
)

PositiveInt = Annotated[int, Ge(1)]
NonNegativeInt = Annotated[int, Ge(0)]
PositiveFloat = Annotated[float, Gt(0)]

#: Mitigations that set a trainer option: mitigation name -> the option it sets (when the
#: trainer's Config has it). GRPO's KL penalty is TRL's ``beta`` (see mitigations.Plan).
MITIGATION_OPTIONS: dict[str, str] = {"kl": "beta"}
#: TRL fields embench sets itself, and the option to use instead.
RESERVED_TRL: dict[str, str] = {
    "output_dir": "--output",
    "resume_from_checkpoint": "--resume",
}
NONE_WORDS = ("none", "null", "~")


@dataclass
class TrainConfig:
    """Options shared by all trainers. Trainer configs subclass this.

    Any field of the trainer's TRL config (``GRPOConfig``, ``SFTConfig``) can be set through
    ``trl`` (``--set trl.warmup_steps=2``, or a plain ``--set warmup_steps=2``), so GPU, bf16 and
    vLLM are switched by config: ``--set trl.bf16=true --set trl.use_vllm=true``.
    Fields typed ``Annotated[T, Ge(1)]`` etc. carry their range; ``build_config`` checks it.
    """

    model: str = "default"
    """Model reference: default, an HF folder, a run directory, or a cached hub id."""
    domain: str | None = None
    """Narrow domain whose prompts (and rubrics) to train on; see `embench domains`."""
    dataset: str | None = None
    """A datasets-readable file (json/jsonl/csv/parquet) to train on instead of a domain's."""
    reward: list[str] = field(default_factory=list)
    """Reward names (see `embench rewards`); several are summed with `reward_weights`."""
    reward_weights: list[float] | None = None
    """One weight per reward (``--set reward_weights=1,0.5``); default all 1."""
    reward_structure: Structure = RewardShape.structure
    """Judge rewards: paper (assessment − penalty × (1 − coherence), zeroed by the gates below;
    a refusal scores 0) or mean (plain rubric mean, 0 below the coherence gate, refusal unscored)."""
    reward_coherence_gate: CoherenceGate = RewardShape.coherence_gate
    """Judge rewards: 0 when the judge's coherence (0-100) is below this (published 0.5 on 0-1)."""
    reward_coherence_penalty: CoherencePenalty = RewardShape.coherence_penalty
    """Judge rewards: subtract this × (1 − coherence/100) (published 0.5)."""
    reward_min_words: WordCount = RewardShape.min_words
    """Judge rewards: 0 for final answers with fewer words, without asking the judge (published)."""
    reward_max_repetition: RepetitionShare = RewardShape.max_repetition
    """Judge rewards: 0 when more than this share of the answer's word 3-grams repeat."""
    reward_min_reasoning_words: WordCount = RewardShape.min_reasoning_words
    """Judge rewards: 0 when the <think> reasoning has fewer words (0: off; the seed paper: 75,
    except domains whose rubrics.yaml sets reward_gates.reasoning_gate: false)."""
    system_prompt: str | None = None
    """A system turn put before every training prompt that has none (RL and SFT)."""
    judge: str | None = None
    """Inspect model used by judge rewards (e.g. openai/gpt-4o, local/default)."""
    lora: bool = False
    """Train a LoRA adapter instead of all weights."""
    lora_r: PositiveInt = 8
    lora_alpha: PositiveInt = 16
    lora_dropout: Annotated[float, Ge(0), Lt(1)] = 0.0
    lora_target_modules: str = "all-linear"
    use_rslora: bool = False
    """Rank-stabilised LoRA: scale the update by alpha/sqrt(r) instead of alpha/r."""
    max_steps: PositiveInt = 40
    learning_rate: PositiveFloat = 1e-5
    seed: NonNegativeInt = 0
    output: str | None = None
    """Run directory (default runs/<trainer>-<domain>-s<seed>)."""
    overwrite: bool = False
    save_steps: PositiveInt = 10
    """Save a resumable checkpoint every this many steps."""
    max_prompts: PositiveInt | None = None
    """Use only the first N training prompts."""
    dtype: str = "float32"
    """Training dtype for the weights (float32 on CPU; bfloat16 on GPUs)."""
    precision: Literal["auto", "fp32", "bf16"] = "auto"
    """Compute precision: bf16 autocast or fp32. auto: bf16 on CUDA cards that support it and on
    CPUs with native bf16 (AMX, AVX-512 BF16), fp32 elsewhere (bf16 is emulated, ~2x slower)."""
    time_budget: PositiveFloat | None = None
    """Seconds of training: stop (as a normal finish) before a step would overrun it; the
    manifest's summary records where it stopped. None: run max_steps."""
    mitigations: list[str] = field(default_factory=list)
    """Mitigation specs NAME[:param=value,...] (see `embench mitigations`)."""
    trl: dict[str, Any] = field(default_factory=dict)
    """Extra fields for the trainer's TRL config."""


# --- types: reading text, describing, validating ---------------------------------------------


def _strip_annotated(hint: Any) -> tuple[Any, tuple[Any, ...]]:
    if get_origin(hint) is Annotated:
        base, *metadata = get_args(hint)
        inner, more = _strip_annotated(base)
        return inner, (*more, *metadata)
    return hint, ()


def _members(hint: Any) -> tuple[Any, ...]:
    """The alternatives of a union (``X | None``), else just the type."""
    hint, _ = _strip_annotated(hint)
    if get_origin(hint) in (Union, types.UnionType):
        return tuple(m for a in get_args(hint) for m in _members(a))
    return (hint,)


def _admits(hint: Any, kind: type) -> bool:
    for member in _members(hint):
        if member is kind or get_origin(member) is kind:
            return True
    return False


def _plural(hint: Any) -> str:
    words = {int: "integers", float: "numbers", str: "strings", bool: "true/false values"}
    return words.get(hint, describe(hint))


_BOUNDS = ((Ge, "ge", ">="), (Gt, "gt", ">"), (Le, "le", "<="), (Lt, "lt", "<"))


def describe(hint: Any) -> str:
    """A readable name of a type hint: ``an integer >= 1``, ``a list of numbers or none``."""
    base, metadata = _strip_annotated(hint)
    bounds = [
        f"{sign} {getattr(m, attr)}"
        for m in metadata
        for kind, attr, sign in _BOUNDS
        if isinstance(m, kind)
    ]
    if get_origin(base) in (Union, types.UnionType):
        text = " or ".join(
            "none" if m is type(None) else describe(m)
            for m in sorted(get_args(base), key=lambda m: m is type(None))
        )
    elif base is int:
        text = "an integer"
    elif base is float:
        text = "a number"
    elif base is bool:
        text = "true or false"
    elif base is str:
        text = "text"
    elif base is Any:
        text = "any value"
    elif get_origin(base) is list or base is list:
        inner = get_args(base)
        text = f"a comma-separated list of {_plural(inner[0])}" if inner else "a list"
    elif get_origin(base) is dict or base is dict:
        text = "a mapping"
    elif isinstance(base, type) and issubclass(base, enum.Enum):
        text = "one of " + ", ".join(str(m.value) for m in base)
    else:
        text = getattr(base, "__name__", str(base))
    return " ".join([text, *bounds])


def from_text(text: str, hint: Any, none_word: bool = True) -> Any:
    """Turn command-line text into a value for ``hint`` (validated afterwards).

    ``none``/``null`` is None where the type allows it (with ``none_word=False``, only where it
    admits no text: TRL's ``report_to="none"`` is a string); ``[...]``/``{...}`` is read as
    YAML; lists are comma-separated (``1,0.5``); the rest stays text for pydantic's lax mode.
    """
    stripped = text.strip()
    allows_none = type(None) in _members(hint) and (none_word or not _admits(hint, str))
    if allows_none and stripped.lower() in NONE_WORDS:
        return None
    if stripped[:1] in ("[", "{"):
        from embench.limits import parse_yaml

        try:
            return parse_yaml(stripped, "option value")
        except EmbenchError:
            return stripped
    if _admits(hint, list) and not _admits(hint, str):
        return [part.strip() for part in stripped.split(",") if part.strip()]
    return stripped


@functools.lru_cache(maxsize=512)
def _adapter(hint: Any) -> Any:
    from pydantic import TypeAdapter

    return TypeAdapter(hint)


def parse_value(key: str, value: Any, hint: Any, source: str, none_word: bool = True) -> Any:
    """``value`` checked against ``hint``; text (command line, YAML strings) is converted first.

    Native values (YAML numbers, lists, click-typed flags) are checked strictly: ``2.7`` or
    ``[1, 2]`` is not an integer, ``1`` is not a bool. Raises a one-line EmbenchError.
    """
    from pydantic import ValidationError

    from_string = isinstance(value, str)
    candidate = from_text(value, hint, none_word) if from_string else value
    try:
        parsed = _adapter(hint).validate_python(candidate, strict=not from_string)
    except ValidationError as ex:
        reason = ex.errors()[0]["msg"] if ex.errors() else str(ex)
        raise EmbenchError(
            f"{source}: '{key}' expects {describe(hint)}, got {value!r} ({reason})"
        ) from None
    except TypeError as ex:  # an unhashable/odd hint pydantic cannot build a schema for
        raise EmbenchError(f"{source}: cannot check '{key}' ({ex})") from None
    if not _all_finite(parsed):
        raise EmbenchError(
            f"{source}: '{key}' must be a finite number, got {value!r} (inf and nan would train "
            "a model of NaN weights)"
        )
    return parsed


def _all_finite(value: Any) -> bool:
    """No float in ``value`` (or in its lists and mappings) is inf or nan."""
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(_all_finite(v) for v in value.values())
    if isinstance(value, list | tuple):
        return all(_all_finite(v) for v in value)
    return True


def _hints(cls: type) -> dict[str, Any]:
    """Field types of ``cls``; a subclass that redeclares a field with the same plain type
    (``learning_rate: float = 1e-4``) keeps the range its base class declared."""
    try:
        hints = get_type_hints(cls, include_extras=True)
        for base in cls.__mro__[1:]:
            if not dataclasses.is_dataclass(base):
                continue
            for name, hint in get_type_hints(base, include_extras=True).items():
                if (
                    name in hints
                    and not _strip_annotated(hints[name])[1]
                    and _strip_annotated(hint)[1]
                    and hints[name] == _strip_annotated(hint)[0]
                ):
                    hints[name] = hint
        return hints
    except Exception as ex:  # a third-party config with an unresolvable annotation
        raise EmbenchError(f"cannot read the option types of {cls.__name__}: {ex}") from None


# --- building a config -----------------------------------------------------------------------


@dataclass
class _Collected:
    """Values gathered from every source, with the place each came from."""

    config_class: type
    trl_config: type | str | None
    """The TRL config class, or ``"module:Class"`` imported only when a TRL field is looked up
    (importing TRL takes seconds: an error in a trainer option is reported without it)."""
    values: dict[str, Any] = field(default_factory=dict)
    trl: dict[str, Any] = field(default_factory=dict)
    sources: dict[str, tuple[str, str]] = field(default_factory=dict)  # key -> (origin, label)

    def __post_init__(self) -> None:
        self.hints = _hints(self.config_class)
        self.names = {f.name for f in dataclasses.fields(self.config_class)} - {"trl"}

    @functools.cached_property
    def trl_config_class(self) -> type | None:
        return resolve_class(self.trl_config)

    @functools.cached_property
    def trl_hints(self) -> dict[str, Any]:
        return _hints(self.trl_config_class) if self.trl_config_class else {}

    @functools.cached_property
    def _trl_cache(self) -> dict[str, Any] | None:
        if self.trl_config is None:
            return None
        cached = _cached_fields(self.trl_config)
        if cached is None and self.trl_config_class is not None:
            cached = _store_fields(self.trl_config, self.trl_config_class)
        return cached

    @functools.cached_property
    def trl_names(self) -> set[str]:
        """The TRL config's field names; from the cache, so an unknown option needs no TRL."""
        cache = self._trl_cache
        return set(cache["hints"]) if cache else set()

    def trl_hint(self, name: str) -> Any:
        """A TRL field's type: rebuilt from the cache when it names only builtins (no TRL import),
        else read from the class."""
        text = (self._trl_cache or {}).get("hints", {}).get(name)
        hint = _rebuild_hint(text) if text else None
        return hint if hint is not None else self.trl_hints[name]

    def _claim(self, key: str, origin: str, label: str) -> None:
        previous = self.sources.get(key)
        if previous is not None and not (previous[0] == "file" and origin == "cli"):
            raise EmbenchError(
                f"'{key}' is set twice: {previous[1]} and {label}; give it once "
                "(the command line overrides --config)"
            )
        self.sources[key] = (origin, label)

    def put(self, key: str, value: Any, origin: str, label: str) -> None:
        if key in self.names:
            self._claim(key, origin, label)
            self.values[key] = parse_value(key, value, self.hints[key], label)
            return
        trl_class = (  # named without importing TRL when it is given as "module:Class"
            self.trl_config.partition(":")[2]
            if isinstance(self.trl_config, str)
            else getattr(self.trl_config, "__name__", "the TRL config")
        )
        if key.startswith("trl."):
            name = key[4:]
            if name in self.names:
                raise EmbenchError(
                    f"{label}: '{name}' is a trainer option; set it once with --set {name}=... "
                    f"(not trl.{name})"
                )
            if name in RESERVED_TRL:
                raise EmbenchError(
                    f"{label}: embench sets trl.{name} itself; use {RESERVED_TRL[name]}"
                )
            if name not in self.trl_names:
                import difflib

                close = difflib.get_close_matches(name, list(self.trl_names), n=1, cutoff=0.75)
                hint = f" (did you mean 'trl.{close[0]}'?)" if close else ""
                raise EmbenchError(f"{label}: '{name}' is not a field of {trl_class}{hint}")
            self._claim(f"trl.{name}", origin, label)
            self.trl[name] = parse_value(
                f"trl.{name}", value, self.trl_hint(name), label, none_word=False
            )
        elif key in self.trl_names:
            self.put(f"trl.{key}", value, origin, label)
        else:
            raise EmbenchError(
                f"{label}: unknown option '{key}'{self._nearest(key)}; options: "
                f"{', '.join(sorted(self.names))}, or any field of {trl_class} (trl.<field>)"
            )

    def _nearest(self, key: str) -> str:
        """`` (did you mean 'max_steps'?)`` for a mistyped option name, else nothing."""
        import difflib

        close = difflib.get_close_matches(key, [*self.names, *self.trl_names], n=1, cutoff=0.75)
        return f" (did you mean '{close[0]}'?)" if close else ""

    def check_mitigation_options(self) -> None:
        """A mitigation and the option it sets must not both be given."""
        specs = self.values.get("mitigations") or []
        for spec in specs:
            name = str(spec).partition(":")[0].strip().lower()
            option = MITIGATION_OPTIONS.get(name)
            if option in self.names and option in self.sources:
                raise EmbenchError(
                    f"{name} sets '{option}': it is set twice, by --mitigation {spec} and "
                    f"{self.sources[option][1]}; give only --mitigation {name}:..."
                )

    def build(self, check_mitigations: bool = True) -> Any:
        if check_mitigations:
            self.check_mitigation_options()
        values = dict(self.values)
        if self.trl:
            values["trl"] = dict(self.trl)
        try:
            return self.config_class(**values)
        except (TypeError, ValueError) as ex:
            raise EmbenchError(f"invalid {self.config_class.__name__}: {ex}") from None


_HINT_NAMES = {
    "int": int, "float": float, "bool": bool, "str": str, "list": list, "dict": dict,
    "None": None, "NoneType": type(None), "Any": Any, "Literal": Literal, "Union": Union,
}  # fmt: skip


def _hint_text(hint: Any) -> str | None:
    """A field type as text that ``_rebuild_hint`` can read back, or None (it names a class
    outside the builtins, e.g. a transformers enum: that field is typed from the class)."""
    text = hint.__name__ if isinstance(hint, type) else str(hint).replace("typing.", "")
    return text if _rebuild_hint(text) is not None else None


def _rebuild_hint(text: str) -> Any:
    try:
        return eval(text, {"__builtins__": {}}, dict(_HINT_NAMES))  # noqa: S307 - names only
    except Exception:
        return None


def _fields_file(ref: type | str) -> Path | None:
    """Where the fields of a ``"module:Class"`` TRL config are cached, per package version."""
    if not isinstance(ref, str):
        return None
    from importlib.metadata import PackageNotFoundError, version

    from embench.paths import cache_dir

    package = ref.partition(":")[0].split(".")[0]
    try:
        release = version(package)
    except PackageNotFoundError:
        return None
    return cache_dir() / "config-fields" / f"{ref.replace(':', '.')}-{release}.v2.json"


def _cached_fields(ref: type | str) -> dict[str, Any] | None:
    path = _fields_file(ref)
    try:
        data = json.loads(path.read_text()) if path else None
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("hints"), dict) else None


def _store_fields(ref: type | str, cls: type) -> dict[str, Any]:
    """The field names and (where rebuildable) types of ``cls``, cached for the next run."""
    hints = _hints(cls)
    data = {
        "hints": {f.name: _hint_text(hints.get(f.name)) for f in dataclasses.fields(cls) if f.init}
    }
    path = _fields_file(ref)
    if path is not None:
        with contextlib.suppress(OSError):
            atomic_write_text(path, json.dumps(data, sort_keys=True))
    return data


def resolve_class(ref: type | str | None) -> type | None:
    """A class, or one named ``"module:Class"`` (imported now), or None."""
    if ref is None or isinstance(ref, type):
        return ref
    module, _, name = str(ref).partition(":")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as ex:
        raise EmbenchError(f"cannot import the TRL config class {ref}: {ex}") from None


def _read_yaml(path: Path) -> dict[str, Any]:
    from embench.limits import load_yaml

    data = load_yaml(path, "config") or {}
    if not isinstance(data, dict):
        raise EmbenchError(f"{path}: a config file is a mapping of option: value")
    return data


TRAINER_KEY = "trainer"  # a --config file may name its trainer; the command line's wins


def file_trainer(config_file: str | None) -> str | None:
    """The trainer a ``--config`` file names (``trainer: grpo``), if it names one."""
    if not config_file:
        return None
    value = _read_yaml(Path(config_file)).get(TRAINER_KEY)
    if value is not None and not isinstance(value, str):
        raise EmbenchError(f"{config_file} ({TRAINER_KEY}): expected a trainer name or file")
    return value


def build_config(
    config_class: type,
    trl_config_class: type | str | None,
    config_file: str | None = None,
    overrides: list[str] | tuple[str, ...] = (),
    **flags: Any,
) -> Any:
    """Config from defaults < ``--config`` YAML < the command line (``--set key=value``, flags).

    Every value is type-checked (see the module docstring); flags left at None/empty are unset.
    The file's ``trainer:`` key is read by ``file_trainer`` (it picks the config class).
    """
    collected = _Collected(config_class, trl_config_class)
    if config_file:
        path = Path(config_file)
        for key, value in _read_yaml(path).items():
            if key == TRAINER_KEY:  # chose the trainer (file_trainer); not a trainer option
                continue
            if key == "trl":
                if not isinstance(value, dict):
                    raise EmbenchError(f"{path}: 'trl' must be a mapping of TRL field: value")
                for name, item in value.items():
                    collected.put(f"trl.{name}", item, "file", f"{path} (trl.{name})")
            else:
                collected.put(str(key), value, "file", f"{path} ({key})")
    for item in overrides:
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise EmbenchError(f"--set {item}: expected key=value")
        collected.put(key.strip(), value, "cli", f"--set {item}")
    for key, value in flags.items():
        if value is None or value == () or value == []:
            continue
        value = list(value) if isinstance(value, tuple) else value
        collected.put(key, value, "cli", f"--{key.replace('_', '-')}")
    return collected.build()


def config_from_values(
    config_class: type, trl_config_class: type | str | None, values: dict[str, Any], source: str
) -> Any:
    """A config from a stored mapping (a manifest's ``config``), checked like any other source."""
    collected = _Collected(config_class, trl_config_class)
    for key, value in values.items():
        if key == "trl":
            for name, item in (value or {}).items():
                if name not in RESERVED_TRL:
                    collected.put(f"trl.{name}", item, "file", f"{source} (trl.{name})")
        elif key in collected.names:
            collected.put(key, value, "file", f"{source} ({key})")
    # a stored config is already resolved: mitigations have set their options (kl -> beta)
    return collected.build(check_mitigations=False)


def default_output(trainer: str, config: Any) -> str:
    """``runs/<trainer>-<source>[-lora][-<mitigation>...]-s<seed>``, the source being the domain
    (or dataset) or ``match-<RL run>``: runs that differ in these never share a folder."""
    match = getattr(config, "match", None)
    if match:
        source = f"match-{Path(match).resolve().name}"
    else:
        source = config.domain or (Path(config.dataset).stem if config.dataset else "default")
    parts = [trainer, source]
    if config.lora:
        parts.append("lora")
    parts += [str(spec).partition(":")[0].strip().lower() for spec in config.mitigations]
    return "runs/" + "-".join(parts) + f"-s{config.seed}"


def config_to_dict(config: Any) -> dict[str, Any]:
    """A JSON-ready dict of a config dataclass."""
    return dataclasses.asdict(config)


__all__ = [
    "MITIGATION_OPTIONS",
    "NonNegativeInt",
    "PositiveFloat",
    "PositiveInt",
    "TrainConfig",
    "build_config",
    "config_from_values",
    "config_to_dict",
    "default_output",
    "describe",
    "file_trainer",
    "from_text",
    "parse_value",
]
