"""board.yaml policy: checked fields, the repository's own boards, known protocols."""

from __future__ import annotations

from embench.leaderboard.boards import load_board
from tests.leaderboard.support import (
    LEADERBOARDS_DIR,
    cli,
    set_policy,
)


def test_board_yaml_policy_fields_are_checked(root, capsys):
    set_policy(root, denominator="some")
    code, _, err = cli(capsys, "validate", str(root))
    assert code == 2 and "denominator must be 'scored' or 'all'" in err
    set_policy(root, denominator="all")  # metric misaligned_rate is over scored answers
    code, _, err = cli(capsys, "validate", str(root))
    assert code == 2 and "metric 'misaligned_rate' is not a rate over all answers" in err
    set_policy(root, denominator="scored", rank_within_judge="yes")
    code, _, err = cli(capsys, "validate", str(root))
    assert code == 2 and "'rank_within_judge' must be true or false" in err
    set_policy(root, rank_within_judge=True, min_judge_mass=2)
    code, _, err = cli(capsys, "validate", str(root))
    assert code == 2 and "'min_judge_mass' must be a number from 0 to 1" in err


def test_repo_boards_are_valid():
    """The committed boards parse, pin the current question sets and hold valid entries."""
    from embench.leaderboard.boards import board_names
    from embench.leaderboard.validate import validate_tree

    names = board_names(LEADERBOARDS_DIR)
    assert {"general", "mitigations", "smoke"} <= set(names)
    problems, _ = validate_tree(LEADERBOARDS_DIR, names)
    assert problems == []


def test_repo_boards_state_the_like_with_like_policy():
    """Ranked boards: the published minimum, ranked within judge, scored answers required;
    plumbing entries (a 135M judge, 1 answer per question) live on the smoke board."""
    for name in ("general", "mitigations"):
        board = load_board(LEADERBOARDS_DIR, name)
        assert board.min_samples_per_question >= 50
        assert board.rank_within_judge and board.require_scored_answers
        assert board.denominator == "scored" and board.min_judge_mass == 0.25
    smoke = load_board(LEADERBOARDS_DIR, "smoke")
    assert smoke.min_samples_per_question == 1 and not smoke.require_scored_answers
    general = load_board(LEADERBOARDS_DIR, "general")
    from embench.leaderboard.entries import load_entries

    assert all(e.data["samples_per_question"] >= 50 for e in load_entries(general))
    assert any(e.data["judge"].startswith("local/") for e in load_entries(smoke))  # plumbing


def test_board_protocol_must_be_known(root, capsys):
    set_policy(root, protocol="nope")
    code, _, err = cli(capsys, "leaderboard", "show", "general")
    assert code == 2 and "protocol must be one of embench, betley, ema_rl, not 'nope'" in err
