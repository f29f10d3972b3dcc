"""pipectl: `mlflow server ...` in one process instead of two.

`mlflow server` imports MLflow's server, checks the store, then starts uvicorn as a child process
that imports it all again: seconds of start-up spent twice, on the critical path of the first stage
that needs MLflow. This runs the same command line with the child started in this process: only
the process start is replaced, the command line and the environment it sets stay MLflow's own. If
MLflow changes its internals so that this does not apply, the command runs as usual, in two
processes.

Usage: python -c <this file> [mlflow server arguments]...
"""

import os
import sys


def main() -> None:
    import mlflow.server
    from mlflow.cli import cli

    spawn = getattr(mlflow.server, "_exec_cmd", None)

    def run_in_process(cmd, *args, extra_env=None, **kwargs):
        # cmd is [python, "-m", "uvicorn", ARG...] (mlflow.server._build_uvicorn_command).
        if list(cmd[1:3]) != ["-m", "uvicorn"]:
            return spawn(cmd, *args, extra_env=extra_env, **kwargs)
        os.environ.update(extra_env or {})
        from uvicorn.main import main as uvicorn_main

        uvicorn_main.main(args=list(cmd[3:]), prog_name="uvicorn")  # exits when the server stops

    if callable(spawn):
        mlflow.server._exec_cmd = run_in_process
    cli.main(args=["server", *sys.argv[1:]], prog_name="mlflow")


if __name__ == "__main__":
    main()
