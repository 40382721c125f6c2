"""The run contract, below every room that reads it: ``RunManifest`` and its schema
(``manifest``), run directories (``rundir``) and the ``local/<ref>`` model grammar
(``reference``). It imports only the core modules (errors, fsutil), never a trainer."""
