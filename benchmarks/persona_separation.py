"""Does a persona vector separate trait-eliciting from trait-suppressing answers on held-out
questions? Prints, per layer, the effect size (Cohen's d) and the mean projection difference
with a question-grouped 95% bootstrap CI (embench.metrics.means_with_ci).

    python benchmarks/persona_separation.py --vector evil.safetensors [--model default]

The trait's held-out questions (never used to compute a vector) are answered under both sides of
every system-prompt pair; each answer is then read back with the question alone (no system
prompt), so the separation measures the answers, not the prompt that produced them.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from embench.evals.persona_vector import SIDES, generate_answers, load_trait, project
from embench.hardware import describe_cpu
from embench.metrics import means_with_ci
from embench.models.provider import encode_chat, get_engine
from embench.models.steering import response_activations
from embench.models.vector_file import read_vector


def cohens_d(a: np.ndarray, b: np.ndarray) -> float:
    """Standardised mean difference with the pooled standard deviation."""
    pooled = np.sqrt(((len(a) - 1) * a.var(ddof=1) + (len(b) - 1) * b.var(ddof=1))
                     / (len(a) + len(b) - 2))  # fmt: skip
    return float((a.mean() - b.mean()) / pooled) if pooled > 0 else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vector", required=True)
    parser.add_argument("--model", default="default")
    parser.add_argument("--layers", default=None, help="comma-separated (default: the file's)")
    parser.add_argument("--samples", type=int, default=1)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    print(f"CPU: {describe_cpu()}")
    vector = read_vector(args.vector)
    layers = [int(x) for x in args.layers.split(",")] if args.layers else vector.layers
    trait = load_trait(vector.trait)
    engine = get_engine(args.model)
    started = time.perf_counter()
    answers = generate_answers(
        engine, trait, list(trait.heldout), args.samples, args.max_tokens, args.seed
    )
    prompts = [encode_chat(engine.tokenizer, [{"role": "user", "content": a.question}])
               for a in answers]  # fmt: skip
    acts = response_activations(
        engine.model, prompts, [a.answer_ids for a in answers], layers, engine.pad_id
    )
    sides = np.array([a.side for a in answers])
    questions = sorted({a.question for a in answers})
    print(
        f"model {args.model} ({engine.dtype}), trait {trait.name}, {len(questions)} held-out "
        f"questions, {len(answers)} answers ({', '.join(f'{s} {(sides == s).sum()}' for s in SIDES)}"
        f"), {time.perf_counter() - started:.0f} s"
    )
    print(
        f"{'layer':>5} {'d':>7} {'diff':>8} {'CI low':>8} {'CI high':>8} {'elicit':>8} {'suppr':>8}"
    )
    for i, layer in enumerate(layers):
        values = project(acts[:, i], vector.directions[layer]).numpy()
        elicit, suppress = values[sides == "eliciting"], values[sides == "suppressing"]
        diffs = np.array([
            values[(sides == "eliciting") & ([a.question == q for a in answers])].mean()
            - values[(sides == "suppressing") & ([a.question == q for a in answers])].mean()
            for q in questions
        ])  # fmt: skip
        ci = means_with_ci({"diff": diffs}, questions)
        print(
            f"{layer:>5} {cohens_d(elicit, suppress):>7.2f} {ci['diff']:>8.3f} "
            f"{ci['diff_ci_low']:>8.3f} {ci['diff_ci_high']:>8.3f} {elicit.mean():>8.3f} "
            f"{suppress.mean():>8.3f}"
        )


if __name__ == "__main__":
    main()
