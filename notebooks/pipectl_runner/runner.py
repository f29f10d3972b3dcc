"""Running a notebook's cells in order, in one namespace, with the `dbutils` shim."""

from __future__ import annotations

import builtins
import sys
import time
import traceback
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .dbutils import DBUtils, NotebookExit
from .notebook import Cell, parse_notebook

#: An exception class with this attribute set to True is the user's to fix (bad input data, a wrong
#: parameter): the error then carries "user_error": true and "message", the exception's text alone,
#: which pipectl shows once, without the traceback (that stays in the stage log) and without
#: suggesting --resume.
USER_ERROR_ATTRIBUTE = "pipectl_user_error"


class StageTerminated(BaseException):
    """Raised inside the notebook when the runner receives SIGTERM, so `with` blocks unwind (an
    MLflow run ends FAILED instead of staying RUNNING) before the process exits."""


@dataclass
class RunResult:
    ok: bool
    exit_value: str | None  # what the notebook passed to dbutils.notebook.exit, if it did
    task_values: dict[str, Any]
    cells: int
    # {"error", "error_trace", "cell"} as in runs/get-output; plus "user_error" and "message" for
    # a user error (USER_ERROR_ATTRIBUTE)
    error: dict[str, Any] | None = None
    interrupted: str | None = None  # "SIGTERM" / "SIGINT" when a signal stopped the notebook
    cell_seconds: dict[int, float] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        if self.ok:
            return 0
        return {"SIGTERM": 143, "SIGINT": 130}.get(self.interrupted or "", 1)


def display(*objects: Any, **_: Any) -> None:
    """Notebook `display()`: print instead of rendering."""
    for obj in objects:
        print(obj)


def _namespace(dbutils: DBUtils) -> dict[str, Any]:
    return {
        "__name__": "__main__",
        "__builtins__": builtins,
        "dbutils": dbutils,
        "display": display,
        "displayHTML": display,
        "spark": None,  # no Spark locally; the pipeline's notebooks do not use it
    }


def _trace(exc: BaseException, nb: Path) -> str:
    # Drop the runner's own frames: the trace starts in the notebook's cell (when it got there;
    # a syntax error or an unsupported magic has no notebook frame).
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename != str(nb):
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(exc), exc, tb or exc.__traceback__))


def run_notebook(
    path: str | Path,
    params: Mapping[str, str] | None = None,
    *,
    task_values_in: Mapping[str, Mapping[str, Any]] | None = None,
    on_cell_start: Any = None,
) -> RunResult:
    """Run the notebook at `path` with `params` (strings) as widget values.

    `task_values_in` are upstream task values ({task: {key: value}}); without them the notebook
    runs as outside a job (taskValues.get returns its debugValue). Errors in a cell are caught and
    reported in the result; `NotebookFormatError` (not a notebook) and `OSError` propagate.
    """
    nb = Path(path).resolve()
    cells = parse_notebook(nb)
    dbutils = DBUtils(dict(params or {}), task_values_in)
    namespace = _namespace(dbutils)
    result = RunResult(ok=True, exit_value=None, task_values=dbutils.task_values, cells=len(cells))

    # As on Databricks, modules next to the notebook are importable.
    saved_path = list(sys.path)
    if str(nb.parent) not in sys.path:
        sys.path.insert(0, str(nb.parent))
    try:
        for cell in cells:
            if cell.kind in ("markdown", "empty"):
                continue
            if on_cell_start is not None:
                on_cell_start(cell, len(cells))
            started = time.perf_counter()
            try:
                _run_cell(cell, nb, namespace)
            except NotebookExit as done:
                result.exit_value = done.value
                break
            except (Exception, KeyboardInterrupt, StageTerminated, SystemExit) as exc:  # noqa: BLE001 - any failure of the notebook is reported, not raised
                result.ok = False
                if isinstance(exc, KeyboardInterrupt):
                    result.interrupted = "SIGINT"
                elif isinstance(exc, StageTerminated):
                    result.interrupted = "SIGTERM"
                message = "".join(traceback.format_exception_only(type(exc), exc)).strip()
                result.error = {"error": message, "error_trace": _trace(exc, nb), "cell": cell.number}
                if getattr(exc, USER_ERROR_ATTRIBUTE, False) is True:
                    result.error.update(user_error=True, message=str(exc))
                break
            finally:
                result.cell_seconds[cell.number] = time.perf_counter() - started
    finally:
        sys.path[:] = saved_path
    return result


def _run_cell(cell: Cell, nb: Path, namespace: dict[str, Any]) -> None:
    if cell.kind == "magic":
        raise RuntimeError(
            f"cell {cell.number}: magic command {cell.magic} is not supported by the local runner "
            "(only %md cells are skipped)"
        )
    # Pad with newlines so line numbers in tracebacks are the file's own.
    code = compile("\n" * (cell.first_line - 1) + cell.source, str(nb), "exec")
    exec(code, namespace)  # noqa: S102 - running the notebook is the point
