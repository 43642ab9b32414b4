"""`python -m prep` runs the command line."""

from prep.ui.cli import main

main()
