"""`python -m procsupervisor ...` is the same as the `procsupervisor` command."""

from procsupervisor.cli import main

main()
