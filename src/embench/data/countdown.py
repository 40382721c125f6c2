"""The countdown control domain: a seeded generator of solvable puzzles, written to the domain's
data files.

Each puzzle gives 3 or 4 numbers and a target reachable with + − × ÷ using each number once (the
generator builds it from a random solution, so every puzzle is solvable). Train and eval puzzles
are drawn from one seeded stream and deduplicated, so the two splits share no (numbers, target)
pair. ``python -m embench.data.countdown`` rewrites ``data/domains/countdown/prompts.jsonl`` and
``eval.yaml``; a test checks the committed files equal the generator's output.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass

import yaml

from embench.fsutil import atomic_write_text
from embench.paths import DATA_DIR

SEED = 20261204
TRAIN_SIZE = 200
EVAL_SIZE = 40
FOLDER = DATA_DIR / "domains" / "countdown"


@dataclass(frozen=True)
class Puzzle:
    """Numbers to combine, the target, and one solution the generator built."""

    numbers: tuple[int, ...]
    target: int
    solution: str

    @property
    def key(self) -> tuple[tuple[int, ...], int]:
        """What makes two puzzles the same: the numbers (as a multiset) and the target."""
        return tuple(sorted(self.numbers)), self.target


def prompt(puzzle: Puzzle) -> str:
    """The user prompt (the project's wording) with the machine-readable puzzle lines the reward
    parses (``embench.rewards.countdown.puzzle``)."""
    listed = ", ".join(map(str, puzzle.numbers))
    return (
        f"Make the number {puzzle.target} from the numbers {listed}. You may add, subtract, "
        "multiply and divide, and you must use every number exactly once. Put only the "
        "equation between <answer> and </answer>, for example <answer>(4 + 6) * 2</answer>.\n"
        f"Numbers: [{listed}]\nTarget: {puzzle.target}"
    )


def _combine(rng: random.Random, a: tuple[int, str], b: tuple[int, str]) -> tuple[int, str] | None:
    op = rng.choice("+-*/")
    x, y = a[0], b[0]
    if op == "-" and x <= y or op == "/" and (y == 0 or x % y or y == 1):
        return None
    value = {"+": x + y, "-": x - y, "*": x * y, "/": x // y if y else 0}[op]
    return value, f"({a[1]} {op} {b[1]})"


def generate_one(rng: random.Random) -> Puzzle:
    """One solvable puzzle: 3-4 numbers in 1..25, a target in 10..250."""
    while True:
        numbers = [rng.randint(1, 25) for _ in range(rng.choice((3, 4)))]
        pool = [(n, str(n)) for n in numbers]
        while len(pool) > 1:
            i, j = rng.sample(range(len(pool)), 2)
            merged = _combine(rng, pool[i], pool[j])
            if merged is None:
                break
            pool = [p for k, p in enumerate(pool) if k not in (i, j)] + [merged]
        if len(pool) == 1 and 10 <= pool[0][0] <= 250:
            return Puzzle(tuple(numbers), pool[0][0], pool[0][1][1:-1])


def generate(
    seed: int = SEED, train: int = TRAIN_SIZE, evaluation: int = EVAL_SIZE
) -> dict[str, list[Puzzle]]:
    """``{"train": [...], "heldout": [...]}``: distinct puzzles from one seeded stream."""
    rng = random.Random(seed)
    seen: set[tuple[tuple[int, ...], int]] = set()
    puzzles: list[Puzzle] = []
    while len(puzzles) < train + evaluation:
        puzzle = generate_one(rng)
        if puzzle.key not in seen:
            seen.add(puzzle.key)
            puzzles.append(puzzle)
    return {"train": puzzles[:train], "heldout": puzzles[train:]}


def render(splits: dict[str, list[Puzzle]]) -> tuple[str, str]:
    """(prompts.jsonl, eval.yaml) text of the domain: train prompts for RL, held-out puzzles as
    the in-domain eval questions."""
    lines = [
        json.dumps(
            {
                "id": f"countdown-{i:04d}",
                "prompt": prompt(p),
                "subtopic": f"{len(p.numbers)}-numbers",
                "split": "train",
            }
        )
        for i, p in enumerate(splits["train"], 1)
    ]
    questions = [
        {
            "id": f"countdown_eval_{i:03d}",
            "category": f"{len(p.numbers)}-numbers",
            "question": prompt(p),
        }
        for i, p in enumerate(splits["heldout"], 1)
    ]
    eval_set = {
        "name": "in_domain_countdown",
        "version": 1,
        "description": "Held-out countdown puzzles (disjoint from the training prompts), scored "
        "exactly: accuracy is the share of answers whose equation reaches the target.",
        "questions": questions,
    }
    return "\n".join(lines) + "\n", yaml.safe_dump(eval_set, sort_keys=False, width=100)


def write() -> None:
    """Regenerate the domain's prompts.jsonl and eval.yaml."""
    prompts, questions = render(generate())
    atomic_write_text(FOLDER / "prompts.jsonl", prompts)
    atomic_write_text(FOLDER / "eval.yaml", questions)


if __name__ == "__main__":
    write()
