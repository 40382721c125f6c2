"""Where a GPU GRPO step goes: cProfile around `embench train --trainer grpo` (random weights).

bash benchmarks/gpu/check.sh is the table; this prints the top functions by cumulative time:
python benchmarks/gpu/profile_grpo.py --random-init .gpu-model [--domain code] [--steps 3]
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from check import random_init_model, step_seconds, train  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--random-init", type=Path, required=True)
    parser.add_argument("--domain", default="code")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        base = random_init_model(args.random_init, root / "base")
        extra = [
            "--model",
            str(base),
            "--domain",
            args.domain,
            "--set",
            "trl.bf16=true",
            "--set",
            "max_completion_length=128",
            "--set",
            "max_prompts=8",
        ]
        profile = cProfile.Profile()
        profile.enable()
        train("grpo", root / "run", args.steps, extra)
        profile.disable()
        print(f"domain {args.domain}: {step_seconds(root / 'run'):.2f} s/step")
        pstats.Stats(profile).sort_stats("cumulative").print_stats(args.top)


if __name__ == "__main__":
    main()
