"""Trainer plugins, their shared configuration, run directories and the shared training loop."""
