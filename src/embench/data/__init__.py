"""Benchmark data: narrow-domain prompts, judge rubrics, SFT sets, the safety set."""
