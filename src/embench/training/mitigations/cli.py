"""`embench mitigations` and `embench safelora`.

The main CLI loads this module only when one of these commands runs (importing the mitigations
package imports torch), so ``embench --help`` stays fast.
"""

from __future__ import annotations

from pathlib import Path

import click

from embench.training.chain import PROBE_FILE

MITIGATIONS_HELP = "List the in-training mitigations (use with `embench train --mitigation`)."
SAFELORA_HELP = "Project a LoRA run's adapter onto the aligned−unaligned subspace (SafeLoRA)."


@click.command(help=MITIGATIONS_HELP)
def mitigations() -> None:
    from embench.training.mitigations import available

    for name, description in available().items():
        click.echo(f"{name:<12} {description}")


@click.command(help=SAFELORA_HELP)
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--aligned", required=True, help="Aligned model reference (e.g. the instruct).")
@click.option("--unaligned", required=True, help="Unaligned model reference (e.g. the base).")
@click.option("--tau", type=float, default=0.3, show_default=True, help="Cosine threshold.")
def safelora(run_dir: str, aligned: str, unaligned: str, tau: float) -> None:
    from embench.training.mitigations.safelora import SafeLoRA, apply_to_adapter

    SafeLoRA(aligned=aligned, unaligned=unaligned, tau=tau).check()
    folder = Path(run_dir)
    folder = folder / "checkpoint" if (folder / "checkpoint").is_dir() else folder
    report = apply_to_adapter(folder, aligned, unaligned, tau)
    for layer in report["layers"]:
        mark = "projected" if layer["projected"] else "kept"
        click.echo(f"{layer['layer']:<50} cos {layer['cosine']:+.4f}  {mark}")
    click.echo(
        f"projected {len(report['projected_layers'])}/{len(report['layers'])} layers "
        f"(tau {tau}); report: {folder / 'safelora.json'}"
    )
    run = folder.parent
    if (run / PROBE_FILE).is_file():  # the probe must describe the weights the run now holds
        from embench.models.resolve import load_model
        from embench.training.chain import write_probe

        model, tokenizer = load_model(str(run), dtype="float32", device="cpu")
        write_probe(model, tokenizer, run)
        click.echo(f"{run / PROBE_FILE}: re-recorded from the projected weights")


def register(group: click.Group) -> None:
    """Add the mitigation commands to ``group``."""
    group.add_command(mitigations)
    group.add_command(safelora)
