"""The `embench` command line: thin click wrappers that parse and call the library."""

from __future__ import annotations

import dataclasses
import inspect
import sys
from typing import Any

import click

from embench.errors import EmbenchError


class EmbenchGroup(click.Group):
    """Turns EmbenchError into one line on stderr and exit code 2."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except EmbenchError as error:
            click.echo(f"error: {error}", err=True)
            sys.exit(2)


@click.group(cls=EmbenchGroup)
@click.version_option(package_name="embench")
def main() -> None:
    """embench: does narrow fine-tuning (RL vs SFT) make a chat model broadly misaligned?"""


@main.command()
@click.option(
    "--trainer",
    "trainer_name",
    default="grpo",
    show_default=True,
    help="Trainer name (see `embench trainers`) or path/to/trainer.py.",
)
@click.option("--config", "config_file", type=click.Path(), help="YAML file of options.")
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override an option or a TRL config field (repeatable).",
)
@click.option("--model", help="Model reference (default: the offline SmolLM2-135M-Instruct).")
@click.option("--domain", help="Narrow domain (see `embench domains`).")
@click.option("--dataset", help="A datasets-readable file to train on instead.")
@click.option("--reward", multiple=True, help="Reward name (repeatable; see `embench rewards`).")
@click.option("--judge", help="Inspect model for judge rewards, e.g. openai/gpt-4o.")
@click.option("--lora/--full", default=None, help="Train a LoRA adapter or all weights.")
@click.option("--max-steps", type=int)
@click.option("--seed", type=int)
@click.option("--output", help="Run directory (default runs/<trainer>-<domain>-s<seed>).")
@click.option("--overwrite", is_flag=True, default=None, help="Replace an existing run directory.")
@click.option(
    "--mitigation",
    "mitigations",
    multiple=True,
    metavar="NAME[:k=v,...]",
    help="In-training mitigation (repeatable; see `embench mitigations`).",
)
@click.option("--match", help="SFT only: sample-match this RL run directory.")
@click.option("--match-source", type=click.Choice(["rollouts", "dataset"]), default=None)
@click.option("--resume", "resume_dir", type=click.Path(), help="Continue an interrupted run.")
def train(
    trainer_name: str,
    config_file: str | None,
    overrides: tuple[str, ...],
    resume_dir: str | None,
    **flags: Any,
) -> None:
    """Fine-tune a model on a narrow signal and write a run directory."""
    import warnings

    from embench.training.plugins import get_trainer

    # transformers' own deprecation notices about its renamed checkpointing API (used by TRL)
    warnings.filterwarnings("ignore", category=FutureWarning, module="transformers")

    if resume_dir:
        plugin, config = _resume_config(resume_dir)
    else:
        plugin = get_trainer(trainer_name)
        flags = {k: (list(v) if isinstance(v, tuple) else v) for k, v in flags.items()}
        config_fields = {f.name for f in dataclasses.fields(plugin.config_class)}
        for key in [k for k, v in flags.items() if v not in (None, [])]:
            if key not in config_fields:
                raise EmbenchError(
                    f"--{key.replace('_', '-')} does not apply to trainer '{plugin.name}'"
                )
        from embench.training.config import build_config

        config = build_config(
            plugin.config_class, plugin.trl_config_class, config_file, overrides, **flags
        )
    kwargs = {"resume": True} if resume_dir else {}
    if resume_dir and "resume" not in inspect.signature(plugin.train).parameters:
        raise EmbenchError(f"trainer '{plugin.name}' does not support --resume")
    run = plugin.train(config, **kwargs)
    manifest = run.read_manifest()
    summary = manifest.get("summary", {})
    click.echo(f"\nrun: {run.path}  status: {manifest.get('status')}")
    if "reward_first_quarter" in summary:
        click.echo(
            f"mean reward: first quarter {summary['reward_first_quarter']:.4f} -> "
            f"last quarter {summary['reward_last_quarter']:.4f}"
        )
    grader = getattr(config, "judge", None) or "<judge, e.g. openai/gpt-4o>"
    click.echo(
        "evaluate it with:\n  inspect eval tasks/misalignment.py "
        f"--model local/{run.path} --model-role grader={grader}"
    )


def _resume_config(path: str) -> tuple[Any, Any]:
    from embench.training.plugins import get_trainer
    from embench.training.rundir import RunDir

    manifest = RunDir.open(path).read_manifest()
    if manifest.get("status") == "finished":
        raise EmbenchError(f"{path} already finished; nothing to resume")
    plugin = get_trainer(manifest["trainer"])
    from embench.training.config import config_from_values

    values = {**manifest.get("config", {}), "output": path, "overwrite": False}
    source = f"{path}/manifest.json"
    return plugin, config_from_values(plugin.config_class, plugin.trl_config_class, values, source)


@main.command()
def trainers() -> None:
    """List the available trainers."""
    from embench.training.plugins import discover

    for name, plugin in sorted(discover().items()):
        click.echo(f"{name:<12} {plugin.description}  [{plugin.source}]")


@main.command()
def rewards() -> None:
    """List the reward functions."""
    from embench.rewards import available_rewards

    for name, description in available_rewards().items():
        click.echo(f"{name:<22} {description}")


@main.command()
def domains() -> None:
    """List the narrow training domains with their data counts."""
    from embench.data.domains import DOMAINS, domain_counts, get_domain

    counts = domain_counts()
    click.echo(f"{'domain':<16}{'train':>7}{'heldout':>9}{'eval':>6}{'sft':>6}  narrow behaviour")
    for name in DOMAINS:
        c = counts.get(name, {})
        click.echo(
            f"{name:<16}{c.get('train', 0):>7}{c.get('heldout', 0):>9}{c.get('eval', 0):>6}"
            f"{c.get('sft', 0):>6}  {get_domain(name).narrow_behaviour}"
        )


def _register_optional() -> None:
    """Commands from other modules (leaderboard, mitigations) when present."""
    from embench.training.mitigations.cli import register as register_mitigations

    register_mitigations(main)
    from embench.experiments.cli import register as register_experiments

    register_experiments(main)
    try:
        from embench.leaderboard.cli import register
    except ImportError:
        return
    register(main)


_register_optional()
