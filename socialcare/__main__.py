"""`python -m socialcare` is the `socialcare` command."""

from socialcare.cli import main

main()
