"""pipectl: `mlflow server ...` in one process instead of two, with writes serialised.

`mlflow server` imports MLflow's server, checks the store, then starts uvicorn as a child process
that imports it all again: seconds of start-up spent twice, on the critical path of the first stage
that needs MLflow. This runs the same command line with the child started in this process: only
the process start is replaced, the command line and the environment it sets stay MLflow's own.

In that process, requests that write to the tracking store or the registry are handled one at a
time. The SQL store's get-or-create steps are not atomic: two training stages logging the same
dataset at once make one fail with "UNIQUE constraint failed: datasets..." (seen here with two
stages). SQLite takes one writer at a time anyway, so nothing is lost.

If MLflow changes its internals so that this does not apply, the command runs as usual, in two
processes.

Usage: python -c <this file> [mlflow server arguments]...
"""

import os
import sys
import threading

_WRITES = frozenset(("POST", "PUT", "PATCH", "DELETE"))


def _serialise_writes(wsgi_app):
    """Wrap a WSGI app so that requests writing to /…/mlflow/… (tracking and registry, not the
    artifact proxy under /…/mlflow-artifacts/…) run one at a time, response body included."""
    lock = threading.Lock()

    def app(environ, start_response):
        if environ.get("REQUEST_METHOD") not in _WRITES or "/mlflow/" not in environ.get("PATH_INFO", ""):
            return wsgi_app(environ, start_response)
        with lock:
            result = wsgi_app(environ, start_response)
            try:
                return [b"".join(result)]
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()

    return app


def main() -> None:
    import mlflow.server
    from mlflow.cli import cli

    spawn = getattr(mlflow.server, "_exec_cmd", None)

    def run_in_process(cmd, *args, extra_env=None, **kwargs):
        # cmd is [python, "-m", "uvicorn", ARG...] (mlflow.server._build_uvicorn_command).
        if list(cmd[1:3]) != ["-m", "uvicorn"]:
            return spawn(cmd, *args, extra_env=extra_env, **kwargs)
        os.environ.update(extra_env or {})
        flask_app = getattr(mlflow.server, "app", None)
        if flask_app is not None and hasattr(flask_app, "wsgi_app"):
            flask_app.wsgi_app = _serialise_writes(flask_app.wsgi_app)
        from uvicorn.main import main as uvicorn_main

        uvicorn_main.main(args=list(cmd[3:]), prog_name="uvicorn")  # exits when the server stops

    if callable(spawn):
        mlflow.server._exec_cmd = run_in_process
    cli.main(args=["server", *sys.argv[1:]], prog_name="mlflow")


if __name__ == "__main__":
    main()
