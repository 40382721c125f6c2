"""`embench mitigations` and `embench safelora`, registered on the main group."""

from __future__ import annotations

import click


def register(group: click.Group) -> None:
    """Add the mitigation commands to ``group``."""

    @group.command()
    def mitigations() -> None:
        """List the in-training mitigations (use with `embench train --mitigation`)."""
        from embench.training.mitigations import available

        for name, description in available().items():
            click.echo(f"{name:<12} {description}")

    @group.command()
    @click.argument("run_dir", type=click.Path(exists=True, file_okay=False))
    @click.option("--aligned", required=True, help="Aligned model reference (e.g. the instruct).")
    @click.option("--unaligned", required=True, help="Unaligned model reference (e.g. the base).")
    @click.option("--tau", type=float, default=0.3, show_default=True, help="Cosine threshold.")
    def safelora(run_dir: str, aligned: str, unaligned: str, tau: float) -> None:
        """Project a LoRA run's adapter onto the aligned−unaligned subspace (SafeLoRA)."""
        from pathlib import Path

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
