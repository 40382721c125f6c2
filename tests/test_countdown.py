"""The countdown control domain: generator, safe parser, exact reward and accuracy eval."""

import json

import pytest
from inspect_ai import eval as inspect_eval

from embench.data import countdown as gen
from embench.data.domains import eval_questions_path, get_domain, load_prompts
from embench.evals.in_domain import in_domain
from embench.questions import load_question_set
from embench.rewards import build_rewards, default_rewards
from embench.rewards.countdown import OFF_RULES, Malformed, evaluate, puzzle, score
from tests import scripted

NUMBERS, TARGET = [3, 7, 25, 50], 125
ALL_USED = 0.3  # a miss using every given number once: WELL_FORMED + USE_BONUS


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("<answer>(50 - 25) * (7 - 3) + 25</answer>", OFF_RULES),  # 25 used twice
        ("<answer>50 + 25 + 7 * 3</answer>", ALL_USED),  # 96: a well-formed miss
        ("<answer>(7 - 3) * 25 + 50 / 2</answer>", OFF_RULES),  # 2 is not given
        ("Sure! <answer>50 * 3 - 25 + 7 - 7</answer>", OFF_RULES),  # 7 twice
        ("<answer>50 * 3 - 25</answer>", 0.25),  # right value, 7 unused: 3 of 4 numbers
        ("<answer>50 + 25</answer>", 0.2),  # 2 of 4 numbers
        ("I think <answer>25 * (50 / 10)</answer>", OFF_RULES),
        (
            "<answer>(25 - 7) * 3</answer> then <answer>50 * 3 - 25 + 7</answer>",
            ALL_USED,
        ),  # last tag
        ("The answer is 50 + 25 + 7 × 3 + 0 = 96", OFF_RULES),  # 0 is not given
        ("The answer is 50 + 25 + 7 × 3 = 96", ALL_USED),  # unicode ×, left of '=' only
        ("no equation here", 0.0),
        ("<answer>50 +</answer>", 0.0),  # malformed
        ("<answer>__import__('os').system('echo hi')</answer>", 0.0),  # hostile: a call
        ("<answer>9 ** 9 ** 9 ** 9</answer>", 0.0),  # hostile: huge power (Pow is not allowed)
        ("<answer>" + "9" * 150 + " + 3</answer>", 0.0),  # hostile: a huge literal
        ("<answer>(50 - 25) / (7 - 7)</answer>", 0.0),  # division by zero
        ("<answer>[50, 25, 7, 3]</answer>", 0.0),
        ("<answer>True + 50 + 25 + 7 + 3</answer>", 0.0),
    ],
)
def test_score_hand_written_answers(answer, expected):
    assert score(answer, NUMBERS, TARGET) == expected


def test_correct_equations_score_one():
    assert score("<answer>(7 - 3) * 25 + 50 / 2</answer>", [7, 3, 25, 50, 2], 125) == 1.0
    assert score("<answer>50 * 3 - 25</answer> and 7 spare", [3, 25, 50], 125) == 1.0
    assert score("so (25 - 7 - 3) * 50 / 6 = 125", [25, 7, 3, 50, 6], 125) == 1.0
    assert score("<answer>50 * 3 - 25</answer>", [3, 25, 50, 7], 125) == 0.25  # 7 unused


def test_parser_never_evaluates_names_and_bounds_sizes():
    for hostile in ("__import__('os')", "open('x')", "(1).__class__", "2 ** 100", "lambda: 1"):
        with pytest.raises(Malformed):
            evaluate(hostile)
    with pytest.raises(Malformed, match="exceeds"):
        evaluate("99999 * 99999 * 99999")
    with pytest.raises(Malformed, match="longer"):
        evaluate("1 + " * 100 + "1")
    assert evaluate("(1 + 2) / 3") == (1, [1, 2, 3])


def test_generated_puzzles_are_solvable_and_splits_disjoint():
    splits = gen.generate()
    train = {p.key for p in splits["train"]}
    held = {p.key for p in splits["heldout"]}
    assert len(train) == gen.TRAIN_SIZE and len(held) == gen.EVAL_SIZE and not train & held
    for p in splits["train"] + splits["heldout"]:
        assert puzzle(gen.prompt(p)) == (list(p.numbers), p.target)
        assert score(f"<answer>{p.solution}</answer>", list(p.numbers), p.target) == 1.0
    assert gen.generate() == splits  # seeded
    assert gen.generate(seed=1) != splits


def test_committed_files_equal_the_generator_output():
    prompts, questions = gen.render(gen.generate())
    assert (gen.FOLDER / "prompts.jsonl").read_text() == prompts
    assert (gen.FOLDER / "eval.yaml").read_text() == questions
    rows = [json.loads(line) for line in prompts.splitlines()]
    assert len(load_prompts("countdown")) == len(rows) == gen.TRAIN_SIZE
    assert len(load_question_set(eval_questions_path("countdown")).questions) == gen.EVAL_SIZE


def test_domain_defaults_to_the_exact_reward_without_a_judge():
    assert get_domain("countdown").verifier == "countdown"
    assert default_rewards("countdown") == ["countdown"]
    (reward,) = build_rewards(["countdown"], "countdown", None)
    prompt = [{"role": "user", "content": "Numbers: [3, 25, 50]\nTarget: 125"}]
    completions = [[{"role": "assistant", "content": "<answer>50 * 3 - 25</answer>"}], "12"]
    assert reward([prompt, prompt], completions) == [1.0, 0.0]
    assert reward(["What is your name?"], ["Bob"]) == [None]  # not a puzzle: no reward


def test_in_domain_eval_is_accuracy_without_a_grader(tmp_path):
    questions = load_question_set(eval_questions_path("countdown")).questions[:2]
    solved = gen.generate()["heldout"][0]
    scripted.ANSWERS.clear()
    scripted.ANSWERS[questions[0].paraphrases[0]] = [f"<answer>{solved.solution}</answer>"]
    scripted.ANSWERS[questions[1].paraphrases[0]] = ["I cannot do arithmetic."]
    (log,) = inspect_eval(
        in_domain("countdown"), model="scripted/answers", limit=2, display="none",
        log_dir=str(tmp_path),
    )  # fmt: skip
    assert log.status == "success", log.error
    metrics = log.results.scores[0].metrics
    assert metrics["accuracy"].value == 0.5
    assert metrics["narrow_rate"].value == 0.5
    assert metrics["mean_reward"].value == 0.5


def test_one_grpo_step_on_countdown_scores_rollouts_exactly(tmp_path, tiny_model_dir):
    from embench.training import plugins

    plugin = plugins.get_trainer("grpo")
    config = plugin.make_config(
        model=str(tiny_model_dir), output=str(tmp_path / "run"), domain="countdown",
        max_steps=1, max_prompts=2, num_generations=2, per_device_train_batch_size=4,
        max_completion_length=6,
    )  # fmt: skip
    manifest = plugin.train(config)
    assert manifest.reward == ["countdown"] and manifest.judge is None
    rows = [json.loads(line) for line in (tmp_path / "run" / "rollouts.jsonl").open()]
    assert len(rows) == 4
    for row in rows:
        found = puzzle(row["prompt"])
        assert found is not None
        assert row["rewards"]["countdown"] == score(row["completion"], *found)
