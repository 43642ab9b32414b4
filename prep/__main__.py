"""`python -m prep` runs the command line."""

from prep.cli import main

main()
