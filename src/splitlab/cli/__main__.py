"""``python -m splitlab.cli``."""

from splitlab.cli import main

main()
