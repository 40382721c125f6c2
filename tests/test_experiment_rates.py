"""--estimate without `cost`: time from this machine's measured rates (earlier runs and logs)."""

from __future__ import annotations

import json
from pathlib import Path

from inspect_ai import eval as inspect_eval
from inspect_ai.log import read_eval_log, write_eval_log

from embench.evals.misalignment import misalignment
from embench.experiments.config import load_experiment
from embench.experiments.estimate import estimate_cost, format_estimate
from embench.experiments.rates import measured_rates
from tests import scripted

GRID = Path(__file__).parents[1] / "configs" / "experiments" / "mitigations.cpu-smoke.yaml"


def finished_run(run: Path, trainer: str, times: list[float]) -> None:
    run.mkdir(parents=True)
    (run / "manifest.json").write_text(json.dumps({"trainer": trainer}))
    rows = [{"step": i + 1, "time": t, "loss": 0.0} for i, t in enumerate(times)]
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows) + '{"cut')


def test_measured_rates_and_the_estimate_they_give(tmp_path, monkeypatch):
    folder = tmp_path / "exp"
    finished_run(folder / "cells" / "a" / "run", "grpo", [100.0, 110.0, 130.0])  # gaps 10, 20
    finished_run(folder / "cells" / "b" / "run", "grpo", [0.0, 30.0])  # gap 30
    (folder / "cells" / "c" / "run").mkdir(parents=True)  # unfinished: no manifest
    (folder / "cells" / "c" / "run" / "metrics.jsonl").write_text('{"step": 1, "time": 1}\n')
    qfile = tmp_path / "q.yaml"
    qfile.write_text('name: q\nversion: 1\nquestions:\n  - {id: a, question: "First?"}\n')
    scripted.ANSWERS.clear()
    scripted.ANSWERS["First?"] = ["SCORES aligned=10 coherent=90"] * 4
    monkeypatch.setenv("INSPECT_CACHE_DIR", str(tmp_path / "cache"))
    logs = folder / "cells" / "a" / "evals" / "step-00004" / "logs"
    (log,) = inspect_eval(
        misalignment(questions=str(qfile), samples=4),
        model="scripted/answers",
        model_roles={"grader": "scripted/judge"},
        log_dir=str(logs),
        display="none",
    )
    edited = read_eval_log(log.location)  # a known wall time: 8 s over 4 answers
    edited.stats.started_at = "2026-12-04T10:00:00+00:00"
    edited.stats.completed_at = "2026-12-04T10:00:08+00:00"
    write_eval_log(edited, log.location)

    rates = measured_rates(folder)
    assert rates.train_seconds_per_step == {"grpo": 20.0}  # median of 10, 20, 30
    assert rates.eval_seconds_per_answer == 2.0
    assert (rates.runs, rates.logs) == (2, 1)

    config = load_experiment(GRID)  # every cell GRPO
    estimate = estimate_cost(config, rates)
    expected = estimate.training_steps * 20.0 + estimate.eval_answers * 2.0
    assert estimate.training_steps > 0 and not estimate.unmeasured_trainers
    assert abs(estimate.measured_hours * 3600 - expected) < 1e-6
    assert "measured rates (grpo 20.0 s/step; 2.00 s per eval answer" in format_estimate(estimate)
    assert "time not estimated" in format_estimate(estimate_cost(config, measured_rates(tmp_path)))


def test_the_report_sums_each_cell_s_eval_time_split(tmp_path):
    from embench.experiments.report import CELL_HEADERS, _judge_calls, _split
    from embench.experiments.results import CellResult

    def summary(generating, judging, calls=None, hits=None):
        metrics = {"generation_seconds": generating, "judge_seconds": judging}
        if calls is not None:  # a log made before judge calls were recorded has neither
            metrics |= {"judge_calls": calls, "judge_cache_hits": hits}
        return {"metrics": metrics}

    cell = CellResult("c", tmp_path, {}, {})
    cell.general = {0: summary(10.0, 20.0, 80.0, 0.0), 4: summary(1.5, 2.0, 40.0, 12.0)}
    cell.in_domain = {4: summary(3.0, None)}  # an eval that records no judging time
    cell.persona = {4: summary(0.4, 0.0, 6.0, 6.0)}
    assert cell.eval_total("generation_seconds") == 14.9
    assert cell.eval_total("judge_seconds") == 22.0
    assert cell.eval_total("judge_calls") == 126.0
    assert _split(cell) == "15/22"
    assert _judge_calls(cell) == "126/18"
    assert "eval s: generating/judging" in CELL_HEADERS and "judge calls/cache hits" in CELL_HEADERS
    assert _split(CellResult("empty", tmp_path, {}, {})) == "n/a/n/a"
    assert _judge_calls(CellResult("empty", tmp_path, {}, {})) == "n/a/n/a"
