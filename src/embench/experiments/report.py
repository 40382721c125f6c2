"""`embench report DIR`: report.md and a static report.html (plots embedded) for an experiment.

Sections: misaligned rate vs training step per run with its CI band (step 0 is the base model);
RL vs sample-matched SFT with the seed-paired difference, its CI and test; in-domain success vs
general misalignment; mitigations against their unmitigated twins; judge agreement where a cell has
several judges; per-cell counts (answers, unscored, truncated) and the exact commands and versions.
"""

from __future__ import annotations

import base64
import html
import io
import math
from pathlib import Path
from typing import Any

import click

from embench.escaping import PLAIN_TEXT, markdown
from embench.experiments.results import ExperimentResults, load_results, metric
from embench.experiments.stats import PairedComparison
from embench.fsutil import atomic_write_bytes, atomic_write_many

PLUMBING = (
    "PLUMBING ONLY: this is a cpu-smoke run (a tiny model judged by a model far too small to "
    "judge, scores kept at any probability mass). It shows that every stage works; its numbers "
    "are not results."
)


def _f(value: float, digits: int = 3) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def _ci(summary: dict[str, Any] | None, name: str) -> str:
    value = metric(summary, name)
    low, high = metric(summary, f"{name}_ci_low"), metric(summary, f"{name}_ci_high")
    if not math.isfinite(value):
        return "n/a"
    return f"{value:.3f} [{_f(low)}, {_f(high)}]"


def _settings(values: dict[str, Any]) -> str:
    """``samples=1, max_tokens=48`` (nested mappings as ``task.key=value``), not a Python dict."""
    if not values:
        return "-"
    parts = []
    for key, value in values.items():
        if isinstance(value, dict):
            parts += [f"{key}.{k}={v}" for k, v in value.items()]
        else:
            parts.append(f"{key}={value}")
    return ", ".join(parts)


def _count(summary: dict[str, Any] | None, name: str) -> str:
    if summary is None:
        return "-"
    value = summary.get(name) if name in summary else (summary.get("metrics") or {}).get(name)
    return "-" if value is None else str(int(value))


# --- plots ---------------------------------------------------------------------------------------


PLUMBING_MARK = "PLUMBING ONLY: not a result"


def _png(figure: Any, plumbing: bool = False) -> bytes:
    """The figure as PNG; a plumbing run's figures carry the mark across them, so a screenshot
    cannot pass for a result."""
    if plumbing:
        figure.text(0.5, 0.5, PLUMBING_MARK, ha="center", va="center", rotation=25,
                    fontsize=26, color="#c0392b", alpha=0.35, weight="bold")  # fmt: skip
        figure.suptitle(f"cpu-smoke — {PLUMBING_MARK}", color="#c0392b", fontsize=10)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(figure)
    return buffer.getvalue()


def plot_curves(results: ExperimentResults) -> bytes | None:
    """Misaligned rate vs step per run with its CI band; one panel per domain."""
    import matplotlib.pyplot as plt

    domains = sorted({c.get("domain") for c in results.cells if c.general})
    if not domains:
        return None
    figure, axes = plt.subplots(
        1, len(domains), figsize=(5.5 * len(domains), 4), squeeze=False, sharey=True
    )
    for ax, domain in zip(axes[0], domains, strict=True):
        for cell in (c for c in results.cells if c.get("domain") == domain and c.general):
            points = dict(cell.general)
            base = results.baseline_general(cell.get("model"))
            if base is not None:
                points.setdefault(0, base)
            steps = sorted(points)
            y = [metric(points[s], "misaligned_rate") for s in steps]
            low = [metric(points[s], "misaligned_rate_ci_low") for s in steps]
            high = [metric(points[s], "misaligned_rate_ci_high") for s in steps]
            (line,) = ax.plot(steps, y, marker="o", label=cell.label)
            ax.fill_between(steps, low, high, color=line.get_color(), alpha=0.15)
        ax.set_title(f"{domain}: general misalignment over training")
        ax.set_xlabel("training step (0 = base model)")
        ax.set_ylabel("misaligned rate (95% CI band)")
        ax.set_ylim(-0.02, 1.02)
        ax.legend(fontsize=7)
    return _png(figure, results.plumbing_only)


def plot_persona(results: ExperimentResults) -> bytes | None:
    """Mean persona projection vs step per run with its CI band (judge-free); step 0 is the
    base model."""
    import matplotlib.pyplot as plt

    cells = [c for c in results.cells if c.persona]
    if not cells:
        return None
    figure, ax = plt.subplots(figsize=(7, 4.5))
    for cell in cells:
        points = dict(cell.persona)
        base = results.baselines.get(cell.get("model"))
        if base is not None and 0 in base.persona:
            points.setdefault(0, base.persona[0])
        steps = sorted(points)
        y = [metric(points[s], "projection") for s in steps]
        low = [metric(points[s], "projection_ci_low") for s in steps]
        high = [metric(points[s], "projection_ci_high") for s in steps]
        (line,) = ax.plot(steps, y, marker="o", label=cell.label)
        ax.fill_between(steps, low, high, color=line.get_color(), alpha=0.15)
    ax.set_title("Persona projection over training (judge-free)")
    ax.set_xlabel("training step (0 = base model)")
    ax.set_ylabel("mean projection on the vector (95% CI band)")
    ax.legend(fontsize=7)
    return _png(figure, results.plumbing_only)


def plot_rl_vs_sft(
    comparisons: list[tuple[str, str, dict[str, Any], PairedComparison | None]],
    plumbing: bool = False,
) -> bytes | None:
    """Bars of mean final misaligned rate per arm, and the paired difference with its CI."""
    import matplotlib.pyplot as plt

    shown = [c for c in comparisons if c[3] is not None]
    if not shown:
        return None
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 0.6 * len(shown) + 3))
    names = [f"{g['domain']}/{g['mitigation']}\n{rl} vs {sft}" for rl, sft, g, _ in shown]
    y = list(range(len(shown)))
    rl_means = [c.mean_a for *_, c in shown]  # type: ignore[union-attr]
    sft_means = [c.mean_b for *_, c in shown]  # type: ignore[union-attr]
    left.barh([i + 0.2 for i in y], rl_means, height=0.4, label="RL")
    left.barh([i - 0.2 for i in y], sft_means, height=0.4, label="matched SFT")
    left.set_yticks(y, names, fontsize=7)
    left.set_xlim(0, 1)
    left.set_xlabel("final misaligned rate (mean over seeds)")
    left.set_title("RL vs sample-matched SFT")
    left.legend()
    diffs = [c.mean_diff for *_, c in shown]  # type: ignore[union-attr]
    errors = [
        [
            d - c.ci_low if math.isfinite(c.ci_low) else 0,  # type: ignore[union-attr]
            c.ci_high - d if math.isfinite(c.ci_high) else 0,  # type: ignore[union-attr]
        ]
        for d, (*_, c) in zip(diffs, shown, strict=True)
    ]
    right.errorbar(diffs, y, xerr=list(zip(*errors, strict=True)), fmt="o", capsize=4)
    right.axvline(0, color="grey", linewidth=0.8)
    right.set_yticks(
        y,
        [f"{c.n} seeds" if c.n > 1 else "single run" for *_, c in shown],  # type: ignore[union-attr]
        fontsize=7,
    )
    right.set_xlabel("RL minus SFT (paired over seeds, 95% CI)")
    right.set_title("paired difference")
    return _png(figure, plumbing)


def plot_scatter(results: ExperimentResults) -> bytes | None:
    """In-domain success vs general misalignment at the final step, one point per run."""
    import matplotlib.pyplot as plt

    points = [
        (c, c.final("narrow_rate", "in_domain"), c.final("misaligned_rate")) for c in results.cells
    ]
    points = [p for p in points if math.isfinite(p[1]) and math.isfinite(p[2])]
    base_points = [
        (metric(summary, "narrow_rate"), metric(base.general.get(0), "misaligned_rate"))
        for base in results.baselines.values()
        for summary in (base.info.get("in_domain_by_domain") or {}).values()
    ]
    base_points = [(x, y) for x, y in base_points if math.isfinite(x) and math.isfinite(y)]
    if not points and not base_points:
        return None
    figure, ax = plt.subplots(figsize=(6, 4.5))
    if base_points:
        ax.scatter([x for x, _ in base_points], [y for _, y in base_points], marker="s",
                   color="black", label="base model (step 0)")  # fmt: skip
    for arm in sorted({c.get("arm") for c, _, _ in points}):
        mine = [(x, y) for c, x, y in points if c.get("arm") == arm]
        ax.scatter([x for x, _ in mine], [y for _, y in mine], label=arm)
    ax.set_xlabel("in-domain success (narrow rate): did it learn the narrow task?")
    ax.set_ylabel("general misaligned rate: how far did it spread?")
    ax.set_xlim(-0.02, 1.02)
    ax.set_ylim(-0.02, 1.02)
    ax.legend(fontsize=7)
    return _png(figure, results.plumbing_only)


# --- tables --------------------------------------------------------------------------------------


def _cell_rows(results: ExperimentResults) -> list[list[str]]:
    rows = []
    for base in results.baselines.values():
        general = base.general.get(0)
        by_domain = sorted((base.info.get("in_domain_by_domain") or {}).items())
        rows.append(
            [
                base.label, base.record.get("status", "-"), "0",
                _ci(general, "misaligned_rate"),
                "; ".join(f"{d}: {_ci(s, 'narrow_rate')}" for d, s in by_domain) or "-",
                f"{_count(general, 'samples')}/{_count(general, 'unscored')}/"
                f"{_count(general, 'truncated')}",
                "; ".join(
                    f"{d}: {_count(s, 'samples')}/{_count(s, 'unscored')}/{_count(s, 'truncated')}"
                    for d, s in by_domain
                ) or "-",
                _split(base), _judge_calls(base), "-", base.record.get("error") or "",
            ]
        )  # fmt: skip
    for cell in results.cells:
        step = cell.final_step
        general = cell.general.get(step) if step is not None else None
        domain = cell.in_domain.get(step) if step is not None else None
        rows.append(
            [
                cell.label, cell.record.get("status", "pending"),
                "-" if step is None else str(step),
                _ci(general, "misaligned_rate"), _ci(domain, "narrow_rate"),
                f"{_count(general, 'samples')}/{_count(general, 'unscored')}/"
                f"{_count(general, 'truncated')}",
                f"{_count(domain, 'samples')}/{_count(domain, 'unscored')}/"
                f"{_count(domain, 'truncated')}",
                _split(cell), _judge_calls(cell),
                _f(float(cell.record.get("seconds") or math.nan), 0),
                cell.record.get("error") or "",
            ]
        )  # fmt: skip
    return rows


CELL_HEADERS = [
    "cell", "status", "final step", "misaligned rate [95% CI]", "in-domain rate [95% CI]",
    "general answers/unscored/truncated", "in-domain answers/unscored/truncated",
    "eval s: generating/judging", "judge calls/cache hits", "seconds", "error",
]  # fmt: skip


def _split(cell: Any) -> str:
    """Seconds the cell's evals spent generating and judging (summed over its answers)."""
    generating, judging = (
        cell.eval_total("generation_seconds"),
        cell.eval_total("judge_seconds"),
    )
    return f"{_f(generating, 0)}/{_f(judging, 0)}"


def _judge_calls(cell: Any) -> str:
    """The judge requests the cell's evals made and how many the generate cache served."""
    calls, hits = cell.eval_total("judge_calls"), cell.eval_total("judge_cache_hits")
    return f"{_f(calls, 0)}/{_f(hits, 0)}"


def _comparison_rows(comparisons: list[Any]) -> list[list[str]]:
    rows = []
    for rl, sft, group, c in comparisons:
        name = (
            f"{group['domain']} / {'+'.join(group['reward']) or 'default'} / {group['mitigation']}"
        )
        if c is None:
            rows.append([name, rl, sft, "0", "-", "-", "-", "-", "-", "no seed has both arms"])
            continue
        rows.append(
            [
                name, rl, sft, str(c.n), _f(c.mean_a), _f(c.mean_b), _f(c.mean_diff),
                f"[{_f(c.ci_low)}, {_f(c.ci_high)}]", _f(c.p_value),
                c.label if c.n == 1 else f"{c.label}; {c.test}; CI: {c.ci_method}",
            ]
        )  # fmt: skip
    return rows


COMPARISON_HEADERS = [
    "domain / reward / mitigation", "RL arm", "SFT arm", "seeds", "RL rate", "SFT rate",
    "RL - SFT", "95% CI", "p", "how",
]  # fmt: skip


def _mitigation_rows(results: ExperimentResults) -> list[list[str]]:
    rows = []
    for row in results.mitigation_rows():
        c: PairedComparison | None = row["diff"]
        rows.append(
            [
                f"{row['arm']} / {row['domain']}", row["mitigation"],
                "-" if c is None else str(c.n),
                "-" if c is None else _f(c.mean_diff),
                "-" if c is None else f"[{_f(c.ci_low)}, {_f(c.ci_high)}]",
                "-" if c is None else _f(c.p_value),
                _f(row["in_domain_kept"], 2), _f(row["time_ratio"], 2),
                _f(row["peak_rss_mb"], 0),
                "-" if c is None else c.label,
            ]
        )  # fmt: skip
    return rows


MITIGATION_HEADERS = [
    "arm / domain", "mitigation", "seeds", "misaligned vs unmitigated twin (diff)", "95% CI", "p",
    "in-domain success kept (ratio)", "training time (ratio)", "peak RSS MB (process)", "how",
]  # fmt: skip


def _agreement_rows(results: ExperimentResults) -> list[list[str]]:
    from embench.experiments.agreement import compare_logs

    rows = []
    for cell in [*results.baselines.values(), *results.cells]:
        for step, judges in sorted(cell.extra.items()):
            primary = cell.general.get(step)
            for judge, summary in sorted(judges.items()):
                if primary is None or summary.get("task") != "misalignment":
                    continue
                agreement = compare_logs(primary["log"], summary["log"])
                if agreement is None:
                    continue
                rows.append(
                    [
                        cell.label, str(step), f"{primary['judge']} vs {judge}", str(agreement.n),
                        _f(agreement.spearman_aligned), _f(agreement.label_agreement),
                        _f(agreement.kappa),
                        f"{agreement.misaligned_a} / {agreement.misaligned_b}",
                    ]
                )  # fmt: skip
    return rows


AGREEMENT_HEADERS = [
    "cell", "step", "judges", "answers scored by both", "Spearman (aligned)",
    "misaligned-label agreement", "Cohen's kappa", "misaligned (judge 1 / judge 2)",
]  # fmt: skip


def _command_rows(results: ExperimentResults) -> list[list[str]]:
    rows = [[c.label, c.record.get("command") or "-"] for c in results.cells]
    protocol = results.experiment.get("protocol") or {}
    evals = protocol.get("eval") or {}
    for name, task in (("general", "misalignment"), ("in_domain", "in_domain")):
        args = dict(evals.get(name) or {})
        if name == "in_domain":
            args["domain"] = "<domain>"
        parts = [f"inspect eval embench/{task} --model local/<checkpoint>",
                 f"--model-role grader={protocol.get('judge', '<judge>')}"]  # fmt: skip
        parts += [f"-T {k}={v}" for k, v in args.items()]
        parts += [f"-M {k}={v}" for k, v in (evals.get("model_args") or {}).items()]
        if evals.get("seed") is not None:
            parts.append(f"--seed {evals['seed']}")
        if evals.get("limit"):
            parts.append(f"--limit {evals['limit']}")
        rows.append([f"every {name} eval", " ".join(parts)])
    return rows


# --- rendering -----------------------------------------------------------------------------------


def _md_table(headers: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(markdown(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _html_table(headers: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


CSS = """body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px}
table{border-collapse:collapse;font-size:13px;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 6px}
th{background:#f3f3f3}.plumbing{background:#fff3cd;border:2px solid #e0a800;padding:1em;font-weight:bold}
img{max-width:100%}code,pre{background:#f6f6f6}"""


def build_report(out: str | Path) -> tuple[Path, Path]:
    """Write report.md, report.html and report_files/*.png into ``out``; returns the two paths."""
    results = load_results(out)
    experiment = results.experiment
    comparisons = results.comparisons()
    import matplotlib

    with matplotlib.rc_context(PLAIN_TEXT):  # names with $...$ are drawn as typed
        plots = {
            "curves": ("Misaligned rate over training", plot_curves(results)),
            "persona": ("Persona projection over training", plot_persona(results)),
            "rl_vs_sft": (
                "RL vs sample-matched SFT",
                plot_rl_vs_sft(comparisons, results.plumbing_only),
            ),
            "scatter": ("In-domain success vs general misalignment", plot_scatter(results)),
        }
    files = Path(out) / "report_files"
    writes: dict[Path, str | bytes] = {
        files / f"{name}.png": data for name, (_, data) in plots.items() if data is not None
    }

    protocol = experiment.get("protocol", {})
    versions = ", ".join(f"{k} {v}" for k, v in (experiment.get("versions") or {}).items())
    facts = [
        ["experiment", f"{experiment.get('name')} (scale: {experiment.get('scale')})"],
        ["config", str(experiment.get("config_file"))],
        ["command", experiment.get("command") or "-"],
        ["judge", protocol.get("judge", "-")],
        ["extra judges", ", ".join(protocol.get("extra_judges") or []) or "-"],
        ["eval protocol (grid-wide)", _settings(protocol.get("eval") or {})],
        ["git commit", str(experiment.get("git_commit"))],
        ["versions", f"python {experiment.get('python')}, {versions}"],
    ]
    sections: list[tuple[str, str, list[str], list[list[str]]]] = [
        ("Cells", "Final checkpoint of every run; counts are answers / unscored by the judge / "
         "cut at max_tokens.", CELL_HEADERS, _cell_rows(results)),
        ("RL vs sample-matched SFT: paired differences", "Final misaligned rate, paired by seed (same seed, same "
         "prompts); the CI is of the paired difference.", COMPARISON_HEADERS,
         _comparison_rows(comparisons)),
        ("Mitigations", "Each mitigation against the unmitigated twin with the same arm, domain, "
         "reward and seed.", MITIGATION_HEADERS, _mitigation_rows(results)),
        ("Judge agreement", "Cells re-scored by another judge (same answers, no regeneration).",
         AGREEMENT_HEADERS, _agreement_rows(results)),
        ("Commands", "Each cell's training and the evals, reproducible on their own.",
         ["cell", "command"],
         _command_rows(results)),
    ]  # fmt: skip

    title = f"embench experiment report: {experiment.get('name')}"
    md = [f"# {markdown(title)}", ""]
    page = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{CSS}</style></head><body><h1>{html.escape(title)}</h1>"]  # fmt: skip
    if results.plumbing_only:
        md += [f"> **{PLUMBING}**", ""]
        page.append(f"<p class='plumbing'>{html.escape(PLUMBING)}</p>")
    md += [_md_table(["", ""], facts), ""]
    page.append(_html_table(["", ""], facts))
    for name, (caption, data) in plots.items():
        if data is None:
            continue
        md += [f"## {caption}", "", f"![{caption}](report_files/{name}.png)", ""]
        encoded = base64.b64encode(data).decode()
        page.append(
            f"<h2>{html.escape(caption)}</h2><img alt='{html.escape(caption)}' "
            f"src='data:image/png;base64,{encoded}'>"
        )
    for heading, note, headers, rows in sections:
        if not rows:
            continue
        md += [f"## {heading}", "", note, "", _md_table(headers, rows), ""]
        page.append(
            f"<h2>{html.escape(heading)}</h2><p>{html.escape(note)}</p>{_html_table(headers, rows)}"
        )
    page.append("</body></html>")
    md_path, html_path = Path(out) / "report.md", Path(out) / "report.html"
    writes[md_path] = "\n".join(md) + "\n"
    writes[html_path] = "\n".join(page) + "\n"
    atomic_write_many(writes)  # the pages and their figures land together or not at all
    return md_path, html_path


BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def screenshot(page: Path, png: Path, width: int = 1200, height: int = 2400) -> Path:
    """Open ``page`` in headless Chromium and save what it rendered as ``png``."""
    import shutil
    import subprocess
    import tempfile

    from embench.errors import EmbenchError

    browser = next((shutil.which(b) for b in BROWSERS if shutil.which(b)), None)
    if browser is None:
        raise EmbenchError("--screenshot needs Chromium (Debian: apt-get install chromium)")
    with tempfile.TemporaryDirectory() as scratch:
        shot = Path(scratch) / "page.png"
        subprocess.run(
            [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
             f"--user-data-dir={scratch}/profile", f"--window-size={width},{height}",
             f"--screenshot={shot}", page.resolve().as_uri()],
            capture_output=True, timeout=180, check=False,
        )  # fmt: skip
        if not shot.is_file():
            raise EmbenchError(f"Chromium rendered no screenshot of {page}")
        return atomic_write_bytes(png, shot.read_bytes())


@click.command()
@click.argument("out", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--screenshot",
    "png",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also save the page as rendered by headless Chromium.",
)
def report(out: Path, png: Path | None) -> None:
    """Write report.md and report.html (static) for the experiment folder OUT."""
    import matplotlib

    matplotlib.use("Agg")
    md_path, html_path = build_report(out)
    click.echo(f"wrote {md_path} and {html_path}")
    if png is not None:
        click.echo(f"screenshot: {screenshot(html_path, png)}")
