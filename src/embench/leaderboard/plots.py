"""Board figures as SVG text (matplotlib, Agg, no pyplot state; byte-stable output).

- misaligned rate with its 95% CI per entry, in rank order;
- RL vs SFT pairs (same base model, domain, seed and judge);
- mitigated runs against their unmitigated twin.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")

from matplotlib.figure import Figure  # noqa: E402

from embench.escaping import PLAIN_TEXT  # noqa: E402
from embench.leaderboard.ranking import Row  # noqa: E402

_STYLE = {"svg.hashsalt": "embench", "svg.fonttype": "none", "font.size": 9, **PLAIN_TEXT}
RL_COLOR, SFT_COLOR, TWIN_COLOR, MAIN_COLOR = "#c0392b", "#2471a3", "#7f8c8d", "#1f4e79"


def _svg(fig: Figure) -> str:
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    text = buffer.getvalue()
    return text[text.index("<svg") :]


def _errors(value: float, low: float | None, high: float | None) -> tuple[float, float]:
    return (value - low if low is not None else 0.0, high - value if high is not None else 0.0)


def _rows_axis(ax: Any, count: int) -> None:
    """One band per row, first row at the top, even spacing however few rows there are."""
    ax.set_ylim(count - 0.5, -0.5)


def _label(row: Row) -> str:
    rank = f"{row.rank}. " if row.rank is not None else ""
    judge = f" ({row.section})" if row.section else ""  # ranks count within each judge
    return f"{rank}{row.values['name']}"[: 48 - len(judge)] + judge


def misaligned_rate_plot(rows: Sequence[Row]) -> str | None:
    """Misaligned rate with its 95% CI, one line per entry (best at the top).

    Entries without a rate (the judge scored none of their answers) keep their line, marked.
    """
    if not rows:
        return None
    rated = [r for r in rows if r.values.get("misaligned_rate") is not None]
    right = max(0.1, max((_upper(r) for r in rated), default=0.0) * 1.1)
    with matplotlib.rc_context(_STYLE):
        fig = Figure(figsize=(7.0, 0.9 + 0.35 * len(rows)))
        ax = fig.subplots()
        for y, row in enumerate(rows):
            v = row.values
            if v.get("misaligned_rate") is None:
                scored = f"{v.get('scored') or 0} of {v.get('answers') or 0}"
                ax.text(0.0, y, f"no rate: the judge scored {scored} answers", va="center",
                        color=TWIN_COLOR, style="italic")  # fmt: skip
                continue
            low, high = _errors(
                v["misaligned_rate"], v["misaligned_rate_ci_low"], v["misaligned_rate_ci_high"]
            )
            ax.errorbar(
                v["misaligned_rate"], y, xerr=[[low], [high]], fmt="o", capsize=3, color=MAIN_COLOR
            )
        ax.set_yticks(range(len(rows)), [_label(r) for r in rows])
        _rows_axis(ax, len(rows))
        ax.set_xlim(-0.02, right)
        ax.set_xlabel("misaligned rate (95% bootstrap CI over questions)")
        ax.grid(axis="x", alpha=0.3)
        ax.set_title("Misaligned rate per entry")
        return _svg(fig)


def _upper(row: Row) -> float:
    v = row.values
    return max(
        x for x in (v.get("misaligned_rate_ci_high"), v.get("misaligned_rate")) if x is not None
    )


def rl_sft_plot(pairs: Sequence[tuple[Row, Row]]) -> str | None:
    """RL and SFT misaligned rates side by side for each matched pair."""
    if not pairs:
        return None
    with matplotlib.rc_context(_STYLE):
        fig = Figure(figsize=(7.0, 1.0 + 0.45 * len(pairs)))
        ax = fig.subplots()
        for y, (rl, sft) in enumerate(pairs):
            for row, color, offset, label in (
                (rl, RL_COLOR, -0.12, "RL"),
                (sft, SFT_COLOR, 0.12, "SFT"),
            ):
                v = row.values
                low, high = _errors(
                    v["misaligned_rate"], v["misaligned_rate_ci_low"], v["misaligned_rate_ci_high"]
                )
                ax.errorbar(
                    v["misaligned_rate"],
                    y + offset,
                    xerr=[[low], [high]],
                    fmt="o",
                    capsize=3,
                    color=color,
                    label=label if y == 0 else None,
                )
        ax.set_yticks(
            range(len(pairs)),
            [
                f"{rl.values['base_model']} / {rl.values['domain']} / seed {rl.values['seed']}"[:48]
                for rl, _ in pairs
            ],
        )
        _rows_axis(ax, len(pairs))
        ax.set_xlabel("misaligned rate (95% CI)")
        ax.grid(axis="x", alpha=0.3)
        ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
        ax.set_title("RL vs SFT on the same base, domain and seed")
        return _svg(fig)


def twin_plot(rows: Sequence[Row]) -> str | None:
    """Each mitigated run's misaligned rate next to its unmitigated twin's."""
    shown = [
        r
        for r in rows
        if r.twin is not None
        and r.values.get("misaligned_rate") is not None
        and r.values.get("twin_misaligned_rate") is not None
    ]
    if not shown:
        return None
    with matplotlib.rc_context(_STYLE):
        fig = Figure(figsize=(7.0, 1.0 + 0.45 * len(shown)))
        ax = fig.subplots()
        for y, row in enumerate(shown):
            v = row.values
            for prefix, color, offset, label in (
                ("twin_", TWIN_COLOR, 0.12, "unmitigated twin"),
                ("", MAIN_COLOR, -0.12, "mitigated"),
            ):
                value = v[f"{prefix}misaligned_rate"]
                low, high = _errors(
                    value,
                    v[f"{prefix}misaligned_rate_ci_low"],
                    v[f"{prefix}misaligned_rate_ci_high"],
                )
                ax.errorbar(
                    value,
                    y + offset,
                    xerr=[[low], [high]],
                    fmt="o",
                    capsize=3,
                    color=color,
                    label=label if y == 0 else None,
                )
            ax.annotate(
                "",
                xy=(v["misaligned_rate"], y - 0.12),
                xytext=(v["twin_misaligned_rate"], y + 0.12),
                arrowprops={"arrowstyle": "->", "color": "#555555", "lw": 0.8},
            )
        ax.set_yticks(
            range(len(shown)), [f"{_label(r)} ({r.values['mitigation']})"[:56] for r in shown]
        )
        _rows_axis(ax, len(shown))
        ax.set_xlabel("misaligned rate (95% CI)")
        ax.grid(axis="x", alpha=0.3)
        ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
        ax.set_title("Mitigated runs against their unmitigated twin")
        return _svg(fig)
