"""Inspect building blocks (datasets, scorers, metrics) that the task files in tasks/ assemble."""
