"""Board configuration: ``leaderboards/<board>/board.yaml``.

A board says which logs it accepts (task name and version, question-set fingerprint, judge
thresholds, minimum answers per question, whether a log in which the judge scored no answer is
accepted, whether a run manifest / mitigation is required) and how it ranks them (metric, its
denominator, direction, columns, and whether entries are ranked only against entries with the
same judge). Boards that rank against a twin name the boards where twins are looked up and the
manifest fields that make two runs twins. A board may name the evaluation protocol
(``-T protocol=``) whose generation settings every log must keep unchanged. ``submit`` refuses
a log that breaks a rule, naming it.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from embench.errors import EmbenchError
from embench.limits import load_yaml
from embench.metrics import ALIGNED_THRESHOLD, COHERENT_THRESHOLD
from embench.paths import leaderboards_dir

ENV_ROOT = "EMBENCH_LEADERBOARDS"
BOARD_FILE = "board.yaml"
ENTRIES_DIR = "entries"
LOGS_DIR = "logs"  # each entry's log, so CI re-checks every entry against it
RESERVED_NAMES = ("render", "show")  # subcommands of `embench leaderboard`
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
DIRECTIONS = ("lower", "higher")
RUN_FIELDS = (
    "trainer", "kind", "base_model", "domain", "reward", "seed", "judge", "lora", "steps",
    "learning_rate", "mitigation",
)  # fmt: skip
DENOMINATORS = {
    "scored": "over scored answers (an answer the judge could not score is left out)",
    "all": "over all answers (an answer the judge could not score counts as not misaligned)",
}
SMOKE_BOARD = "smoke"  # the board for plumbing runs (any judge, 1 answer per question)
# Published protocols sample 50-100 answers per question at temperature 1: 100 per paraphrase in
# Betley et al. 2025 (arXiv:2502.17424, evaluation/first_plot_questions.yaml), 50 per question in
# Turner et al. 2025 (arXiv:2506.11613, github.com/clarifying-EM/model-organisms-for-EM).
PUBLISHED_MIN_SAMPLES = 50


@dataclass(frozen=True)
class Board:
    """One leaderboard."""

    name: str
    title: str
    description: str
    task: str
    task_version: int
    question_set: str
    fingerprint: str
    min_samples_per_question: int
    metric: str
    direction: str  # "lower" or "higher" is better
    columns: tuple[str, ...]
    thresholds: dict[str, float] = field(
        default_factory=lambda: {"aligned": ALIGNED_THRESHOLD, "coherent": COHERENT_THRESHOLD}
    )
    denominator: str = "scored"  # which answers a rate is over: "scored" or "all"
    rank_within_judge: bool = False  # rank only against entries with the same judge
    require_scored_answers: bool = False  # refuse a log in which the judge scored no answer
    min_judge_mass: float | None = None  # each score's least probability mass on numbers
    protocol: str | None = None  # logs must use this -T protocol with its settings unchanged
    requires_run: bool = False  # the entry must link a run manifest
    requires_mitigation: bool = False  # ... with at least one mitigation
    requires_in_domain_log: bool = False  # the in-domain result, from its own eval log
    twin_boards: tuple[str, ...] = ()  # where unmitigated twins are looked up
    twin_key: tuple[str, ...] = ()  # run fields that must match for two runs to be twins
    path: Path = Path(".")

    @property
    def entries_dir(self) -> Path:
        """The folder of accepted entries."""
        return self.path / ENTRIES_DIR

    @property
    def logs_dir(self) -> Path:
        """The folder of the accepted entries' logs (``<eval_id>.eval``)."""
        return self.path / LOGS_DIR

    def refuse(self, rule: str, problem: str) -> EmbenchError:
        """A one-line refusal naming the board.yaml rule that ``problem`` breaks."""
        hint = f"; plumbing runs go to board '{SMOKE_BOARD}'" if self.name != SMOKE_BOARD else ""
        return EmbenchError(f"board '{self.name}' rule {rule}: {problem}{hint}")

    @property
    def lower_is_better(self) -> bool:
        """Whether a lower ranking metric ranks higher."""
        return self.direction == "lower"


def leaderboards_root(root: str | Path | None = None) -> Path:
    """The leaderboards folder: ``root``, else $EMBENCH_LEADERBOARDS, else the nearest
    ``leaderboards/`` from the working directory."""
    chosen = root or os.environ.get(ENV_ROOT) or leaderboards_dir()
    return Path(chosen).expanduser()


def board_names(root: Path) -> list[str]:
    """Names of the boards under ``root`` (folders holding a board.yaml)."""
    if not root.is_dir():
        return []
    return sorted(p.parent.name for p in root.glob(f"*/{BOARD_FILE}"))


def load_board(root: Path, name: str) -> Board:
    """Read and check one board's configuration, or raise a one-line EmbenchError.

    ``name`` is a plain board name (lowercase letters, digits, ``-``, ``_``), resolved only under
    ``root``: never a path, so nothing is read or written outside the boards folder.
    """
    if not _NAME.fullmatch(str(name)):
        raise EmbenchError(
            f"board name {str(name)[:60]!r} is not a plain name (lowercase letters, digits, "
            "'-' and '_'); boards live under the leaderboards folder: see --root"
        )
    path = root / name / BOARD_FILE
    if not path.resolve().is_relative_to(root.resolve()):
        raise EmbenchError(f"board '{name}' resolves outside {root} (a symbolic link?)")
    if not path.is_file():
        known = ", ".join(board_names(root)) or "none"
        raise EmbenchError(f"unknown board '{name}' under {root}; boards: {known}")
    return _parse(load_yaml(path, "board config"), path)


def load_boards(root: Path) -> list[Board]:
    """Every board under ``root``."""
    return [load_board(root, name) for name in board_names(root)]


_KIND = {str: "a string", int: "an integer"}


def _require(data: dict[str, Any], key: str, kind: type, path: Path) -> Any:
    value = data.get(key)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise EmbenchError(f"{path}: field '{key}' is missing or not {_KIND[kind]}")
    return value


def _strings(data: dict[str, Any], key: str, path: Path) -> tuple[str, ...]:
    value = data.get(key) or []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise EmbenchError(f"{path}: field '{key}' must be a list of strings")
    return tuple(value)


def _mass(data: dict[str, Any], path: Path) -> float | None:
    value = data.get("min_judge_mass")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise EmbenchError(f"{path}: field 'min_judge_mass' must be a number from 0 to 1")
    return float(value)


def _protocol(data: dict[str, Any], path: Path) -> str | None:
    from embench.evals.protocols import PROTOCOLS  # here: importing embench.evals loads inspect_ai

    value = data.get("protocol")
    if value is not None and value not in PROTOCOLS:
        raise EmbenchError(f"{path}: protocol must be one of {', '.join(PROTOCOLS)}, not {value!r}")
    return value


def _is_score(value: Any) -> bool:
    return (
        isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value <= 100
    )  # NaN fails both comparisons


def _flag(data: dict[str, Any], key: str, path: Path) -> bool:
    value = data.get(key, False)
    if not isinstance(value, bool):
        raise EmbenchError(f"{path}: field '{key}' must be true or false")
    return value


def _parse(data: Any, path: Path) -> Board:
    if not isinstance(data, dict):
        raise EmbenchError(f"{path}: expected a mapping")
    name = _require(data, "name", str, path)
    if name != path.parent.name:
        raise EmbenchError(f"{path}: name '{name}' differs from its folder '{path.parent.name}'")
    if not _NAME.match(name) or name in RESERVED_NAMES:
        raise EmbenchError(f"{path}: '{name}' is not a usable board name")
    direction = _require(data, "direction", str, path)
    if direction not in DIRECTIONS:
        raise EmbenchError(f"{path}: direction must be 'lower' or 'higher', not '{direction}'")
    fingerprint = _require(data, "fingerprint", str, path)
    if not re.fullmatch(r"[0-9a-f]{64}", fingerprint):
        raise EmbenchError(f"{path}: fingerprint must be a sha256 hex digest")
    minimum = _require(data, "min_samples_per_question", int, path)
    if minimum < 1:
        raise EmbenchError(f"{path}: min_samples_per_question must be at least 1")
    thresholds = data.get("thresholds") or {
        "aligned": ALIGNED_THRESHOLD,
        "coherent": COHERENT_THRESHOLD,
    }
    if (
        not isinstance(thresholds, dict)
        or set(thresholds) != {"aligned", "coherent"}
        or not all(_is_score(v) for v in thresholds.values())
    ):
        raise EmbenchError(
            f"{path}: thresholds must give 'aligned' and 'coherent', each a number from 0 to 100"
        )
    twin_key = _strings(data, "twin_key", path)
    unknown = [k for k in twin_key if k not in RUN_FIELDS]
    if unknown:
        raise EmbenchError(f"{path}: unknown twin_key field(s): {', '.join(unknown)}")
    denominator = data.get("denominator", "scored")
    if denominator not in DENOMINATORS:
        raise EmbenchError(f"{path}: denominator must be 'scored' or 'all', not {denominator!r}")
    metric = _require(data, "metric", str, path)
    if ("_all" in metric) != (denominator == "all"):
        raise EmbenchError(
            f"{path}: metric '{metric}' is not a rate over {denominator} answers: rates over all "
            "answers end in '_all' (misaligned_rate_all)"
        )
    columns = _strings(data, "columns", path)
    if not columns:
        raise EmbenchError(f"{path}: field 'columns' must list the columns shown")
    return Board(
        name=name,
        title=str(data.get("title") or name),
        description=str(data.get("description") or "").strip(),
        task=_require(data, "task", str, path),
        task_version=_require(data, "task_version", int, path),
        question_set=_require(data, "question_set", str, path),
        fingerprint=fingerprint,
        min_samples_per_question=minimum,
        metric=metric,
        direction=direction,
        columns=columns,
        thresholds={k: float(v) for k, v in thresholds.items()},
        denominator=denominator,
        rank_within_judge=_flag(data, "rank_within_judge", path),
        require_scored_answers=_flag(data, "require_scored_answers", path),
        min_judge_mass=_mass(data, path),
        protocol=_protocol(data, path),
        requires_run=_flag(data, "requires_run", path),
        requires_mitigation=_flag(data, "requires_mitigation", path),
        requires_in_domain_log=_flag(data, "requires_in_domain_log", path),
        twin_boards=_strings(data, "twin_boards", path),
        twin_key=twin_key,
        path=path.parent,
    )
