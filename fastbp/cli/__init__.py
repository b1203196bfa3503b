"""The ``fastbp`` command line (`fastbp.cli.commands`) and its tabular data
(`fastbp.cli.tabular`)."""
from fastbp.cli.commands import main

__all__ = ["main"]
