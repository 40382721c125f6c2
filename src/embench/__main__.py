"""``python -m embench`` (and ``accelerate launch -m embench train ...``): the CLI."""

from embench.cli import main

main(prog_name="embench")
