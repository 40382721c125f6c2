"""In-training mitigations: specs ``NAME[:k=v,...]`` parsed into validated dataclasses, and a plan
that wires them into a TRL trainer.

Each mitigation class declares the trainer kinds it supports (``kinds``; ``"*"`` = any); a trainer
plugin gets them by declaring its ``KIND`` and building its TRL trainer with ``Plan.make_trainer``.
A mitigation the trainer's kind does not support is refused before anything loads. The wiring,
by mechanism, never by trainer name:

- loss terms: the ``hooks.with_extra_losses`` mixin (KL on SFT-like kinds, LDIFS, interleaving on
  RL); KL goes through the trainer's own ``beta`` option when its config has one (TRL GRPO);
- data: interleaving on ``sft`` replaces a fraction of the training rows (``prepare_sft_dataset``);
- after the final save: SafeLoRA projects the saved adapter (``finish``);
- any mitigation may also define ``prepare(plan, trainer_kwargs)`` (training data, TRL options,
  loss terms), ``reward_functions(plan, functions, names)`` (GRPO reward routing, through
  ``Plan.rewards``) and ``report()`` (figures for the manifest): inoculation, ``interleave_rl``
  and ``sft_mix`` attach that way.
- forward hooks: steering adds a vector to one layer while training (``steer.with_steering``).
"""

from __future__ import annotations

import copy
import dataclasses
import resource
import sys
import time
from typing import Any, get_type_hints

from embench.errors import EmbenchError
from embench.training.config import parse_value
from embench.training.mitigations.hooks import LossTerms, with_extra_losses
from embench.training.mitigations.inoculate import Inoculate
from embench.training.mitigations.interleave import Interleave
from embench.training.mitigations.interleave_rl import InterleaveRL
from embench.training.mitigations.kl import KL
from embench.training.mitigations.ldifs import LDIFS
from embench.training.mitigations.safelora import SafeLoRA
from embench.training.mitigations.sft_mix import SFTMix
from embench.training.mitigations.steer import Steer

REGISTRY: dict[str, type] = {c.name: c for c in (KL, LDIFS, SafeLoRA, Interleave, Steer)}
REGISTRY[Inoculate.name] = Inoculate
REGISTRY[InterleaveRL.name] = InterleaveRL
REGISTRY[SFTMix.name] = SFTMix
ANY_KIND = "*"


def supports(cls: type, kind: str) -> bool:
    """Whether mitigation class ``cls`` declares support for trainer kind ``kind``."""
    kinds = getattr(cls, "kinds", ())
    return ANY_KIND in kinds or kind in kinds


def available() -> dict[str, str]:
    """Mitigation name → one-line description with its parameters and defaults."""
    out = {}
    for name, cls in REGISTRY.items():
        params = ", ".join(f"{f.name}={f.default}" for f in dataclasses.fields(cls))
        kinds = "any" if ANY_KIND in cls.kinds else ", ".join(cls.kinds)
        out[name] = f"{(cls.__doc__ or '').strip()}  [{params}] (trainer kinds: {kinds})"
    return out


def parse(spec: str) -> Any:
    """One spec ``NAME[:k=v,...]`` → a checked mitigation dataclass."""
    name, _, rest = spec.partition(":")
    name = name.strip().lower()
    if name not in REGISTRY:
        raise EmbenchError(
            f"unknown mitigation '{name}'; available: {', '.join(REGISTRY)} (see `embench mitigations`)"
        )
    cls = REGISTRY[name]
    hints = get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls)}
    texts: dict[str, str] = {}
    for item in filter(None, (p.strip() for p in rest.split(","))):
        key, eq, value = item.partition("=")
        if not eq and texts:  # a comma inside a text value ("system=Be kind, always")
            last = next(reversed(texts))
            texts[last] += f", {item}"
            continue
        if not eq or key.strip() not in fields:
            raise EmbenchError(
                f"{name}: bad parameter '{item}'; parameters: {', '.join(sorted(fields))}"
            )
        texts[key.strip()] = value
    values = {k: parse_value(k, v, hints[k], f"{name}") for k, v in texts.items()}
    mitigation = cls(**values)
    mitigation.check()
    return mitigation


def inherit_inoculation(specs: list[str], rl_mitigations: list[dict[str, Any]]) -> list[str]:
    """``specs`` with the RL run's inoculation added (the matched SFT arm trains under the same
    prefix); an error when ``specs`` already inoculate differently."""
    rl = next((m for m in rl_mitigations if m.get("name") == Inoculate.name), None)
    if rl is None:
        return specs
    theirs = Inoculate(**rl["params"])
    for spec in specs:
        if spec.partition(":")[0].strip().lower() == Inoculate.name:
            if dataclasses.asdict(parse(spec)) != dataclasses.asdict(theirs):
                raise EmbenchError(
                    "--match: the RL run was inoculated differently; drop your inoculate spec "
                    f"(the matched arm inherits the RL run's: {theirs.spec()})"
                )
            return specs
    spec = theirs.spec()
    if dataclasses.asdict(parse(spec)) != dataclasses.asdict(theirs):
        raise EmbenchError(
            "--match: the RL run's inoculation text cannot be written as a spec; pass it with "
            "--mitigation inoculate:... explicitly"
        )
    return [*specs, spec]


def parse_all(
    specs: list[str], lora: bool, trainer: str | None = None, kind: str | None = None
) -> list[Any]:
    """All specs, checked together (no model needed): duplicates, SafeLoRA without LoRA, and,
    given the trainer's ``kind``, that each mitigation supports it."""
    parsed = [parse(s) for s in specs]
    for mitigation in parsed:
        if kind is not None and not supports(type(mitigation), kind):
            usable = [n for n, c in REGISTRY.items() if supports(c, kind)]
            raise EmbenchError(
                f"mitigation '{mitigation.name}' does not support trainer '{trainer}' (kind "
                f"{kind}); it supports kinds {', '.join(mitigation.kinds)}; mitigations for kind "
                f"{kind}: {', '.join(usable) or 'none'}"
            )
    names = [m.name for m in parsed]
    duplicated = {n for n in names if names.count(n) > 1}
    if duplicated:
        raise EmbenchError(f"mitigation given twice: {', '.join(sorted(duplicated))}")
    if "safelora" in names and not lora:
        raise EmbenchError("safelora projects a LoRA adapter: train with --lora")
    return parsed


def reference_bytes(model: Any) -> int:
    """Memory a frozen copy of ``model`` needs: parameter count × dtype size."""
    return sum(p.numel() * p.element_size() for p in model.parameters())


def available_bytes(device: Any = None) -> int:
    """Free memory where the model lives: GPU free memory, else available RAM."""
    import torch

    if device is not None and getattr(device, "type", "cpu") == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    import psutil

    return int(psutil.virtual_memory().available)


def check_reference_fits(model: Any, margin: float = 1.2) -> None:
    """Error before training when a frozen reference copy would not fit in memory."""
    need = reference_bytes(model) * margin
    have = available_bytes(next(model.parameters()).device)
    if need > have:
        raise EmbenchError(
            f"the reference model needs ~{need / 2**20:.0f} MiB but only {have / 2**20:.0f} MiB is "
            "free; train with --lora (the reference is then the base with the adapter disabled) "
            "or drop kl/ldifs"
        )


def _peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (2**20 if sys.platform == "darwin" else 2**10), 1)


class Plan:
    """The mitigations of one run and how they attach to its trainer (see the module doc)."""

    def __init__(
        self, specs: list[str], trainer: str, kind: str, lora: bool, reference: str = "default"
    ):
        self.trainer, self.kind, self.lora, self.reference = trainer, kind, lora, reference
        self.items = parse_all(list(specs), lora, trainer, kind)
        self.by_name = {m.name: m for m in self.items}
        self.setup_seconds: dict[str, float] = {}
        self.records: dict[str, dict[str, Any]] = {}
        self.safety: list[dict[str, Any]] | None = None
        self.batches: Any = None
        self.losses = LossTerms()
        self.kl_in_config = False
        self.attached = False
        """Set once ``make_trainer`` built the trainer: the runner refuses a plan never used."""

    def get(self, name: str) -> Any:
        """The parsed mitigation called ``name``, or None."""
        return self.by_name.get(name)

    def apply_to_config(self, config: Any) -> None:
        """KL through the trainer's own coefficient, when its config has one (GRPO's ``beta``)."""
        kl = self.get("kl")
        if kl is not None and hasattr(config, "beta"):
            config.beta = kl.weight
            self.kl_in_config = True

    def load_safety(self, reference: str) -> None:
        """Safety rows for interleaving (on-policy: generated now, before training)."""
        spec = self.get("interleave")
        if spec is None or self.safety is not None:
            return
        started = time.perf_counter()
        from embench.training.mitigations.interleave import safety_rows

        self.safety, record = safety_rows(spec, reference)
        self.records["interleave"] = record
        self.setup_seconds["interleave"] = time.perf_counter() - started

    def prepare_sft_dataset(self, dataset: Any, seed: int) -> Any:
        """SFT interleaving: replace the fraction of rows by evenly spread safety rows."""
        spec = self.get("interleave")
        if spec is None:
            return dataset
        from embench.training.mitigations.interleave import mix_sft

        self.load_safety(self.reference)
        mixed = mix_sft(dataset, self.safety or [], spec.fraction, seed)
        self.records["interleave"]["safety_rows"] = sum(
            str(p).startswith("safety:") for p in mixed["prompt_id"]
        )
        return mixed

    def rewards(
        self, functions: list[Any], names: list[str], judge: str | None = None, shape: Any = None
    ) -> tuple[list[Any], list[str]]:
        """The reward functions and their names after the mitigations that route rewards (they
        may add judge rewards: ``judge`` and the reward ``shape`` are the run's)."""
        for mitigation in self.items:
            if hasattr(mitigation, "reward_functions"):
                functions, names = mitigation.reward_functions(functions, names, judge, shape)
        return functions, names

    def make_trainer(self, trainer_class: type, model: Any, peft_config: Any, **kwargs: Any) -> Any:
        """Build the TRL trainer with the mitigations' data, loss terms and reference."""
        from embench.training.mitigations import interleave, kl, ldifs

        self.attached = True
        if not self.items:
            return trainer_class(model=model, peft_config=peft_config, **kwargs)
        if "steer" in self.by_name:  # the hook rides on the model while it trains
            from embench.training.mitigations.steer import with_steering

            trainer_class = with_steering(trainer_class, self.by_name["steer"].steerer())
        needs_ref = any(m.needs_reference for m in self.items)
        if needs_ref and peft_config is None:
            check_reference_fits(model)
        spec = self.get("interleave")
        if spec is not None and self.kind == "sft":  # the mixed order is the order
            kwargs["train_dataset"] = self.prepare_sft_dataset(
                kwargs["train_dataset"], kwargs["args"].seed
            )
            kwargs["args"].train_sampling_strategy = "sequential"
        for mitigation in self.items:  # data, TRL options and loss terms of the others
            if hasattr(mitigation, "prepare"):
                mitigation.prepare(self, kwargs)
        terms = self.losses.terms
        if "kl" in self.by_name and not self.kl_in_config:
            terms["kl"] = lambda step: kl.sft_term(self.by_name["kl"], step)
        if "ldifs" in self.by_name:
            terms["ldifs"] = lambda step: ldifs.term(self.by_name["ldifs"], step)
        trainer = with_extra_losses(trainer_class, self.losses)(
            model=model, peft_config=peft_config, **kwargs
        )
        if spec is not None and self.kind == "rl":
            self.load_safety(self.reference)
            batches = interleave.SafetyBatches(
                kwargs["processing_class"],
                self.safety or [],
                spec.fraction,
                trainer.args.per_device_train_batch_size,
                spec.seed,
            )
            self.records["interleave"]["expected_per_step"] = round(batches.expected, 4)
            self.batches = batches
            terms["interleave"] = lambda step: interleave.grpo_term(spec, batches, step)
        if needs_ref and peft_config is None:
            ref = getattr(trainer, "ref_model", None)
            if ref is None:
                ref = copy.deepcopy(trainer.accelerator.unwrap_model(trainer.model)).eval()
                ref.requires_grad_(False)
            self.losses.reference = ref
        return trainer

    def manifest(self) -> list[dict[str, Any]]:
        """[{name, params}] for the manifest before training."""
        return [{"name": m.name, "params": dataclasses.asdict(m)} for m in self.items]

    def finish(self, trainer: Any, checkpoint: Any) -> list[dict[str, Any]]:
        """After the final save into ``checkpoint``: SafeLoRA projection (of the saved adapter,
        then loaded back into the trainer's model); returns the manifest records with costs (the
        runner writes them)."""
        spec = self.get("safelora")
        if spec is not None:
            from embench.training.mitigations.safelora import apply_to_adapter, load_saved_adapter

            started = time.perf_counter()
            report = apply_to_adapter(checkpoint, spec.aligned, spec.unaligned, spec.tau)
            # the in-memory model becomes the projected one: the final probe describes the save
            load_saved_adapter(trainer.accelerator.unwrap_model(trainer.model), checkpoint)
            self.setup_seconds["safelora"] = time.perf_counter() - started
            self.records["safelora"] = {"projected_layers": report["projected_layers"]}
        if self.batches is not None:
            seen, rl_seen = self.batches.seen, self.batches.rl_seen
            self.records["interleave"]["safety_examples_trained"] = seen
            self.records["interleave"]["effective_fraction"] = round(
                seen / max(seen + rl_seen, 1), 4
            )
        for mitigation in self.items:  # what each saw while training (sample counts, shares)
            if hasattr(mitigation, "report"):
                self.records.setdefault(mitigation.name, {}).update(mitigation.report())
        steps = max(trainer.state.global_step, 1)
        out = []
        for entry in self.manifest():
            name = entry["name"]
            in_loss = self.losses.seconds.get(name, 0.0)
            entry["cost"] = {
                "seconds_total": round(in_loss + self.setup_seconds.get(name, 0.0), 3),
                "seconds_per_step_extra": round(in_loss / steps, 4),
                "peak_rss_mb": _peak_rss_mb(),
            }
            entry.update(self.records.get(name, {}))
            out.append(entry)
        return out
