"""Command line: `python -m pipectl_runner NOTEBOOK [--param NAME=VALUE]... [--output FILE]
[--task-values-out FILE] [--task-values-in FILE] [--error-output FILE] [--timings]`.

Exit codes: 0 success, 1 the notebook failed, 2 usage error (missing notebook, bad --param, bad
--task-values-in, not a notebook), 130/143 stopped by SIGINT/SIGTERM.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from .notebook import NotebookFormatError
from .runner import StageTerminated, run_notebook

USAGE_ERROR = 2


def _write(path: str, text: str) -> None:
    """Atomic: the executor never reads a half-written result file."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m pipectl_runner",
        description="Run a Databricks source-format notebook locally with a dbutils shim.",
    )
    p.add_argument("notebook", help="path of the notebook (.py, Databricks source format)")
    p.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="widget value (repeatable); values are strings, JSON for structured ones",
    )
    p.add_argument("--output", metavar="FILE", help="receives the exit value verbatim")
    p.add_argument("--task-values-out", metavar="FILE", help="receives the task values set (JSON object)")
    p.add_argument(
        "--task-values-in",
        metavar="FILE",
        help='upstream task values {"<task>": {"<key>": value}}; makes taskValues.get act as in a job',
    )
    p.add_argument(
        "--error-output", metavar="FILE", help='on failure receives {"error", "error_trace", "cell"}'
    )
    p.add_argument("--timings", action="store_true", help="print per-cell timings to stderr")
    return p


class _UsageError(Exception):
    pass


def _params(items: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise _UsageError(f"--param {item!r}: expected NAME=VALUE")
        if name in out:
            raise _UsageError(f"--param {name!r} given more than once")
        out[name] = value
    return out


def _task_values_in(path: str | None) -> dict[str, dict[str, Any]] | None:
    if path is None:
        return None
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise _UsageError(f"--task-values-in {path}: {exc.strerror or exc}") from None
    except json.JSONDecodeError as exc:
        raise _UsageError(f"--task-values-in {path}: not JSON ({exc})") from None
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise _UsageError(f'--task-values-in {path}: expected {{"<task>": {{"<key>": value}}}}')
    return data


def _on_sigterm(_signum: int, _frame: Any) -> None:
    raise StageTerminated("received SIGTERM")


def main(argv: list[str] | None = None) -> int:
    # Stream the notebook's output as it happens (the executor relays it live).
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(AttributeError, ValueError):  # not a TextIOWrapper (tests)
            stream.reconfigure(line_buffering=True, write_through=True)  # type: ignore[union-attr]
    # Local runs do not send MLflow usage telemetry (and do not wait for it at exit), unless the
    # environment explicitly asks for it.
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    args = _parser().parse_args(argv)  # exits with 2 on bad usage
    try:
        params = _params(args.param)
        upstream = _task_values_in(args.task_values_in)
        notebook = Path(args.notebook)
        if not notebook.is_file():
            raise _UsageError(f"notebook not found: {notebook}")
    except _UsageError as exc:
        print(f"pipectl_runner: {exc}", file=sys.stderr)
        return USAGE_ERROR

    # SIGINT already raises KeyboardInterrupt; make SIGTERM (how executors cancel) unwind too.
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    started = time.perf_counter()

    def on_cell_start(cell: Any, total: int) -> None:
        if args.timings:
            print(
                f"pipectl_runner: cell {cell.number} of {total} starts at "
                f"+{time.perf_counter() - started:.3f}s",
                file=sys.stderr,
            )

    try:
        result = run_notebook(notebook, params, task_values_in=upstream, on_cell_start=on_cell_start)
    except NotebookFormatError as exc:
        print(f"pipectl_runner: {exc}", file=sys.stderr)
        return USAGE_ERROR
    finally:
        signal.signal(signal.SIGTERM, previous)  # the notebook is done: no more unwinding

    if args.task_values_out:
        _write(args.task_values_out, json.dumps(result.task_values, indent=2) + "\n")
    if result.ok:
        if args.output and result.exit_value is not None:
            _write(args.output, result.exit_value)
        if result.exit_value is None:
            print(
                "pipectl_runner: the notebook finished without dbutils.notebook.exit; no output was written",
                file=sys.stderr,
            )
    else:
        err = result.error or {}
        verb = "was stopped" if result.interrupted else "failed"
        # Whoever asks for --error-output reports the error from the file (the local executor: the
        # traceback goes to the stage log, a user error's message is shown once); printing the
        # traceback, or a user error at all, here too would show them twice.
        if args.error_output:
            _write(args.error_output, json.dumps(err, indent=2) + "\n")
        if not (args.error_output and err.get("user_error")):
            print(
                f"pipectl_runner: cell {err.get('cell')} of {result.cells} {verb} ({err.get('error', '')})",
                file=sys.stderr,
            )
        if not args.error_output:
            print(err.get("error_trace", ""), file=sys.stderr, end="")
    if args.timings:
        for number, seconds in result.cell_seconds.items():
            print(f"pipectl_runner: cell {number}: {seconds:.3f}s", file=sys.stderr)
    return result.exit_code
