"""`python -m aimesh` is the `aimesh` command."""

from aimesh.cli import main

main()
