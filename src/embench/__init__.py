"""embench: emergent-misalignment benchmark for narrow RL and SFT fine-tuning."""

__version__ = "0.1.0"
