"""`python -m tests.chaos`: see run.py."""

from .run import main

main()
