"""Leaderboards: validated submissions of eval logs, ranking, rendering and export.

Modules: ``boards`` (board.yaml), ``logcheck`` (read a log, check it, recompute its metrics),
``entries`` (entry JSON files), ``ranking`` (rank, twins, RL/SFT pairs), ``render``
(terminal/Markdown/JSON/CSV tables, README.md and index.html), ``plots`` (SVG figures),
``export_eee`` (Every Eval Ever records), ``cli`` (click commands).
"""
