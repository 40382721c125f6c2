"""Training curves against step, from a run's ``metrics.jsonl``: for RL (a reward was logged)
reward, the share of answers cut at the length cap, KL and loss; for SFT loss, gradient norm and
learning rate.

Written as ``reward.png`` and ``reward.svg`` into the run directory at the end of ``embench train``
(matplotlib's Agg backend, no pyplot state, so it works headless and in threads).
"""

from __future__ import annotations

import io
import json
import math
from pathlib import Path
from typing import Any

from embench.fsutil import atomic_write_bytes

#: metrics.jsonl key -> axis label.
CURVES: dict[str, str] = {
    "reward": "mean reward",
    "completions/clipped_ratio": "answers cut at\nmax length",
    "kl": "KL to reference",
    "loss": "loss",
    "grad_norm": "gradient norm",
    "learning_rate": "learning rate",
}
RL_PANELS = ("reward", "completions/clipped_ratio", "kl", "loss")
SFT_PANELS = ("loss", "grad_norm", "learning_rate")  # what an SFT run logs
FILE_STEM = "reward"
NOT_LOGGED = {
    "kl": "not logged: KL needs a reference model\n(beta > 0 or --mitigation kl)",
}
#: Text stays text in the SVG (searchable, small); a fixed hash salt keeps the SVG byte-stable.
STYLE = {"svg.fonttype": "none", "svg.hashsalt": "embench", "font.size": 9}


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """The rows of a metrics.jsonl (unreadable lines are skipped: a crash may cut the last)."""
    rows = []
    if not path.is_file():
        return rows
    for line in path.read_text().splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict):
            rows.append(row)
    return rows


def curves(rows: list[dict[str, Any]]) -> dict[str, tuple[list[int], list[float]]]:
    """``{key: (steps, values)}`` for each key of CURVES that has a finite value in some row."""
    found: dict[str, tuple[list[int], list[float]]] = {}
    for key in CURVES:
        points = [
            (int(r["step"]), float(r[key]))
            for r in rows
            if isinstance(r.get("step"), int | float)
            and isinstance(r.get(key), int | float)
            and not isinstance(r.get(key), bool)
            and math.isfinite(r[key])
        ]
        if points:
            found[key] = ([s for s, _ in points], [v for _, v in points])
    return found


def render(rows: list[dict[str, Any]], title: str) -> dict[str, bytes]:
    """``{"png": ..., "svg": ...}`` of the curves (one panel per metric, shared step axis)."""
    import matplotlib
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    with matplotlib.rc_context(STYLE):
        return _render(curves(rows), title, Figure, MaxNLocator)


def _render(
    data: dict[str, tuple[list[int], list[float]]], title: str, figure: Any, locator: Any
) -> dict[str, bytes]:
    # an RL run's panels all show (an empty one says why it was not logged), an SFT run's three
    panels = RL_PANELS if "reward" in data else SFT_PANELS
    fig = figure(figsize=(6.4, 1.9 * len(panels) + 0.6), layout="constrained")
    axes = fig.subplots(len(panels), 1, sharex=True, squeeze=False)[:, 0]
    for ax, key in zip(axes, panels, strict=True):
        steps, values = data.get(key, ([], []))
        ax.plot(steps, values, marker="o" if len(steps) < 30 else None, markersize=3)
        ax.set_ylabel(CURVES[key])
        ax.grid(alpha=0.3)
        if not steps:
            note = NOT_LOGGED.get(key, "not logged")
            ax.text(0.5, 0.5, note, ha="center", va="center", transform=ax.transAxes)
            ax.set_yticks([])
    axes[-1].set_xlabel("step")
    axes[-1].xaxis.set_major_locator(locator(integer=True))
    fig.suptitle(title, fontsize=10)
    out = {}
    for fmt in ("png", "svg"):
        buffer = io.BytesIO()
        fig.savefig(buffer, format=fmt, metadata={"Date": None} if fmt == "svg" else None)
        out[fmt] = buffer.getvalue()
    return out


def write_training_curves(run_dir: str | Path, title: str | None = None) -> list[Path]:
    """Write ``reward.png`` and ``reward.svg`` into ``run_dir``; returns their paths."""
    run_dir = Path(run_dir)
    rows = read_metrics(run_dir / "metrics.jsonl")
    images = render(rows, title or run_dir.name)
    return [
        atomic_write_bytes(run_dir / f"{FILE_STEM}.{fmt}", data) for fmt, data in images.items()
    ]
