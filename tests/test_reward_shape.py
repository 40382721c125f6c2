"""The reward gates' ranges are declared once (RewardShape) and the training config reuses them."""

from __future__ import annotations

from dataclasses import fields
from typing import get_type_hints

import pytest

from embench.errors import EmbenchError
from embench.rewards.shape import RewardShape, shape_from_config
from embench.training.config import TrainConfig


def test_train_config_declares_the_gates_with_the_shapes_types_and_defaults():
    config_hints = get_type_hints(TrainConfig, include_extras=True)
    shape_hints = get_type_hints(RewardShape, include_extras=True)
    shared = [f.name for f in fields(RewardShape) if f"reward_{f.name}" in config_hints]
    assert len(shared) == 6  # require_reasoning is a domain gate only
    config = TrainConfig()
    for name in shared:
        assert config_hints[f"reward_{name}"] == shape_hints[name], name
        assert getattr(config, f"reward_{name}") == getattr(RewardShape(), name), name
    assert shape_from_config(config) == RewardShape()


@pytest.mark.parametrize(
    ("gates", "message"),
    [
        ({"coherence_gate": 101}, "reward_coherence_gate must be <= 100, got 101"),
        ({"max_repetition": 0}, "reward_max_repetition must be > 0, got 0"),
        ({"min_words": -1}, "reward_min_words must be >= 0, got -1"),
        ({"structure": "median"}, "reward_structure must be one of paper, mean, got 'median'"),
    ],
)
def test_a_domain_gate_out_of_range_is_one_line(gates, message):
    with pytest.raises(EmbenchError, match=message):
        RewardShape().for_domain(gates)
