"""The `callqa` commands that outgrew pipeline/cli.py, one module per concern."""
