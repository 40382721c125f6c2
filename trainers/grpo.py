"""GRPO (TRL GRPOTrainer): reinforcement learning from a narrow reward, full or LoRA.

The built-in trainer lives in the package (``embench.trainers.grpo``); this file re-exports it so
``--trainer trainers/grpo.py`` and ``--trainer grpo`` run the same code. Copy the package module
to start your own trainer.
"""

from embench.trainers.grpo import KIND, NAME, TRL_CONFIG, Config, train, validate  # noqa: F401
