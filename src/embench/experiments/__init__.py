"""Experiments: grids of train -> eval -> submit cells, paired statistics and reports."""
