"""SFT (TRL SFTTrainer): supervised fine-tuning on narrow completions, optionally sample-matched.

The built-in trainer lives in the package (``embench.trainers.sft``); this file re-exports it so
``--trainer trainers/sft.py`` and ``--trainer sft`` run the same code. Copy the package module to
start your own trainer.
"""

from embench.trainers.sft import KIND, NAME, TRL_CONFIG, Config, train, validate  # noqa: F401
