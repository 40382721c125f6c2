"""`embench persona-vector`: compute a trait direction and write it to a small file."""

from __future__ import annotations

import click

HELP = "Compute a trait's persona vector (e.g. evil) per layer of a model."


def _layers(value: str | None) -> list[int] | None:
    """``"5,10,15"`` or ``"10-20"`` (or both, comma-separated) → layer numbers."""
    if not value:
        return None
    out: list[int] = []
    for part in value.split(","):
        low, dash, high = part.strip().partition("-")
        try:
            out.extend(range(int(low), int(high) + 1) if dash else [int(low)])
        except ValueError:
            raise click.BadParameter(
                f"'{part}': use numbers like 10 or ranges like 10-20"
            ) from None
    return out


@click.command(help=HELP)
@click.option("--model", default="default", show_default=True, help="Model reference.")
@click.option("--trait", default="evil", show_default=True, help="Trait name or trait YAML file.")
@click.option("--layers", help="Layers, e.g. 10,15,20 or 10-20 (default: every layer).")
@click.option("--questions", help="A question set (YAML) to answer instead of the trait's own.")
@click.option("--judge", help="Keep only answers this Inspect model finds (not) expressing it.")
@click.option("--samples", type=int, default=1, show_default=True, help="Answers per prompt.")
@click.option("--max-tokens", type=int, default=64, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="File to write.")
def persona_vector(
    model: str,
    trait: str,
    layers: str | None,
    questions: str | None,
    judge: str | None,
    samples: int,
    max_tokens: int,
    seed: int,
    out: str,
) -> None:
    from embench.evals.persona_vector import compute_vector
    from embench.models.vector_file import write_vector

    asked = None
    if questions:
        from embench.questions import load_question_set

        asked = [q.paraphrases[0] for q in load_question_set(questions).questions]
    vector = compute_vector(model, trait, _layers(layers), asked, judge, samples, max_tokens, seed)
    path = write_vector(vector, out)
    counts = ", ".join(f"{k} {v}" for k, v in vector.counts.items())
    click.echo(f"{path}: {vector.trait} vector of {vector.model}, layers "
               f"{vector.layers[0]}-{vector.layers[-1]} ({counts})")  # fmt: skip
    for layer, norm in vector.norms().items():
        click.echo(f"  layer {layer:>3}  norm {norm:.3f}")
