"""The built-in trainer plugins (``grpo``, ``sft``), shipped inside the package.

Every module here is a trainer plugin (see ``embench.training.plugins`` for the protocol);
discovery imports each one. The checkout's ``trainers/*.py`` are thin copies for users to read and
to pass as ``--trainer trainers/grpo.py``: they only import from here.
"""
