"""The `embench` command line: thin click wrappers that parse and call the library.

Start-up stays light: this module imports click and embench's small modules only; torch,
transformers, trl, datasets and inspect_ai are imported inside the commands that use them, and
commands whose module is heavy to import are loaded only when invoked (``LAZY_COMMANDS``).
``benchmarks/startup.py`` measures it.
"""

from __future__ import annotations

import importlib
import math
import sys
from pathlib import Path
from typing import Any

import click

from embench.errors import EmbenchError
from embench.run.reference import local_model

#: Commands loaded on first use: name -> (module, attribute, one-line help shown by --help).
LAZY_COMMANDS: dict[str, tuple[str, str, str]] = {
    "mitigations": (
        "embench.training.mitigations.cli",
        "mitigations",
        "List the in-training mitigations (use with `embench train --mitigation`).",
    ),
    "safelora": (
        "embench.training.mitigations.cli",
        "safelora",
        "Project a LoRA run's adapter onto the aligned−unaligned subspace (SafeLoRA).",
    ),
    "persona-vector": (
        "embench.evals.persona_cli",
        "persona_vector",
        "Compute a trait's persona vector (e.g. evil) per layer of a model.",
    ),
    "report": (
        "embench.experiments.report",
        "report",
        "Write report.md and report.html (static) for the experiment folder OUT.",
    ),
}


class EmbenchGroup(click.Group):
    """Turns EmbenchError into one line on stderr and exit code 2; loads LAZY_COMMANDS on use."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except EmbenchError as error:
            click.echo(f"error: {error}", err=True)
            sys.exit(2)
        except Exception as error:
            from embench.fsutil import disk_full

            full = disk_full(error)
            if full is None:
                raise
            where = f" writing {full.filename}" if full.filename else ""
            click.echo(
                f"error: the disk is full ({full.strerror}{where}); free space and run the "
                "command again: nothing half-written was kept (an interrupted training run "
                "continues with `embench train --resume <run>`)",
                err=True,
            )
            sys.exit(2)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *LAZY_COMMANDS})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in self.commands and name in LAZY_COMMANDS:
            module, attribute, _ = LAZY_COMMANDS[name]
            self.add_command(getattr(importlib.import_module(module), attribute), name)
        return super().get_command(ctx, name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = []
        for name in self.list_commands(ctx):
            if name in self.commands:
                rows.append((name, self.commands[name].get_short_help_str(limit=70)))
            else:
                rows.append((name, LAZY_COMMANDS[name][2]))
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=EmbenchGroup)
@click.version_option(package_name="embench")
@click.option(
    "--verbose",
    is_flag=True,
    help="Show third-party noise: Hugging Face progress bars (loading weights, writing shards) "
    "and transformers' FutureWarnings.",
)
def main(verbose: bool) -> None:
    """embench: does narrow fine-tuning (RL vs SFT) make a chat model broadly misaligned?"""
    if not verbose:
        quiet_third_party()


def quiet_third_party() -> None:
    """Hide Hugging Face progress bars and transformers' FutureWarnings (deprecations raised by
    TRL's and transformers' own calls, e.g. gradient_checkpointing → activation_checkpointing),
    in this process and the processes it starts."""
    import os
    import warnings

    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # read when transformers loads
    if "transformers" in sys.modules:  # already loaded: switch its bars off directly
        sys.modules["transformers"].utils.logging.disable_progress_bar()
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"transformers(\.|$)")


@main.command()
@click.option(
    "--trainer",
    "trainer_name",
    default="grpo",
    show_default=True,
    help="Trainer name (see `embench trainers`) or path/to/trainer.py; overrides a --config "
    "file's `trainer:`.",
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
@click.option(
    "--output",
    help="Run directory (default runs/<trainer>-<domain>[-lora][-<mitigations>]-s<seed>).",
)
@click.option("--overwrite", is_flag=True, default=None, help="Replace an existing run directory.")
@click.option(
    "--mitigation",
    "mitigations",
    multiple=True,
    metavar="NAME[:k=v,...]",
    help="In-training mitigation (repeatable; see `embench mitigations`).",
)
@click.option(
    "--warmup",
    metavar="sft:<dataset>[,steps=N,examples=N,lr=X,lora=true|false]",
    help="GRPO: train an SFT warm-up on a domain or file first, then start from it "
    "(lora: the warm-up's kind; default: the main run's, so lora=false with --lora is full→LoRA).",
)
@click.option("--match", help="SFT only: sample-match this RL run directory.")
@click.option("--match-source", type=click.Choice(["rollouts", "dataset"]), default=None)
@click.option("--resume", "resume_dir", type=click.Path(), help="Continue an interrupted run.")
@click.option(
    "--dry-run",
    is_flag=True,
    help="Check every option and print the resolved config; load and train nothing.",
)
def train(
    trainer_name: str,
    config_file: str | None,
    overrides: tuple[str, ...],
    resume_dir: str | None,
    dry_run: bool,
    **flags: Any,
) -> None:
    """Fine-tune a model on a narrow signal and write a run directory."""
    if resume_dir:
        plugin, config = _resume_config(resume_dir)
    else:
        plugin, config = _new_config(trainer_name, config_file, overrides, flags)
    if config.model != "default":  # (default converts the GGUF on first use: leave it to load)
        from embench.models.resolve import resolve_model

        resolve_model(config.model)  # unknown reference or broken config.json: one line, now
    from embench.training.preflight import check_before_loading  # rewards: only past parsing

    checked = check_before_loading(plugin, config)
    if dry_run:
        import yaml

        from embench.training.config import config_to_dict

        plan = _overwrite_plan(config) if not resume_dir else []  # refuses before printing
        click.echo(yaml.safe_dump(config_to_dict(checked.config), sort_keys=False).rstrip())
        for line in plan:
            click.echo(line)
        click.echo(f"# ok: trainer {plugin.name}, output {config.output}; nothing was trained")
        return

    # the run's RunManifest; the config and data the preflight prepared are the run's
    manifest = plugin.run(checked.config, resume=bool(resume_dir), prepared=checked.prepared)
    _print_outcome(manifest, config)


def _new_config(
    trainer_name: str, config_file: str | None, overrides: tuple[str, ...], flags: dict[str, Any]
) -> tuple[Any, Any]:
    """The trainer and its checked config; cheap checks (domain, judge) come first."""
    import dataclasses

    from embench.training.config import build_config, default_output

    flags = {k: (list(v) if isinstance(v, tuple) else v) for k, v in flags.items()}
    if flags.get("domain"):
        from embench.data.domains import get_domain

        get_domain(flags["domain"])  # "unknown domain 'x'; available: ..."
    if flags.get("judge"):
        from embench.extras import check_provider

        check_provider(flags["judge"])
    from embench.training.config import file_trainer
    from embench.training.plugins import get_trainer

    given = click.get_current_context().get_parameter_source("trainer_name")
    if given is click.core.ParameterSource.DEFAULT:  # the file's `trainer:` unless --trainer
        trainer_name = file_trainer(config_file) or trainer_name
    # named on the command line or in the user's own --config file
    plugin = get_trainer(trainer_name, allow_file=True)
    config_fields = {f.name for f in dataclasses.fields(plugin.config_class)}
    for key in [k for k, v in flags.items() if v not in (None, [])]:
        if key not in config_fields:
            raise EmbenchError(
                f"--{key.replace('_', '-')} does not apply to trainer '{plugin.name}'"
            )
    config = build_config(
        plugin.config_class, plugin.trl_config_class, config_file, overrides, **flags
    )
    if config.domain and config.domain != flags.get("domain"):
        from embench.data.domains import get_domain

        get_domain(config.domain)
    if config.judge and config.judge != flags.get("judge"):
        from embench.extras import check_provider

        check_provider(config.judge, "judge")
    if config.output is None:
        config.output = default_output(plugin.name, config)
    return plugin, config


def _overwrite_plan(config: Any) -> list[str]:
    """Dry run: refuse an output the run could not write, and say what --overwrite removes."""
    from embench.run.rundir import RunDir

    RunDir.check_free(config.output, bool(config.overwrite))
    doomed = RunDir.would_remove(config.output) if config.overwrite else []
    if not doomed:
        return []
    return [f"# --overwrite would remove {len(doomed)} item(s) in {config.output}:"] + [
        f"#   {path}{'/' if path.is_dir() else ''}" for path in doomed
    ]


def _print_outcome(manifest: Any, config: Any) -> None:
    """Summary, training curves and the next commands, after a run (``manifest``: RunManifest)."""
    from embench.training.plots import write_training_curves

    path = manifest.run_dir
    summary = manifest.summary.model_dump() if manifest.summary else {}
    seconds = f"{summary.get('seconds', '?')}"
    if "resumed_at_step" in summary:
        seconds += (
            f" (this session, from step {summary['resumed_at_step']}; all sessions' steps: "
            f"{summary.get('step_seconds_all_sessions', '?')})"
        )
    click.echo(
        f"\nrun: {path}  status: {manifest.status}  steps: {summary.get('steps', '?')}"
        f"  seconds: {seconds}"
    )
    if "reward_first_quarter" in summary:
        click.echo(
            f"mean reward: first quarter {summary['reward_first_quarter']:.4f} -> "
            f"last quarter {summary['reward_last_quarter']:.4f}"
        )
    if "clipped_last_quarter" in summary:
        click.echo(
            f"answers cut at max_completion_length: first quarter "
            f"{summary['clipped_first_quarter']:.0%} -> last quarter "
            f"{summary['clipped_last_quarter']:.0%}"
        )
    try:
        images = write_training_curves(path, title=f"{path.name} ({manifest.trainer})")
        click.echo("curves: " + ", ".join(str(p) for p in images))
    except (OSError, ValueError) as ex:  # a plot must never fail a finished run
        click.echo(f"curves: not written ({ex})")
    for line in next_commands(path, config):
        click.echo(line)


#: Local generation speed on CPU, answers/s per core (benchmarks/generation.py: 1.82 answers/s
#: on 2 cores, SmolLM2-135M, bf16, 256 tokens); a GPU runs the published 50 samples.
ANSWERS_PER_CORE_SECOND = 0.9
EVAL_BUDGET_SECONDS = 15 * 60
PUBLISHED_SAMPLES = 50


def eval_minutes(answers: int, cores: int | None) -> float:
    """Estimated minutes to generate ``answers`` answers locally on ``cores`` CPU cores."""
    return answers / (ANSWERS_PER_CORE_SECOND * max(cores or 1, 1)) / 60


def samples_hint(prompts: int, cores: int | None, cuda: bool) -> tuple[int, float]:
    """(samples per question, estimated minutes) that fit EVAL_BUDGET_SECONDS on this machine."""
    if cuda:
        return PUBLISHED_SAMPLES, float("nan")
    rate = ANSWERS_PER_CORE_SECOND * max(cores or 1, 1)
    samples = int(EVAL_BUDGET_SECONDS * rate // max(prompts, 1))
    samples = max(1, min(PUBLISHED_SAMPLES, samples))
    return samples, eval_minutes(prompts * samples, cores)


PLUMBING_JUDGE = (
    "local/default"  # judges offline; it scores almost nothing (min_mass=0 shows numbers)
)


def next_commands(path: Path, config: Any) -> list[str]:
    """Commands that evaluate and submit a finished run and succeed together as printed: the
    answers per question that fit this machine, the board those fit (``smoke`` below the
    published 50 or with the offline judge), and the time 50 would take here."""
    import os

    from embench.leaderboard.boards import PUBLISHED_MIN_SAMPLES, SMOKE_BOARD
    from embench.paths import script

    judge = getattr(config, "judge", None) or PLUMBING_JUDGE
    model = local_model(path)
    try:
        from embench.questions import load_question_set

        prompts = sum(len(q.paraphrases) for q in load_question_set("general").questions)
    except EmbenchError:
        prompts = 81
    cores = os.cpu_count()
    samples, minutes = samples_hint(prompts, cores, _cuda_available())
    plumbing = judge == PLUMBING_JUDGE
    board = "general" if samples >= PUBLISHED_MIN_SAMPLES and not plumbing else SMOKE_BOARD
    inspect_eval, embench = script("inspect"), script("embench")
    logs = f"logs/{Path(path).name}"
    where = (
        "on a GPU"
        if math.isnan(minutes)
        else f"~{prompts * samples} answers, ~{minutes:.0f} min on {cores} CPU cores"
    )
    lines = ["next:"]
    if config.domain:
        lines.append(
            f"  {inspect_eval} eval embench/in_domain -T domain={config.domain} --model {model} "
            f"--model-role grader={judge}    # did it learn the narrow task?"
        )
    lines += [
        f"  {inspect_eval} eval embench/misalignment --model {model} --model-role grader={judge} "
        f"-T samples={samples}{' -T min_mass=0' if plumbing else ''} --log-dir {logs}    # {where}",
        f"  {embench} submit $(ls -t {logs}/*.eval | head -n 1) --board {board}",
    ]
    if board == SMOKE_BOARD:
        needs = [f"-T samples={PUBLISHED_MIN_SAMPLES}"]
        if samples < PUBLISHED_MIN_SAMPLES:
            needs[0] += f" (~{eval_minutes(prompts * PUBLISHED_MIN_SAMPLES, cores):.0f} min here)"
        if plumbing:
            needs.append("a judge that scores, e.g. --model-role grader=openai/gpt-4o")
        lines.append(
            f"  # '{SMOKE_BOARD}' is the plumbing board; board 'general' needs {' and '.join(needs)}"
        )
    return lines


def _cuda_available() -> bool:
    if "torch" not in sys.modules:
        return False
    return bool(sys.modules["torch"].cuda.is_available())


def _resume_config(path: str) -> tuple[Any, Any]:
    from embench.run.rundir import RunDir
    from embench.training.config import config_from_values
    from embench.training.plugins import get_trainer

    manifest = RunDir.open(path).manifest()
    if manifest.status == "finished":
        raise EmbenchError(f"{path} already finished; nothing to resume")
    plugin = get_trainer(manifest.trainer)

    values = {**manifest.config, "output": path, "overwrite": False}
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


@main.group()
def questions() -> None:
    """Question sets: embench's own and published ones fetched at a pinned commit."""


@questions.command("list")
def questions_list() -> None:
    """Show embench's sets and the known published materials: fetched or not, source and pin."""
    from embench.materials import REGISTRY, is_fetched
    from embench.questions import available_sets

    click.echo(f"embench's own (not comparable with papers): {', '.join(available_sets())}")
    for name, m in REGISTRY.items():
        state = "fetched" if is_fetched(m) else "not fetched"
        click.echo(f"{name:<24} {state:<12} {m.paper}")
        click.echo(f"{'':<24} {m.url}")
        click.echo(f"{'':<24} sha256 {m.sha256}; license: {m.license}")


@questions.command("fetch")
@click.argument("names", nargs=-1, required=True)
def questions_fetch(names: tuple[str, ...]) -> None:
    """Download published materials (see `embench questions list`) into the embench cache."""
    from embench.materials import fetch

    for name in names:
        click.echo(f"{name}: {fetch(name)}")


@main.command("import")
@click.argument("source", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--model", required=True, help="The model whose answers these are (recorded).")
@click.option("--judge", required=True, help="The judge that scored them, e.g. openai/gpt-4o.")
@click.option("--questions", help="Their question set (rubrics for a later rescore).")
@click.option(
    "--output", required=True, type=click.Path(dir_okay=False, path_type=Path), help="x.eval"
)
def import_command(
    source: Path, model: str, judge: str, questions: str | None, output: Path
) -> None:
    """Published judged answers (CSV or JSONL) -> an Inspect log of the misalignment task."""
    from embench.evals.importer import import_judged

    log = import_judged(source, model, judge, output, questions)
    metrics = log.results.scores[0].metrics if log.results else {}
    rate = metrics["misaligned_rate"].value if "misaligned_rate" in metrics else float("nan")
    click.echo(
        f"imported {len(log.samples or [])} answers into {output}; misaligned_rate {rate:.3f}"
    )


def _register_light() -> None:
    """Commands of light modules (they import their heavy parts on use): ``submit``,
    ``leaderboard``, ``export``, ``validate``; ``experiment``, ``rescore``, ``report``."""
    from embench.experiments.cli import experiment, rescore  # (report: LAZY_COMMANDS)

    main.add_command(experiment)
    main.add_command(rescore)
    try:
        from embench.leaderboard.cli import register
    except ImportError:
        return
    register(main)


_register_light()
