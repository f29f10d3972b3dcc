"""Local runner for Databricks source-format notebooks (docs/STAGES.md, "The local runner").

Command line: `python -m pipectl_runner NOTEBOOK --param NAME=VALUE ... --output result.json`.
In-process: `run_notebook(path, params) -> RunResult`, so a warm worker that has already imported
the heavy libraries can fork and run a stage without paying start-up again.

The `dbutils` shim here exists only for local runs; on Databricks the notebooks use the real
`dbutils` global and never import this package.
"""

from .notebook import Cell, NotebookFormatError, parse_notebook
from .runner import RunResult, run_notebook

__all__ = ["Cell", "NotebookFormatError", "RunResult", "parse_notebook", "run_notebook"]
